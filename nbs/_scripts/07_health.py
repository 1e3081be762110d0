# %% [markdown]
# # Training health
#
# > A monitor that reads the numbers a GAN trainer logs, and the audio it makes, and warns when the discriminator has fallen asleep, the generator has collapsed, the gradients explode or vanish, or a loss is impossible.

# %%
#| default_exp health

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import math
from collections import deque
from dataclasses import dataclass
import torch
from hifigan_ruslan.losses import chance_discriminator_loss

# %% [markdown]
# A GAN can fail while every logged number looks calm. The trainer calls `HealthMonitor.update` once per logging interval with the interval means of its losses, scores and gradient norms, plus one batch of generated and real audio, and prints whatever the monitor says to the log, the progress bar and a `health` column of `metrics.csv`. With `--stop-on-collapse` it stops a run that has stopped learning instead of spending GPU hours on it.
#
# The monitor watches four things; the sections below explain each one, and why the losses alone hide it.

# %% [markdown]
# ## Configuration
#
# Every alarm except the impossible ones needs its condition to hold for a **window** of consecutive checks, and no sustained alarm fires during a **warm-up** at the start of training: at step 0 the generator is untrained, the discriminator has not separated anything yet, and both look exactly like the failures this module looks for (the untrained generator emits a constant offset plus a little noise; see below). Windows count checks, that is logging intervals, so they scale with `log_every_steps` (20 in the recipe: a window of 10 checks is 200 steps).

# %%
#| export
@dataclass
class HealthConfig:
    "Windows (in checks, one check per logging interval), tolerances and thresholds of `HealthMonitor`."
    warmup_steps: int = 2000           # no sustained alarm before this training step (impossible values are reported at once)
    window: int = 10                   # checks a discriminator or vanishing-gradient condition must hold before it is reported
    audio_window: int = 3              # checks a generator-collapse condition must hold (each check looks at a whole batch)
    grad_window: int = 3               # checks an exploding-gradient condition must hold
    score_gap_min: float = 0.05        # D(real) - D(fake) below this: real and generated audio are not separated
    score_gap_at_chance: float = 0.15  # ... and below this when the D loss is also near its chance value
    chance_tolerance: float = 0.15     # D loss within this fraction of chance (0.5 per sub-discriminator) counts as "at chance"
    dc_offset_max: float = 0.05        # generated |mean| may exceed the real audio's by at most this (full scale 1)
    std_ratio_min: float = 0.1         # generated std below this fraction of the real std: (near) silence
    std_min: float = 1e-3              # absolute floor on the generated std, used when no real audio is given
    flatness_ratio_max: float = 4.0    # spectral flatness more than this factor away from the real audio's
    grad_norm_max: float = 1e3         # gradient norm (before clipping) above this is exploding
    grad_spike_factor: float = 50.0    # ... as is one above this multiple of the running median
    grad_norm_min: float = 1e-6        # gradient norm below this is vanishing
    grad_history: int = 100            # checks kept for the running median of each gradient norm
    nonfinite_window: int = 2          # checks a NaN/inf must persist (fp16 loss scaling makes a lone inf step harmless)

# %% [markdown]
# ## Audio statistics
#
# Three numbers separate a collapsed generator from speech, each per clip and then averaged over the batch:
#
# - **DC offset**, `|mean(x)|`. Speech has no energy at 0 Hz, so a clip's mean is close to 0 (about 0.001 in the test recordings). A large offset is inaudible by itself but eats headroom, makes clicks at every start and stop, and is the most visible symptom of the collapse in the issue.
# - **Standard deviation** around the clip's own mean: the amount of actual signal. A generator that outputs a constant has none.
# - **Spectral flatness**, the geometric over the arithmetic mean of the power spectrum of each short frame (Wiener entropy). It is about 0.56 for white noise (the expected ratio for a noise periodogram), 1 for a perfectly flat spectrum, and small for speech, whose energy sits in harmonics and formants. The DC is removed first and silent frames (more than 40 dB below the clip's loudest) are left out, since they say nothing about the spectral shape; a clip with no audible frame has no flatness (NaN), and the batch mean skips it.

