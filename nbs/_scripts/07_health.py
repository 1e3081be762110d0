# %% [markdown]
# # Training health
#
# > A monitor that reads the numbers a GAN trainer logs, and the audio it makes, and warns when the discriminator has fallen asleep, the generator has collapsed, the gradients explode or vanish, or a loss is impossible.

# %%
#| default_exp health

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_close, test_fail

# %%
#| export
from __future__ import annotations
import math
from collections import deque
import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from fastcore.basics import patch
from hifigan_ruslan.config import HealthConfig, MelConfig
from hifigan_ruslan.losses import chance_discriminator_loss


# %% [markdown]
# A GAN can fail while every logged number looks calm. The trainer calls `HealthMonitor.update` once per logging interval with the interval means of its losses, scores and gradient norms, plus one batch of generated and real audio, and prints whatever the monitor says to the log, the progress bar and a `health` column of `metrics.csv`. With `--stop-on-collapse` it stops a run that has stopped learning instead of spending GPU hours on it.
#
# The case that motivates it, a HiFi-GAN run on RUSLAN that failed quietly: for 50 epochs the discriminator loss sat at 4.44, which looked like stability; the generator had learnt to emit a near-constant signal, a DC offset with a little noise on it, which kept the mel loss low; the logged generator loss even went negative (-457.9), which a least-squares loss cannot do; and nothing warned. This page calls it *the failed run*.
#
# The monitor watches four things: a discriminator that has stopped discriminating, a generator whose audio has collapsed, gradients that explode or vanish, and losses that cannot be. The sections below explain each one, and why the losses alone hide it.

# %% [markdown]
# ## Configuration
#
# The monitor's windows and thresholds are a `HealthConfig`, part of the run's `Config` (see
# [Configuration](00a_config.ipynb)), so a run records them in its `config.yaml` and the command line changes them
# like any other value: `--set health.warmup_steps=500 --set health.window=5`. Every alarm except the impossible
# ones needs its condition to hold for a window of consecutive checks (logging intervals), and none fires during
# the warm-up at the start of training, when an untrained generator and discriminator look exactly like the
# failures the monitor looks for (see below).

# %% [markdown]
# ## Audio statistics
#
# Three numbers separate a collapsed generator from speech, each per clip and then averaged over the batch:
#
# - **DC offset**, `|mean(x)|`. Speech has no energy at 0 Hz, so a clip's mean is close to 0 (about 0.001 in the test recordings). A large offset is inaudible by itself but eats headroom, makes clicks at every start and stop, and is the most visible symptom of the failed run.
# - **Standard deviation** around the clip's own mean: the amount of actual signal. A generator that outputs a constant has none.
# - **Spectral flatness**, the geometric over the arithmetic mean of the power spectrum of each 46 ms frame (Wiener entropy). It is about 0.56 for white noise (the expected ratio for a noise periodogram), 1 for a perfectly flat spectrum, and small for speech, whose energy sits in harmonics and formants. Three details keep it stable: the DC is removed first and only 0 to 8 kHz is measured (where speech lives; a corpus resampled from a higher rate has almost nothing near the Nyquist frequency); bins more than 40 dB below the frame's strongest are raised to that floor, because the geometric mean is ruled by its emptiest bins and would otherwise swing by orders of magnitude with the noise floor of the recording; and silent frames (below -60 dBFS, or 40 dB below the clip's loudest) are left out, since they say nothing about the spectral shape. A clip with no audible frame has no flatness (NaN), and the batch mean skips it.
#
# The arithmetic is NumPy in float64 on the host, after one transfer of each batch: the monitor runs once per logging interval, so it adds one device-to-host copy per interval and nothing per step, and NumPy's FFT stays out of the thread pool that torch keeps busy with the training loop (on a loaded two-core machine the same statistics in torch took ten times longer).

# %%
#| export
def _as_batch(audio: torch.Tensor) -> np.ndarray:
    "A `[N]`, `[B, N]` or `[B, 1, N]` tensor of any device and dtype as a float64 `[B, N]` array (one copy)."
    if audio.dim() == 0 or audio.numel() == 0 or audio.shape[-1] < 2:
        raise ValueError(f"audio batch of shape {tuple(audio.shape)} has no samples to measure")
    audio = audio.detach()
    if audio.dim() == 1:
        audio = audio[None]
    return audio.reshape(audio.shape[0], -1).float().cpu().numpy().astype(np.float64)

