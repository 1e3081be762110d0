# %% [markdown]
# # Configuration
#
# > Dataclasses for the mel features, the generator presets V1/V2/V3, the discriminators and the training recipe; loaded from and saved to YAML or JSON, with command-line overrides.

# %%
#| default_exp config

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail, test_close

# %%
#| export
from __future__ import annotations
import dataclasses, json
from dataclasses import dataclass, field, asdict, fields
from pathlib import Path
from typing import Any



# %% [markdown]
# A mistake that the user can fix (a wrong value, a missing file, a config key that does not exist) raises `UserError`, whose message is one line naming the value or file and what is wrong. The command line prints that line and exits with status 2; every other exception is a bug and keeps its traceback. `UserError` is a `ValueError`, so library callers that catch `ValueError` keep working.

# %%
#| export
class UserError(ValueError):
    "A problem the user can fix; its message is one line naming the file or value and what is wrong."

# %%
test_eq(issubclass(UserError, ValueError), True)


# %% [markdown]
# Every number that shapes a run lives in one of four dataclasses, grouped in a `Config`:
#
# - `MelConfig`: how audio becomes the 80-band log-mel spectrogram that the generator reads. The values are the ones of the reference HiFi-GAN at 22,050 Hz, so that a mel from an acoustic model trained for HiFi-GAN (Tacotron 2, FastSpeech 2) can be vocoded directly.
# - `GeneratorConfig`: the shape of the generator. The paper defines three: **V1** (best quality, 13.9 M parameters), **V2** (the same structure with a quarter of the channels, 0.9 M) and **V3** (fewer upsampling stages and a lighter residual block, 1.5 M, the fastest).
# - `DiscriminatorConfig`: the periods of the multi-period discriminator and the number of scales of the multi-scale one, plus a width factor that only the `tiny` preset changes.
# - `TrainConfig`: the optimisation recipe. The defaults are the recipe of the project's RUSLAN runs: batch 4 with 2 accumulation steps (an effective batch of 8), 8,192-sample segments, AdamW at 2e-4 for both networks with betas (0.8, 0.99), `lambda_fm` 2 and `lambda_mel` 45, gradient clipping at norm 1.
#
# Configs are plain data: they save to YAML or JSON, load back, and take `key=value` overrides from the command line, so a run directory always records exactly what produced it.

# %%
#| export
@dataclass
class MelConfig:
    "Log-mel features exactly as the reference HiFi-GAN computes them."
    sampling_rate: int = 22050
    n_fft: int = 1024
    hop_size: int = 256
    win_size: int = 1024
    num_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0       # the generator's input mel
    fmax_loss: float | None = None    # the loss mel: full band, up to sampling_rate / 2


# %%
#| export
@dataclass
class GeneratorConfig:
    "Shape of the HiFi-GAN generator; the product of `upsample_rates` must equal the mel hop size."
    resblock: str = "1"  # "1": two convolutions per dilation (V1, V2); "2": one (V3)
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    num_mels: int = 80

    @property
    def hop_size(self) -> int:
        "Audio samples produced per mel frame."
        out = 1
        for r in self.upsample_rates: out *= r
        return out


# %% [markdown]
# The three generator presets of the paper, plus `tiny`, a deliberately small generator that trains at well under a second per step on a laptop CPU: it exists for tests and demos, not for quality.

# %%
#| export
GENERATOR_PRESETS: dict[str, GeneratorConfig] = {
    "v1": GeneratorConfig(),
    "v2": GeneratorConfig(upsample_initial_channel=128),
    "v3": GeneratorConfig(resblock="2", upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8),
                          upsample_initial_channel=256, resblock_kernel_sizes=(3, 5, 7),
                          resblock_dilation_sizes=((1, 2), (2, 6), (3, 12))),
    "tiny": GeneratorConfig(resblock="2", upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8),
                            upsample_initial_channel=64, resblock_kernel_sizes=(3, 7),
                            resblock_dilation_sizes=((1, 3), (1, 3))),
}


# %%
#| export
@dataclass
class DiscriminatorConfig:
    "The multi-period (MPD) and multi-scale (MSD) discriminators."
    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    num_scales: int = 3
    width: float = 1.0  # channel multiplier; 1.0 is the official layout (and loads official weights)

    @property
    def num_subdiscriminators(self) -> int:
        return len(self.periods) + self.num_scales


