# %% [markdown]
# # Checkpoints
#
# > The official HiFi-GAN checkpoint format and everything around it: atomic writes, loads that cannot execute code, the training payloads, pruning, resume and transfer.

# %%
#| default_exp checkpoints

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import errno, math, pickle, random, re, shutil, zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import torch
from hifigan_ruslan.config import GENERATOR_PRESETS, Config, config_from_dict, config_to_dict, preset_config
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.locations import atomic_write, check_input_file, torch_file_problem
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.pretrained import is_pretrained_name, pretrained_path


# %% [markdown]
# ## File layout
#
# The project keeps the official HiFi-GAN names and layouts, so that its checkpoints work with other HiFi-GAN tools and the official ones work here:
#
# | file | contents |
# |---|---|
# | `g_XXXXXXXX` (step, 8 digits) | `{"generator": state_dict}` with weight-norm keys (`weight_g`, `weight_v`); this project adds `config` (the run's `Config` as a dict) and `steps` |
# | `do_XXXXXXXX` | `{"mpd", "msd", "optim_g", "optim_d", "steps", "epoch"}`; this project adds `format`, schedulers, gradient scalers, RNG states, config, data position and the best validation error |
# | `generator_best.pt` | the `g_` layout of the step with the best validation mel error |
#
# **Atomic writes.** A Kaggle session that hits its time limit, or a `kill -9`, can stop a process in the middle of `torch.save`. Every checkpoint is written through `atomic_write` of [Locations](00c_locations.ipynb#writing-a-file-whole-and-naming-its-contents): to a temporary file in the same folder, flushed to disk (`fsync`), then renamed over the final name, so that the final name always holds either the old complete file or the new complete file, never half of one.
#
# **Safe loading.** A checkpoint downloaded from the internet is a pickle, and unpickling can run arbitrary code. Every load here uses `torch.load(..., weights_only=True)`, which only accepts tensors and plain containers: the official files and this project's files load, a booby-trapped file is refused.

# %%
#| export
def atomic_save(obj, path) -> Path:
    "`torch.save(obj)` to `path` through `atomic_write`."
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


# %% [markdown]
# Before `torch.load` sees a file, `torch_file_problem` ([Locations](00c_locations.ipynb)) looks at its first bytes,
# so that a text file or random bytes are named as what they are rather than reported by the unpickler's first
# complaint.
#
#
# An exported model is a file a user may well give where a checkpoint belongs (`export` writes `generator.onnx` or
# `generator.pt`), and neither is one: a TorchScript archive is a zip like a checkpoint's, but holds code, and
# `torch.load` only says it "cannot use weights_only=True with TorchScript archives"; an ONNX file is a protocol
# buffer. `export_format` recognises both from their first bytes, and the error says what the file is and how it is
# used.

# %%
#| export
CHECKPOINT_KINDS = ("a training checkpoint (g_XXXXXXXX, generator_best.pt), a run folder or a pretrained model "
                    "(universal, lj)")
EXPORT_USE = {"TorchScript": "load it with torch.jit.load (libtorch)",
              "ONNX": "run it with OpenVINO or ONNX Runtime"}

def export_format(path) -> str | None:
    "`TorchScript` or `ONNX` when `path` is a model written by `export`, judged from its contents; else None."
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:  # TorchScript keeps its code beside the weights
                names = archive.namelist()
        except zipfile.BadZipFile:  # cut short: torch.load names the problem
            return None
        return "TorchScript" if any(n.endswith("constants.pkl") or "/code/" in n for n in names) else None
    # an ONNX ModelProto starts with its IR version (field 1), then the producer's name (field 2)
    return "ONNX" if head[:1] == b"\x08" and head[2:3] == b"\x12" else None


# %% [markdown]
# `load_checkpoint` then reads the file itself, and names every kind of file that is not a checkpoint as what it is:

# %%
#| export
def load_checkpoint(path, map_location="cpu") -> dict:
    "Load a checkpoint with `weights_only=True`; a missing, truncated or unsafe file raises a `UserError`."
    path = check_input_file(path, "checkpoint")
    exported = export_format(path)
    if exported is not None:
        article = "an" if exported == "ONNX" else "a"
        raise UserError(f"{path}: {article} {exported} export of a generator, not a checkpoint: "
                        f"{EXPORT_USE[exported]}; give {CHECKPOINT_KINDS}")
    problem = torch_file_problem(path)
    if problem is not None:
        raise UserError(f"{path}: not a PyTorch checkpoint ({problem})")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(f"{path}: not a plain checkpoint: it holds Python objects besides tensors, which "
                        "could run code when loaded (refused)") from None
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a readable checkpoint ({reason.split('. ')[0][:160]})") from None
    if not isinstance(ckpt, dict):
        raise UserError(f"{path}: not a checkpoint (expected a dict, got {type(ckpt).__name__})")
    return ckpt


