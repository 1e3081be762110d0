# %% [markdown]
# # Mel spectrogram
#
# > Audio to the 80-band natural-log mel spectrogram, bit-compatible with the reference HiFi-GAN.

# %%
#| default_exp mel

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_close, test_fail

# %%
#| export
from __future__ import annotations
from functools import lru_cache
import numpy as np
import torch
import torch.nn.functional as F
from hifigan_ruslan.config import MelConfig


# %% [markdown]
# A vocoder is only as good as its agreement with the acoustic model about what a mel spectrogram *is*. Tacotron 2, FastSpeech 2 and most open Russian TTS recipes emit mels computed the HiFi-GAN way, so this module reproduces that computation exactly:
#
# 1. **Reflect padding** of `(n_fft - hop) / 2 = 384` samples on each side, then a short-time Fourier transform **without centering**. With this padding an input of `N` samples gives exactly `N / 256` frames, so a mel of `T` frames maps back to `256 T` samples: the generator's upsampling factor.
# 2. A **Hann window** of 1,024 samples.
# 3. The **magnitude**, with `1e-9` added inside the square root so that its gradient stays finite at silent bins.
# 4. A **Slaney-style mel filterbank** (librosa's default: Slaney mel scale, area-normalised triangles), 80 bands from 0 to 8,000 Hz for the generator's input.
# 5. The **natural log** of the magnitude, clamped at `1e-5` (so silence sits at `log(1e-5) = -11.51`).
#
# The training loss uses a second mel, identical except that it covers the full band up to 11,025 Hz (`fmax = None`), so that the generator is also judged on the top octave that the input mel does not describe.

# %% [markdown]
# The filterbank and the window are the only state. They are built once per (settings, device, dtype) in a keyed cache rather than per call, and never in a module-level variable that a different configuration could trample.

# %%
#| export
@lru_cache(maxsize=32)
def mel_filterbank(sampling_rate: int, n_fft: int, num_mels: int, fmin: float, fmax: float | None,
                   device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    "Slaney mel filterbank `[num_mels, n_fft // 2 + 1]` (librosa's default), cached per settings and device."
    import librosa
    basis = librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=num_mels, fmin=fmin, fmax=fmax)
    return torch.from_numpy(basis).to(device=device, dtype=dtype)

