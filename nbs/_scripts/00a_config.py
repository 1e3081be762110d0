# %% [markdown]
# # Configuration
#
# > Dataclasses for the mel features, the generator presets V1/V2/V3, the discriminators, the training recipe and the health monitor; loaded from and saved to YAML or JSON, with command-line overrides; the precisions a run may use.

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
from hifigan_ruslan.errors import UserError


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

# %% [markdown]
# Every dataclass checks its own values when it is built, whether from a file, from `--set` or in Python, so that a
# batch size of 0 or a learning rate of -1 is a one-line `UserError` naming the key, not a traceback from deep inside
# PyTorch. `require` states one rule for several fields:

# %%
#| export
def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

def _is_finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

def require(cfg, section: str, need: str, ok, *names: str) -> None:
    "Raise a `UserError` naming `section.name` and its value for the first of `names` whose value fails `ok`."
    for name in names:
        value = getattr(cfg, name)
        try:
            good = bool(ok(value))
        except TypeError:
            good = False
        if not good:
            raise UserError(f"{section}.{name} = {value!r}: must be {need}")

# the rules most fields follow: (what the value must be, the test)
AT_LEAST_1 = ("an integer >= 1", lambda v: _is_int(v) and v >= 1)
AT_LEAST_0 = ("an integer >= 0", lambda v: _is_int(v) and v >= 0)
POSITIVE = ("a finite number > 0", lambda v: _is_finite(v) and v > 0)
NON_NEGATIVE = ("a finite number >= 0", lambda v: _is_finite(v) and v >= 0)

# %%
show_doc(require)

# %%
from types import SimpleNamespace

# %%
test_fail(lambda: require(SimpleNamespace(n=0), "train", *AT_LEAST_1, "n"), exc=UserError,
          contains="train.n = 0: must be an integer >= 1")
test_fail(lambda: require(SimpleNamespace(x="a"), "train", *POSITIVE, "x"),
          contains="train.x = 'a': must be a finite number > 0")
require(SimpleNamespace(n=3, x=0.5), "train", *AT_LEAST_1, "n")


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

    def __post_init__(self):
        require(self, "mel", *AT_LEAST_1, "sampling_rate", "n_fft", "hop_size", "win_size", "num_mels")
        require(self, "mel", f"at most mel.n_fft {self.n_fft}", lambda v: v <= self.n_fft, "win_size")
        require(self, "mel", *NON_NEGATIVE, "fmin")
        nyquist = self.sampling_rate / 2
        require(self, "mel", f"None or above mel.fmin {self.fmin} and at most {nyquist:g} (half the rate)",
                lambda v: v is None or (_is_finite(v) and self.fmin < v <= nyquist), "fmax", "fmax_loss")


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

    def __post_init__(self):
        ints = lambda v, least=1: len(v) > 0 and all(_is_int(x) and x >= least for x in v)
        require(self, "generator", "'1' or '2'", lambda v: v in ("1", "2"), "resblock")
        require(self, "generator", "a list of integers >= 1", ints, "upsample_rates")
        rates = self.upsample_rates
        require(self, "generator", f"one kernel per rate ({len(rates)}), each >= its rate by an even number",
                lambda v: ints(v) and len(v) == len(rates) and all(k >= u and (k - u) % 2 == 0
                                                                   for k, u in zip(v, rates)),
                "upsample_kernel_sizes")
        require(self, "generator", f"an integer >= {2 ** len(rates)} (halved at each of {len(rates)} stages)",
                lambda v: _is_int(v) and v >= 2 ** len(rates), "upsample_initial_channel")
        require(self, "generator", "a list of odd integers", lambda v: ints(v) and all(k % 2 for k in v),
                "resblock_kernel_sizes")
        require(self, "generator", "one list of integers >= 1 per resblock kernel size",
                lambda v: len(v) == len(self.resblock_kernel_sizes) and all(ints(d) for d in v),
                "resblock_dilation_sizes")

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

    def __post_init__(self):
        require(self, "discriminator", "a list of integers >= 1",
                lambda v: all(_is_int(p) and p >= 1 for p in v), "periods")
        require(self, "discriminator", *AT_LEAST_0, "num_scales")
        require(self, "discriminator", *POSITIVE, "width")
        if not self.num_subdiscriminators:
            raise UserError("discriminator.periods = () and discriminator.num_scales = 0: "
                            "no discriminator left")

    @property
    def num_subdiscriminators(self) -> int:
        return len(self.periods) + self.num_scales