# %%
show_doc(load_checkpoint)

# %%
import pickle, stat, tempfile
from fastcore.test import test_close, test_eq, test_fail

# %% [markdown]
# A saved file loads, leaves no temporary file behind and has the permissions of any new file; a truncated file and a file that would run a command when unpickled are refused with one line naming them:

# %%
import os
with tempfile.TemporaryDirectory() as d:
    p = atomic_save({"generator": {"w": torch.ones(2)}, "steps": 7}, Path(d) / "g_00000007")
    test_eq(load_checkpoint(p)["steps"], 7)
    test_eq([f.name for f in Path(d).iterdir()], ["g_00000007"])
    umask = os.umask(0o022)
    os.umask(umask)
    test_eq(stat.S_IMODE(p.stat().st_mode), 0o666 & ~umask)
    p.write_bytes(p.read_bytes()[:40])  # truncated, as after a crash without atomic writes
    test_fail(lambda: load_checkpoint(p), contains="g_00000007: not a readable checkpoint")

    class Evil:  # unpickling this would run a shell command
        def __reduce__(self): return (os.system, ("echo pwned",))
    evil = Path(d) / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"generator": Evil()}, f, protocol=2)
    test_fail(lambda: load_checkpoint(evil), contains="evil.pt: not a plain checkpoint: it holds Python")
    test_fail(lambda: load_checkpoint(Path(d) / "nothing"), contains="nothing: checkpoint not found")
    test_fail(lambda: load_checkpoint(d), contains=": is a folder, not a checkpoint")
    (Path(d) / "notes.txt").write_text("hello, this is not a checkpoint\n")
    test_fail(lambda: load_checkpoint(Path(d) / "notes.txt"),
              contains="notes.txt: not a PyTorch checkpoint (a text file)")
    (Path(d) / "noise.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    test_fail(lambda: load_checkpoint(Path(d) / "noise.pt"),
              contains="noise.pt: not a PyTorch checkpoint (neither a torch.save archive nor a pickle)")

# %% [markdown]
# A TorchScript and an ONNX export of a small network are each named as what they are:

# %%
import warnings

# %%
with tempfile.TemporaryDirectory() as d:
    net = torch.nn.Conv1d(80, 1, 3)
    torch.jit.save(torch.jit.script(net), Path(d) / "model.pt")
    with warnings.catch_warnings():  # that the TorchScript-based exporter is legacy: `export` uses it too
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 80, 8),), Path(d) / "model.onnx", dynamo=False)
    test_eq([export_format(Path(d) / n) for n in ("model.pt", "model.onnx")], ["TorchScript", "ONNX"])
    test_eq(export_format(atomic_save({"w": torch.ones(2)}, Path(d) / "g_00000001")), None)
    for name, use in (("model.pt", "a TorchScript export of a generator, not a checkpoint: load it with"),
                      ("model.onnx", "an ONNX export")):
        test_fail(lambda: load_checkpoint(Path(d) / name), contains=f"{name}: {use}")


# %% [markdown]
# ## Finding checkpoints
#
# A checkpoint step is resumable when both of its files exist. `find_generator_file` turns what a user points at (a file, a run folder, its `checkpoints/` folder) into one generator file: the best one if the run has it, else the newest.

# %%
#| export
def step_path(ckpt_dir, prefix: str, step: int) -> Path:
    "`ckpt_dir/{prefix}_{step:08d}`, the official naming (`g_00012000`, `do_00012000`)."
    return Path(ckpt_dir) / f"{prefix}_{step:08d}"

def list_steps(ckpt_dir, prefix: str = "g") -> list[int]:
    "Steps for which `ckpt_dir` holds a `{prefix}_XXXXXXXX` file, oldest first."
    pattern = re.compile(rf"^{prefix}_(\d{{8}})$")
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for f in folder.iterdir() if (m := pattern.match(f.name)))

def resumable_step(ckpt_dir) -> int | None:
    "Newest step for which `ckpt_dir` holds both `g_` and `do_` files, or None."
    both = set(list_steps(ckpt_dir, "g")) & set(list_steps(ckpt_dir, "do"))
    return max(both) if both else None

def checkpoint_dir(path) -> Path:
    "The checkpoint folder of `path`: `path/checkpoints` for a run folder, else `path` itself."
    path = Path(path)
    return path / "checkpoints" if (path / "checkpoints").is_dir() else path

def find_generator_file(path) -> Path:
    "A generator file: `path`, a folder's `generator_best.pt` (else its newest `g_`), or a pretrained one."
    if is_pretrained_name(path):
        return pretrained_path(path)
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise UserError(f"{path}: no such checkpoint file or folder, nor a pretrained model (universal, lj)")
    folder = checkpoint_dir(path)
    if (folder / "generator_best.pt").is_file():
        return folder / "generator_best.pt"
    steps = list_steps(folder, "g")
    if not steps:
        raise UserError(f"{folder}: no generator_best.pt and no g_XXXXXXXX checkpoint in this folder")
    return step_path(folder, "g", steps[-1])


