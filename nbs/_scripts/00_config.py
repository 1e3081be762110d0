# %% [markdown]
# # Configuration
#
# > Dataclasses for the mel features, the generator presets V1/V2/V3, the discriminators, the training recipe and the health monitor; loaded from and saved to YAML or JSON, with command-line overrides; the devices and precisions a run may use.

# %%
#| default_exp config

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail, test_close

# %%
#| export
from __future__ import annotations
import dataclasses, json, math
from dataclasses import dataclass, field, asdict, fields
from pathlib import Path


# %% [markdown]
# A mistake that the user can fix (a wrong value, a missing file, a config key that does not exist) raises `UserError`, whose message is one line naming the value or file and what is wrong. The command line prints that line and exits with status 2; every other exception is a bug and keeps its traceback. `UserError` is a `ValueError`, so library callers that catch `ValueError` keep working.

# %%
#| export
class UserError(ValueError):
    "A problem the user can fix; its message is one line naming the file or value and what is wrong."


# %%
assert issubclass(UserError, ValueError)


# %% [markdown]
# Every number that shapes a run lives in one of five dataclasses, grouped in a `Config`:
#
# - `MelConfig`: how audio becomes the 80-band log-mel spectrogram that the generator reads. The values are the ones
#   of the reference HiFi-GAN at 22,050 Hz, so that a mel from an acoustic model trained for HiFi-GAN (Tacotron 2,
#   FastSpeech 2) can be vocoded directly.
# - `GeneratorConfig`: the shape of the generator. The paper defines three: **V1** (best quality, 13.9 M
#   parameters), **V2** (the same structure with a quarter of the channels, 0.9 M) and **V3** (fewer upsampling
#   stages and a lighter residual block, 1.5 M, the fastest).
# - `DiscriminatorConfig`: the periods of the multi-period discriminator and the number of scales of the multi-scale
#   one, plus a width factor that only the `tiny` preset changes.
# - `TrainConfig`: the optimisation recipe. The defaults are the recipe of the project's RUSLAN runs: batch 4 with 2
#   accumulation steps (an effective batch of 8), 8,192-sample segments, AdamW at 2e-4 for both networks with betas
#   (0.8, 0.99), `lambda_fm` 2 and `lambda_mel` 45, gradient clipping at norm 1.
# - `HealthConfig`: the windows and thresholds of the training health monitor ([Training health](07_health.ipynb)).
#
# Configs are plain data: they save to YAML or JSON, load back, and take `key=value` overrides from the command
# line, so a run directory always records exactly what produced it.
#
# **One source of truth.** The mel owns the number of bands and the hop: the generator reads `mel.num_mels` bands
# and must upsample each frame by exactly `mel.hop_size` samples. `GeneratorConfig` therefore holds no band count,
# and `Config` checks, whenever one is built or loaded, that the product of the upsampling rates equals the hop.

# %%
#| export
@dataclass
class MelConfig:
    "Log-mel features exactly as the reference HiFi-GAN computes them; owner of `num_mels` and `hop_size`."
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

    @property
    def upsample_factor(self) -> int:
        "Audio samples produced per mel frame: the product of `upsample_rates`."
        return math.prod(self.upsample_rates)


# %%
show_doc(GeneratorConfig.upsample_factor)

# %% [markdown]
# The three generator presets of the paper, plus `tiny`, a deliberately small generator that trains at well under
# a second per step on a laptop CPU: it exists for tests and demos, not for quality.

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

def generator_preset_name(cfg: GeneratorConfig) -> str:
    "The name of the generator preset with exactly the shape `cfg`, or `custom`."
    return next((name for name, preset in GENERATOR_PRESETS.items() if preset == cfg), "custom")


# %%
show_doc(generator_preset_name)

# %%
test_eq(generator_preset_name(GeneratorConfig(upsample_initial_channel=128)), "v2")
test_eq(generator_preset_name(GeneratorConfig(upsample_initial_channel=96)), "custom")


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
    checkpoint_every_minutes: float = 0.0  # also when this long has passed since the last one (0: never)
    val_every_steps: int = 1000
    keep_last: int = 3                 # newest checkpoints kept, besides the best one
    log_every_steps: int = 20
    num_val_samples: int = 3           # validation clips written as audio to RUN/samples
    num_workers: int = 2
    seed: int = 1234
    precision: str = "auto"            # one of TRAIN_PRECISIONS
    d_warmup_steps: int = 0            # the generator stays frozen for the first N steps of a run