# %%
#| export
@dataclass
class TrainConfig:
    "The optimisation recipe; defaults are the project's RUSLAN recipe."
    batch_size: int = 4
    grad_accum_steps: int = 2          # effective batch = batch_size * grad_accum_steps (over all GPUs)
    segment_size: int = 8192
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 0.01
    lr_decay: float = 0.999            # ExponentialLR gamma, applied once per epoch
    lambda_fm: float = 2.0
    lambda_mel: float = 45.0
    grad_clip: float = 1.0             # max gradient norm; 0 disables clipping
    epochs: int = 50
    checkpoint_every_epochs: int = 5
    checkpoint_every_steps: int = 0    # 0: only every `checkpoint_every_epochs` epochs
    val_every_steps: int = 1000
    keep_last: int = 3                 # newest checkpoints kept, besides the best one
    log_every_steps: int = 20
    num_val_samples: int = 3           # validation clips written as audio to RUN/samples
    num_workers: int = 2
    seed: int = 1234
    precision: str = "auto"            # auto | fp32 | fp16 | bf16


# %%
#| export
@dataclass
class Config:
    "Everything that defines a run."
    preset: str = "recipe"
    generator_preset: str = "v1"
    mel: MelConfig = field(default_factory=MelConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# %%
show_doc(Config)


# %% [markdown]
# ## Presets
#
# A training preset is a full `Config`. `recipe` is the configuration of the project's final RUSLAN run; `exp1`, `exp2` and `exp3` are the three earlier experiments that collapsed, kept so that the collapse can be reproduced and the health monitor shown to catch it; `tiny` is for tests and demos. A generator preset name (`v1`, `v2`, `v3`) is also accepted and means the recipe with that generator.

# %%
#| export
def _recipe(**train) -> Config:
    return Config(train=TrainConfig(**train))

def _tiny() -> Config:
    return Config(preset="tiny", generator_preset="tiny", generator=GENERATOR_PRESETS["tiny"],
                  discriminator=DiscriminatorConfig(periods=(2, 3, 5), num_scales=2, width=0.25),
                  train=TrainConfig(batch_size=4, grad_accum_steps=1, segment_size=4096, epochs=1000,
                                    checkpoint_every_steps=20, val_every_steps=20, log_every_steps=5,
                                    num_val_samples=2, num_workers=0, lr_g=5e-4, lr_d=5e-4))

TRAINING_PRESETS = {
    "recipe": _recipe,
    "exp1": lambda: _recipe(lambda_fm=2.0, lambda_mel=45.0, lr_g=2e-4, lr_d=2e-4),
    "exp2": lambda: _recipe(lambda_fm=0.0, lambda_mel=100.0, lr_g=3e-4, lr_d=1e-4),
    "exp3": lambda: _recipe(lambda_fm=0.0, lambda_mel=150.0, lr_g=5e-4, lr_d=5e-5, betas=(0.3, 0.8)),
    "tiny": _tiny,
}


# %%
#| export
def preset_config(name: str) -> Config:
    "A fresh `Config` for a training preset (`recipe`, `exp1`..`exp3`, `tiny`) or a generator preset (`v1`..`v3`)."
    key = name.lower()
    if key in TRAINING_PRESETS:
        cfg = TRAINING_PRESETS[key]()
        cfg.preset = key
        return cfg
    if key in GENERATOR_PRESETS:
        return Config(preset=key, generator_preset=key, generator=dataclasses.replace(GENERATOR_PRESETS[key]))
    raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(dict.fromkeys([*TRAINING_PRESETS, *GENERATOR_PRESETS]))}")


# %%
cfg = preset_config("recipe")
t = cfg.train
assert (t.batch_size, t.grad_accum_steps, t.segment_size, t.lr_g, t.lr_d, t.betas) == (4, 2, 8192, 2e-4, 2e-4, (0.8, 0.99))
assert (t.weight_decay, t.lambda_fm, t.lambda_mel, t.grad_clip, t.epochs, t.checkpoint_every_epochs) == (0.01, 2.0, 45.0, 1.0, 50, 5)
assert (cfg.mel.sampling_rate, cfg.mel.n_fft, cfg.mel.hop_size, cfg.mel.num_mels, cfg.mel.fmax) == (22050, 1024, 256, 80, 8000.0)
assert all(preset_config(p).generator.hop_size == 256 for p in ["v1", "v2", "v3", "tiny", "exp3"])
assert preset_config("exp3").train.betas == (0.3, 0.8) and preset_config("v3").generator.resblock == "2"
try: preset_config("v4")
except ValueError as e: print(e)


# %% [markdown]
# ## Saving, loading and overriding
#
# Dataclasses round-trip through plain dictionaries. Loading is strict: an unknown key in a config file is an error that names the key, not something silently ignored, because a misspelt `lamda_mel` in a config file would otherwise train with the default.

# %%
#| export
def _coerce(value, like):
    "Convert `value` (from YAML/JSON/CLI) to the type of the default `like`."
    if isinstance(like, tuple):
        return tuple(_coerce(v, like[0]) if like else v for v in value)
    if isinstance(like, bool): return bool(value)
    if isinstance(like, int) and not isinstance(value, bool) and float(value) == int(float(value)): return int(float(value))
    if isinstance(like, float) and value is not None: return float(value)
    return value