# %%
show_doc(find_generator_file)

# %%
with tempfile.TemporaryDirectory() as d:
    run = Path(d) / "run"
    for s in (40, 20, 60):
        step_path(run / "checkpoints", "g", s).parent.mkdir(parents=True, exist_ok=True)
        step_path(run / "checkpoints", "g", s).touch()
    step_path(run / "checkpoints", "do", 20).touch()
    step_path(run / "checkpoints", "do", 40).touch()
    (run / "checkpoints" / ".g_00000080.1a2b3c4d.partial").touch()  # a write cut short
    test_eq(list_steps(run / "checkpoints"), [20, 40, 60])
    test_eq(list_steps(run / "checkpoints", "do"), [20, 40])
    test_eq(resumable_step(run / "checkpoints"), 40)  # g_00000060 has no do_
    test_eq(resumable_step(run / "nowhere"), None)
    test_eq(find_generator_file(run).name, "g_00000060")
    (run / "checkpoints" / "generator_best.pt").touch()
    test_eq(find_generator_file(run / "checkpoints").name, "generator_best.pt")
    test_eq(find_generator_file(step_path(run / "checkpoints", "g", 20)).name, "g_00000020")
    test_fail(lambda: find_generator_file(Path(d)), contains="no generator_best.pt and no g_XXXXXXXX")
    test_fail(lambda: find_generator_file(Path(d) / "missing"), contains="missing: no such checkpoint file or folder")
test_eq(find_generator_file("universal").name, "generator_universal.pth.tar")  # a pretrained model by name


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
        if fused:
            g.remove_weight_norm()
    return _shapes(g.state_dict())

def _has_weight_norm(state_dict: dict) -> bool:
    return any(k.endswith("weight_g") for k in state_dict)

def infer_generator_preset(state_dict: dict) -> str | None:
    "The generator preset whose layout matches `state_dict` (with or without weight norm), or None."
    fused, shapes = not _has_weight_norm(state_dict), _shapes(state_dict)
    return next((n for n in GENERATOR_PRESETS if _preset_shapes(n, fused) == shapes), None)

def generator_state(ckpt: dict, path) -> dict:
    "The generator state dict of a loaded checkpoint (a `g_` file or a bare state dict)."
    sd = ckpt.get("generator", ckpt)
    if not isinstance(sd, dict) or not any(k.startswith("conv_pre.") for k in sd):
        raise UserError(f"{path}: no generator weights in this file (keys: {', '.join(list(ckpt)[:6])})")
    return sd


# %%
#| export
def _checkpoint_config(ckpt: dict, sd: dict, path, preset: str | None) -> Config:
    "The file's own config, or the preset given or recognised from the shapes."
    if "config" in ckpt and preset is None:
        return config_from_dict(ckpt["config"], f"{path}: config")
    found = infer_generator_preset(sd)
    name = preset or found
    if name is None:
        raise UserError(f"{path}: generator layout matches none of the presets "
                        f"{', '.join(GENERATOR_PRESETS)}; pass --preset")
    if found is not None and name.lower() != found:
        raise UserError(f"{path}: holds a {found} generator, not {name}")
    return preset_config(name)

def generator_from_checkpoint(path, preset: str | None = None,
                              map_location="cpu") -> tuple[Generator, Config]:
    "The generator of a project or official checkpoint and its config; weight norm as stored."
    ckpt = load_checkpoint(path, map_location)
    sd = generator_state(ckpt, path)
    cfg = _checkpoint_config(ckpt, sd, path, preset)
    g = Generator(cfg.generator, cfg.mel.num_mels)
    if not _has_weight_norm(sd):
        g.remove_weight_norm()
    try:
        g.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        detail = str(e).splitlines()[1].strip()
        raise UserError(f"{path}: generator weights do not fit preset {cfg.generator_preset}: "
                        f"{detail}") from None
    return g, cfg


# %%
show_doc(generator_from_checkpoint)

# %% [markdown]
# An official-format V3 file with the reference weights, this project's format, and a fused state dict all load:

# %%
import json
from hifigan_ruslan.testing import reference_weights