@lru_cache(maxsize=32)
def hann_window(win_size: int, device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    "Periodic Hann window, cached per size, device and dtype."
    return torch.hann_window(win_size, device=device, dtype=dtype)


# %%
show_doc(mel_filterbank)

# %%
fb = mel_filterbank(22050, 1024, 80, 0.0, 8000.0)
test_eq(fb.shape, (80, 513))
assert mel_filterbank(22050, 1024, 80, 0.0, 8000.0) is fb  # cached, not rebuilt
test_eq(fb[:, 372:].sum().item(), 0)  # 8 kHz = bin 371.5: nothing above it in the input mel
assert mel_filterbank(22050, 1024, 80, 0.0, None)[:, 372:].sum().item() > 0  # the loss mel's full band


# %%
#| export
def mel_spectrogram(audio: torch.Tensor, cfg: MelConfig | None = None, *,
                    for_loss: bool = False) -> torch.Tensor:
    "Natural-log mel `[B, num_mels, N // hop]` of audio `[B, N]` (or `[N]`) in [-1, 1], like the reference."
    cfg = cfg or MelConfig()
    squeeze = audio.dim() == 1
    if squeeze:
        audio = audio[None]
    if audio.dim() == 3 and audio.shape[1] == 1:
        audio = audio[:, 0]
    if audio.dim() != 2:
        raise ValueError(f"mel_spectrogram: expected audio [B, N], got shape {tuple(audio.shape)}")
    audio = audio.float()  # the STFT and the log stay in fp32, also under autocast
    dev = str(audio.device)
    fmax = cfg.fmax_loss if for_loss else cfg.fmax
    basis = mel_filterbank(cfg.sampling_rate, cfg.n_fft, cfg.num_mels, cfg.fmin, fmax, dev, torch.float32)
    window = hann_window(cfg.win_size, dev, torch.float32)
    pad = (cfg.n_fft - cfg.hop_size) // 2
    with torch.autocast(audio.device.type, enabled=False):
        y = F.pad(audio[:, None], (pad, pad), mode="reflect")[:, 0]
        spec = torch.stft(y, cfg.n_fft, hop_length=cfg.hop_size, win_length=cfg.win_size, window=window,
                          center=False, normalized=False, onesided=True, return_complex=True)
        mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
        mel = torch.log(torch.clamp(basis @ mag, min=1e-5))
    return mel[0] if squeeze else mel


# %%
show_doc(mel_spectrogram)


# %% [markdown]
# ## Agreement with the reference
#
# The test data holds two clips with the log-mel that the reference implementation computed for them: a recording
# of a real (English) voice and a synthetic Russian sentence.
#
# How close is "the same"? Not a fixed number of nats everywhere: in a bin near the log floor (a magnitude of
# `1e-4`, `log` about -9.7) float32 rounding of the tiny magnitude, which differs between CPUs and thread counts as
# the FFT sums in a different order, is amplified by the logarithm into differences above `1e-4`, although the
# magnitudes agree to a millionth of the peak. So the agreement is measured where it is meaningful:
#
# - the largest difference of the **linear** mel magnitudes, relative to the reference's peak magnitude: what a
#   listener could hear, immune to the log's amplification of silence;
# - the **RMS** of the log-mel difference: the average log error, which a few floor bins cannot dominate but any
#   systematic error (a shifted frame, a wrong filterbank) raises everywhere.

# %%
#| export
def mel_difference(mel: torch.Tensor | np.ndarray,
                   reference: torch.Tensor | np.ndarray) -> tuple[float, float]:
    "`(max linear-magnitude difference / reference peak, RMS log difference)` of two log-mels of one shape."
    mel, reference = (torch.as_tensor(x, dtype=torch.float64) for x in (mel, reference))
    if mel.shape != reference.shape:
        raise ValueError(f"mel_difference: shapes {tuple(mel.shape)} and {tuple(reference.shape)} differ")
    peak = reference.exp().max()
    linear = float((mel.exp() - reference.exp()).abs().max() / peak)
    return linear, float((mel - reference).pow(2).mean().sqrt())


# %%
show_doc(mel_difference)

# %%
from pathlib import Path

# %%
ref_dir = Path("testdata/reference")
clips = {name: np.load(ref_dir / f"{name}.npz") for name in ["mel_real_en", "mel_espeak_ru"]}
ours = {name: mel_spectrogram(torch.from_numpy(clip["audio"])) for name, clip in clips.items()}
for name, clip in clips.items():
    linear, rms = mel_difference(ours[name], clip["mel"])
    print(f"{name}: {len(clip['audio']) / 22050:.2f} s, mel {tuple(ours[name].shape)}, "
          f"linear {linear:.1e} of the peak, RMS log {rms:.1e}")

# %% [markdown]
# The bounds, with the values measured on an Intel Xeon at 1 and 2 threads (where the largest log difference, in
# floor bins, is `1.3e-4`): linear at most `1.5e-7` of the peak against a bound of `1e-5` (a margin of about 70), RMS
# log `3.6e-6` at most against `1e-4` (a margin of about 28).

# %%
for name, clip in clips.items():
    test_eq(ours[name].shape, clip["mel"].shape)
    linear, rms = mel_difference(ours[name], clip["mel"])
    assert linear < 1e-5, linear  # measured 1.1e-7 (real) and 1.5e-7 (Russian): margin ~70
    assert rms < 1e-4, rms  # measured 2.7e-6 (real) and 3.6e-6 (Russian): margin ~28

# %% [markdown]
# The same bounds must fail on the mistakes a reimplementation makes. Three deliberate bugs, each measured on the
# Russian clip:
#
# - **padding one sample off**: the frames start one sample late (what `pad + 1` samples on the left would give);
# - **the HTK mel scale** (`librosa`'s `htk=True`) instead of Slaney's: bands in the wrong places;
# - **`fmax` 7,600 Hz** instead of 8,000 (a common value in other recipes): every band slightly squeezed.
#
# Each fails both bounds by orders of magnitude. (`center=True` in the STFT, the other classic padding mistake,
# changes the number of frames, which the shape check above already catches.)

# %%
from unittest.mock import patch
import librosa


# %%
def htk_filterbank(sampling_rate, n_fft, num_mels, fmin, fmax, device="cpu", dtype=torch.float32):
    "The bug: an HTK-scale filterbank where the reference uses Slaney's."
    basis = librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=num_mels, fmin=fmin, fmax=fmax, htk=True)
    return torch.from_numpy(basis).to(device=device, dtype=dtype)

def htk_mel_spectrogram(audio):
    "`mel_spectrogram` with the HTK filterbank swapped in."
    with patch.dict(mel_spectrogram.__globals__, mel_filterbank=htk_filterbank):
        return mel_spectrogram(audio)

speech = torch.from_numpy(clips["mel_espeak_ru"]["audio"])
bugs = {"padding one sample off": mel_spectrogram(torch.cat([speech[:1], speech[:-1]])),
        "HTK mel scale": htk_mel_spectrogram(speech),
        "fmax 7,600 Hz": mel_spectrogram(speech, MelConfig(fmax=7600.0))}
