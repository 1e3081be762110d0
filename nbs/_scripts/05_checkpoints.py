# %% [markdown]
# # Checkpoints
#
# > Reading and writing checkpoints safely: the official HiFi-GAN file layout, atomic writes, and loads that cannot execute code.

# %%
#| default_exp checkpoints

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import os, re, tempfile
from pathlib import Path
import torch
from hifigan_ruslan.config import Config, GENERATOR_PRESETS, config_from_dict, preset_config
from hifigan_ruslan.generator import Generator


# %% [markdown]
# ## File layout
#
# The project keeps the official HiFi-GAN names and layouts, so that its checkpoints work with other HiFi-GAN tools and the official ones work here:
#
# | file | contents |
# |---|---|
# | `g_XXXXXXXX` (step, 8 digits) | `{"generator": state_dict}` with weight-norm keys (`weight_g`, `weight_v`); this project adds `config` (the run's `Config` as a dict) and `steps` |
# | `do_XXXXXXXX` | `{"mpd", "msd", "optim_g", "optim_d", "steps", "epoch"}`; this project adds schedulers, gradient scaler, RNG states, config and data position |
# | `generator_best.pt` | the `g_` layout of the step with the best validation mel error |
#
# **Atomic writes.** A Kaggle session that hits its time limit, or a `kill -9`, can stop a process in the middle of `torch.save`. Writing to a temporary file in the same folder, flushing it to disk (`fsync`) and then renaming it over the final name means the final name always holds either the old complete file or the new complete file, never half of one: a rename within one file system is atomic.
#
# **Safe loading.** A checkpoint downloaded from the internet is a pickle, and unpickling can run arbitrary code. Every load here uses `torch.load(..., weights_only=True)`, which only accepts tensors and plain containers: the official files and this project's files load, a booby-trapped file is refused.

# %%
#| export
def atomic_save(obj, path) -> Path:
    "`torch.save` to a temporary file next to `path`, fsync, then rename over `path`: a crash never leaves a half-written file."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try: os.fsync(dir_fd)
        finally: os.close(dir_fd)
    except OSError: pass
    return path


# %%
#| export
def load_checkpoint(path, map_location="cpu") -> dict:
    "Load a checkpoint with `weights_only=True`; a missing, truncated or unsafe file raises a one-line error naming it."
    path = Path(path)
    if not path.is_file(): raise FileNotFoundError(f"{path}: checkpoint not found")
    try: ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path}: not a readable checkpoint ({reason.split('. ')[0][:160]})") from None
    if not isinstance(ckpt, dict): raise ValueError(f"{path}: not a checkpoint (expected a dict, got {type(ckpt).__name__})")
    return ckpt


# %%
show_doc(load_checkpoint)

# %%
import pickle

# %%
with tempfile.TemporaryDirectory() as d:
    p = atomic_save({"generator": {"w": torch.ones(2)}, "steps": 7}, Path(d) / "g_00000007")
    assert load_checkpoint(p)["steps"] == 7 and [f.name for f in Path(d).iterdir()] == ["g_00000007"]  # no temp left
    p.write_bytes(p.read_bytes()[:40])  # truncated, as after a crash without atomic writes
    try: load_checkpoint(p); raise AssertionError
    except ValueError as e: print(e)

    class Evil:  # unpickling this would run a shell command
        def __reduce__(self): return (os.system, ("echo pwned",))
    evil = Path(d) / "evil.pt"
    with open(evil, "wb") as f: pickle.dump({"generator": Evil()}, f, protocol=2)
    try: load_checkpoint(evil); raise AssertionError
    except ValueError as e: print(str(e)[:110], "...")


# %% [markdown]
# ## Finding checkpoints

# %%
#| export
def step_path(ckpt_dir, prefix: str, step: int) -> Path:
    "`ckpt_dir/{prefix}_{step:08d}`, the official naming (`g_00012000`, `do_00012000`)."
    return Path(ckpt_dir) / f"{prefix}_{step:08d}"

def list_steps(ckpt_dir, prefix: str = "g") -> list[int]:
    "Steps for which `ckpt_dir` holds a `{prefix}_XXXXXXXX` file, oldest first."
    pat = re.compile(rf"^{prefix}_(\d{{8}})$")
    d = Path(ckpt_dir)
    if not d.is_dir(): return []
    return sorted(int(m.group(1)) for f in d.iterdir() if (m := pat.match(f.name)))