# %%
manifest = json.loads(Path("testdata/reference/state_dict_manifest.json").read_text())
with tempfile.TemporaryDirectory() as d:
    official = atomic_save({"generator": reference_weights(manifest["generator_v3"])}, Path(d) / "g_02500000")
    g, cfg = generator_from_checkpoint(official)
    test_eq(cfg.generator_preset, "v3")
    test_eq(infer_generator_preset(torch.load(official, weights_only=True)["generator"]), "v3")
    test_fail(lambda: generator_from_checkpoint(official, preset="v1"), contains="holds a v3 generator, not v1")

    tiny_cfg = preset_config("tiny")
    ours = atomic_save({"generator": Generator(tiny_cfg.generator).state_dict(), "config": config_to_dict(tiny_cfg),
                        "steps": 20}, Path(d) / "g_00000020")
    test_eq(generator_from_checkpoint(ours)[1], tiny_cfg)

    fused = atomic_save(Generator.from_preset("v2").remove_weight_norm().state_dict(), Path(d) / "v2_fused.pt")
    test_eq(generator_from_checkpoint(fused)[1].generator_preset, "v2")
    test_fail(lambda: generator_from_checkpoint(step_path(d, "g", 99)), contains="g_00000099: checkpoint not found")

# %% [markdown]
# ## The discriminators' optimizer: official parameter order
#
# The official `train.py` builds the discriminators' optimizer as `AdamW(itertools.chain(msd.parameters(), mpd.parameters()))`: **MSD first, then MPD**. An optimizer's state dict refers to parameters by position only, so `optim_d` of a `do_` file fits only an optimizer built in the same order. `discriminator_parameters` is that order, used by the trainer, so that the official code can resume from this project's `do_` files and this project from the official ones.
#
# Versions of this project before `format` 2 built the optimizer the other way round (MPD, then MSD). Their `do_` files are recognised by what the official files lack (a `config` key) and no `format` key; their optimizer state is re-indexed on load (`optim_d_state`). Each entry's moment tensors have the shape of their parameter, which the test below uses to check the re-indexing.

# %%
#| export
# the `format` of the do_ files written here: optim_d over MSD then MPD parameters (the official order)
FORMAT = 2

def discriminator_parameters(mpd: torch.nn.Module, msd: torch.nn.Module) -> list[torch.nn.Parameter]:
    "The parameters of both discriminators in the official optimizer order: MSD, then MPD."
    return [*msd.parameters(), *mpd.parameters()]

def _mpd_first(do: dict) -> bool:
    "Whether a do_ payload comes from an older version of this project (optim_d over MPD then MSD)."
    return "format" not in do and "config" in do

def _reindexed(state: dict, new_index) -> dict:
    "An optimizer state dict with parameter position `i` moved to `new_index(i)`."
    groups = [{**g, "params": sorted(new_index(i) for i in g["params"])} for g in state["param_groups"]]
    return {"state": {new_index(int(i)): s for i, s in state["state"].items()}, "param_groups": groups}

def optim_d_state(do: dict, mpd: torch.nn.Module, msd: torch.nn.Module) -> dict:
    "`do['optim_d']` in the official parameter order, whichever version of the format wrote it."
    if not _mpd_first(do):
        return do["optim_d"]
    n_mpd, n_msd = len(list(mpd.parameters())), len(list(msd.parameters()))
    return _reindexed(do["optim_d"], lambda i: i + n_msd if i < n_mpd else i - n_mpd)


# %%
from hifigan_ruslan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator

# %%
tiny = preset_config("tiny")
mpd, msd = MultiPeriodDiscriminator(tiny.discriminator), MultiScaleDiscriminator(tiny.discriminator)

def stepped_adamw(params) -> torch.optim.AdamW:
    "An AdamW over `params` after one step, so that it has per-parameter state."
    opt = torch.optim.AdamW(params)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    return opt

old_order = stepped_adamw([*mpd.parameters(), *msd.parameters()])  # as older versions of this project built it
old_do = {"optim_d": old_order.state_dict(), "config": config_to_dict(tiny)}
reordered = optim_d_state(old_do, mpd, msd)
official = discriminator_parameters(mpd, msd)
test_eq([tuple(reordered["state"][i]["exp_avg"].shape) for i in range(len(official))],
        [tuple(p.shape) for p in official])
torch.optim.AdamW(official).load_state_dict(reordered)
assert optim_d_state({**old_do, "format": FORMAT}, mpd, msd) is old_do["optim_d"]  # current files as they are


# %% [markdown]
# ## Training payloads
#
# The `do_` file holds what an exact resume needs. Its groups are passed by name, the way the file names them: `modules` (`generator`, `mpd`, `msd`) and `optimizers` (`optim_g`, `optim_d`, `sched_g`, `sched_d`, `scaler_g`, `scaler_d`); where the run is comes as a `RunPosition`. The random number generators of Python, NumPy and PyTorch (and CUDA) are saved too, and the data position: the epoch and the batches consumed in it, with the number of processes and the batch size that gave them their meaning. A resume with another split restarts the epoch's data.

# %%
#| export
@dataclass
class RunPosition:
    "Where a run stands: steps, epoch, batches consumed in the epoch, best validation error and its step."
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_val: float = math.inf
    best_step: int | None = None