# %% [markdown]
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
    tensorboard: bool = True           # TensorBoard events beside metrics.csv, where TensorBoard is installed

    def __post_init__(self):
        require(self, "train", *AT_LEAST_1, "batch_size", "grad_accum_steps", "segment_size", "epochs",
                "log_every_steps")
        require(self, "train", *AT_LEAST_0, "checkpoint_every_epochs", "checkpoint_every_steps",
                "val_every_steps", "keep_last", "num_val_samples", "num_workers", "seed", "d_warmup_steps")
        require(self, "train", *POSITIVE, "lr_g", "lr_d")
        require(self, "train", *NON_NEGATIVE, "weight_decay", "lambda_fm", "lambda_mel", "grad_clip",
                "checkpoint_every_minutes")
        require(self, "train", "a number in (0, 1] (1: no decay)", lambda v: _is_finite(v) and 0 < v <= 1,
                "lr_decay")
        require(self, "train", "a pair of numbers in [0, 1)",
                lambda v: len(v) == 2 and all(_is_finite(b) and 0 <= b < 1 for b in v), "betas")
        require(self, "train", f"one of {', '.join(TRAIN_PRECISIONS)}", lambda v: v in TRAIN_PRECISIONS,
                "precision")


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
        require(self, "health", *NON_NEGATIVE, *vars(self))
        require(self, "health", *AT_LEAST_0, "warmup_steps")
        require(self, "health", "an integer >= 1 (checks)", AT_LEAST_1[1], "window", "audio_window",
                "grad_window", "grad_history", "nonfinite_window", "max_nonfinite_steps")


# %%
show_doc(HealthConfig)

# %% [markdown]
# The defaults suit the recipe; a short experiment may want a shorter warm-up, and a noisy one longer windows:

# %%
print(HealthConfig(warmup_steps=500, window=5))
test_fail(lambda: HealthConfig(window=0), exc=UserError,
          contains="health.window = 0: must be an integer >= 1")
test_fail(lambda: HealthConfig(chance_tolerance=-0.1), exc=UserError,
          contains="health.chance_tolerance = -0.1: must be a finite number >= 0")
test_fail(lambda: HealthConfig(dc_offset_max=float("nan")), exc=UserError,
          contains="health.dc_offset_max = nan: must be a finite number >= 0")

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
        hop = self.mel.hop_size
        require(self.train, "train", f"a multiple of mel.hop_size {hop}", lambda v: v % hop == 0,
                "segment_size")

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
v3_gen = GeneratorConfig(upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8))
test_eq(Config(generator=v3_gen).generator_preset, CUSTOM)  # 8 x 8 x 4 = 256: fine, but not a preset shape
half_hop = GeneratorConfig(upsample_rates=(8, 8, 2), upsample_kernel_sizes=(16, 16, 4))
test_fail(lambda: Config(generator=half_hop), contains="= 128 samples per frame")
test_fail(lambda: Config(mel=MelConfig(hop_size=300)), contains="mel.hop_size is 300")
test_fail(lambda: Config(train=TrainConfig(segment_size=8000)),
          contains="train.segment_size = 8000: must be a multiple of mel.hop_size 256")

# %% [markdown]
# And every value is checked against what it can mean:

# %%
for build, message in [
        (lambda: TrainConfig(batch_size=0), "train.batch_size = 0: must be an integer >= 1"),
        (lambda: TrainConfig(grad_accum_steps=-1), "train.grad_accum_steps = -1: must be an integer >= 1"),
        (lambda: TrainConfig(lr_g=-1.0), "train.lr_g = -1.0: must be a finite number > 0"),
        (lambda: TrainConfig(betas=(0.8, 1.0)), "train.betas = (0.8, 1.0): must be a pair of numbers in"),
        (lambda: TrainConfig(epochs=1.5), "train.epochs = 1.5: must be an integer >= 1"),
        (lambda: TrainConfig(lambda_mel=math.nan), "train.lambda_mel = nan: must be a finite number >= 0"),
        (lambda: TrainConfig(precision="fp8"), "train.precision = 'fp8': must be one of auto, fp32"),
        (lambda: MelConfig(win_size=2048), "mel.win_size = 2048: must be at most mel.n_fft 1024"),
        (lambda: MelConfig(fmax=12000.0), "mel.fmax = 12000.0: must be None or above mel.fmin 0.0"),
        (lambda: GeneratorConfig(upsample_rates=(8, 8, 4)), "generator.upsample_kernel_sizes = (16, 16, 4"),
        (lambda: GeneratorConfig(resblock="3"), "generator.resblock = '3': must be '1' or '2'"),
        (lambda: DiscriminatorConfig(width=0.0), "discriminator.width = 0.0: must be a finite number > 0"),
        (lambda: DiscriminatorConfig(periods=(), num_scales=0), "no discriminator left")]:
    test_fail(build, exc=UserError, contains=message)


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