# %% [markdown]
# Checkpoints come every `checkpoint_every_steps` steps (or, when that is 0, every `checkpoint_every_epochs`
# epochs) and, with `checkpoint_every_minutes`, also whenever that much time has passed since the last one: on a
# platform that may stop a session at any moment (Kaggle's weekly quota), a kill then costs at most those minutes.
#
# The health monitor watches the training for a discriminator that has stopped discriminating and a generator
# that has collapsed (see [Training health](07_health.ipynb)). Every alarm except the impossible ones needs its
# condition to hold for a **window** of consecutive checks, and no sustained alarm fires during a **warm-up** at
# the start of training: at step 0 the generator is untrained, the discriminator has not separated anything yet,
# and both look exactly like the failures it looks for. Windows count checks, that is logging intervals, so they
# scale with `log_every_steps` (20 in the recipe: the default window of 25 checks is 500 steps).

# %%
#| export
@dataclass
class HealthConfig:
    "Windows (in checks, one check per logging interval), tolerances and thresholds of `HealthMonitor`."
    # no sustained alarm before this training step (impossible values are reported at once)
    warmup_steps: int = 2000
    # checks a D-asleep or vanishing-gradient condition must hold; also the history a gradient median needs
    window: int = 25
    # checks a generator-collapse condition must hold (each check looks at a whole batch)
    audio_window: int = 3
    # checks an exploding-gradient condition must hold
    grad_window: int = 3
    # D(real) - D(fake) below this: real and generated audio are not separated
    score_gap_min: float = 0.05
    # ... and below this when the D loss is also near its chance value
    score_gap_at_chance: float = 0.1
    # D loss within this fraction of chance (0.5 per sub-discriminator) counts as "at chance"
    chance_tolerance: float = 0.15
    # generated |mean| may exceed the real audio's by at most this (full scale 1)
    dc_offset_max: float = 0.05
    # generated std below this fraction of the real std (30 dB down): (near) silence
    std_ratio_min: float = 0.03
    # absolute floor on the generated std (the only one when no real audio is given)
    std_min: float = 1e-3
    # generated spectral flatness above this multiple of the real audio's: noise-like
    flatness_ratio_max: float = 5.0
    # gradient norm (before clipping) above this is exploding
    grad_norm_max: float = 1e4
    # ... as is one above this multiple of the running median
    grad_spike_factor: float = 50.0
    # gradient norm below this is vanishing
    grad_norm_min: float = 1e-6
    # checks kept for the running median of each gradient norm
    grad_history: int = 100
    # non-finite steps in a row before a warning (a lone fp16 overflow is harmless)
    nonfinite_window: int = 2
    # non-finite steps in a row that mean the run has diverged
    max_nonfinite_steps: int = 10

    def __post_init__(self):
        for name, value in vars(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise UserError(f"health.{name} must be a finite number >= 0, got {value!r}")
        for name in ("window", "audio_window", "grad_window", "grad_history", "nonfinite_window",
                     "max_nonfinite_steps"):
            checks = getattr(self, name)
            if checks < 1:
                raise UserError(f"health.{name} must be at least 1 check, got {checks}")


# %%
show_doc(HealthConfig)

# %% [markdown]
# The defaults suit the recipe; a short experiment may want a shorter warm-up, and a noisy one longer windows:

# %%
print(HealthConfig(warmup_steps=500, window=5))
test_fail(lambda: HealthConfig(window=0), exc=UserError, contains="health.window must be at least 1 check, got 0")
test_fail(lambda: HealthConfig(chance_tolerance=-0.1), exc=UserError,
          contains="health.chance_tolerance must be a finite number >= 0, got -0.1")
test_fail(lambda: HealthConfig(dc_offset_max=float("nan")), exc=UserError,
          contains="health.dc_offset_max must be a finite number >= 0, got nan")

# %% [markdown]
# `Config.preset` names the preset the config *is*: a saved file, a loaded one and an overridden one keep the name
# only while every value still equals that preset's, and say `custom` otherwise (see `load_config` and
# `apply_overrides`). The generator's preset is not stored at all: `generator_preset` reads it off the shapes, so it
# cannot go stale.

# %%
#| export
CUSTOM = "custom"  # the label of a config (or generator) that matches no preset

@dataclass
class Config:
    "Everything that defines a run; building one checks that the generator upsamples by the mel hop."
    preset: str = "recipe"
    mel: MelConfig = field(default_factory=MelConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    health: HealthConfig = field(default_factory=HealthConfig)

    def __post_init__(self):
        check_hop(self.generator, self.mel)

    @property
    def generator_preset(self) -> str:
        "The generator preset (`v1`, `v2`, `v3`, `tiny`) whose shape the generator has, or `custom`."
        return generator_preset_name(self.generator)

def check_hop(generator: GeneratorConfig, mel: MelConfig) -> None:
    "Raise a `UserError` unless the generator upsamples each mel frame by exactly the mel hop."
    if generator.upsample_factor != mel.hop_size:
        rates = " x ".join(map(str, generator.upsample_rates))
        raise UserError(f"generator.upsample_rates {rates} = {generator.upsample_factor} samples per frame, "
                        f"but mel.hop_size is {mel.hop_size}: they must be equal")


# %%
show_doc(Config)

# %%
show_doc(check_hop)

# %% [markdown]
# A generator whose upsampling does not match the hop would produce audio of the wrong length for every mel, so such
# a config cannot even be built:

# %%
v3_gen = GeneratorConfig(upsample_rates=(8, 8, 4))
test_eq(Config(generator=v3_gen).generator_preset, CUSTOM)  # 8 x 8 x 4 = 256: fine, but not a preset shape
half_hop = GeneratorConfig(upsample_rates=(8, 8, 2))
test_fail(lambda: Config(generator=half_hop), contains="= 128 samples per frame")
test_fail(lambda: Config(mel=MelConfig(hop_size=300)), contains="mel.hop_size is 300")


# %% [markdown]
# ## Presets
#
# A training preset is a full `Config`. `recipe` is the configuration of the project's final RUSLAN run; `exp1`,
# `exp2` and `exp3` are the three earlier experiments that collapsed, kept so that the collapse can be reproduced
# and the health monitor shown to catch it; `tiny` is for tests and demos. A generator preset name (`v1`, `v2`,
# `v3`) is also accepted and means the recipe with that generator.

# %%
#| export
def _recipe(**train) -> Config:
    return Config(train=TrainConfig(**train))

def _exp1() -> Config:
    return _recipe(lambda_fm=2.0, lambda_mel=45.0, lr_g=2e-4, lr_d=2e-4)

def _exp2() -> Config:
    return _recipe(lambda_fm=0.0, lambda_mel=100.0, lr_g=3e-4, lr_d=1e-4)

def _exp3() -> Config:
    return _recipe(lambda_fm=0.0, lambda_mel=150.0, lr_g=5e-4, lr_d=5e-5, betas=(0.3, 0.8))

def _tiny() -> Config:
    train = TrainConfig(batch_size=4, grad_accum_steps=1, segment_size=4096, epochs=1000,
                        checkpoint_every_steps=20, val_every_steps=20, log_every_steps=5,
                        num_val_samples=2, num_workers=0, lr_g=5e-4, lr_d=5e-4)
    return Config(generator=dataclasses.replace(GENERATOR_PRESETS["tiny"]),
                  discriminator=DiscriminatorConfig(periods=(2, 3, 5), num_scales=2, width=0.25), train=train)

def _finetune() -> Config:
    "Transfer from a pretrained generator: a small generator step, a fresh discriminator warmed up first."
    return _recipe(lr_g=1e-5, lr_d=1e-4, d_warmup_steps=20)

TRAINING_PRESETS = {"recipe": _recipe, "exp1": _exp1, "exp2": _exp2, "exp3": _exp3, "tiny": _tiny,
                    "finetune": _finetune}


# %%
#| export
def preset_names() -> list[str]:
    "Every name `preset_config` accepts: the training presets, then the generator presets."
    return list(dict.fromkeys([*TRAINING_PRESETS, *GENERATOR_PRESETS]))

def preset_config(name: str) -> Config:
    "A fresh `Config` for a training preset (`recipe`, `exp1`..`exp3`, `tiny`) or generator preset (`v1`..)."
    key = name.lower()
    if key in TRAINING_PRESETS:
        cfg = TRAINING_PRESETS[key]()
    elif key in GENERATOR_PRESETS:
        cfg = Config(generator=dataclasses.replace(GENERATOR_PRESETS[key]))
    else:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(preset_names())}")
    cfg.preset = key
    return cfg


# %%
show_doc(preset_config)

# %%
show_doc(preset_names)

# %%
cfg = preset_config("recipe")
t = cfg.train
test_eq(t.batch_size, 4)
test_eq(t.grad_accum_steps, 2)
test_eq(t.segment_size, 8192)
test_eq(t.lr_g, 2e-4)
test_eq(t.lr_d, 2e-4)
test_eq(t.betas, (0.8, 0.99))
test_eq(t.weight_decay, 0.01)
test_eq(t.lambda_fm, 2.0)
test_eq(t.lambda_mel, 45.0)
test_eq(t.grad_clip, 1.0)
test_eq(t.epochs, 50)
test_eq(cfg.mel.sampling_rate, 22050)
test_eq(cfg.mel.n_fft, 1024)
test_eq(cfg.mel.hop_size, 256)
test_eq(cfg.mel.num_mels, 80)
test_eq([preset_config(p).generator.upsample_factor for p in ["v1", "v2", "v3", "tiny", "exp3"]], [256] * 5)
test_eq(preset_config("exp3").train.betas, (0.3, 0.8))
test_eq([preset_config(p).generator_preset for p in ["recipe", "v3", "tiny"]], ["v1", "v3", "tiny"])
test_eq(preset_config("V2").preset, "v2")
test_fail(lambda: preset_config("v4"), contains="unknown preset 'v4'")


# %% [markdown]
# ## Saving, loading and overriding
#
# Dataclasses round-trip through plain dictionaries. Loading is strict: an unknown key in a config file is an error
# that names the key, not something silently ignored, because a misspelt `lamda_mel` in a config file would
# otherwise train with the default.
#
# Files written before the mel became the single owner of the band count still load: a `generator.num_mels` key is
# accepted when it equals `mel.num_mels` (and refused, naming both, when it does not), and a stored
# `generator_preset` label is ignored, since the shapes themselves say which preset the generator is.

# %%
#| export
def _coerce(value, like):
    "Convert `value` (from YAML/JSON/CLI) to the type of the default `like`."
    if isinstance(like, tuple):
        return tuple(_coerce(v, like[0]) if like else v for v in value)
    if isinstance(like, bool):
        return bool(value)
    if isinstance(like, int) and not isinstance(value, bool) and float(value) == int(float(value)):
        return int(float(value))
    if isinstance(like, float) and value is not None:
        return float(value)
    return value

def _from_dict(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(names)}")
    default = cls()
    kwargs = {}
    for k, v in data.items():
        d = getattr(default, k)
        if dataclasses.is_dataclass(d):
            kwargs[k] = _from_dict(type(d), v, f"{where}.{k}")
        elif isinstance(d, tuple) and d and isinstance(d[0], tuple):
            kwargs[k] = tuple(tuple(_coerce(x, d[0][0]) for x in row) for row in v)
        else:
            kwargs[k] = _coerce(v, d) if v is not None else None
    try:
        return cls(**kwargs)
    except UserError as e:  # a Config whose parts do not fit together
        raise UserError(f"{where}: {e}") from None


# %%
#| export
def _drop_legacy_keys(data: dict, where: str) -> dict:
    "`data` without the keys of older files: `generator_preset` (derived) and `generator.num_mels` (checked)."
    data = {k: v for k, v in data.items() if k != "generator_preset"}
    generator = data.get("generator")
    if isinstance(generator, dict) and "num_mels" in generator:
        mel = data.get("mel") if isinstance(data.get("mel"), dict) else {}
        bands = mel.get("num_mels", MelConfig.num_mels)
        if generator["num_mels"] != bands:
            raise UserError(f"{where}: generator.num_mels {generator['num_mels']} differs from "
                            f"mel.num_mels {bands}: the generator reads the mel's bands")
        data["generator"] = {k: v for k, v in generator.items() if k != "num_mels"}
    return data


# %%
#| export
def config_to_dict(cfg: Config) -> dict:
    "Plain nested dict (lists instead of tuples) that YAML, JSON and `torch.save(weights_only=True)` accept."
    def plain(x):
        if isinstance(x, (tuple, list)):
            return [plain(v) for v in x]
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x
    return plain(asdict(cfg))

def config_from_dict(data: dict, where: str = "config") -> Config:
    "Inverse of `config_to_dict`; unknown keys or a generator that does not fit the mel raise a `UserError`."
    if isinstance(data, dict):
        data = _drop_legacy_keys(data, where)
    return _from_dict(Config, data, where)

def _label(cfg: Config) -> Config:
    "`cfg` with `preset` set to `custom` unless every value equals that preset's."
    named = cfg.preset in preset_names() and preset_config(cfg.preset) == cfg
    return cfg if named else dataclasses.replace(cfg, preset=CUSTOM)


# %%
show_doc(config_to_dict)

# %%
show_doc(config_from_dict)

# %%
legacy = config_to_dict(preset_config("v2"))
legacy["generator_preset"] = "v1"  # a stale label, as older versions could write
legacy["generator"]["num_mels"] = 80
test_eq(config_from_dict(legacy), preset_config("v2"))
legacy["generator"]["num_mels"] = 100
test_fail(lambda: config_from_dict(legacy, "old.yaml"), contains="old.yaml: generator.num_mels 100 differs")
test_fail(lambda: config_from_dict({"mel": {"hop_size": 200}}, "x.json"), contains="x.json: generator.upsample")


# %%
#| export
def _parse_text(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    yaml_file = path.suffix in (".yaml", ".yml")
    try:
        if yaml_file:
            import yaml
            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as e:
        kind = "YAML" if yaml_file else "JSON"
        raise UserError(f"{path}: not valid {kind}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config sections, got {type(data).__name__}")
    return data

def _deep_merge(base: dict, new: dict) -> dict:
    out = dict(base)
    for k, v in new.items():
        nested = isinstance(v, dict) and isinstance(out.get(k), dict)
        out[k] = _deep_merge(out[k], v) if nested else v
    return out


# %%
#| export
def save_config(cfg: Config, path) -> Path:
    "Write `cfg` as YAML (`.yaml`/`.yml`) or JSON (any other suffix)."
    path = Path(path)
    data = config_to_dict(cfg)
    if path.suffix in (".yaml", ".yml"):
        import yaml
        text = yaml.safe_dump(data, sort_keys=False)
    else:
        text = json.dumps(data, indent=2)
    path.write_text(text, encoding="utf-8")
    return path

def load_config(path) -> Config:
    "Read a config written by `save_config` (or by hand: missing keys come from the preset it names)."
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    data = _parse_text(path)
    base_name = data.get("preset", "recipe")
    base = preset_config("recipe" if base_name == CUSTOM else str(base_name))
    return _label(config_from_dict(_deep_merge(config_to_dict(base), data), str(path)))


# %%
show_doc(save_config)

# %%
show_doc(load_config)

# %% [markdown]
# A file only needs the keys it changes: everything else comes from the preset it names (or `recipe`).

# %%
import tempfile

# %%
tmp = Path(tempfile.mkdtemp())
for suffix in (".yaml", ".json"):
    test_eq(load_config(save_config(preset_config("exp2"), tmp / f"run{suffix}")), preset_config("exp2"))
(tmp / "partial.yaml").write_text("preset: tiny\ntrain:\n  lambda_mel: 30\n")
small = load_config(tmp / "partial.yaml")
test_eq(small.train.lambda_mel, 30.0)
test_eq(small.generator, GENERATOR_PRESETS["tiny"])
test_eq(small.preset, CUSTOM)
test_eq(load_config(save_config(small, tmp / "custom.yaml")), small)
(tmp / "typo.yaml").write_text("train:\n  lamda_mel: 30\n")
test_fail(lambda: load_config(tmp / "typo.yaml"), contains="unknown key(s) lamda_mel")
(tmp / "broken.json").write_text("{train: 1")
test_fail(lambda: load_config(tmp / "broken.json"), contains="broken.json: not valid JSON")
test_fail(lambda: load_config(tmp / "missing.yaml"), contains="missing.yaml: config file not found")


# %% [markdown]
# Command-line overrides use dotted paths, `section.key=value`, with the value parsed as YAML so that numbers, lists
# and `null` work as expected: `--set train.lambda_mel=30 --set mel.fmax=null --set train.betas=[0.8,0.99]`. The
# result is checked like a loaded file, and its `preset` becomes `custom` once a value differs from the preset's.

# %%
#| export
def _set_dotted(data: dict, item: str) -> None:
    "Apply one `section.key=value` override to the nested dict `data`."
    import yaml
    if "=" not in item:
        raise UserError(f"override {item!r}: expected section.key=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            raise UserError(f"override {item!r}: unknown section {p!r}")
        node = node[p]
    if parts[-1] not in node:
        raise UserError(f"override {item!r}: unknown key {key.strip()!r}")
    try:
        node[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise UserError(f"override {item!r}: cannot parse value {raw!r}") from None

def apply_overrides(cfg: Config, overrides: list[str] | None) -> Config:
    "A copy of `cfg` with `section.key=value` overrides applied; a bad key or value raises a `UserError`."
    data = config_to_dict(cfg)
    for item in overrides or []:
        _set_dotted(data, item)
    return _label(config_from_dict(data, "override"))


# %%
show_doc(apply_overrides)

# %%
c = apply_overrides(preset_config("recipe"), ["train.lambda_mel=30", "mel.fmax=null", "train.betas=[0.5, 0.9]"])
test_eq(c.train.lambda_mel, 30.0)
test_eq(c.mel.fmax, None)
test_eq(c.train.betas, (0.5, 0.9))
test_eq(c.preset, CUSTOM)
test_eq(apply_overrides(preset_config("exp1"), ["train.lambda_mel=45"]).preset, "exp1")  # unchanged value
narrow = apply_overrides(preset_config("v1"), ["generator.upsample_initial_channel=128"])
test_eq(narrow.preset, CUSTOM)
test_eq(narrow.generator_preset, "v2")
test_fail(lambda: apply_overrides(c, ["train.lamda=1"]), contains="unknown key 'train.lamda'")
test_fail(lambda: apply_overrides(c, ["nothing"]), contains="expected section.key=value")
test_fail(lambda: apply_overrides(c, ["bogus.x=1"]), contains="unknown section 'bogus'")
test_fail(lambda: apply_overrides(c, ["generator.upsample_rates=[8,8,2]"]), contains="mel.hop_size is 256")

# %% [markdown]
# ## Devices and precisions
#
# The values a run may choose among are owned here, next to the fields that hold them, so that the command line
# can offer them without importing the modules that use them: the precisions of training (`train.precision`:
# `auto` picks bf16 or fp16 on a GPU and fp32 on a CPU, see [The trainer](09_trainer.ipynb)), and the
# backends and precisions of inference (OpenVINO in fp32 or mixed bf16 on the CPU, see
# [CPU runtime](10_cpu_runtime.ipynb)), and the formats of an exported generator ([Export](10b_export.ipynb)).

# %%
#| export
TRAIN_PRECISIONS = ("auto", "fp32", "fp16", "bf16")
INFERENCE_PRECISIONS = ("fp32", "bf16")
BACKENDS = ("auto", "torch", "openvino")
EXPORT_FORMATS = ("onnx", "torchscript")


# %% [markdown]
# Every command that computes takes `--device`. `resolve_device` turns what the user typed into a
# `torch.device`, or a one-line error before any model is built: `auto` (or None) is this process's GPU if
# there is one, else the CPU; a bare `cuda` means this process's GPU (`local_rank` under `torchrun`).

# %%
#| export
def resolve_device(device="auto", local_rank: int = 0):
    "`device` as a `torch.device` (`auto`: this process's GPU if any, else the CPU); `UserError` if unusable."
    import torch  # here, not at the top: the command line's --help imports this module and must stay quick
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"device {device!r}: not a device name (auto, cpu, cuda, cuda:N)") from None
    if dev.type not in ("cpu", "cuda", "meta"):
        raise UserError(f"device {device!r}: only cpu and cuda devices are supported")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r}: no CUDA device available")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise UserError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return torch.device("cuda", local_rank) if dev.type == "cuda" and dev.index is None else dev


# %%
show_doc(resolve_device)

# %%
import torch

# %%
test_eq(resolve_device("cpu"), torch.device("cpu"))
test_eq(resolve_device("auto"), torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu"))
test_fail(lambda: resolve_device("gpu"), exc=UserError, contains="device 'gpu': not a device name")
if not torch.cuda.is_available():
    test_fail(lambda: resolve_device("cuda"), exc=UserError, contains="device 'cuda': no CUDA device available")

# %%
import shutil

# %%
shutil.rmtree(tmp)