def rng_state() -> dict:
    "The states of Python's, NumPy's, PyTorch's (and CUDA's) random number generators, as tensors and ints."
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
             "numpy_pos": int(np_state[2]), "python": torch.tensor(random.getstate()[1], dtype=torch.int64)}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state

def set_rng_state(state: dict):
    "Restore the generators saved by `rng_state` (CUDA's only on the same number of GPUs)."
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         0, 0.0))
    random.setstate((3, tuple(state["python"].tolist()), None))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


# %%
#| export
def training_payloads(modules: dict, optimizers: dict, cfg: Config, at: RunPosition,
                      split: tuple[int, int]) -> tuple[dict, dict]:
    "The `(g_, do_)` dictionaries of a run at `at`; `split` is `(world_size, batch size per process)`."
    config = config_to_dict(cfg)
    g = {"generator": modules["generator"].state_dict(), "config": config, "steps": at.step}
    do = {"mpd": modules["mpd"].state_dict(), "msd": modules["msd"].state_dict(),
          "optim_g": optimizers["optim_g"].state_dict(), "optim_d": optimizers["optim_d"].state_dict(),
          "steps": at.step, "epoch": at.epoch, "format": FORMAT,
          **{k: optimizers[k].state_dict() for k in ("sched_g", "sched_d", "scaler_g", "scaler_d")},
          "rng": rng_state(), "config": config,
          "data": {"epoch": at.epoch, "batch_in_epoch": at.batch_in_epoch, "world_size": split[0],
                   "batch_size": split[1]},
          "best": {"val_mel_l1": at.best_val, "step": -1 if at.best_step is None else at.best_step}}
    return g, do


# %%
#| export
def restore_training_state(g: dict, do: dict, modules: dict, optimizers: dict,
                           split: tuple[int, int]) -> RunPosition:
    "Load a `g_`/`do_` pair (this project's, older or official) into `modules`, `optimizers`; the position."
    modules["generator"].load_state_dict(g["generator"])
    modules["mpd"].load_state_dict(do["mpd"])
    modules["msd"].load_state_dict(do["msd"])
    optimizers["optim_g"].load_state_dict(do["optim_g"])
    optimizers["optim_d"].load_state_dict(optim_d_state(do, modules["mpd"], modules["msd"]))
    epoch = int(do["epoch"])
    for name in ("sched_g", "sched_d"):
        if name in do:
            optimizers[name].load_state_dict(do[name])
        else:  # an official file: the learning rates are in the optimizers, the epoch count is the schedule's
            optimizers[name].last_epoch = epoch
    for name in ("scaler_g", "scaler_d"):
        if do.get(name) and optimizers[name].is_enabled():
            optimizers[name].load_state_dict(do[name])
    data, best = do.get("data", {}), do.get("best", {})
    same_split = (data.get("world_size"), data.get("batch_size")) == split
    if "rng" in do:
        set_rng_state(do["rng"])
    best_step = int(best.get("step", -1))
    return RunPosition(step=int(do["steps"]), epoch=epoch,
                       batch_in_epoch=int(data.get("batch_in_epoch", 0)) if same_split else 0,
                       best_val=float(best.get("val_mel_l1", math.inf)),
                       best_step=None if best_step < 0 else best_step)


# %% [markdown]
# ## Saving, pruning and resuming
#
# `save_checkpoint` writes `do_` before `g_`, each atomically. Resume looks for complete pairs, so a kill at any instant leaves either a complete pair or a `do_` without its `g_` that nothing reads (and the next prune deletes). After each save only the newest `keep_last` pairs are kept, plus those in `keep` (the trainer keeps the best step's pair).
#
# `find_resume_checkpoint` takes a run folder, a checkpoint folder, or one `g_` or `do_` file. In a folder it walks the pairs from the newest back and returns the first that loads completely; a file that does not (cut short by a crash on a file system without atomic rename, or damaged in a copy) is skipped with a warning. A file named explicitly must load.

# %%
#| export
def prune_checkpoints(ckpt_dir, keep_last: int, keep=()) -> list[int]:
    "Delete `g_`/`do_` pairs but the newest `keep_last` (0 keeps all) and the steps in `keep`; returns them."
    if keep_last <= 0:
        return []
    steps = list_steps(ckpt_dir, "g")
    newest = steps[-1] if steps else 0
    doomed = [s for s in steps[:-keep_last] if s not in keep]
    doomed += [s for s in list_steps(ckpt_dir, "do") if s not in steps and s < newest]  # orphans of a kill
    for s in doomed:
        for prefix in ("g", "do"):
            step_path(ckpt_dir, prefix, s).unlink(missing_ok=True)
    return doomed