def _spectral_flatness(x: np.ndarray, sampling_rate: int, fmax: float = 8000.0, frame_s: float = 0.046,
                       range_db: float = 40.0, silence_rms: float = 1e-3) -> np.ndarray:
    "Mean flatness (0 to `fmax`) of each clip's audible frames in a zero-mean `[B, N]` batch; NaN if silent."
    n_fft = min(2 ** round(math.log2(frame_s * sampling_rate)), x.shape[-1])  # 1024 at 22,050 Hz
    frames = sliding_window_view(x, n_fft, axis=-1)[:, :: max(1, n_fft // 4)]  # [B, F, n_fft]
    rms = np.sqrt(np.square(frames).mean(-1))                                 # [B, F]
    audible = (rms > silence_rms) & (rms > rms.max(-1, keepdims=True) * 10 ** (-range_db / 20))
    power = np.square(np.abs(np.fft.rfft(frames * np.hanning(n_fft + 1)[:-1], axis=-1)))  # periodic Hann
    power = power[..., 1 : max(2, int(fmax / sampling_rate * n_fft))]  # no DC bin, nothing above fmax
    # raise the bins far below the frame's strongest, which would otherwise dominate the geometric mean
    power = np.maximum(power, power.max(-1, keepdims=True) * 10 ** (-range_db / 10))
    # digital silence: 0 / 0, never audible
    with np.errstate(divide="ignore", invalid="ignore"):
        flatness = np.exp(np.log(power).mean(-1)) / power.mean(-1)
    count = audible.sum(-1)
    return np.where(count > 0, np.where(audible, flatness, 0).sum(-1) / np.maximum(count, 1), np.nan)


# %% [markdown]
# Per clip, then per batch: the mean over the clips (skipping a silent clip's undefined flatness), the maximum for the peak.

# %%
#| export
def _clip_stats(audio: torch.Tensor, sampling_rate: int = MelConfig.sampling_rate) -> dict[str, np.ndarray]:
    "`audio_stats` per clip: a `[B]` array for each statistic."
    x = _as_batch(audio)
    mean = x.mean(-1, keepdims=True)
    return {"dc_offset": np.abs(mean[:, 0]), "std": x.std(-1), "rms": np.sqrt(np.square(x).mean(-1)),
            "peak": np.abs(x).max(-1), "spectral_flatness": _spectral_flatness(x - mean, sampling_rate)}

def _nanmean(values: np.ndarray) -> float:
    "The mean of the non-NaN values; NaN when there are none."
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan

def _batch_stats(clips: dict[str, np.ndarray]) -> dict[str, float]:
    "Per-clip stats to batch floats: the mean over the clips (NaN-skipping), the maximum for the peak."
    return {k: float(v.max()) if k == "peak" else _nanmean(v) for k, v in clips.items()}

def audio_stats(audio: torch.Tensor, sampling_rate: int = MelConfig.sampling_rate) -> dict[str, float]:
    "DC offset, std, RMS, flatness (clip means) and peak (max) of a `[B, N]`, `[B, 1, N]` or `[N]` batch."
    return _batch_stats(_clip_stats(audio, sampling_rate))


# %%
show_doc(audio_stats)

# %% [markdown]
# The test recordings: Russian synthetic speech (espeak-ng) and English read speech, both at 22,050 Hz, and the 12 clips of the synthetic test corpus (`testing.tiny_corpus`, espeak-ng in RUSLAN's layout, resampled to 22,050 Hz where needed), all cut into training-sized segments of 8,192 samples; against them, the output of the failed run, a constant offset plus a little noise:

# %%
import soundfile as sf, soxr
from pathlib import Path
from hifigan_ruslan.testing import tiny_corpus

# %%
ref_dir, segment = Path("testdata/reference"), 8192
def segments(audio, n=segment):
    "A 1-D recording as a `[B, n]` batch of its consecutive whole segments."
    audio = torch.as_tensor(audio, dtype=torch.float32)
    return audio[: len(audio) // n * n].view(-1, n)
def reference_speech(name): return segments(np.load(ref_dir / f"{name}.npz")["audio"])
def corpus_speech(folder=tiny_corpus() / "RUSLAN", sr=22050):
    "The synthetic test corpus as segments at `sr`."
    clips = []
    for path in sorted(folder.glob("*.wav")):
        audio, file_sr = sf.read(path, dtype="float32")
        clips.append(segments(audio if file_sr == sr else soxr.resample(audio, file_sr, sr)))
    return torch.cat(clips) if clips else torch.zeros(0, segment)
speech_ru, speech_en, speech_ruslan = reference_speech("mel_espeak_ru"), reference_speech("mel_real_en"), corpus_speech()
torch.manual_seed(0)
dc_noise = 0.3 + 0.01 * torch.randn(4, segment)
batches = {"speech ru": speech_ru, "speech en": speech_en, "tiny corpus": speech_ruslan, "DC + noise": dc_noise}
for name, batch in batches.items():
    if len(batch): print(f"{name:11} {len(batch):2} clips:", "  ".join(f"{k} {v:.4f}" for k, v in audio_stats(batch).items()))

# %%
st_ru, st_en, st_dc = audio_stats(speech_ru), audio_stats(speech_en), audio_stats(dc_noise)
speech_stats = [audio_stats(b) for b in (speech_ru, speech_en, speech_ruslan) if len(b)]
for st in speech_stats:
    assert st["dc_offset"] < 0.01, st["dc_offset"]
    assert st["std"] > 0.04, st["std"]
    assert 0.03 < st["spectral_flatness"] < 0.2, st["spectral_flatness"]
test_close(st_dc["dc_offset"], 0.3, eps=1e-3)
test_close(st_dc["std"], 0.01, eps=1e-3)
test_close(st_dc["spectral_flatness"], 0.56, eps=0.06)                 # white noise: about 0.56
test_eq(audio_stats(dc_noise[:, None]), st_dc)                         # [B, 1, N]: the same batch
test_eq(audio_stats(dc_noise.double()), st_dc)                         # float64: the same batch
test_close(audio_stats(dc_noise.bfloat16())["dc_offset"], 0.3, eps=2e-3)  # any dtype
# silence has no spectral shape
assert math.isnan(audio_stats(torch.zeros(2, 4096))["spectral_flatness"])
test_fail(lambda: audio_stats(torch.zeros(3, 0)), exc=ValueError,
          contains="audio batch of shape (3, 0) has no samples to measure")
test_fail(lambda: audio_stats(torch.zeros(0, 1, 8192)), exc=ValueError,
          contains="audio batch of shape (0, 1, 8192) has no samples to measure")
test_fail(lambda: audio_stats(torch.tensor(0.5)), exc=ValueError,
          contains="audio batch of shape () has no samples to measure")

# %% [markdown]
# What the two look like. The collapsed output is a flat line at 0.3 with a barely visible fuzz on it, nothing like speech; yet, as the next section shows, the losses rate it about as well as real speech.

# %%
import matplotlib.pyplot as plt

# %%
fig, ax = plt.subplots(figsize=(8, 2.5))
t_ms = torch.arange(segment) / 22.05
ax.plot(t_ms, speech_ru[2], lw=0.5, label="speech (espeak-ng, Russian)")
ax.plot(t_ms, dc_noise[0], lw=0.5, label="DC 0.3 + noise 0.01 (collapsed generator)")
ax.set(xlabel="time (ms)", ylabel="amplitude", xlim=(0, t_ms[-1]))
ax.legend(loc="lower right", fontsize=8); plt.tight_layout(); plt.show()

# %% [markdown]
# ## Why the losses do not show it
#
# **The discriminator loss.** With least squares, sub-discriminator `k` scores `(1 - D_k(real))^2 + D_k(fake)^2`. Write its mean scores on real and generated audio as `c + g/2` and `c - g/2` (`g` is the separation, `c` the centre) and their variances as `v_r, v_f`; the expected loss is
#
# `0.5 - g + g^2/2 + 2 (c - 0.5)^2 + v_r + v_f`.
#
# With no separation (`g = 0`) the loss can never go below 0.5, the chance value `chance_discriminator_loss(1)`; it only reaches 0.5 when the discriminator outputs exactly 0.5 everywhere, and a centre away from 0.5 or noisy scores put it *above* chance. The failed run's 4.44 with 8 sub-discriminators is 0.555 per sub-discriminator, 11% above chance: a discriminator whose scores sit around 0.33 or 0.67 for real and generated audio alike (`2 (c - 0.5)^2 = 0.055`). It looked stable because it was: stably useless. Only a separation `g` pulls the loss below chance, so the monitor looks at the separation first: below `score_gap_min` (0.05) the discriminator is asleep whatever its loss, and while the loss is within `chance_tolerance` (15%, so 3.4 to 4.6 for 8 sub-discriminators) of chance, a separation below `score_gap_at_chance` (0.1) is not enough either.
#
# One caution in reading it: the best possible least-squares discriminator scores `p_real / (p_real + p_generated)`, which is 0.5 everywhere once the generator is perfect. Scores alone cannot tell a sleeping discriminator from a perfect generator. HiFi-GAN's generators never get that far (a healthy discriminator keeps a clear separation throughout), and the audio checks below help tell the two apart; a sleep alarm with clean audio is a reason to listen to the samples before trusting either.
#
# **The mel loss.** It compares log-mel magnitudes, so it is blind to two things a listener hears at once. A constant offset lands in the lowest of 80 bands only: adding 0.3 of DC to real speech costs a mel L1 of about 0.05. And it ignores phase: noise shaped to the speech's spectrogram (the real magnitudes with random phases, a whisper-like hiss) scores about 0.7, a third of the way from the 0.23 of a well-trained vocoder to the 2 of a different utterance. Even plain white noise at a low level beats a different real utterance, because for a log-spectral distance it is a fair average of any speech.

# %%
from hifigan_ruslan.losses import loss_mel, mel_loss


# %%
def speech_shaped_noise(x, n_fft=1024, seed=0):
    "The magnitudes of `x`'s spectrogram with random phases: noise with the spectral envelope of speech."
    window = torch.hann_window(n_fft)
    spec = torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True)
    phase = torch.rand(spec.shape, generator=torch.Generator().manual_seed(seed))
    return torch.istft(spec.abs() * torch.exp(2j * torch.pi * phase), n_fft, n_fft // 4, window=window, length=x.shape[-1])
speech = speech_ru[:4]
speech_mel = loss_mel(speech)
mel_err = {"speech + 0.3 DC": mel_loss(speech_mel, speech + 0.3),
           "speech-shaped noise + 0.3 DC": mel_loss(speech_mel, speech_shaped_noise(speech) + 0.3),
           "white noise 0.01 + 0.3 DC": mel_loss(speech_mel, 0.3 + 0.01 * torch.randn_like(speech)),
           "other speech (shifted batch)": mel_loss(speech_mel, speech.roll(1, 0)),
           "silence": mel_loss(speech_mel, torch.zeros_like(speech))}
for k, v in mel_err.items(): print(f"mel L1 vs. speech, {k:29}: {v.item():.3f}")
err = {k: v.item() for k, v in mel_err.items()}
assert err["speech + 0.3 DC"] < 0.1, err["speech + 0.3 DC"]
assert err["speech-shaped noise + 0.3 DC"] < 1, err["speech-shaped noise + 0.3 DC"]
assert err["white noise 0.01 + 0.3 DC"] < err["other speech (shifted batch)"] < err["silence"], err


# %% [markdown]
# A generator that has found DC plus noise therefore sits at a mel loss that can pass for slow progress, its adversarial loss is whatever an asleep discriminator says, and feature matching against an asleep discriminator's features is weak too. Nothing in the loss columns moves; the audio and the discriminator's scores are the honest witnesses.

# %% [markdown]
# ## The monitor
#
# | code | what | when | stops the run with `--stop-on-collapse` |
# |---|---|---|---|
# | `loss_negative` | a negative least-squares loss: sums of squares cannot be negative, so it is a bug (a wrong sign, a loss from a different formula) | at once, from step 0 | no |
# | `nonfinite` | steps whose loss or gradient was NaN/inf (the trainer skipped them), as told by `record_step` | `nonfinite_window` steps in a row, from step 0 | yes |
# | `d_asleep` | `D(real) - D(fake) < score_gap_min`, or `< score_gap_at_chance` with the D loss at chance | `window` checks | yes |
# | `g_dc_offset`, `g_silent`, `g_flat_spectrum` | generated audio with a large DC offset, almost no variance, or a spectrum far flatter (more noise-like) than the real batch's | `audio_window` checks | yes |
# | `g_grad_exploding`, `d_grad_exploding` | norm (before clipping) above `grad_norm_max` or `grad_spike_factor` times its running median | `grad_window` checks | no |
# | `g_grad_vanishing`, `d_grad_vanishing` | norm below `grad_norm_min` | `window` checks | no |
#
# Each condition keeps a streak: the number of consecutive checks it has held. A sustained alarm is active while its streak has reached its window and the step is past the warm-up; the first healthy check ends it. Streaks are counted during the warm-up too, so a condition that has held all along is reported at the first check after it. Audio conditions only change when a check brings audio.
#
# In a training loop, once per logging interval:
#
# ```python
# monitor = HealthMonitor(cfg.discriminator.num_subdiscriminators, sampling_rate=cfg.mel.sampling_rate)
# ...
# warnings = monitor.update(step, loss_d=..., loss_adv=..., real_score=..., fake_score=...,
#                           grad_norm_g=..., grad_norm_d=..., fake_audio=y_hat, real_audio=y)
# for line in warnings: log(f"HEALTH WARNING at step {step}: {line}")
# row["health"] = monitor.status              # 'ok' or e.g. 'd_asleep;g_dc_offset'
# if stop_on_collapse and monitor.collapsed: ...
# ```

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


# %% [markdown]
# The generator's symptoms are judged against the real batch of the same step: a DC offset beyond the real audio's, near silence, a spectrum far flatter than the real one.

# %%
#| export
def _flatness_ratio(fake: np.ndarray, real: np.ndarray) -> float:
    "Generated over real flatness: geometric mean of per-clip ratios when clips pair up, else of batch means."
    # the trainer's batches: G(mel(y)) next to y, so compare each clip with its own source
    if fake.shape == real.shape:
        ok = np.isfinite(fake) & np.isfinite(real) & (fake > 0) & (real > 0)
        if ok.any():
            return float(np.exp(np.log(fake[ok] / real[ok]).mean()))
    return _nanmean(fake) / _nanmean(real)

def _generator_problems(fake: dict[str, np.ndarray], real: dict[str, np.ndarray] | None,
                        cfg: HealthConfig) -> dict[str, str]:
    "Collapse symptoms of a generated batch (per-clip stats), against the real one if given: code -> detail."
    f, r = _batch_stats(fake), _batch_stats(real) if real else None
    problems, real_dc = {}, r["dc_offset"] if r else 0.0
    if f["dc_offset"] > real_dc + cfg.dc_offset_max:
        problems["g_dc_offset"] = f"DC offset {f['dc_offset']:.3f}" + (f" (real {real_dc:.3f})" if r else "")
    if f["std"] < max(cfg.std_min, cfg.std_ratio_min * r["std"] if r else 0.0):
        real_std = f" (real {r['std']:.2g})" if r else ""
        problems["g_silent"] = f"std {f['std']:.2g}" + real_std + ": almost no signal"
    if r:
        ratio = _flatness_ratio(fake["spectral_flatness"], real["spectral_flatness"])
        if ratio > cfg.flatness_ratio_max:  # NaN (silence) compares False: g_silent covers it
            problems["g_flat_spectrum"] = (f"spectral flatness {f['spectral_flatness']:.3f} "
                                           f"(real {r['spectral_flatness']:.3f}, {ratio:.1f}x): noise-like")
    return problems


# %% [markdown]
# Gradients explode above a fixed bound, or far above their own running median once there is a history; they vanish below a floor.

# %%
#| export
def _median(values) -> float:
    "The upper median of `values`; NaN when there are none."
    return sorted(values)[len(values) // 2] if values else math.nan

def _gradient_problem(norm: float, history: deque, cfg: HealthConfig) -> str | None:
    "'exploding' or 'vanishing' for a finite gradient norm given the previous finite norms, else None."
    if norm > cfg.grad_norm_max:
        return "exploding"
    # a running median needs some history before it means anything
    if len(history) >= cfg.window and norm > cfg.grad_spike_factor * _median(history) > 0:
        return "exploding"
    return "vanishing" if norm < cfg.grad_norm_min else None


# %%
cfg = HealthConfig()
test_eq(_nonfinite(a=1.0, b=2.0), None)
test_eq(_nonfinite(a=1.0, b=float("nan")), "b nan")
# the failed run: 4.44 with 8 sub-discriminators and unseparated scores is asleep; a separated D is not
assert _discriminator_not_separating(0.01, 4.44, 4.0, cfg)
assert _discriminator_not_separating(0.08, 4.44, 4.0, cfg)
assert not _discriminator_not_separating(0.3, 4.2, 4.0, cfg)
assert not _discriminator_not_separating(0.07, 2.5, 4.0, cfg)
# no separation is sleep whatever the loss says
assert _discriminator_not_separating(0.0, 1.0, 4.0, cfg)


# %% [markdown]
# Generated audio is compared with the real batch of the same step. In the trainer the two pair up clip by clip (the generated clip is the vocoded mel of the real one), so the flatness is compared per clip: a mostly silent segment with room noise is noise-like in both. Stand-ins for a healthy generator: the real clips themselves, with noise 30 dB and 20 dB down, or low-passed at 6 kHz (a typical vocoder shortfall). Stand-ins for a collapsed one: DC plus noise, a constant, and pure noise at speech level.
#
# The sweep below shows how the ratio of generated to real flatness grows as noise is added to the real clips: about 2.4x with the noise 20 dB down (clearly audible, yet a healthy stage of training), 4x at 10 dB, 6x at 0 dB and 8x for noise alone. The default `flatness_ratio_max` of 5 sits at about 5 dB: it wants the generated audio to be mostly noise before it speaks of collapse, because a young generator is noisy and a false alarm can stop a good run. (The failed run's DC plus noise is caught by its offset anyway.)
#
# The test is one-sided on purpose. In the other direction there is no such margin: a constant buzz comes out about 0.5x the real flatness, and so does speech that merely lacks its top octave (a common and harmless shortfall of a young vocoder), so a "too tonal" alarm would fire on healthy runs.

# %%
def with_noise(x, snr_db): return x + torch.randn_like(x) * x.std(-1, keepdim=True) * 10 ** (-snr_db / 20)
def low_pass(x, hz=6000, sr=22050):
    spec = torch.fft.rfft(x)
    spec[..., int(hz / sr * x.shape[-1]):] = 0
    return torch.fft.irfft(spec, n=x.shape[-1])
real = torch.cat([speech_ru, speech_en, speech_ruslan])
real_clips = _clip_stats(real)
n = len(real)
healthy_fakes = {"itself": real, "30 dB SNR": with_noise(real, 30), "20 dB SNR": with_noise(real, 20), "low-passed 6 kHz": low_pass(real)}
collapsed_fakes = {"DC + noise": 0.3 + 0.01 * torch.randn(n, segment), "constant": torch.full((n, segment), 0.2),
                   "noise": 0.07 * torch.randn(n, segment)}
def flatness_ratio(fake): return _flatness_ratio(_clip_stats(fake)["spectral_flatness"], real_clips["spectral_flatness"])
buzz = 0.1 * torch.sign(torch.sin(2 * torch.pi * 110 * torch.arange(segment) / 22050)).expand(n, -1)
sweep = {f"{snr} dB SNR": with_noise(real, snr) for snr in (30, 20, 10, 5, 0)} | {"noise": collapsed_fakes["noise"],
         "low-passed 6 kHz": healthy_fakes["low-passed 6 kHz"], "110 Hz buzz": buzz}
print("generated / real flatness:", ", ".join(f"{k} {flatness_ratio(v):.2f}" for k, v in sweep.items()))
for name, fake in healthy_fakes.items():
    found = _generator_problems(_clip_stats(fake), real_clips, cfg)
    print(f"healthy   {name:17} {found or 'no problem'}")
    test_eq(name, name)
    test_eq(found, {})
for name, fake in collapsed_fakes.items():
    found = _generator_problems(_clip_stats(fake), real_clips, cfg)
    print(f"collapsed {name:17} {found}")
    test_eq(name, name)
    assert bool(found)
test_eq(set(_generator_problems(_clip_stats(dc_noise), _clip_stats(speech_ru), cfg)),
        {"g_dc_offset", "g_flat_spectrum"})
# unpaired batches: batch means
test_eq(_generator_problems(_clip_stats(speech_en), _clip_stats(speech_ru), cfg), {})
# without a real batch: absolute thresholds
assert "g_dc_offset" in _generator_problems(_clip_stats(dc_noise), None, cfg)

# %%
test_eq(_gradient_problem(5e4, deque(), cfg), "exploding")
test_eq(_gradient_problem(0.0, deque(), cfg), "vanishing")
test_eq(_gradient_problem(60.0, deque([1.0] * 30), cfg), "exploding")  # 60 x the running median
test_eq(_gradient_problem(60.0, deque([1.0] * 5), cfg), None)  # ... but not before there is a history
test_eq(_gradient_problem(3.0, deque([1.0] * 30), cfg), None)

# %% [markdown]
# A `HealthMonitor` holds the streaks. `update` takes one check's numbers and returns the warnings now active, one line each; `status` is the short form for the `health` column of `metrics.csv`, and `collapsed` says whether the run has stopped learning (discriminator asleep, generator collapsed, or non-finite values), the cases in which `--stop-on-collapse` stops training. Exploding and vanishing gradients and negative losses are warnings only: the first may pass, the others mean a bug to fix rather than a run to stop. `audio` keeps the `audio_stats` of the latest generated and real batches, for a trainer that wants to log them.
#
# **Non-finite steps** are the monitor's business too, and only the monitor's: the trainer skips a step whose loss or gradient is NaN or infinite (it must, before the weights are touched) and tells the monitor with `record_step`, once per optimizer step; the monitor counts them. After `nonfinite_window` in a row it reports `nonfinite` at the next check, without a warm-up: with fp16, gradient scaling makes an occasional step's gradients infinite and skips that step, which is harmless, but a diverged model stays NaN. After `max_nonfinite_steps` in a row `diverged` is true, and the trainer stops. Interval means that are not finite carry no information for the other checks, which skip them (a trainer averaging only its finite steps has none when a whole interval was skipped).

# %%
#| export
_COLLAPSE_CODES = frozenset({"nonfinite", "d_asleep", "g_dc_offset", "g_silent", "g_flat_spectrum"})
_AUDIO_CODES = ("g_dc_offset", "g_silent", "g_flat_spectrum")

class HealthMonitor:
    "Watches a GAN trainer's logged means and audio for a sleeping D, collapsed G, bad gradients, bad losses."
    def __init__(self, num_subdiscriminators: int, cfg: HealthConfig | None = None,
                 sampling_rate: int = MelConfig.sampling_rate):
        if num_subdiscriminators < 1:
            raise ValueError(f"num_subdiscriminators must be at least 1, got {num_subdiscriminators}")
        self.cfg, self.sampling_rate = cfg or HealthConfig(), sampling_rate
        self.chance = chance_discriminator_loss(num_subdiscriminators)
        self.streaks: dict[str, int] = {}          # code -> consecutive checks its condition has held
        self.gaps: deque[float] = deque(maxlen=max(1, self.cfg.window))
        self.grad_history = {name: deque(maxlen=self.cfg.grad_history) for name in ("g", "d")}
        self.audio: dict[str, dict[str, float]] = {}   # "fake"/"real" -> audio_stats of the latest batches
        self.audio_problems: dict[str, str] = {}       # code -> detail, from the latest batch with audio
        self.warnings: dict[str, str] = {}             # code -> message, active after the latest check
        self.checks = 0
        self.nonfinite_steps = 0                       # consecutive steps with a non-finite loss or gradient

    def record_step(self, finite: bool):
        "Count one optimizer step: whether its loss and gradient were finite (a non-finite step was skipped)."
        self.nonfinite_steps = 0 if finite else self.nonfinite_steps + 1

    @property
    def diverged(self) -> bool:
        "Whether the latest `max_nonfinite_steps` steps were all non-finite: the run has diverged."
        return self.nonfinite_steps >= self.cfg.max_nonfinite_steps

    def _hold(self, code: str, holds: bool) -> int:
        "Extend or reset the streak of `code`; return its length."
        self.streaks[code] = self.streaks.get(code, 0) + 1 if holds else 0
        return self.streaks[code]

    def _sustained(self, found: dict, warm: bool, code: str, holds: bool, window: int, message):
        "Report `message()` under `code` once the condition has held `window` checks, past the warm-up."
        if self._hold(code, holds) >= window and warm:
            found[code] = message()


# %% [markdown]
# `update` is one check: it takes one logging interval's means, and a generated and a real batch when the trainer has them, and returns the warnings active after it. The checks below run in this order; the discriminator's is skipped when the means are not finite.

# %%
#| export
@patch
def update(self: HealthMonitor, step: int, *, loss_d: float, loss_adv: float, real_score: float,
           fake_score: float, grad_norm_g: float, grad_norm_d: float, fake_audio: torch.Tensor | None = None,
           real_audio: torch.Tensor | None = None) -> list[str]:
    "Take one logging interval's means (and a generated and a real batch); return the active warnings."
    loss_d, loss_adv, real_score, fake_score, grad_norm_g, grad_norm_d = map(
        float, (loss_d, loss_adv, real_score, fake_score, grad_norm_g, grad_norm_d))
    found, warm = {}, step >= self.cfg.warmup_steps
    self.checks += 1
    if self._check_impossible(found, loss_d, loss_adv, real_score, fake_score):
        self._check_discriminator(found, warm, loss_d, real_score - fake_score)
    self._check_audio(found, warm, fake_audio, real_audio)
    self._check_gradients(found, warm, grad_norm_g, grad_norm_d)
    self.warnings = found
    return list(found.values())


# %%
show_doc(HealthMonitor.update)

# %%
show_doc(HealthMonitor.record_step)


# %% [markdown]
# Impossible values need no window and no warm-up: a run of non-finite steps, or a least-squares loss below zero.

# %%
#| export
@patch
def _check_impossible(self: HealthMonitor, found, loss_d, loss_adv, real_score, fake_score) -> bool:
    "Non-finite steps and negative losses, without warm-up; whether the interval's means are all finite."
    if self.nonfinite_steps >= self.cfg.nonfinite_window:
        diverged = "; training diverged" if self.diverged else ""
        found["nonfinite"] = (f"non-finite loss or gradient in the last {self.nonfinite_steps} steps"
                              f" (skipped){diverged}")
    bad = _nonfinite(**{"D loss": loss_d, "G adversarial loss": loss_adv,
                        "D(real)": real_score, "D(fake)": fake_score})
    negative = {k: v for k, v in (("D", loss_d), ("G adversarial", loss_adv)) if v < 0}
    if negative:
        values = ", ".join(f"{k} {v:.4g}" for k, v in negative.items())
        found["loss_negative"] = ("impossible negative least-squares loss: " + values
                                  + "; a sum of squares is never negative, so the loss code has a bug")
    return bad is None


# %% [markdown]
# The discriminator is asleep when real and generated scores have not been separated for `window` checks (the test of separation above). The audio streaks move only at checks that bring audio; a collapse is reported once it has held `audio_window` checks.

# %%
#| export
@patch
def _check_discriminator(self: HealthMonitor, found, warm, loss_d, gap):
    self.gaps.append(gap)
    at_chance = abs(loss_d - self.chance) <= self.cfg.chance_tolerance * self.chance
    asleep = _discriminator_not_separating(gap, loss_d, self.chance, self.cfg)
    self._sustained(found, warm, "d_asleep", asleep, self.cfg.window,
                    lambda: f"discriminator asleep: D(real) - D(fake) ="
                            f" {sum(self.gaps) / len(self.gaps):.3f}"
                            f" over the last {len(self.gaps)} checks; D loss {loss_d:.2f}"
                            f" {'~' if at_chance else 'vs.'} chance {self.chance:.2f}")

@patch
def _check_audio(self: HealthMonitor, found, warm, fake_audio, real_audio):
    if fake_audio is not None:  # the streaks move only when a check brings audio
        clips = {"fake": _clip_stats(fake_audio, self.sampling_rate)}
        if real_audio is not None:
            clips["real"] = _clip_stats(real_audio, self.sampling_rate)
        self.audio = {k: _batch_stats(c) for k, c in clips.items()}
        self.audio_problems = _generator_problems(clips["fake"], clips.get("real"), self.cfg)
        for code in _AUDIO_CODES:
            self._hold(code, code in self.audio_problems)
    for code, detail in self.audio_problems.items():
        if self.streaks[code] >= self.cfg.audio_window and warm:
            found[code] = f"generator collapse: {detail} for {self.streaks[code]} checks"


# %% [markdown]
# Each side's gradient norm is checked against the fixed bounds and its own running median; a non-finite norm carries no information (the step was skipped, and `record_step` counted it).

# %%
#| export
@patch
def _check_gradients(self: HealthMonitor, found, warm, grad_norm_g, grad_norm_d):
    for name, label, norm in (("g", "generator", grad_norm_g), ("d", "discriminator", grad_norm_d)):
        # no information; non-finite steps are counted by record_step
        if not math.isfinite(norm):
            continue
        history = self.grad_history[name]
        problem = _gradient_problem(norm, history, self.cfg)
        self._sustained(found, warm, f"{name}_grad_exploding", problem == "exploding",
                        self.cfg.grad_window,
                        lambda: f"{label} gradients exploding: norm {norm:.3g}"
                                f" (running median {_median(history):.3g})")
        self._sustained(found, warm, f"{name}_grad_vanishing", problem == "vanishing",
                        self.cfg.window,
                        lambda: f"{label} gradients vanishing: norm {norm:.2g}"
                                f" for {self.streaks[f'{name}_grad_vanishing']} checks")
        history.append(norm)


# %% [markdown]
# `status` is the short form of the warnings for the `health` column of `metrics.csv`; `collapsed` says whether one of them is a reason to stop the run (`--stop-on-collapse`).

# %%
#| export
@patch(as_prop=True)
def status(self: HealthMonitor) -> str:
    "'ok', or the active warnings' short codes joined by ';' (for the `health` column of metrics.csv)."
    return ";".join(self.warnings) or "ok"

@patch(as_prop=True)
def collapsed(self: HealthMonitor) -> bool:
    "Whether a reason to stop the run is active: D asleep, G collapsed, or non-finite values."
    return any(code in _COLLAPSE_CODES for code in self.warnings)


# %%
show_doc(HealthMonitor)

# %%
show_doc(HealthMonitor.status)

# %%
show_doc(HealthMonitor.collapsed)


# %% [markdown]
# ## Simulated runs
#
# Two runs of 10,000 steps, logged every 20 steps, with scores drawn around a trajectory: in both the discriminator learns to separate real from generated audio in the first few hundred steps; in the second it falls asleep at step 4,000 and its loss climbs back to the failed run's 4.4. The D loss follows the formula above with score variances of 0.05 (so an unseparated discriminator sits at 4.4, not 4.0). The alarm comes one window (25 checks, 500 steps) after the separation has gone; the healthy run, and the first 2,000 steps of both, stay silent.

# %%
def simulated_run(asleep_from: int | None, steps=10_000, every=20, seed=0):
    "Per check: (step, gap, D loss) of a run whose discriminator separates, then sleeps from `asleep_from` on."
    gen, rows = torch.Generator().manual_seed(seed), []
    for step in range(0, steps, every):
        gap = 0.3 * (1 - math.exp(-step / 300))
        if asleep_from is not None and step >= asleep_from: gap *= math.exp(-(step - asleep_from) / 150)
        gap += 0.02 * torch.randn(1, generator=gen).item()
        loss_d = 8 * (0.5 - gap + gap ** 2 / 2 + 0.05) + 0.1 * torch.randn(1, generator=gen).item()
        rows.append((step, gap, loss_d))
    return rows

def first_alarms(rows, code="d_asleep"):
    "Feed a simulated run to a fresh monitor; the steps at which `code` is active."
    mon = HealthMonitor(8)
    active = []
    for step, gap, loss_d in rows:
        mon.update(step, loss_d=loss_d, loss_adv=3.0, real_score=0.5 + gap / 2, fake_score=0.5 - gap / 2,
                   grad_norm_g=40.0, grad_norm_d=8.0)
        if code in mon.warnings: active.append(step)
    return active

runs = {"healthy": simulated_run(None), "asleep from step 4,000": simulated_run(4000)}
alarms = {name: first_alarms(rows) for name, rows in runs.items()}
fig, axes = plt.subplots(1, 2, figsize=(8, 3))
for (name, rows), color in zip(runs.items(), ("tab:green", "tab:red")):
    steps, gaps, losses = zip(*rows)
    axes[0].plot(steps, gaps, lw=0.7, color=color, label=name)
    axes[1].plot(steps, losses, lw=0.7, color=color)
    if alarms[name]:
        for ax in axes: ax.axvline(alarms[name][0], color=color, ls="--", lw=1, label="alarm")
axes[0].axhline(HealthConfig().score_gap_min, color="gray", lw=0.8)
axes[1].axhspan(4.0 * (1 - HealthConfig().chance_tolerance), 4.0 * (1 + HealthConfig().chance_tolerance), color="gray", alpha=0.2)
axes[1].axhline(4.0, color="gray", lw=0.8)
axes[0].set(title="D(real) - D(fake)", xlabel="step"); axes[1].set(title="D loss (chance 4.0, band: tolerance)", xlabel="step")
axes[0].axvline(HealthConfig().warmup_steps, color="black", ls=":", lw=0.8, label="end of warm-up")
axes[0].legend(fontsize=8); plt.tight_layout(); plt.show()
print({name: f"first alarm at step {a[0]}" if a else "no alarm" for name, a in alarms.items()})

# %%
test_eq(alarms["healthy"], [])
assert 4000 < alarms["asleep from step 4,000"][0] <= 5000, alarms["asleep from step 4,000"][0]
test_eq(alarms["asleep from step 4,000"][-1], 9980)

# %% [markdown]
# ### Tests on constructed runs
#
# A healthy run: separated but noisy scores, a D loss below chance, generated audio that is the real batch with noise 20 dB down, gradient norms that wander by a factor of two or three. No warning at any check, from step 0:

# %%
import random

# %%
rng = random.Random(1)
def jitter(value, spread): return value * math.exp(rng.gauss(0, spread))
num_batches = min(6, len(real) // 8)
pairs = [(b, with_noise(b, 20)) for b in real[torch.randperm(len(real))[: 8 * num_batches]].view(num_batches, 8, segment)]
def healthy(**over):
    "One check of a healthy run (a real batch of 8 and its noisy 'generated' version), with any value overridden."
    real_batch, fake_batch = rng.choice(pairs)
    values = dict(loss_d=jitter(2.6, 0.1), loss_adv=jitter(3.0, 0.1), real_score=jitter(0.65, 0.1), fake_score=jitter(0.35, 0.1),
                  grad_norm_g=jitter(40.0, 0.5), grad_norm_d=jitter(8.0, 0.5), fake_audio=fake_batch[:, None], real_audio=real_batch[:, None])
    return values | over

mon = HealthMonitor(8)
for step in range(0, 4000, 20):
    test_eq(step, step)
    test_eq(mon.update(step, **healthy()), [])
test_eq(mon.status, "ok")
assert not mon.collapsed
test_eq(mon.checks, 200)
def rounded(stats): return {k: round(v, 4) for k, v in stats.items()}
for kind, stats in mon.audio.items(): print(f"latest {kind} batch:", rounded(stats))

# %% [markdown]
# The failed run: a generator emitting DC plus noise and a discriminator at 4.44 with unseparated scores, from the first step. Silent through the warm-up, then both alarms at the first check past it (their windows have long been full), and `collapsed`:

# %%
failed_run = dict(loss_d=4.44, loss_adv=2.1, real_score=0.67, fake_score=0.66, grad_norm_g=25.0, grad_norm_d=3.0,
             fake_audio=0.3 + 0.01 * torch.randn(8, 1, segment), real_audio=speech_ru[:8, None])
mon = HealthMonitor(8)
for step in range(0, 2000, 20):
    test_eq(step, step)
    test_eq(mon.update(step, **failed_run), [])
    test_eq(mon.status, "ok")
for line in mon.update(2000, **failed_run): print(line)
assert mon.status.startswith("d_asleep;g_dc_offset")
assert mon.collapsed
test_eq(mon.warnings["d_asleep"], "discriminator asleep: D(real) - D(fake) = 0.010 over the last 25 checks; "
                                  "D loss 4.44 ~ chance 4.00")

# %% [markdown]
# Windows: past the warm-up, an asleep discriminator is reported at its `window`-th check and not before; one healthy check ends the alarm. Audio problems need `audio_window` checks that bring audio; checks without audio leave the streak and the alarm as they were.

# %%
mon = HealthMonitor(8, HealthConfig(warmup_steps=0, window=5))
asleep = healthy(real_score=0.5, fake_score=0.49, loss_d=4.1)
test_eq([bool(mon.update(i, **asleep)) for i in range(5)], [False] * 4 + [True])
test_eq(mon.status, "d_asleep")
test_eq(mon.update(5, **healthy()), [])
test_eq(mon.status, "ok")

no_audio = {k: v for k, v in healthy().items() if not k.endswith("_audio")}
mon = HealthMonitor(8, HealthConfig(warmup_steps=0))
collapsed_check = healthy(fake_audio=0.3 + 0.01 * torch.randn(8, segment))
test_eq(mon.update(0, **collapsed_check), [])
test_eq(mon.update(1, **no_audio), [])
test_eq(mon.update(2, **collapsed_check), [])
assert bool(mon.update(3, **collapsed_check))
assert mon.status.startswith("g_dc_offset")
assert mon.collapsed
assert bool(mon.update(4, **no_audio))
assert mon.collapsed  # still the latest audio seen
test_eq(mon.update(5, **healthy()), [])
mon.update(6, **healthy(real_audio=None, fake_audio=torch.zeros(8, segment)))   # no real batch: absolute floor on the std
test_eq(mon.streaks.get("g_silent"), 1)

# %% [markdown]
# Impossible values. A negative loss is reported at once, even at step 0, but does not stop the run (it is a bug to fix, and the run may still be learning). A single non-finite step, such as an fp16 overflow, is not reported; two in a row are, and stop a run with `--stop-on-collapse`; ten in a row are a divergence:

# %%
mon = HealthMonitor(8)
test_eq(mon.update(0, **healthy(loss_adv=-457.9)), ["impossible negative least-squares loss: G adversarial -457.9; "
                                                      "a sum of squares is never negative, so the loss code has a bug"])
test_eq(mon.status, "loss_negative")
assert not mon.collapsed
mon.record_step(finite=False)  # one overflow: harmless
test_eq(mon.update(20, **healthy()), [])
for finite in (True, False, False):
    mon.record_step(finite)
print(mon.update(40, **healthy(loss_d=math.nan, grad_norm_d=math.nan)))  # an interval without a finite step
test_eq(mon.status, "nonfinite")
assert mon.collapsed
assert not mon.diverged
for _ in range(8):
    mon.record_step(False)
assert mon.diverged
assert mon.update(60, **healthy())[0].endswith("training diverged")
mon.record_step(True)
test_eq(mon.update(80, **healthy()), [])
assert not mon.diverged

# %% [markdown]
# Gradients: exploding once `grad_window` checks are above `grad_norm_max` or 50 times the running median, vanishing after `window` checks near zero; warnings, not reasons to stop.

# %%
mon = HealthMonitor(8, HealthConfig(warmup_steps=0))
for i in range(cfg.window): mon.update(i, **healthy())
# 100x the median
exploding = [bool(mon.update(cfg.window + i, **healthy(grad_norm_d=800.0))) for i in range(3)]
test_eq(exploding, [False, False, True])
print(mon.update(cfg.window + 3, **healthy(grad_norm_d=800.0)))
test_eq(mon.status, "d_grad_exploding")
assert not mon.collapsed
for i in range(cfg.window): lines = mon.update(2 * cfg.window + i, **healthy(grad_norm_g=0.0))
test_eq(mon.status, "g_grad_vanishing")
assert not mon.collapsed
print(lines)

# %% [markdown]
# ### A real start of training
#
# The interval means of the first 300 steps of a real run: the `tiny` preset (5 sub-discriminators) trained on the synthetic RUSLAN-shaped test corpus on a CPU with this project's generator, discriminators and losses (AdamW, gradients clipped at 1, `lambda_fm` 2, `lambda_mel` 45), logged every 5 steps as that preset does. Two things in it shaped the defaults. The untrained generator's DC offset (0.10) fell below the alarm threshold by step 40: the discriminators see it at once even though the mel loss does not. And between steps 60 and 110 the discriminator lost its separation altogether (the generator had just caught up with it) before it regained it: a healthy run can look asleep for ten checks or so, so a sleep must last `window` = 25 checks before it is reported. The generator's gradient norm (before clipping) wandered between 140 and 1,200, which is why the absolute limit is 10,000 and the relative one 50x the running median.

# %%
tiny_run = {  # per check (every 5 steps): D loss, D(real) - D(fake), gradient norms of G and D, DC offset of the generated batch
    "loss_d": "3.804 2.644 2.284 1.575 0.698 0.357 0.23 0.316 0.348 0.617 1.175 3.034 3.057 2.948 2.733 2.604 2.604 2.823 2.514 2.259 "
              "2.441 2.278 2.207 2.156 2.099 1.951 2.062 1.936 1.78 2.071 1.764 2.146 2.221 1.84 1.67 1.681 1.678 2.188 1.557 1.471 "
              "1.733 1.785 1.432 1.646 1.546 1.691 1.57 1.485 1.401 1.656 1.666 1.529 1.448 1.473 1.586 1.289 1.417 1.555 1.293 1.467",
    "gap": "0.0 0.014 0.069 0.272 0.66 0.88 0.956 0.871 0.77 0.623 0.42 -0.015 -0.063 -0.054 -0.02 0.019 0.02 -0.034 0.023 0.095 "
           "0.051 0.096 0.12 0.117 0.169 0.242 0.188 0.274 0.299 0.197 0.248 0.203 0.207 0.237 0.298 0.291 0.301 0.357 0.385 0.425 "
           "0.34 0.345 0.427 0.311 0.436 0.342 0.351 0.424 0.413 0.425 0.401 0.43 0.415 0.455 0.361 0.488 0.42 0.361 0.491 0.434",
    "grad_norm_g": "170 159 140 153 172 156 229 295 374 489 570 618 259 268 251 317 334 266 250 254 326 250 226 441 574 423 482 305 517 "
                   "362 315 539 543 366 438 544 513 609 468 328 627 695 455 445 1067 397 436 344 474 330 763 555 480 454 921 443 1199 485 773 463",
    "grad_norm_d": "4.5 3.5 1.9 4.0 7.1 9.4 12.8 27.9 29.3 39.0 49.0 62.1 36.7 25.2 18.4 18.0 15.5 9.8 7.4 8.6 12.9 9.1 10.8 10.7 18.7 37.5 "
                   "41.7 27.7 30.8 18.3 21.2 36.0 27.6 24.5 19.7 32.7 30.1 61.9 41.6 33.0 33.6 38.0 25.1 22.2 29.6 29.7 19.4 32.9 27.7 "
                   "31.1 46.6 22.8 37.6 26.9 19.2 17.7 41.2 16.6 21.3 25.2",
    "dc": "0.0972 0.1027 0.0999 0.0928 0.0837 0.0746 0.0629 0.0483 0.0378 0.022 0.0082 0.0074 0.0035 0.0044 0.0011 0.005 0.006 0.0056 "
          "0.0037 0.003 0.0067 0.0088 0.0119 0.011 0.0095 0.0026 0.0107 0.0131 0.0022 0.0028 0.0044 0.0149 0.0187 0.0191 0.0068 0.0083 "
          "0.0115 0.01 0.0146 0.0136 0.0055 0.0088 0.0031 0.0035 0.0029 0.0063 0.0027 0.0052 0.0015 0.0027 0.0058 0.0076 0.0048 0.0043 "
          "0.0058 0.0035 0.0026 0.0047 0.0058 0.003"}
tiny_run = {k: [float(v) for v in text.split()] for k, text in tiny_run.items()}

def replay(cfg):
    "The steps at which each alarm is active when the tiny run's scalars are fed to a monitor with `cfg`."
    mon, active = HealthMonitor(5, cfg), {}
    for i, (loss_d, gap, gn_g, gn_d) in enumerate(zip(*(tiny_run[k] for k in ("loss_d", "gap", "grad_norm_g", "grad_norm_d")))):
        mon.update(5 * (i + 1), loss_d=loss_d, loss_adv=1.0, real_score=0.5 + gap / 2, fake_score=0.5 - gap / 2,
                   grad_norm_g=gn_g, grad_norm_d=gn_d)
        for code in mon.warnings: active.setdefault(code, []).append(5 * (i + 1))
    return active

no_warmup = HealthConfig(warmup_steps=0)
print("defaults without warm-up:", replay(no_warmup) or "no alarm")
print("a window of 10 checks:   ", replay(HealthConfig(warmup_steps=0, window=10)))
print("DC above the threshold at steps", [5 * (i + 1) for i, dc in enumerate(tiny_run["dc"]) if dc > cfg.dc_offset_max])
test_eq(replay(no_warmup), {})
test_eq(replay(HealthConfig(warmup_steps=0, window=10)), {"d_asleep": [105, 110]})
assert max(i for i, dc in enumerate(tiny_run["dc"]) if dc > cfg.dc_offset_max) < 8

# %% [markdown]
# Why the warm-up: an untrained generator is itself a DC offset with a little noise on it (its final `tanh` of random convolutions has a non-zero mean), so without the warm-up every run would start with a collapse alarm.

# %%
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.mel import mel_spectrogram

# %%
torch.manual_seed(0)
with torch.no_grad(): untrained = Generator.from_preset("tiny")(mel_spectrogram(speech_ru[:4]))
found = _generator_problems(_clip_stats(untrained), _clip_stats(speech_ru[:4]), cfg)
print("untrained generator:", rounded(audio_stats(untrained)), found, sep="\n")
assert bool(found)
mon = HealthMonitor(8)
for step in range(0, 2000, 20):
    test_eq(step, step)
    test_eq(mon.update(step, **healthy(fake_audio=untrained, real_audio=speech_ru[:4])), [])

# %%
test_fail(lambda: HealthMonitor(0), exc=ValueError,
          contains="num_subdiscriminators must be at least 1, got 0")

# %% [markdown]
# ## Limits
#
# The monitor catches the failures described here; it is not a judge of quality. Two blind spots are worth knowing:
#
# - **Speech-shaped noise without an offset.** Noise with the spectral envelope of the real clip has the real clip's flatness at the frame sizes measured here, so the audio checks pass it. An awake discriminator rejects it at once, which is why the discriminator check matters as much as the audio checks; listening to the validation samples settles it.
# - **A constant buzz** is less flat than speech, but so is a young vocoder's dull, band-limited output, so there is no "too tonal" alarm (see the sweep above).
#
# The thresholds are set from constructed signals and the test recordings, with margins of about 2x on both sides; `HealthConfig` changes any of them.

# %%
hiss = speech_shaped_noise(real[:8])
print(_generator_problems(_clip_stats(hiss), _clip_stats(real[:8]), cfg) or "speech-shaped noise: no audio alarm",
      f"(flatness ratio {_flatness_ratio(_clip_stats(hiss)['spectral_flatness'], _clip_stats(real[:8])['spectral_flatness']):.2f})")