# %%
with tempfile.TemporaryDirectory() as d:
    for s in (40, 20, 60): step_path(d, "g", s).touch()
    step_path(d, "do", 20).touch(); (Path(d) / "g_00000080.tmp").touch()
    assert list_steps(d) == [20, 40, 60] and list_steps(d, "do") == [20] and step_path(d, "g", 60).name == "g_00000060"


# %% [markdown]
# ## Loading a generator from any checkpoint
#
# `generator_from_checkpoint` accepts what a user is likely to have: this project's `g_` files and `generator_best.pt` (which carry their config), an official `g_` file (no config: the preset is inferred from the tensor shapes, or given), or a bare generator state dict, with or without weight norm.

# %%
#| export
def _shapes(sd: dict) -> dict:
    return {k: tuple(v.shape) for k, v in sd.items()}

def _preset_shapes(name: str, fused: bool) -> dict:
    with torch.device("meta"):
        g = Generator(GENERATOR_PRESETS[name])
        if fused: g.remove_weight_norm()
    return _shapes(g.state_dict())

def infer_generator_preset(state_dict: dict) -> str | None:
    "The generator preset whose layout matches `state_dict` (with or without weight norm), or None."
    fused = not any(k.endswith("weight_g") for k in state_dict)
    shapes = _shapes(state_dict)
    return next((n for n in GENERATOR_PRESETS if _preset_shapes(n, fused) == shapes), None)


# %%
#| export
def generator_from_checkpoint(path, preset: str | None = None, map_location="cpu") -> tuple[Generator, Config]:
    "Load the generator of a project or official checkpoint; returns `(generator, config)` with weight norm as stored."
    ckpt = load_checkpoint(path, map_location)
    sd = ckpt.get("generator", ckpt)
    if not isinstance(sd, dict) or not any(k.startswith("conv_pre.") for k in sd):
        raise ValueError(f"{path}: no generator weights in this file (keys: {', '.join(list(ckpt)[:6])})")
    if "config" in ckpt and preset is None: cfg = config_from_dict(ckpt["config"], f"{path}: config")
    else:
        found = infer_generator_preset(sd)
        name = preset or found
        if name is None: raise ValueError(f"{path}: generator layout matches none of the presets {', '.join(GENERATOR_PRESETS)}; pass --preset")
        if found is not None and name.lower() != found:
            raise ValueError(f"{path}: holds a {found} generator, not {name}")
        cfg = preset_config(name)
    g = Generator(cfg.generator)
    if not any(k.endswith("weight_g") for k in sd): g.remove_weight_norm()
    try: g.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: generator weights do not fit preset {cfg.generator_preset}: {str(e).splitlines()[1].strip()}") from None
    return g, cfg


# %%
show_doc(generator_from_checkpoint)

# %% [markdown]
# An official-format V3 file with the reference weights, this project's format, and a fused state dict all load:

# %%
import json
from hifigan_ruslan.config import config_to_dict
from hifigan_ruslan.generator import reference_weights

# %%
manifest = json.loads(Path("testdata/reference/state_dict_manifest.json").read_text())
with tempfile.TemporaryDirectory() as d:
    official = atomic_save({"generator": reference_weights(manifest["generator_v3"])}, Path(d) / "g_02500000")
    g, cfg = generator_from_checkpoint(official)
    assert cfg.generator_preset == "v3" and infer_generator_preset(torch.load(official, weights_only=True)["generator"]) == "v3"
    try: generator_from_checkpoint(official, preset="v1")
    except ValueError as e: print(e)

    tiny_cfg = preset_config("tiny")
    ours = atomic_save({"generator": Generator(tiny_cfg.generator).state_dict(), "config": config_to_dict(tiny_cfg), "steps": 20},
                       Path(d) / "g_00000020")
    assert generator_from_checkpoint(ours)[1] == tiny_cfg

    fused = atomic_save(Generator.from_preset("v2").remove_weight_norm().state_dict(), Path(d) / "v2_fused.pt")
    assert generator_from_checkpoint(fused)[1].generator_preset == "v2"
    try: generator_from_checkpoint(step_path(d, "g", 99))
    except FileNotFoundError as e: print(e)