# %% [markdown]
# ## A full disk
#
# A long run on a small disk (Kaggle's working folder holds 20 GB; a V1 pair is about 1 GB) eventually meets a checkpoint that does not fit. Left to itself, `torch.save` then fails half-way with `No space left on device` and two chained tracebacks; `atomic_save` removes its temporary file, so nothing earlier is lost, but the message says nothing about what to do. So before each save the free space (`free_bytes`) is compared with the size of the pair about to be written (`payload_bytes`: the bytes of its tensors, which is what the file holds, plus a margin for the file structure and the logs written until the next checkpoint). When it is short, the pairs that the save would prune anyway go first (never the newest pair, never those in `keep`, nothing when `keep_last` is 0). If it is still short, or the disk fills up during the save anyway (another process writing), the run stops with `OutOfSpace`, a `UserError` with one line: the file, the space it needs and the space free, and the newest complete pair, from which the same command resumes once there is room. A `do_` written without its `g_` is removed again: it could not be resumed from and only takes space.

# %%
#| export
class OutOfSpace(UserError):
    "A checkpoint does not fit on disk; the message names the file, space needed and free, the resume point."

SPACE_MARGIN = 4 << 20  # bytes beyond the tensors: file structure, logs and samples until the next save

def free_bytes(folder) -> int:
    "Bytes free (for this user) on the file system that holds `folder`."
    return shutil.disk_usage(folder).free