# %% [markdown]
# One place turns a value read from a file or from `--set` into the type of its field: `typed_value` reads the
# field's annotation (`int`, `float | None`, `tuple[int, ...]`, `tuple[float, float]` ...). A value that cannot be
# that type is a `UserError` naming the source (the file, or `--set`), the key and the value. YAML reads `1e-3` as a
# string, so a string that reads as a number counts as one; an integer field takes `4.0` but not `1.5`.

# %%
#| export
_KIND_NAMES = {"int": ("an integer", "integers"), "float": ("a number", "numbers"),
               "str": ("a string", "strings"), "bool": ("true or false", "booleans")}

def _tuple_parts(kind: str) -> list[str]:
    "The item types of `tuple[...]`: `tuple[tuple[int, ...], ...]` -> `['tuple[int, ...]', '...']`."
    parts, depth, start, args = [], 0, 0, kind[len("tuple["):-1]
    for i, c in enumerate(args):
        depth += (c == "[") - (c == "]")
        if c == "," and depth == 0:
            parts.append(args[start:i].strip())
            start = i + 1
    return parts + [args[start:].strip()]

def _kind_in_words(kind: str, plural: bool = False) -> str:
    "What a value of the annotation `kind` is, in words: `tuple[float, float]` -> 'a list of 2 numbers'."
    if kind.endswith(" | None"):
        return f"{_kind_in_words(kind[:-len(' | None')], plural)} or null"
    if kind.startswith("tuple["):
        parts = _tuple_parts(kind)
        items = _kind_in_words(parts[0], plural=True)
        lists = "lists" if plural else "a list"
        return f"{lists} of {items}" if parts[-1] == "..." else f"{lists} of {len(parts)} {items}"
    if kind not in _KIND_NAMES:
        raise TypeError(f"config field type {kind!r}: the parser reads int, float, str, bool, tuple[...] and "
                        "X | None; add the new type to `_as_kind` and `_kind_in_words`")
    return _KIND_NAMES[kind][plural]


# %%
#| export
def _number(value):
    "`value` as a Python number: numbers as they are, numeric strings read; `ValueError` otherwise."
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    return float(value) if isinstance(value, str) else value

def _as_kind(value, kind: str):
    "`value` as the annotation `kind`; `ValueError` when it cannot be one."
    if kind.endswith(" | None"):
        return None if value is None else _as_kind(value, kind[:-len(" | None")])
    if kind.startswith("tuple["):
        parts = _tuple_parts(kind)
        if not isinstance(value, (list, tuple)):
            raise ValueError(value)
        kinds = [parts[0]] * len(value) if parts[-1] == "..." else parts
        if len(kinds) != len(value):
            raise ValueError(value)
        return tuple(_as_kind(v, k) for v, k in zip(value, kinds))
    if kind == "int":
        number = _number(value)
        if not (math.isfinite(number) and number == int(number)):
            raise ValueError(value)
        return int(number)
    if kind == "float":
        return float(_number(value))
    if kind == "str" and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    raise ValueError(value)

def typed_value(value, kind: str, key: str, source: str):
    "`value` as the type of the field `key` (annotation `kind`); a `UserError` naming source, key and value."
    try:
        return _as_kind(value, kind)
    except ValueError:
        raise UserError(f"{source}: {key} = {value!r}: expected {_kind_in_words(kind)}") from None


# %% [markdown]
# A field of another type (a `Path`, a `list`, a `dict`) would reach the parser only when a user sets it, and fail
# there with a bug's traceback. So the module checks every field of `Config` when it is imported: a new field of a
# type the parser does not read stops the import at once, with a message that names it.

# %%
#| export
def check_field_kinds(cls, prefix: str = "") -> None:
    "A `TypeError` naming the first field of dataclass `cls` (or a section) of a type the parser can't read."
    for f in fields(cls):
        if dataclasses.is_dataclass(f.default_factory):  # a section (`MISSING` is not a dataclass)
            check_field_kinds(f.default_factory, f"{prefix}{f.name}.")
            continue
        try:
            _kind_in_words(f.type)
        except TypeError as e:
            raise TypeError(f"{prefix}{f.name}: {e}") from None

check_field_kinds(Config)


# %%
@dataclasses.dataclass
class WithPath:
    folder: Path = Path(".")

try:
    check_field_kinds(WithPath)
except TypeError as e:
    print(e)
    assert str(e).startswith("folder: config field type") and "Path" in str(e), e
else:
    raise AssertionError("a Path field passed the check")