for bug, mel in bugs.items():
    linear, rms = mel_difference(mel, clips["mel_espeak_ru"]["mel"])
    print(f"{bug:>22}: linear {linear:.1e} of the peak (bound 1e-5), RMS log {rms:.1e} (bound 1e-4)")
    assert linear > 100 * 1e-5, linear  # measured 2.1e-3 (padding) .. 0.83 (HTK): 211 to 83,000 times the bound
    assert rms > 10 * 1e-4, rms  # measured 5.7e-3 (padding) .. 0.84 (HTK): 57 to 8,400 times the bound

# %% [markdown]
# Frame count, batching and the loss mel:

# %%
x = torch.rand(2, 256 * 50) * 2 - 1
m = mel_spectrogram(x)
test_eq(m.shape, (2, 80, 50))
test_close(mel_spectrogram(x[1]), m[1], eps=1e-5)
test_eq(mel_spectrogram(x, for_loss=True).shape, (2, 80, 50))
silence_floor = torch.full((1, 80, 10), np.log(1e-5))
test_close(mel_spectrogram(torch.zeros(1, 2560)), silence_floor, eps=1e-6)
test_fail(lambda: mel_spectrogram(torch.zeros(1, 2, 3, 4)), contains="expected audio [B, N]")

# %% [markdown]
# What a reader of the rest of these notebooks will see again and again: the real Russian-language clip of the test data as a waveform and a log-mel. Low frequencies are at the bottom; the bright horizontal stripes are the harmonics of the voice.

# %%
import matplotlib.pyplot as plt

# %%
ref = clips["mel_espeak_ru"]
fig, (a0, a1) = plt.subplots(2, 1, figsize=(7, 3.5), dpi=72)
t = np.arange(len(ref["audio"])) / 22050
# a min/max envelope: the same picture as every sample, a fraction of the size
env = ref["audio"][: len(t) // 64 * 64].reshape(-1, 64)
a0.fill_between(t[: env.size : 64], env.min(1), env.max(1), lw=0)
a0.set(xlim=(0, t[-1]), ylabel="amplitude", title="waveform")
im = a1.imshow(ours["mel_espeak_ru"].numpy(), origin="lower", aspect="auto", cmap="magma",
               extent=(0, t[-1], 0, 80))
a1.set(xlabel="seconds", ylabel="mel band", title="log-mel (80 bands, 0-8 kHz)")
fig.colorbar(im, ax=a1, pad=0.01)
fig.tight_layout()
plt.show()


# %% [markdown]
# ## Comparing two mels
#
# Training samples, the demo and the evaluation all show a generated clip against its reference in one picture: the two log-mels on the same colour scale, then their difference (blue where the generated mel is quieter, red where it is louder). `mel_figure` draws it without pyplot, so it works in worker processes and headless runs.

# %%
#| export
def mel_figure(reference: np.ndarray, generated: np.ndarray, title: str, cfg: MelConfig | None = None):
    "A matplotlib figure: reference log-mel, generated log-mel and their difference."
    from matplotlib.figure import Figure
    cfg = cfg or MelConfig()
    n = min(len(reference), len(generated))
    ref, gen = (mel_spectrogram(torch.from_numpy(np.asarray(x[:n], np.float32)), cfg).numpy()
                for x in (reference, generated))
    fig = Figure(figsize=(8, 6), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    extent = (0, n / cfg.sampling_rate, 0, len(ref))
    style = dict(origin="lower", aspect="auto", interpolation="nearest", extent=extent)
    lo, hi = min(ref.min(), gen.min()), max(ref.max(), gen.max())
    for ax, data, name in [(axes[0], ref, "ground truth"), (axes[1], gen, "generated")]:
        im = ax.imshow(data, cmap="magma", vmin=lo, vmax=hi, **style)
        ax.set(ylabel="mel band", title=name)
    fig.colorbar(im, ax=axes[:2], label="log magnitude")
    im = axes[2].imshow(gen - ref, cmap="RdBu_r", vmin=-3, vmax=3, **style)
    axes[2].set(xlabel="seconds", ylabel="mel band", title="generated - ground truth")
    fig.colorbar(im, ax=axes[2], label="log ratio")
    fig.suptitle(title)
    return fig


# %%
show_doc(mel_figure)

# %%
rng = np.random.default_rng(0)
noisy = (ref["audio"] + 0.03 * rng.standard_normal(len(ref["audio"]))).astype(np.float32)
fig = mel_figure(ref["audio"], noisy, "the Russian clip with noise added")
test_eq(len(fig.axes), 5)  # three mels and two colour bars; the evaluation notebook shows one