def _from_dict(cls, data: dict, where: str):
    if not isinstance(data, dict): raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown: raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(names)}")
    default = cls()
    kwargs = {}
    for k, v in data.items():
        d = getattr(default, k)
        if dataclasses.is_dataclass(d): kwargs[k] = _from_dict(type(d), v, f"{where}.{k}")
        elif isinstance(d, tuple) and d and isinstance(d[0], tuple):
            kwargs[k] = tuple(tuple(_coerce(x, d[0][0]) for x in row) for row in v)
        else: kwargs[k] = _coerce(v, d) if v is not None else None
    return cls(**kwargs)


# %%
#| export
def config_to_dict(cfg: Config) -> dict:
    "Plain nested dict (lists instead of tuples) that YAML, JSON and `torch.save(weights_only=True)` accept."
    def plain(x):
        if isinstance(x, (tuple, list)): return [plain(v) for v in x]
        if isinstance(x, dict): return {k: plain(v) for k, v in x.items()}
        return x
    return plain(asdict(cfg))

def config_from_dict(data: dict, where: str = "config") -> Config:
    "Inverse of `config_to_dict`; unknown keys raise a `ValueError` naming them."
    return _from_dict(Config, data, where)


# %%
#| export
def save_config(cfg: Config, path) -> Path:
    "Write `cfg` as YAML (`.yaml`/`.yml`) or JSON (any other suffix)."
    path = Path(path)
    data = config_to_dict(cfg)
    if path.suffix in (".yaml", ".yml"):
        import yaml
        text = yaml.safe_dump(data, sort_keys=False)
    else: text = json.dumps(data, indent=2)
    path.write_text(text, encoding="utf-8")
    return path

def load_config(path) -> Config:
    "Read a config written by `save_config` (or by hand: missing keys keep their defaults)."
    path = Path(path)
    if not path.is_file(): raise FileNotFoundError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text) or {}
        else: data = json.loads(text)
    except Exception as e: raise ValueError(f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'}: {e}") from None
    base = preset_config(data.get("preset", "recipe")) if isinstance(data, dict) else None
    merged = _deep_merge(config_to_dict(base), data) if base else data
    return config_from_dict(merged, str(path))

def _deep_merge(base: dict, new: dict) -> dict:
    out = dict(base)
    for k, v in new.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# %% [markdown]
# A file only needs the keys it changes: everything else comes from the preset it names (or `recipe`).

# %%
import tempfile

# %%
with tempfile.TemporaryDirectory() as d:
    for suffix in (".yaml", ".json"):
        p = save_config(preset_config("exp2"), Path(d) / f"run{suffix}")
        assert load_config(p) == preset_config("exp2"), suffix
    p = Path(d) / "partial.yaml"
    p.write_text("preset: tiny\ntrain:\n  lambda_mel: 30\n")
    small = load_config(p)
    assert small.train.lambda_mel == 30.0 and small.generator == GENERATOR_PRESETS["tiny"]
    p.write_text("train:\n  lamda_mel: 30\n")
    try: load_config(p); raise AssertionError("a misspelt key must fail")
    except ValueError as e: print(e)


# %% [markdown]
# Command-line overrides use dotted paths, `section.key=value`, with the value parsed as YAML so that numbers, lists and `null` work as expected: `--set train.lambda_mel=30 --set mel.fmax=null --set train.betas=[0.8,0.99]`.

# %%
#| export
def apply_overrides(cfg: Config, overrides: list[str] | None) -> Config:
    "A copy of `cfg` with `section.key=value` overrides applied; a bad key or value raises a one-line `ValueError`."
    import yaml
    data = config_to_dict(cfg)
    for item in overrides or []:
        if "=" not in item: raise ValueError(f"override {item!r}: expected section.key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict): raise ValueError(f"override {item!r}: unknown section {p!r}")
            node = node[p]
        if parts[-1] not in node: raise ValueError(f"override {item!r}: unknown key {key.strip()!r}")
        try: node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError: raise ValueError(f"override {item!r}: cannot parse value {raw!r}") from None
    return config_from_dict(data, "override")


# %%
c = apply_overrides(preset_config("recipe"), ["train.lambda_mel=30", "mel.fmax=null", "train.betas=[0.5, 0.9]"])
assert c.train.lambda_mel == 30.0 and c.mel.fmax is None and c.train.betas == (0.5, 0.9)
for bad in ["train.lamda=1", "nothing", "bogus.x=1"]:
    try: apply_overrides(c, [bad]); raise AssertionError(bad)
    except ValueError as e: print(e)