# %%
show_doc(typed_value)

# %%
test_eq(typed_value("1e-3", "float", "train.lr_g", "--set"), 1e-3)
test_eq(typed_value(4.0, "int", "train.batch_size", "--set"), 4)
test_eq(typed_value([0.5, 0.9], "tuple[float, float]", "train.betas", "--set"), (0.5, 0.9))
test_eq(typed_value([[1, 2], [3]], "tuple[tuple[int, ...], ...]", "generator.x", "--set"), ((1, 2), (3,)))
test_eq(typed_value(None, "float | None", "mel.fmax", "--set"), None)
test_eq(typed_value(1, "str", "generator.resblock", "run.yaml"), "1")
test_fail(lambda: typed_value("abc", "float", "train.lr_g", "run.yaml"),
          contains="run.yaml: train.lr_g = 'abc': expected a number")
test_fail(lambda: typed_value(1.5, "int", "train.epochs", "--set"),
          contains="--set: train.epochs = 1.5: expected an integer")
test_fail(lambda: typed_value(0.8, "tuple[float, float]", "train.betas", "--set"),
          contains="--set: train.betas = 0.8: expected a list of 2 numbers")
test_fail(lambda: typed_value([8, "x"], "tuple[int, ...]", "generator.upsample_rates", "--set"),
          contains="expected a list of integers")
test_fail(lambda: typed_value(True, "int", "train.seed", "--set"), contains="expected an integer")


# %% [markdown]
# A section of a file becomes its dataclass key by key; the dataclass then checks the values together, and its
# message is prefixed by the source.

# %%
#| export
def _from_dict(cls, data: dict, source: str, prefix: str = ""):
    "An instance of the dataclass `cls` from the mapping `data` read from `source`; keys below `prefix`."
    if not isinstance(data, dict):
        raise UserError(f"{source}: {prefix.rstrip('.') or 'the config'}: expected a mapping, "
                        f"got {type(data).__name__}")
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise UserError(f"{source}: unknown key(s) {', '.join(prefix + k for k in unknown)}; "
                        f"known: {', '.join(names)}")
    default, kwargs = cls(), {}
    for k, v in data.items():
        section = getattr(default, k)
        if dataclasses.is_dataclass(section):
            kwargs[k] = _from_dict(type(section), v, source, f"{prefix}{k}.")
        else:
            kwargs[k] = typed_value(v, names[k].type, prefix + k, source)
    try:
        return cls(**kwargs)
    except UserError as e:  # a value out of range, or parts that do not fit together
        raise UserError(f"{source}: {e}") from None


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
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a config file")
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    data = _parse_text(path)
    base_name = data.get("preset", "recipe")
    try:
        base = preset_config("recipe" if base_name == CUSTOM else str(base_name))
    except UserError as e:
        raise UserError(f"{path}: preset: {e}") from None
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
test_fail(lambda: load_config(tmp / "typo.yaml"), contains="typo.yaml: unknown key(s) train.lamda_mel")
(tmp / "broken.json").write_text("{train: 1")
test_fail(lambda: load_config(tmp / "broken.json"), contains="broken.json: not valid JSON")
test_fail(lambda: load_config(tmp / "missing.yaml"), contains="missing.yaml: config file not found")
test_fail(lambda: load_config(tmp), contains=": is a folder, not a config file")

# %% [markdown]
# A value of the wrong type, or out of its range, names the file, the key and the value:

# %%
(tmp / "text.yaml").write_text("train:\n  lr_g: abc\n")
test_fail(lambda: load_config(tmp / "text.yaml"), contains="text.yaml: train.lr_g = 'abc': expected a number")
(tmp / "zero.yaml").write_text("train:\n  batch_size: 0\n")
test_fail(lambda: load_config(tmp / "zero.yaml"),
          contains="zero.yaml: train.batch_size = 0: must be an integer >= 1")
(tmp / "section.yaml").write_text("train: 4\n")
test_fail(lambda: load_config(tmp / "section.yaml"), contains="section.yaml: train: expected a mapping")
(tmp / "preset.yaml").write_text("preset: v9\n")
test_fail(lambda: load_config(tmp / "preset.yaml"), contains="preset.yaml: preset: unknown preset 'v9'")


# %% [markdown]
# Command-line overrides use dotted paths, `section.key=value`, with the value parsed as YAML so that numbers, lists
# and `null` work as expected: `--set train.lambda_mel=30 --set mel.fmax=null --set train.betas=[0.8,0.99]`. The
# result is checked like a loaded file, and its `preset` becomes `custom` once a value differs from the preset's.