# %%
#| export
def _as_batch(audio: torch.Tensor) -> torch.Tensor:
    "Any `[N]`, `[B, N]` or `[B, 1, N]` tensor, on any device, as a CPU float64 `[B, N]` (one host transfer)."
    audio = audio.detach()
    if audio.dim() == 1: audio = audio[None]
    return audio.reshape(audio.shape[0], -1).to("cpu", torch.float64)

def _spectral_flatness(x: torch.Tensor, n_fft: int = 1024, hop: int = 256, floor_db: float = 40.0) -> torch.Tensor:
    "Mean spectral flatness of the audible frames of each clip of a zero-mean `[B, N]` batch; NaN for a silent clip."
    n_fft = min(n_fft, x.shape[-1])
    frames = x.unfold(-1, n_fft, max(1, min(hop, n_fft // 4)))              # [B, F, n_fft]
    power = torch.fft.rfft(frames * torch.hann_window(n_fft, dtype=x.dtype), dim=-1).abs().square()[..., 1:]
    energy = power.mean(-1)                                                  # [B, F]
    audible = energy > energy.amax(-1, keepdim=True) * 10 ** (-floor_db / 10)
    audible &= energy > 1e-20                                                # digital silence is never audible
    flatness = torch.exp(torch.log(power + 1e-30).mean(-1)) / (energy + 1e-30)
    count = audible.sum(-1)
    return torch.where(count > 0, (flatness * audible).sum(-1) / count.clamp(min=1), torch.nan)

def audio_stats(audio: torch.Tensor, sampling_rate: int = 22050) -> dict[str, float]:
    "DC offset, std, RMS, peak and spectral flatness of a batch `[B, N]`, `[B, 1, N]` or `[N]`, averaged over the clips."
    x = _as_batch(audio)
    mean = x.mean(-1, keepdim=True)
    n_fft = 2 ** round(math.log2(1024 * sampling_rate / 22050))  # about 46 ms whatever the rate
    flatness = _spectral_flatness(x - mean, n_fft=n_fft, hop=n_fft // 4)
    return {"dc_offset": mean.abs().mean().item(), "std": x.std(-1, correction=0).mean().item(),
            "rms": x.square().mean(-1).sqrt().mean().item(), "peak": x.abs().max().item(),
            "spectral_flatness": flatness.nanmean().item()}

# %%
show_doc(audio_stats)

# %% [markdown]
# The test recordings: Russian synthetic speech (espeak-ng) and English read speech, both at 22,050 Hz, cut into training-sized segments of 8,192 samples; against them, the signal of the issue, a constant offset plus a little noise:

# %%
import numpy as np
from pathlib import Path
ref_dir = Path("testdata/reference")
def segments(name, n=8192):
    "The recording `name` from the reference folder as a `[B, n]` batch of consecutive segments."
    audio = torch.from_numpy(np.load(ref_dir / f"{name}.npz")["audio"])
    return audio[: len(audio) // n * n].view(-1, n)
speech_ru, speech_en = segments("mel_espeak_ru"), segments("mel_real_en")
torch.manual_seed(0)
dc_noise = 0.3 + 0.01 * torch.randn(4, 8192)
for name, batch in [("speech ru", speech_ru), ("speech en", speech_en), ("DC + noise", dc_noise)]:
    print(f"{name:10}", "  ".join(f"{k} {v:.4f}" for k, v in audio_stats(batch).items()))

# %%
st_ru, st_en, st_dc = audio_stats(speech_ru), audio_stats(speech_en), audio_stats(dc_noise)
assert max(st_ru["dc_offset"], st_en["dc_offset"]) < 0.01 and abs(st_dc["dc_offset"] - 0.3) < 1e-3
assert abs(st_dc["std"] - 0.01) < 1e-3 and st_ru["std"] > 0.05 and st_en["std"] > 0.05
assert 0.45 < st_dc["spectral_flatness"] < 0.65                      # white noise: about 0.56
assert max(st_ru["spectral_flatness"], st_en["spectral_flatness"]) < 0.1
assert audio_stats(dc_noise[:, None]) == st_dc                       # [B, 1, N] is the same batch
assert math.isnan(audio_stats(torch.zeros(2, 4096))["spectral_flatness"])  # silence has no spectral shape

# %% [markdown]
# ## Why the losses do not show it
#
# **The discriminator loss.** With least squares, sub-discriminator `k` scores `(1 - D_k(real))^2 + D_k(fake)^2`. Write its mean scores on real and generated audio as `c + g/2` and `c - g/2` (`g` is the separation, `c` the centre) and their variances as `v_r, v_f`; the expected loss is
#
# `0.5 - g + g^2/2 + 2 (c - 0.5)^2 + v_r + v_f`.
#
# With no separation (`g = 0`) the loss can never go below 0.5, the chance value `chance_discriminator_loss(1)`; it only reaches 0.5 when the discriminator outputs exactly 0.5 everywhere, and a centre away from 0.5 or noisy scores put it *above* chance. The user's 4.44 with 8 sub-discriminators is 0.555 per sub-discriminator, 11% above chance: a discriminator whose scores sit around 0.33 or 0.67 for real and generated audio alike (`2 (c - 0.5)^2 = 0.055`). It looked stable because it was: stably useless. Only a separation `g` pulls the loss below chance, so the monitor looks at the separation first and treats a loss within `chance_tolerance` (15%, so 3.4 to 4.6 for 8 sub-discriminators) of chance as a sign of sleep unless the scores are clearly separated.
#
# **The mel loss.** It compares log-mels, and a constant offset lands in the lowest of 80 bands only: adding 0.3 of DC to real speech costs a mel L1 of about 0.06. And white noise at a low level is, for a log-spectral distance, a fair average of any speech: it scores *better* than a different real utterance, and far better than silence.

# %%
from hifigan_ruslan.losses import mel_loss
speech = speech_ru[:8]
mel_err = {"speech + 0.3 DC": mel_loss(speech, speech + 0.3),
           "0.3 DC + 0.01 noise": mel_loss(speech, 0.3 + 0.01 * torch.randn_like(speech)),
           "other speech (shifted batch)": mel_loss(speech, speech.roll(1, 0)),
           "silence": mel_loss(speech, torch.zeros_like(speech))}
for k, v in mel_err.items(): print(f"mel L1 vs. speech, {k:29}: {v.item():.3f}")
assert mel_err["speech + 0.3 DC"] < 0.1
assert mel_err["0.3 DC + 0.01 noise"] < mel_err["other speech (shifted batch)"] < mel_err["silence"]

# %% [markdown]
# A generator that has found DC plus noise therefore sits at a plausible mel loss, its adversarial loss is whatever an asleep discriminator says, and feature matching against an asleep discriminator's features is weak too. Nothing in the loss columns moves; the audio is the only honest witness.

# %% [markdown]
# ## The monitor
#
# | code | what | when | stops the run with `--stop-on-collapse` |
# |---|---|---|---|
# | `loss_nonfinite`, `loss_negative` | a NaN/inf or negative least-squares loss: sums of squares cannot be negative, so it is a bug (a wrong sign, a loss from a different formula) | at once | non-finite only |
# | `grad_nonfinite` | a NaN/inf gradient norm | at once | yes |
# | `d_asleep` | `D(real) - D(fake) < score_gap_min`, or `< score_gap_at_chance` with the D loss at chance | `window` checks | yes |
# | `g_dc_offset`, `g_silent`, `g_flat_spectrum` / `g_tonal_spectrum` | generated audio with a large DC offset, almost no variance, or a spectral flatness far from the real batch's | `audio_window` checks | yes |
# | `g_grad_exploding`, `d_grad_exploding` | norm (before clipping) above `grad_norm_max` or `grad_spike_factor` times its running median | `grad_window` checks | no |
# | `g_grad_vanishing`, `d_grad_vanishing` | norm below `grad_norm_min` | `window` checks | no |
#
# Each condition keeps a streak: the number of consecutive checks it has held. A sustained alarm is active while its streak has reached its window and the step is past the warm-up; the first healthy check ends it. Audio conditions only change when a check brings audio.


# %% [markdown]
# The conditions themselves are plain functions of one check's numbers, so each can be tested on its own; the monitor adds the streaks and windows.

# %%
#| export
def _nonfinite(**values: float) -> str | None:
    "The names and values of the non-finite arguments, or None when all are finite."
    bad = [f"{k} {v}" for k, v in values.items() if not math.isfinite(v)]
    return ", ".join(bad) if bad else None

def _discriminator_not_separating(gap: float, loss_d: float, chance: float, cfg: HealthConfig) -> bool:
    "Real and generated scores not separated, or only weakly while the D loss sits at its chance value."
    at_chance = abs(loss_d - chance) <= cfg.chance_tolerance * chance
    return gap < (cfg.score_gap_at_chance if at_chance else cfg.score_gap_min)

def _generator_problems(fake: dict[str, float], real: dict[str, float] | None, cfg: HealthConfig) -> dict[str, str]:
    "Collapse symptoms of one generated batch (`audio_stats`), compared with the real batch's when given: code -> message."
    problems, real_dc = {}, real["dc_offset"] if real else 0.0
    if fake["dc_offset"] > real_dc + cfg.dc_offset_max:
        problems["g_dc_offset"] = f"DC offset {fake['dc_offset']:.3f} (real {real_dc:.3f})"
    real_std = real["std"] if real else None
    std_floor = max(cfg.std_min, cfg.std_ratio_min * real_std) if real_std else cfg.std_min
    if fake["std"] < std_floor:
        problems["g_silent"] = f"std {fake['std']:.2g}" + (f" vs. real {real_std:.2g}" if real_std else "")
    if real and math.isfinite(fake["spectral_flatness"]) and real["spectral_flatness"] > 0:
        ratio = fake["spectral_flatness"] / real["spectral_flatness"]
        if ratio > cfg.flatness_ratio_max or ratio < 1 / cfg.flatness_ratio_max:
            code = "g_flat_spectrum" if ratio > 1 else "g_tonal_spectrum"
            problems[code] = (f"spectral flatness {fake['spectral_flatness']:.3f} vs. real {real['spectral_flatness']:.3f}"
                              + (" (noise-like)" if ratio > 1 else " (tonal, buzzing)"))
    return problems

def _median(values) -> float: return sorted(values)[len(values) // 2] if values else math.nan

def _gradient_problem(norm: float, history: deque, cfg: HealthConfig) -> str | None:
    "'exploding' or 'vanishing' for a finite gradient norm given the previous finite norms, else None."
    if norm > cfg.grad_norm_max: return "exploding"
    # a running median needs some history before it means anything
    if len(history) >= cfg.window and norm > cfg.grad_spike_factor * _median(history) > 0: return "exploding"
    return "vanishing" if norm < cfg.grad_norm_min else None

# %%
cfg = HealthConfig()
assert _nonfinite(a=1.0, b=2.0) is None and _nonfinite(a=1.0, b=float("nan")) == "b nan"
# the user's case: 4.44 with 8 sub-discriminators and unseparated scores is asleep; a separated D is not
assert _discriminator_not_separating(0.01, 4.44, 4.0, cfg) and _discriminator_not_separating(0.1, 4.44, 4.0, cfg)
assert not _discriminator_not_separating(0.3, 4.2, 4.0, cfg) and not _discriminator_not_separating(0.1, 2.5, 4.0, cfg)
assert _discriminator_not_separating(0.0, 1.0, 4.0, cfg)    # no separation is sleep whatever the loss says
assert set(_generator_problems(st_dc, st_ru, cfg)) == {"g_dc_offset", "g_flat_spectrum"}
assert _generator_problems(st_ru, st_en, cfg) == {} and _generator_problems(st_en, st_ru, cfg) == {}
assert set(_generator_problems(audio_stats(torch.full((2, 8192), 0.2)), st_ru, cfg)) == {"g_dc_offset", "g_silent"}
assert "g_dc_offset" in _generator_problems(st_dc, None, cfg)  # without a real batch: absolute thresholds only
assert _gradient_problem(5e3, deque(), cfg) == "exploding" and _gradient_problem(0.0, deque(), cfg) == "vanishing"
assert _gradient_problem(60.0, deque([1.0] * 20), cfg) == "exploding" and _gradient_problem(60.0, deque([1.0] * 5), cfg) is None
assert _gradient_problem(3.0, deque([1.0] * 20), cfg) is None

# %% [markdown]
# A `HealthMonitor` holds the streaks. `update` takes one check's numbers and returns the warnings now active, one line each; `status` is the short form for the `health` column of `metrics.csv`, and `collapsed` says whether the run has stopped learning (discriminator asleep, generator collapsed, or non-finite values), the cases in which `--stop-on-collapse` stops training. Exploding and vanishing gradients and negative losses are warnings only: the first may pass, the others mean a bug to fix rather than a run to stop.
#
# Non-finite values are reported without a warm-up but after `nonfinite_window` consecutive checks: with fp16, gradient scaling makes an occasional step's gradients infinite and skips that step, which is harmless; a diverged model stays NaN.

# %%
#| export
_COLLAPSE_CODES = frozenset({"loss_nonfinite", "grad_nonfinite", "d_asleep", "g_dc_offset", "g_silent",
                             "g_flat_spectrum", "g_tonal_spectrum"})
_AUDIO_CODES = ("g_dc_offset", "g_silent", "g_flat_spectrum", "g_tonal_spectrum")

class HealthMonitor:
    "Watches a GAN trainer's interval means and audio for a sleeping discriminator, a collapsed generator, bad gradients and impossible losses."
    def __init__(self, num_subdiscriminators: int, cfg: HealthConfig | None = None, sampling_rate: int = 22050):
        if num_subdiscriminators < 1: raise ValueError(f"num_subdiscriminators must be at least 1, got {num_subdiscriminators}")
        self.cfg, self.sampling_rate = cfg or HealthConfig(), sampling_rate
        self.chance = chance_discriminator_loss(num_subdiscriminators)
        self.streaks: dict[str, int] = {}          # code -> consecutive checks its condition has held
        self.gaps: deque[float] = deque(maxlen=max(1, self.cfg.window))
        self.grad_history = {"g": deque(maxlen=self.cfg.grad_history), "d": deque(maxlen=self.cfg.grad_history)}
        self.audio: dict[str, dict[str, float]] = {}   # "fake"/"real" -> audio_stats of the latest batches
        self.audio_problems: dict[str, str] = {}       # code -> detail, from the latest batch with audio
        self.warnings: dict[str, str] = {}             # code -> message, active after the latest check
        self.checks = 0

    def _hold(self, code: str, holds: bool) -> int:
        self.streaks[code] = self.streaks.get(code, 0) + 1 if holds else 0
        return self.streaks[code]

    def update(self, step: int, *, loss_d: float, loss_g_adv: float, real_score: float, fake_score: float,
               grad_norm_g: float, grad_norm_d: float, fake_audio: torch.Tensor | None = None,
               real_audio: torch.Tensor | None = None) -> list[str]:
        "Take one logging interval's means (and a batch of generated and real audio); return the active warnings."
        cfg, self.checks = self.cfg, self.checks + 1
        loss_d, loss_g_adv, real_score, fake_score, grad_norm_g, grad_norm_d = map(
            float, (loss_d, loss_g_adv, real_score, fake_score, grad_norm_g, grad_norm_d))
        warm, found = step >= cfg.warmup_steps, {}
        def sustained(code, holds, window, message):
            if self._hold(code, holds) >= window and warm: found[code] = message()
        # impossible values: no warm-up
        bad = _nonfinite(**{"D loss": loss_d, "G adversarial loss": loss_g_adv, "D(real)": real_score, "D(fake)": fake_score})
        if self._hold("loss_nonfinite", bad is not None) >= cfg.nonfinite_window:
            found["loss_nonfinite"] = f"non-finite values for {self.streaks['loss_nonfinite']} checks: {bad} (training diverged)"
        bad_grad = _nonfinite(G=grad_norm_g, D=grad_norm_d)
        if self._hold("grad_nonfinite", bad_grad is not None) >= cfg.nonfinite_window:
            found["grad_nonfinite"] = f"non-finite gradient norm for {self.streaks['grad_nonfinite']} checks: {bad_grad}"
        negative = {k: v for k, v in (("D", loss_d), ("G adversarial", loss_g_adv)) if v < 0}
        if negative:
            found["loss_negative"] = ("impossible negative least-squares loss: " + ", ".join(f"{k} {v:.4g}" for k, v in negative.items())
                                      + "; a sum of squares is never negative, so the loss code has a bug")
        # the discriminator
        if bad is None:
            gap = real_score - fake_score
            self.gaps.append(gap)
            at_chance = abs(loss_d - self.chance) <= cfg.chance_tolerance * self.chance
            sustained("d_asleep", _discriminator_not_separating(gap, loss_d, self.chance, cfg), cfg.window,
                      lambda: f"discriminator asleep: D(real) - D(fake) = {sum(self.gaps) / len(self.gaps):.3f} over the last "
                              f"{len(self.gaps)} checks; D loss {loss_d:.2f} {'~' if at_chance else 'vs.'} chance {self.chance:.2f}")
        # the generator's audio: the streaks move only when a check brings audio
        if fake_audio is not None:
            self.audio = {"fake": audio_stats(fake_audio, self.sampling_rate)}
            if real_audio is not None: self.audio["real"] = audio_stats(real_audio, self.sampling_rate)
            self.audio_problems = _generator_problems(self.audio["fake"], self.audio.get("real"), cfg)
            for code in _AUDIO_CODES: self._hold(code, code in self.audio_problems)
        for code, detail in self.audio_problems.items():
            if self.streaks[code] >= cfg.audio_window and warm:
                found[code] = f"generator collapse: {detail} for {self.streaks[code]} checks"
        # the gradients, before clipping
        for name, norm in (("g", grad_norm_g), ("d", grad_norm_d)):
            if not math.isfinite(norm): continue
            problem, history = _gradient_problem(norm, self.grad_history[name], cfg), self.grad_history[name]
            label = "generator" if name == "g" else "discriminator"
            sustained(f"{name}_grad_exploding", problem == "exploding", cfg.grad_window,
                      lambda: f"{label} gradients exploding: norm {norm:.3g} (running median {_median(history):.3g})")
            sustained(f"{name}_grad_vanishing", problem == "vanishing", cfg.window,
                      lambda: f"{label} gradients vanishing: norm {norm:.2g} for {self.streaks[f'{name}_grad_vanishing']} checks")
            history.append(norm)
        self.warnings = found
        return list(found.values())

    @property
    def status(self) -> str:
        "'ok', or the active warnings' short codes joined by ';' (for the `health` column of metrics.csv)."
        return ";".join(self.warnings) or "ok"

    @property
    def collapsed(self) -> bool:
        "Whether a problem that justifies stopping the run is active: D asleep, G collapsed, or non-finite values."
        return any(code in _COLLAPSE_CODES for code in self.warnings)

# %%
show_doc(HealthMonitor)

# %%
show_doc(HealthMonitor.update)

# %%
show_doc(HealthMonitor.status)

# %%
show_doc(HealthMonitor.collapsed)

# %% [markdown]
# ### Tests on constructed runs
#
# A healthy run: separated scores, a D loss below chance, speech-like audio, ordinary gradients. No warning at any check, from step 0:

# %%
def healthy(step, **over):
    "One check of a healthy run, with any value overridden."
    values = dict(loss_d=2.6, loss_g_adv=3.0, real_score=0.65, fake_score=0.35, grad_norm_g=40.0, grad_norm_d=8.0,
                  fake_audio=speech_en, real_audio=speech_ru)
    return values | over

mon = HealthMonitor(8)
for step in range(0, 4000, 20): assert mon.update(step, **healthy(step)) == [], step
assert mon.status == "ok" and not mon.collapsed and mon.checks == 200