def payload_bytes(obj) -> int:
    "The tensor bytes in a nested payload: what `torch.save` writes of it, less a few kB of structure."
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(payload_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(payload_bytes(v) for v in obj)
    return 0


# %% [markdown]
# A full disk is a mistake the user can fix, so it becomes an `OutOfSpace` error that names the file, the space needed and free, and the checkpoint a rerun resumes from; when pruning can make room, it is done before the write.

# %%
#| export
def out_of_space(path, ckpt_dir, needed: int, free: int) -> OutOfSpace:
    "The one-line error for `path` not fitting, naming the newest complete pair to resume from."
    newest = resumable_step(ckpt_dir)
    resume = f"resumes from {step_path(ckpt_dir, 'g', newest)}" if newest is not None else "starts afresh"
    return OutOfSpace(f"{path}: no space left on device: the checkpoint needs about {needed / 1e6:.1f} MB, "
                      f"{free / 1e6:.1f} MB are free; free some space, then the same command {resume}")

@contextmanager
def space_guard(path, ckpt_dir, needed: int, free_space=None):
    "Inside: an `OSError` 'No space left on device' while writing `path` becomes `out_of_space`."
    try:
        yield
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        free = (free_space or free_bytes)(ckpt_dir)
        raise out_of_space(path, ckpt_dir, needed, free) from None

def make_room(ckpt_dir, needed: int, keep_last: int, keep=(), free_space=None) -> int:
    "Prune early while `needed` bytes do not fit (to `keep_last - 1` pairs, at least one); the bytes free."
    free_space = free_space or free_bytes
    free = free_space(ckpt_dir)
    if free >= needed or keep_last <= 0:
        return free
    prune_checkpoints(ckpt_dir, max(keep_last - 1, 1), keep)
    return free_space(ckpt_dir)


# %% [markdown]
# `save_checkpoint` writes the `do_` file first and the `g_` file second: a pair is complete once its `g_` exists, and a kill between the two leaves an orphan `do_` that the next pruning removes.

# %%
#| export
def save_checkpoint(ckpt_dir, step: int, g: dict, do: dict, keep_last: int = 0, keep=(),
                    free_space=None) -> Path:
    "Write `do_` then `g_` of `step` atomically and prune old pairs, or raise `OutOfSpace`; the `g_` path."
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    do_path, g_path = step_path(ckpt_dir, "do", step), step_path(ckpt_dir, "g", step)
    needed = int(1.01 * (payload_bytes(do) + payload_bytes(g))) + SPACE_MARGIN  # structure: 0.5 % measured
    free = make_room(ckpt_dir, needed, keep_last, keep, free_space)
    if free < needed:
        raise out_of_space(do_path, ckpt_dir, needed, free)
    try:
        with space_guard(do_path, ckpt_dir, needed, free_space):
            atomic_save(do, do_path)
        with space_guard(g_path, ckpt_dir, needed, free_space):
            atomic_save(g, g_path)
    except OutOfSpace:
        if not g_path.exists():
            do_path.unlink(missing_ok=True)  # half a pair cannot be resumed from
        raise
    prune_checkpoints(ckpt_dir, keep_last, keep)
    return g_path


# %%
#| export
REQUIRED_DO_KEYS = ("mpd", "msd", "optim_g", "optim_d", "steps", "epoch")  # what the official train.py writes

@dataclass
class ResumePoint:
    "A complete checkpoint pair to resume from."
    step: int
    path: Path   # the g_ file
    g: dict
    do: dict

def _load_pair(ckpt_dir: Path, step: int) -> ResumePoint:
    g_path = step_path(ckpt_dir, "g", step)
    g, do = load_checkpoint(g_path), load_checkpoint(step_path(ckpt_dir, "do", step))
    missing = [k for k in REQUIRED_DO_KEYS if k not in do] + (["generator"] if "generator" not in g else [])
    if missing:
        raise UserError(f"{g_path}: incomplete checkpoint (no {', '.join(missing)})")
    return ResumePoint(step, g_path, g, do)

def find_resume_checkpoint(path) -> tuple[ResumePoint | None, list[str]]:
    "`(newest complete pair or None, warnings on skipped pairs)` of a run folder, checkpoint folder or file."
    path = Path(path)
    if path.is_file():
        m = re.match(r"^(?:g|do)_(\d{8})$", path.name)
        if m is None:
            raise UserError(f"{path}: not a g_XXXXXXXX or do_XXXXXXXX checkpoint file")
        return _load_pair(path.parent, int(m.group(1))), []
    warnings = []
    folder = checkpoint_dir(path)
    for s in reversed(list_steps(folder, "g")):
        try:
            return _load_pair(folder, s), warnings
        except UserError as e:
            warnings.append(f"warning: skipping checkpoint of step {s}: {e}")
    return None, warnings


# %%
show_doc(find_resume_checkpoint)


# %% [markdown]
# A round trip through the files with tiny networks: save two pairs, damage the newest, and resume from the one before; the position, the optimizers and the random number generators come back.

# %%
def tiny_parts(seed=0):
    "Tiny networks and stepped optimizers, as a trainer holds them."
    torch.manual_seed(seed)
    modules = {"generator": Generator(tiny.generator), "mpd": MultiPeriodDiscriminator(tiny.discriminator),
               "msd": MultiScaleDiscriminator(tiny.discriminator)}
    optim_g = stepped_adamw(list(modules["generator"].parameters()))
    optim_d = stepped_adamw(discriminator_parameters(modules["mpd"], modules["msd"]))
    optimizers = {"optim_g": optim_g, "optim_d": optim_d,
                  "sched_g": torch.optim.lr_scheduler.ExponentialLR(optim_g, 0.5),
                  "sched_d": torch.optim.lr_scheduler.ExponentialLR(optim_d, 0.5),
                  "scaler_g": torch.amp.GradScaler("cpu", enabled=False),
                  "scaler_d": torch.amp.GradScaler("cpu", enabled=False)}
    return modules, optimizers

with tempfile.TemporaryDirectory() as d:
    modules, optimizers = tiny_parts()
    for step in (10, 20, 30):
        optimizers["sched_g"].step()
        g, do = training_payloads(modules, optimizers, tiny, RunPosition(step, 1, 3, 0.5, 10), (1, 2))
        save_checkpoint(d, step, g, do, keep_last=2, keep={10})
    test_eq(list_steps(d), [10, 20, 30])  # 10 is kept as the best step
    draw = torch.rand(3)
    bad = step_path(d, "g", 30)
    bad.write_bytes(bad.read_bytes()[:100])
    point, warnings = find_resume_checkpoint(d)
    test_eq(point.step, 20)
    test_eq(len(warnings), 1)
    assert "skipping checkpoint of step 30" in warnings[0], warnings[0]
    fresh_modules, fresh_optimizers = tiny_parts(seed=1)
    at = restore_training_state(point.g, point.do, fresh_modules, fresh_optimizers, (1, 2))
    test_eq(at, RunPosition(20, 1, 3, 0.5, 10))
    test_eq(restore_training_state(point.g, point.do, fresh_modules, fresh_optimizers, (2, 2)).batch_in_epoch, 0)
    test_eq(fresh_optimizers["optim_g"].param_groups[0]["lr"], optimizers["optim_g"].param_groups[0]["lr"] * 2)
    test_eq(torch.equal(fresh_modules["msd"].state_dict()["discriminators.0.conv_post.bias"],
                        modules["msd"].state_dict()["discriminators.0.conv_post.bias"]), True)
    test_eq(torch.rand(3), draw)  # nothing was drawn between the saves: the restored generator repeats the draw
    test_fail(lambda: find_resume_checkpoint(bad), contains="g_00000030: not a readable checkpoint")
    test_eq(find_resume_checkpoint(Path(d) / "empty"), (None, []))

# %% [markdown]
# **A full disk, simulated.** The probe below reports the space of a 3 MB disk minus what the folder holds. With `keep_last=2` a pair that does not fit first prunes the pair that the save would prune anyway and fits; when even that is not enough, the save stops with one line and leaves the complete pairs as they were. A disk that fills up during the save (here `torch.save` fails as it does then) gives the same line, and neither the temporary file nor the half-written pair stays behind. `payload_bytes` is what the files hold to within a few kB.

# %%
from unittest.mock import patch


# %%
class SmallDisk:
    "A free-space probe: `capacity` bytes minus the files in the folder."
    def __init__(self, capacity: int):
        self.capacity = capacity

    def __call__(self, folder) -> int:
        return self.capacity - sum(f.stat().st_size for f in Path(folder).iterdir() if f.is_file())

with tempfile.TemporaryDirectory() as d:
    modules, optimizers = tiny_parts()
    g, do = training_payloads(modules, optimizers, tiny, RunPosition(10), (1, 2))
    save_checkpoint(d, 10, g, do)
    pair = sum(step_path(d, p, 10).stat().st_size for p in ("g", "do"))
    print(f"pair {pair} bytes, tensors {payload_bytes(g) + payload_bytes(do)} bytes")
    test_close(payload_bytes(g) + payload_bytes(do), pair, eps=0.02 * pair)  # measured: 0.5 % apart
    disk = SmallDisk(2 * pair + SPACE_MARGIN + pair // 50)  # room for two pairs and the margins, not three
    save_checkpoint(d, 20, g, do, keep_last=2, free_space=disk)
    save_checkpoint(d, 30, g, do, keep_last=2, free_space=disk)  # prunes step 10 first, then fits
    test_eq(list_steps(d), [20, 30])
    test_fail(lambda: save_checkpoint(d, 40, g, do, keep_last=2, keep={20}, free_space=disk),
              contains=f"{d}/do_00000040: no space left on device: the checkpoint needs about")
    test_fail(lambda: save_checkpoint(d, 40, g, do, keep_last=2, keep={20}, free_space=disk),
              contains=f"free; free some space, then the same command resumes from {d}/g_00000030")
    test_eq(list_steps(d), [20, 30])
    test_eq(list_steps(d, "do"), [20, 30])  # the best and the newest stay
    enospc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with patch("torch.save", side_effect=[None, enospc]):  # the do_ file fits, its g_ does not
        test_fail(lambda: save_checkpoint(d, 40, g, do), contains="g_00000040: no space left on device")
    test_eq(sorted(p.name for p in Path(d).iterdir()), ["do_00000020", "do_00000030", "g_00000020", "g_00000030"])
    test_eq(find_resume_checkpoint(d)[0].step, 30)
    assert issubclass(OutOfSpace, UserError)


# %% [markdown]
# ## Transfer: starting a new run from existing weights
#
# `load_initial_weights` is for transfer learning: it starts a **new** run from existing weights (this project's `g_` files or the official ones, for example the universal V1 generator trained on English) with fresh optimizers. Given a `g_` file it also loads the discriminators from the `do_` file beside it when there is one: starting the discriminators from scratch against a pretrained generator wastes the first thousands of steps. A folder means its `find_generator_file`.

# %%
#| export
def _load_discriminators(sibling: Path, modules: dict):
    do = load_checkpoint(sibling)
    try:
        modules["mpd"].load_state_dict(do["mpd"])
        modules["msd"].load_state_dict(do["msd"])
    except (KeyError, RuntimeError):
        raise UserError(f"{sibling}: its discriminators do not fit this run's discriminator config") from None

def load_initial_weights(path, modules: dict, generator_preset: str) -> str:
    "Load a checkpoint's generator (and its `do_` file's discriminators) into `modules`; says what it loaded."
    path = find_generator_file(path)
    sd = generator_state(load_checkpoint(path), path)
    if not _has_weight_norm(sd):
        raise UserError(f"{path}: generator without weight normalisation (exported for inference); "
                        "start from a g_ file")
    try:
        modules["generator"].load_state_dict(sd)
    except RuntimeError:
        found = infer_generator_preset(sd)
        raise UserError(f"{path}: holds a {found or 'differently shaped'} generator; this run's generator is "
                        f"{generator_preset} (choose a matching --preset)") from None
    loaded = [f"generator from {path}"]
    sibling = path.with_name("do_" + path.name[2:]) if path.name.startswith("g_") else None
    if sibling is not None and sibling.is_file():
        _load_discriminators(sibling, modules)
        loaded.append(f"discriminators from {sibling}")
    return "Initialised " + " and ".join(loaded) + " (fresh optimizers)"


# %%
with tempfile.TemporaryDirectory() as d:
    modules, optimizers = tiny_parts()
    g, do = training_payloads(modules, optimizers, tiny, RunPosition(5), (1, 2))
    save_checkpoint(d, 5, g, do)
    fresh, _ = tiny_parts(seed=1)
    print(load_initial_weights(d, fresh, "tiny").replace(d, "RUN"))
    assert torch.equal(fresh["generator"].conv_pre.bias, modules["generator"].conv_pre.bias)
    test_eq(torch.equal(fresh["mpd"].state_dict()["discriminators.0.conv_post.bias"],
                        modules["mpd"].state_dict()["discriminators.0.conv_post.bias"]), True)
    with torch.device("meta"):
        v1 = {"generator": Generator(preset_config("v1").generator)}
    test_fail(lambda: load_initial_weights(d, v1, "v1"), contains="holds a tiny generator; this run's generator is v1")
