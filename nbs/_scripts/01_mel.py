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
    "Slaney mel filterbank `[num_mels, n_fft // 2 + 1]` (librosa's default), cached per settings, device and dtype."
    import librosa
    basis = librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=num_mels, fmin=fmin, fmax=fmax)
    return torch.from_numpy(basis).to(device=device, dtype=dtype)

@lru_cache(maxsize=32)
def hann_window(win_size: int, device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    "Periodic Hann window, cached per size, device and dtype."
    return torch.hann_window(win_size, device=device, dtype=dtype)


# %%
fb = mel_filterbank(22050, 1024, 80, 0.0, 8000.0)
assert fb.shape == (80, 513) and mel_filterbank(22050, 1024, 80, 0.0, 8000.0) is fb  # cached, not rebuilt
assert mel_filterbank(22050, 1024, 80, 0.0, None)[:, 372:].sum() > 0 and fb[:, 372:].sum() == 0  # 8 kHz = bin 371.5


# %%
#| export
def mel_spectrogram(audio: torch.Tensor, cfg: MelConfig | None = None, *, for_loss: bool = False) -> torch.Tensor:
    "Natural-log mel `[B, num_mels, N // hop]` of float audio `[B, N]` (or `[N]`) in [-1, 1], as the reference HiFi-GAN computes it."
    cfg = cfg or MelConfig()
    squeeze = audio.dim() == 1
    if squeeze: audio = audio[None]
    if audio.dim() == 3 and audio.shape[1] == 1: audio = audio[:, 0]
    if audio.dim() != 2: raise ValueError(f"mel_spectrogram: expected audio [B, N], got shape {tuple(audio.shape)}")
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
# The test data holds two clips with the log-mel that the reference implementation computed for them: a recording of a real (English) voice and a synthetic Russian sentence. Ours must agree within `1e-4`.

# %%
from pathlib import Path

# %%
ref_dir = Path("testdata/reference")
for name in ["mel_real_en", "mel_espeak_ru"]:
    ref = np.load(ref_dir / f"{name}.npz")
    ours = mel_spectrogram(torch.from_numpy(ref["audio"])).numpy()
    assert ours.shape == ref["mel"].shape, (ours.shape, ref["mel"].shape)
    err = np.abs(ours - ref["mel"]).max()
    print(f"{name}: {ref['audio'].shape[0] / 22050:.2f} s, mel {ours.shape}, max |ours - reference| = {err:.1e}")
    assert err < 1e-4

# %% [markdown]
# Frame count, batching and the loss mel:

# %%
x = torch.rand(2, 256 * 50) * 2 - 1
m = mel_spectrogram(x)
assert m.shape == (2, 80, 50)
assert torch.allclose(mel_spectrogram(x[1]), m[1], atol=1e-5)
assert mel_spectrogram(x, for_loss=True).shape == (2, 80, 50)
assert torch.allclose(mel_spectrogram(torch.zeros(1, 2560)), torch.tensor(np.log(1e-5), dtype=torch.float32))  # silence floor
try: mel_spectrogram(torch.zeros(1, 2, 3, 4))
except ValueError as e: print(e)

# %% [markdown]
# What a reader of the rest of these notebooks will see again and again: the real Russian-language clip of the test data as a waveform and a log-mel. Low frequencies are at the bottom; the bright horizontal stripes are the harmonics of the voice.

# %%
import matplotlib.pyplot as plt

# %%
ref = np.load(ref_dir / "mel_espeak_ru.npz")
fig, (a0, a1) = plt.subplots(2, 1, figsize=(7, 3.5), dpi=72)
t = np.arange(len(ref["audio"])) / 22050
env = ref["audio"][: len(t) // 64 * 64].reshape(-1, 64)  # min/max envelope: the same picture as every sample, a fraction of the size
a0.fill_between(t[: env.size : 64], env.min(1), env.max(1), lw=0); a0.set(xlim=(0, t[-1]), ylabel="amplitude", title="waveform")
im = a1.imshow(mel_spectrogram(torch.from_numpy(ref["audio"])).numpy(), origin="lower", aspect="auto", cmap="magma",
               extent=(0, t[-1], 0, 80))
a1.set(xlabel="seconds", ylabel="mel band", title="log-mel (80 bands, 0-8 kHz)")
fig.colorbar(im, ax=a1, pad=0.01); fig.tight_layout(); plt.show()

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
    ref, gen = (mel_spectrogram(torch.from_numpy(np.asarray(x[:n], np.float32)), cfg).numpy() for x in (reference, generated))
    fig = Figure(figsize=(8, 6), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    extent = (0, n / cfg.sampling_rate, 0, ref.shape[0])
    lo, hi = min(ref.min(), gen.min()), max(ref.max(), gen.max())
    for ax, data, name in [(axes[0], ref, "ground truth"), (axes[1], gen, "generated")]:
        im = ax.imshow(data, origin="lower", aspect="auto", cmap="magma", extent=extent, vmin=lo, vmax=hi,
                       interpolation="nearest")
        ax.set(ylabel="mel band", title=name)
    fig.colorbar(im, ax=axes[:2], label="log magnitude")
    im = axes[2].imshow(gen - ref, origin="lower", aspect="auto", cmap="RdBu_r", extent=extent, vmin=-3, vmax=3,
                         interpolation="nearest")
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