# %%
#| export
def _field_kind(item: str, parts: list[str]) -> str:
    "The annotation of the field at the dotted path `parts` of a `Config`; a `UserError` for an unknown one."
    cls = Config
    for depth, name in enumerate(parts):
        known = {f.name: f for f in fields(cls)}
        if name not in known:
            what = "key" if depth == len(parts) - 1 else "section"
            raise UserError(f"--set {item}: unknown {what} {'.'.join(parts[:depth + 1])!r}")
        section = getattr(cls(), name)
        if depth < len(parts) - 1:
            if not dataclasses.is_dataclass(section):
                raise UserError(f"--set {item}: {'.'.join(parts[:depth + 1])} is a value, not a section")
            cls = type(section)
        elif dataclasses.is_dataclass(section):
            raise UserError(f"--set {item}: {name} is a section; set one of its keys, e.g. {name}.x=1")
    return known[parts[-1]].type

def _set_dotted(data: dict, item: str) -> None:
    "Apply one `section.key=value` override to the nested dict `data`, the value typed (source `--set`)."
    import yaml
    if "=" not in item:
        raise UserError(f"--set {item}: expected section.key=value")
    key, raw = (part.strip() for part in item.split("=", 1))
    parts = key.split(".")
    kind = _field_kind(item, parts)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise UserError(f"--set {item}: cannot parse value {raw!r}") from None
    node = data
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = typed_value(value, kind, key, "--set")

def apply_overrides(cfg: Config, overrides: list[str] | None) -> Config:
    "A copy of `cfg` with `section.key=value` overrides applied; a bad key or value raises a `UserError`."
    data = config_to_dict(cfg)
    for item in overrides or []:
        _set_dotted(data, item)
    return _label(config_from_dict(data, "--set"))


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
test_fail(lambda: apply_overrides(c, ["train=1"]), contains="train is a section")
test_fail(lambda: apply_overrides(c, ["train.lr_g.x=1"]), contains="train.lr_g is a value, not a section")
test_fail(lambda: apply_overrides(c, ["mel.hop_size=128"]), contains="but mel.hop_size is 128")

# %% [markdown]
# A value is typed as it is read, so its error names the `--set` it came from; the ranges are checked once all
# overrides are in (two overrides may only fit together), naming the key and value:

# %%
for item, message in [("train.lr_g=abc", "--set: train.lr_g = 'abc': expected a number"),
                      ("train.epochs=1.5", "--set: train.epochs = 1.5: expected an integer"),
                      ("train.betas=0.8", "--set: train.betas = 0.8: expected a list of 2 numbers"),
                      ("train.batch_size=0", "--set: train.batch_size = 0: must be an integer >= 1"),
                      ("train.lr_g=-1", "--set: train.lr_g = -1.0: must be a finite number > 0"),
                      ("train.lambda_mel=nan", "--set: train.lambda_mel = nan: must be a finite number >= 0"),
                      ("train.grad_accum_steps=0", "--set: train.grad_accum_steps = 0: must be an integer")]:
    test_fail(lambda: apply_overrides(c, [item]), exc=UserError, contains=message)
half = ["generator.upsample_rates=[8,4,2,2]", "generator.upsample_kernel_sizes=[16,8,4,4]",
        "mel.hop_size=128"]
test_eq(apply_overrides(c, half).generator.upsample_factor, 128)


# %% [markdown]
# Two configs are compared value by value, for instance a run folder's saved config and the one a resumed run asks
# for: `config_differences` names each value that differs, as `key old -> new`, optionally only under some keys.

# %%
#| export
def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in data.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out

def config_differences(old: Config, new: Config, under: tuple[str, ...] = ()) -> list[str]:
    "`key old -> new` for every value that differs (the `preset` label aside), only below the keys `under`."
    a, b = _flat(config_to_dict(old)), _flat(config_to_dict(new))
    keys = [k for k in a if k != "preset" and a[k] != b[k]]
    if under:
        keys = [k for k in keys if any(k == u or k.startswith(u + ".") for u in under)]
    return [f"{k} {a[k]} -> {b[k]}" for k in keys]


# %%
show_doc(config_differences)

# %%
tiny, recipe = preset_config("tiny"), preset_config("recipe")
print(config_differences(tiny, recipe, under=("generator", "train.lr_g")))
test_eq(config_differences(tiny, tiny), [])
test_eq(config_differences(tiny, recipe, under=("train.lr_g",)), ["train.lr_g 0.0005 -> 0.0002"])
test_eq(config_differences(recipe, preset_config("v1")), [])  # the label alone is no difference

# %%
import shutil

# %%
shutil.rmtree(tmp)
