# %% [markdown]
# # Inference
#
# > `Vocoder`: mel to audio and audio to mel to audio from any checkpoint, in seamless chunks of bounded memory, with a fast CPU path (OpenVINO, fp32 or bf16); reading mel and audio files.

# %%
#| default_exp inference

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_close, test_eq, test_fail

# %%
#| export
from __future__ import annotations
import itertools, math, os, warnings
from collections.abc import Iterator
from fastcore.basics import patch
import numpy as np
import torch
from hifigan_ruslan.config import BACKENDS, Config, GeneratorConfig, MelConfig, check_hop
from hifigan_ruslan.devices import resolve_device
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.clips import wav_truncation
from hifigan_ruslan.locations import check_input_file
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.checkpoints import find_generator_file, generator_from_checkpoint
from hifigan_ruslan.mel import mel_spectrogram
from hifigan_ruslan.pretrained import pretrained_path
from hifigan_ruslan.cpu_runtime import OpenVINOGenerator, check_precision, runnable_precision


# %% [markdown]
# ## Chunks without seams
#
# A 10-minute recording is 51,680 mel frames; the V1 generator's last stage alone holds 32 channels at 256 samples per frame, several copies at once, which is gigabytes. So long inputs are synthesised in chunks. Naive chunking leaves clicks at the joins, because each chunk's convolutions see zero padding at the cut instead of the neighbouring frames.
#
# The generator is a stack of convolutions, so every output sample depends only on a **finite window of input frames**: its receptive field. If each chunk is extended by at least that many frames of real context on both sides, synthesised, and only its central part is kept, every kept sample was computed from exactly the inputs the one-shot pass would have used, and the join is exact up to float rounding. No cross-fading, no guessing.
#
# The receptive field follows from the config. Working from the input side, each layer adds context measured in its own sample rate, which we convert to mel frames by dividing by the number of samples per frame at that stage:
#
# - `conv_pre` (kernel 7): 3 frames;
# - each transposed convolution (kernel `k`, stride `u`): at most `ceil(k / u)` input samples;
# - each multi-receptive-field block: its residual blocks run in parallel, so the widest one counts; within a block the convolutions run in sequence, so their half-widths `(k - 1) d / 2` add up;
# - `conv_post` (kernel 7): 3 samples at the output rate.

# %%
#| export
def receptive_field_frames(cfg: GeneratorConfig) -> int:
    "Mel frames of context on each side that fully determine an output sample of a generator with `cfg`."
    context = 3.0  # conv_pre, kernel 7, at the frame rate
    rate = 1       # samples per mel frame at the current stage
    for u, k in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes):
        context += math.ceil(k / u) / rate
        rate *= u
        convs_per_dilation = 2 if cfg.resblock == "1" else 1
        widest = max(sum((ks - 1) * d // 2 + (ks - 1) // 2 * (convs_per_dilation - 1) for d in dils)
                     for ks, dils in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes))
        context += widest / rate
    context += 3 / rate  # conv_post
    return math.ceil(context)


# %%
show_doc(receptive_field_frames)

# %%
from pathlib import Path
from hifigan_ruslan.config import GENERATOR_PRESETS

# %%
print({name: receptive_field_frames(c) for name, c in GENERATOR_PRESETS.items()})


# %% [markdown]
# A bound is only useful if it is not too small. Check it empirically: perturb one input frame of a random generator and see how far from it the output changes. The measured reach must never exceed the computed one (and should not be far below it, or chunks would carry useless context).

# %%
def measured_reach(g: Generator, frames: int = 40) -> int:
    "Farthest mel frame (from a perturbed frame) whose output samples change."
    mel = torch.randn(1, 80, frames)
    bumped = mel.clone()
    bumped[..., frames // 2] += 3
    with torch.no_grad():
        diff = (g(bumped) - g(mel)).abs()[0, 0].reshape(frames, -1).amax(1)
    changed = torch.nonzero(diff > 0).flatten()
    return int(max(frames // 2 - changed.min(), changed.max() - frames // 2))

for name in ["v3", "tiny"]:
    g = Generator.from_preset(name).eval()
    reach, bound = measured_reach(g), receptive_field_frames(g.cfg)
    print(f"{name}: measured reach {reach} frames, computed receptive field {bound}")
    assert reach <= bound <= reach + 3, reach


# %% [markdown]
# The same idea for the mel itself: a mel frame depends only on its own 1,024-sample window, so a long recording can be turned into a mel piece by piece, each piece with a few frames of margin, and the result equals the one-shot mel (the reflect padding at the true ends of the signal is reproduced by letting the first and last pieces touch those ends).
#
# `mel_stream` does this on a recording that arrives in blocks (read from a file, resampled on the way), so that
# neither the recording nor its mel is ever held whole: a piece of `chunk_frames` frames is computed as soon as the
# audio beyond its margin has arrived, and the last pieces once the end is known. `chunked_mel` is the same for a
# signal in memory.

# %%
#| export
def mel_stream(audio_blocks, cfg: MelConfig | None = None,
               chunk_frames: int = 2048) -> Iterator[torch.Tensor]:
    "`mel_spectrogram` of a 1-D signal that arrives as `audio_blocks`, as pieces `[num_mels, frames]`."
    cfg = cfg or MelConfig()
    hop = cfg.hop_size
    margin = math.ceil(cfg.n_fft / hop)  # frames of signal either side that a frame's window can reach
    buf, buf_start, start = torch.zeros(0), 0, 0  # buf holds samples from buf_start on; start: the next frame

    def piece(stop: int, at_end: bool) -> torch.Tensor:
        lo, hi = max(0, start - margin), stop + margin
        # at the end the real edge, so that the reflect padding is the one-shot one
        audio = buf[lo * hop - buf_start:] if at_end else buf[lo * hop - buf_start:hi * hop - buf_start]
        return mel_spectrogram(audio, cfg)[:, start - lo:stop - lo]

    for block in audio_blocks:
        buf = torch.cat([buf, torch.as_tensor(block, dtype=torch.float32)])
        while start + chunk_frames + margin < (buf_start + len(buf)) // hop:  # not at the end, whatever comes
            yield piece(start + chunk_frames, at_end=False)
            start += chunk_frames
            drop = max(0, start - margin) * hop - buf_start
            buf, buf_start = buf[drop:], buf_start + drop
    total = (buf_start + len(buf)) // hop
    if total == 0:
        yield mel_spectrogram(buf, cfg)
    while start < total:
        stop = min(start + chunk_frames, total)
        yield piece(stop, at_end=stop + margin >= total)
        start = stop

def chunked_mel(audio: torch.Tensor, cfg: MelConfig | None = None, chunk_frames: int = 2048) -> torch.Tensor:
    "`mel_spectrogram(audio)` of a 1-D signal, computed in pieces of `chunk_frames` frames: bounded memory."
    return torch.cat(list(mel_stream([audio], cfg, chunk_frames)), -1)


# %%
show_doc(mel_stream)

# %%
show_doc(chunked_mel)

# %% [markdown]
# Compared with `mel_difference`, as the mel notebook compares with the reference: the pieces see the same samples
# as the one-shot transform, so only float rounding differs.

# %%
from hifigan_ruslan.mel import mel_difference

# %%
x = torch.from_numpy(np.load("testdata/reference/mel_espeak_ru.npz")["audio"])
for n in (len(x), len(x) - 100, 256 * 37 + 5):
    whole, parts = mel_spectrogram(x[:n]), chunked_mel(x[:n], chunk_frames=16)
    test_eq(parts.shape, whole.shape)
    linear, rms = mel_difference(parts, whole)
    assert linear < 1e-5, linear  # measured 0 (the same frames, the same arithmetic): the mel notebook's bound
    assert rms < 1e-4, rms
    for block in (1000, 4096, 333):  # arriving in blocks of any size: the very same pieces
        streamed = torch.cat(list(mel_stream(x[:n].split(block), chunk_frames=16)), -1)
        assert torch.equal(streamed, parts)


# %% [markdown]
# ## The fast CPU path
#
# For inference the generator needs no gradients and no weight normalisation: `remove_weight_norm()` folds each `g v / ||v||` into one plain weight, and `torch.inference_mode()` drops autograd bookkeeping. On a CPU these two alone gain little: the time goes into the convolutions and into memory traffic between many small operations. The gain comes from an inference engine that sees the whole graph: **OpenVINO** ([CPU runtime](10_cpu_runtime.ipynb)) fuses the element-wise operations into the convolutions and picks kernels for the CPU it runs on. In fp32 it gives PyTorch's output to float rounding; in bf16, on CPUs with native bf16 (AMX or AVX512-BF16), V1 runs several times faster still, at an inaudible cost measured below on real speech. `torch.compile` matched the engines for V3 but not for V2, after compiling for 17 to 88 seconds on a 2-core CPU, which does not pay off for a command that vocodes a few files, and it needs a working C compiler.
#
# So a `Vocoder` on CPU builds its generator's graph in OpenVINO and compiles it once, when it is built (a fraction of
# a second for V1, see the start-up measurement below). No per-start comparison with PyTorch is made: the fp32 path
# is held to PyTorch's output by the tests of this notebook, on the official checkpoints and the pretrained
# generator. If OpenVINO is missing or fails to compile the model under `backend="auto"`, the vocoder warns once,
# naming the reason, and uses eager PyTorch, so the output never changes silently; an explicit `backend="openvino"`
# lets the failure propagate. On GPU it uses PyTorch (cuDNN is already fast there). `backend="torch"` forces PyTorch.
#
# A run of `benchmarks/bench_inference.py` (2 threads of an Intel Xeon with AMX and AVX512-BF16, shared with other
# work; 10 s of audio; speed-ups over the eager generator with weight norm removed, the median over 5 rounds of the
# ratio within a round; start-up = building the vocoder and vocoding 1 s in a fresh process, imports excluded):
#
# | preset | eager | PyTorch backend | OpenVINO fp32 | OpenVINO bf16 | ONNX Runtime (not used) |
# |---|---|---|---|---|---|
# | V1 | 2.8x real time | 1.00x | 1.57x | 3.63x | 1.14x |
# | V2 | 21.1x real time | 1.25x | 1.68x | 2.01x | 1.11x |
# | V3 | 16.6x real time | 1.11x | 2.02x | 3.91x | 1.51x |
# | V1 start-up | 0.6 s | 0.8 s | 1.3 s | 2.5 s | 2.8 s |
# | V1 peak extra memory | 481 MB | 443 MB | 292 MB | 725 MB | 188 MB |
#
# fp32 outputs differ from the baseline by at most 1.5e-7 (random weights). The ratios move by 10 % or more between
# runs on this shared machine: V1 in bf16 measured 3.3x to 3.8x over four runs of the two benchmarks. bf16 holds
# twice fp32's memory in OpenVINO's buffers for a window of 1,054 frames, and each new input length first costs
# seconds of kernel preparation ([CPU runtime](10_cpu_runtime.ipynb)): bf16 pays off on long inputs, or many of one length; for
# many short files of different lengths fp32 is faster.

# %% [markdown]
# ## `Vocoder`
#
# The device is chosen once, by `resolve_device` ([Devices](00d_devices.ipynb)): `None` or `auto` means CUDA when
# it is available and the CPU otherwise; asking for CUDA on a machine without it is a mistake the user can fix, a
# `UserError` rather than a failure later inside PyTorch. The backends are `BACKENDS`, owned by the config too.

# %% [markdown]
# A `Vocoder` holds a generator and the config it belongs to. The config's mel is the single source of the number of
# bands and of the hop, so the vocoder checks that the generator reads that many bands and upsamples by that hop.
# `precision` is `"fp32"` (the default: PyTorch's output) or `"bf16"`; after construction `backend` and `precision`
# say what actually runs (`"openvino"` or `"torch"`; `"bf16"` or `"fp32"`), whatever was asked for.

# %%
#| export
def _as_mel_batch(mel, num_mels: int) -> torch.Tensor:
    "A float mel batch `[B, num_mels, T]` from `[num_mels, T]` or `[B, num_mels, T]`; `UserError` otherwise."
    mel = torch.as_tensor(mel).detach().float()
    if mel.dim() not in (2, 3) or mel.shape[-2] != num_mels:
        shape = tuple(mel.shape)
        raise UserError(f"expected a log-mel [{num_mels}, T] or [B, {num_mels}, T], got shape {shape}")
    return mel if mel.dim() == 3 else mel[None]

class Vocoder:
    "A generator ready for inference: log-mel `[80, T]` / `[B, 80, T]` to float audio at the config's rate."
    def __init__(self, generator: Generator, config: Config, device=None, backend: str = "auto",
                 chunk_frames: int = 1024, precision: str = "fp32"):
        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        check_precision(precision)
        if generator.num_mels != config.mel.num_mels:
            raise UserError(f"the generator reads {generator.num_mels} mel bands, the config's mel has "
                            f"{config.mel.num_mels}")
        check_hop(generator.cfg, config.mel)
        self.device = resolve_device(device)
        if backend == "openvino" and self.device.type != "cpu":
            raise UserError(f"backend 'openvino' runs on the CPU, not on {self.device}")
        self.config, self.mel_config = config, config.mel
        self.generator = generator.remove_weight_norm().eval().requires_grad_(False).to(self.device)
        self.context = receptive_field_frames(generator.cfg)
        self.chunk_frames = chunk_frames
        self._compiled = None
        wants_openvino = backend == "openvino" or (backend == "auto" and self.device.type == "cpu")
        if wants_openvino:
            self._compiled = self._compile_openvino(precision, required=backend == "openvino")
        self.backend = "openvino" if self._compiled is not None else "torch"
        self.precision = (self._compiled.precision if self._compiled
                          else runnable_precision(precision, "torch"))

    @classmethod
    def from_checkpoint(cls, path, preset: str | None = None, device=None, backend: str = "auto",
                        precision: str = "fp32") -> "Vocoder":
        "A project checkpoint, an official `g_` file (`preset` or inferred), a run folder or a model's name."
        generator, config = generator_from_checkpoint(find_generator_file(path), preset)
        return cls(generator, config, device, backend, precision=precision)

    @classmethod
    def from_pretrained(cls, name: str = "universal", device=None, backend: str = "auto",
                        precision: str = "fp32") -> "Vocoder":
        "An official pretrained generator by name (`universal`, `lj`), its file verified before loading."
        return cls.from_checkpoint(pretrained_path(name), None, device, backend, precision)

    @property
    def sampling_rate(self) -> int:
        "Sampling rate of the audio in and out."
        return self.mel_config.sampling_rate

    @property
    def num_mels(self) -> int:
        "Mel bands the vocoder expects."
        return self.mel_config.num_mels

    @property
    def hop_size(self) -> int:
        "Audio samples per mel frame."
        return self.mel_config.hop_size

    def __repr__(self):
        return (f"Vocoder({self.config.generator_preset}, device={self.device}, backend={self.backend}, "
                f"precision={self.precision}, context={self.context} frames)")


# %% [markdown]
# Compiling is the one place where the backend can change. Under `auto` a missing OpenVINO or a model it cannot
# compile leaves eager PyTorch with one warning that says why; under an explicit `backend="openvino"` a missing
# package is a `UserError` (the user can install it) and any other failure propagates with its traceback.

# %%
#| export
@patch
def _compile_openvino(self: Vocoder, precision: str, required: bool) -> OpenVINOGenerator | None:
    "The generator compiled by OpenVINO in a precision that runs here; `None` (warned) when `auto` fails."
    try:
        import openvino  # noqa: F401 (the check only: the CPU runtime imports it where it is used)
    except ImportError as e:
        if required:
            message = "backend 'openvino': the openvino package is not installed (pip install openvino)"
            raise UserError(message) from None
        warnings.warn(f"OpenVINO is not installed ({e}): using eager PyTorch")
        return None
    try:
        return OpenVINOGenerator.from_generator(self.generator, runnable_precision(precision, "openvino"))
    except Exception as e:
        if required:
            raise
        warnings.warn(f"OpenVINO failed ({type(e).__name__}: {str(e)[:100]}): using eager PyTorch")
        return None


# %%
show_doc(Vocoder.from_checkpoint)

# %%
show_doc(Vocoder.from_pretrained)


# %% [markdown]
# `from_checkpoint` takes whatever the command line's `--checkpoint` takes (`find_generator_file`): a file, a run
# folder (its best generator, else its newest), or a pretrained model's name.
#
# One generator pass runs on the chosen backend. Long inputs go through it in windows of `chunk_frames` plus the
# context on each side, and every window has that same length: at the first and the last chunk the window reaches
# further inwards instead of being cut short. A compiled engine prepares its kernels once per input length (for
# OpenVINO's bf16 kernels that takes seconds), so all chunks of all long files share one preparation.
#
# `stream` does this on a mel that arrives in blocks (read from a file, or computed from audio as it is read) and
# yields the audio chunk by chunk: a chunk is synthesised as soon as the mel beyond its context has arrived, and it
# keeps only the frames that later windows can still reach, so memory stays the same however long the input is.
# `synthesize` is the same for a mel in memory.

# %%
#| export
@patch
def _run(self: Vocoder, mel: torch.Tensor) -> torch.Tensor:
    "One generator pass `[B, num_mels, t]` -> `[B, hop t]` on the chosen backend."
    if self._compiled is not None:
        return torch.from_numpy(self._compiled(mel.cpu().numpy()))
    with torch.inference_mode():
        audio = self.generator(mel.to(self.device))[:, 0].float().cpu()
    return audio.clone()  # an ordinary tensor: inference-mode tensors refuse later in-place updates


# %%
#| export
@patch
def stream(self: Vocoder, mel_blocks) -> Iterator[torch.Tensor]:
    "Audio `[B, hop t]` chunk by chunk for a mel `[B, num_mels, T]` that arrives as blocks, in equal windows."
    hop, ctx, chunk = self.hop_size, self.context, self.chunk_frames
    window = chunk + 2 * ctx
    buf, buf_start, start = None, 0, 0  # buf: the frames from buf_start on; start: the next chunk's first

    def piece(lo: int, stop: int, length: int) -> torch.Tensor:
        audio = self._run(buf[..., lo - buf_start:lo - buf_start + length])
        return audio[:, (start - lo) * hop:(stop - lo) * hop]

    for block in mel_blocks:
        buf = block if buf is None else torch.cat([buf, block], -1)
        while max(0, start - ctx) + window <= buf_start + buf.shape[-1]:  # a window that the end cannot move
            yield piece(max(0, start - ctx), start + chunk, window)
            start += chunk
            drop = max(0, start - window) - buf_start  # the last windows reach back at most this far
            buf, buf_start = buf[..., drop:], buf_start + drop
    total = buf_start + buf.shape[-1]
    if start == 0 and total <= window:
        yield self._run(buf)
        return
    for start in range(start, total, chunk):
        lo = min(max(0, start - ctx), total - window)  # at the ends the window reaches inwards, not shorter
        yield piece(lo, min(start + chunk, total), window)

@patch
def synthesize(self: Vocoder, mel: torch.Tensor) -> torch.Tensor:
    "Audio `[B, hop T]` for a mel batch `[B, num_mels, T]`, in windows of one length: chunk plus context."
    return torch.cat(list(self.stream([mel])), -1)

@patch
def __call__(self: Vocoder, mel):
    "Audio for a log-mel `[num_mels, T]` (-> `[hop T]`) or `[B, num_mels, T]` (-> `[B, hop T]`), as numpy."
    audio = self.synthesize(_as_mel_batch(mel, self.num_mels))
    if len(mel.shape) == 2:
        audio = audio[0]
    return audio.numpy() if isinstance(mel, np.ndarray) else audio

@patch
def resynthesis(self: Vocoder, audio_blocks) -> Iterator[np.ndarray]:
    "Audio -> mel -> audio block by block: mono float32 blocks at the vocoder's rate in, and out."
    blocks, head, n_fft = iter(audio_blocks), [], self.mel_config.n_fft
    for block in blocks:  # a clip shorter than one mel window is handled whole
        head.append(np.asarray(block, np.float32))
        if sum(map(len, head)) >= n_fft:
            break
    samples = sum(map(len, head))
    if samples < n_fft:  # padded with silence to one window, the output cut back to the clip's length
        padded = np.pad(np.concatenate(head), (0, n_fft - samples))
        yield self(mel_spectrogram(torch.from_numpy(padded), self.mel_config).numpy())[:samples]
        return
    mels = mel_stream(itertools.chain(head, blocks), self.mel_config, self.chunk_frames)
    for audio in self.stream(mel[None] for mel in mels):
        yield audio[0].numpy()

@patch
def resynthesize(self: Vocoder, wav_or_path, sampling_rate: int | None = None) -> np.ndarray:
    "Audio -> mel -> audio for a file or a float array at `sampling_rate` (any channels, rate): mono float32."
    if isinstance(wav_or_path, (str, os.PathLike)):
        blocks = AudioFile(wav_or_path, self.sampling_rate).blocks()
    else:
        blocks = [load_audio(wav_or_path, self.sampling_rate, sampling_rate)]
    return np.concatenate(list(self.resynthesis(blocks)))


# %%
show_doc(Vocoder.stream)

# %%
show_doc(Vocoder.synthesize)

# %%
show_doc(Vocoder.__call__)

# %%
show_doc(Vocoder.resynthesis)

# %%
show_doc(Vocoder.resynthesize)

# %% [markdown]
# Reading audio: any format libsndfile reads, channels averaged to mono, resampled with soxr (high quality) to the
# vocoder's rate. An `AudioFile` reads a file block by block (the resampler too works on a stream, and gives exactly
# the one-shot result), so a recording of hours is never held whole. Opening it checks what `prepare` would flag,
# and says so in one warning naming the file: a WAV cut short (libsndfile reads what is there), and float samples
# beyond [-1, 1], which are scaled to a peak of 0.99 as `prepare` scales them (a first pass over the file finds
# the peak). NaN or infinite samples are refused.

# %%
#| export
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")

class AudioFile:
    "An audio file read in blocks, as mono float32 at `target_rate`; warns about what `prepare` would flag."
    def __init__(self, path, target_rate: int = MelConfig.sampling_rate, block: int = 1 << 16):
        import soundfile as sf
        self.path, self.target_rate, self.block = check_input_file(path, "audio file"), target_rate, block
        try:
            info = sf.info(self.path)
        except Exception as e:
            reason = str(e).splitlines()[0][:120]
            raise UserError(f"{self.path}: not a readable audio file ({reason})") from None
        self.rate, self.subtype, self.scale = info.samplerate, info.subtype, 1.0
        cut = wav_truncation(self.path)
        if cut:
            warnings.warn(f"{self.path}: {cut}; vocoding what it holds")
        if self.subtype in FLOAT_SUBTYPES:
            self._check_float_samples()
        self.seconds = info.frames / self.rate

    def _read(self) -> Iterator[np.ndarray]:
        "The file's samples, mono float32 at its own rate, block by block."
        import soundfile as sf
        with sf.SoundFile(self.path) as f:
            while len(data := f.read(self.block, dtype="float32", always_2d=True)):
                yield data.mean(axis=1)

    def _check_float_samples(self):
        "Refuse NaN or infinite samples; scale samples beyond [-1, 1] to a peak of 0.99, with a warning."
        peak = 0.0
        for mono in self._read():
            if not np.isfinite(mono).all():
                raise UserError(f"{self.path}: audio contains NaN or infinite samples")
            peak = max(peak, float(np.abs(mono).max(initial=0.0)))
        if peak > 1.0:
            self.scale = 0.99 / peak
            warnings.warn(f"{self.path}: samples reach {peak:.2f}, beyond [-1, 1]: scaled by "
                          f"{self.scale:.3f}, as prepare does")


# %%
#| export
@patch
def blocks(self: AudioFile) -> Iterator[np.ndarray]:
    "Mono float32 blocks at `target_rate`, the whole file in order."
    import soxr
    resampler = None
    if self.rate != self.target_rate:
        resampler = soxr.ResampleStream(self.rate, self.target_rate, 1, dtype="float32", quality="HQ")
    samples = 0
    for mono in self._read():
        samples += len(mono)
        mono = mono * np.float32(self.scale) if self.scale != 1.0 else mono
        yield resampler.resample_chunk(mono) if resampler else mono
    if samples == 0:
        raise UserError(f"{self.path}: no audio samples")
    if resampler:
        yield resampler.resample_chunk(np.zeros(0, np.float32), last=True)


# %%
#| export
def load_audio(wav_or_path, target_rate: int = MelConfig.sampling_rate,
               sampling_rate: int | None = None) -> np.ndarray:
    "Mono float32 audio at `target_rate` from a file (`AudioFile`) or an array at `sampling_rate`."
    import soxr
    if isinstance(wav_or_path, (str, os.PathLike)):
        return np.concatenate(list(AudioFile(wav_or_path, target_rate).blocks()))
    audio = np.asarray(wav_or_path, dtype=np.float32)
    sampling_rate = sampling_rate or target_rate
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.ndim != 2 or audio.shape[0] == 0:
        raise UserError(f"audio: empty or not [samples, channels] audio (shape {audio.shape})")
    mono = audio.mean(axis=1)
    if not np.isfinite(mono).all():
        raise UserError("audio: audio contains NaN or infinite samples")
    if sampling_rate != target_rate:
        mono = soxr.resample(mono, sampling_rate, target_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


# %%
show_doc(AudioFile)

# %%
show_doc(AudioFile.blocks)

# %%
show_doc(load_audio)

# %% [markdown]
# ### Official checkpoints give the reference output
#
# An official-format `g_XXXXXXXX` file (`{"generator": state_dict}` with weight-norm keys), filled with the
# deterministic weights of the reference test data, loads through `Vocoder.from_checkpoint` and reproduces the
# reference implementation's output, judged as in the generator notebook by the relative RMS error (the worst single
# sample depends on the CPU and the thread count: these untrained weights drive V1's activations far beyond those of
# a trained model, which magnifies rounding). The OpenVINO path (fp32) sums in a different order and is held to the
# same bound. (With untrained weights the audio is noise, so this is a numeric check, not something to listen to.)

# %%
import json, tempfile
from hifigan_ruslan.checkpoints import atomic_save
from hifigan_ruslan.testing import reference_weights, relative_rms_error

# %%
ref_dir = Path("testdata/reference")
manifest = json.loads((ref_dir / "state_dict_manifest.json").read_text())
tmp = Path(tempfile.mkdtemp())
official = {}
for name in ["v1", "v2", "v3"]:
    gold = np.load(ref_dir / f"generator_{name}.npz")
    weights = reference_weights(manifest[f"generator_{name}"], float(gold["fill_scale"]))
    official[name] = atomic_save({"generator": weights}, tmp / f"official_{name}" / "g_02500000")
    for backend in ["torch", "openvino"]:
        voc = Vocoder.from_checkpoint(official[name], preset=name, device="cpu", backend=backend)
        err = relative_rms_error(voc(gold["mel"]), gold["audio"])
        print(f"{name} {backend:>8}: relative RMS error {err:.1e}")
        assert err < 1e-4, err  # measured up to 1.3e-5 / 1.7e-5 (V1), 5.0e-7 (V2), 8.5e-7 (V3): torch / OpenVINO

# %% [markdown]
# ### Chunked equals one-shot
#
# With chunks far shorter than the input (16 frames, so dozens of joins), the output equals a single pass
# everywhere, edges included: the relative RMS error between them is float rounding, far below what a seam leaves
# (the last cell of this section shows a seam).

# %%
from unittest import mock
from hifigan_ruslan.config import preset_config, config_to_dict

# %%
tiny_cfg = preset_config("tiny")
torch.manual_seed(0)
tiny_payload = {"generator": Generator(tiny_cfg.generator).state_dict(), "config": config_to_dict(tiny_cfg),
                "steps": 0}
tiny_ckpt = atomic_save(tiny_payload, tmp / "tiny" / "g_00000000")
mel = torch.from_numpy(np.load(ref_dir / "mel_espeak_ru.npz")["mel"])

def chunked_and_one_shot(voc: Vocoder, mel: torch.Tensor, chunk_frames: int = 16):
    "The vocoder's output for `mel` in chunks of `chunk_frames` and in one pass."
    voc.chunk_frames = 10_000
    one_shot = voc(mel)
    voc.chunk_frames = chunk_frames
    return voc(mel), one_shot

for backend in ["torch", "openvino"]:
    tiny_vocoder = Vocoder.from_checkpoint(tiny_ckpt, device="cpu", backend=backend)
    chunked, one_shot = chunked_and_one_shot(tiny_vocoder, mel)
    err = relative_rms_error(chunked, one_shot)
    print(f"{backend}: {mel.shape[-1]} frames in chunks of 16: relative RMS |chunked - one-shot| {err:.1e}")
    test_eq(chunked.shape, (256 * mel.shape[-1],))
    assert err < 1e-5, err  # measured 1.1e-7 (torch), 6.2e-8 (OpenVINO): margin ~90

lengths = []
run = tiny_vocoder._run
with mock.patch.object(tiny_vocoder, "_run", lambda m: lengths.append(m.shape[-1]) or run(m)):
    tiny_vocoder(mel)
test_eq(set(lengths), {16 + 2 * tiny_vocoder.context})  # every window one length, the last one too

# %% [markdown]
# The same for a V2 generator (the widest receptive field, shared with V1) and a batch.

# %%
torch.manual_seed(1)
v2 = Vocoder(Generator.from_preset("v2"), preset_config("v2"), device="cpu", backend="torch")
batch = torch.stack([mel[:, :48], mel[:, 40:88]])
chunked, whole = chunked_and_one_shot(v2, batch)
err = relative_rms_error(chunked, whole)
print(f"V2, batch of 2 x 48 frames in chunks of 16: relative RMS |chunked - one-shot| {err:.1e}")
test_eq(whole.shape, (2, 256 * 48))
assert err < 1e-5, err  # measured 0 (the same kernels on the same samples)

# %% [markdown]
# And the check catches the bug it exists for: with too little context at the joins (half the receptive field), the
# seams differ from the one-shot output and the error is two orders of magnitude above the bound. (The receptive
# field is a bound, and the reach that matters is smaller, so the context must be cut well below it to show this.)

# %%
seamy = Vocoder.from_checkpoint(tiny_ckpt, device="cpu", backend="torch")
seamy.context = receptive_field_frames(seamy.generator.cfg) // 2
seam_err = relative_rms_error(*chunked_and_one_shot(seamy, mel))
print(f"tiny with half the context: relative RMS |chunked - one-shot| {seam_err:.1e}")
assert seam_err > 100 * 1e-5, seam_err  # measured 1.2e-3: 124 times the bound, 10,000 times the correct chunking

# %% [markdown]
# Inputs: numpy in gives numpy out; a wrong shape is a one-line `UserError`, and so is a generator that does not
# read the config's mel.

# %%
voc = Vocoder.from_checkpoint(tiny_ckpt, device="cpu")
y = voc(mel.numpy())
test_eq(type(y), np.ndarray)
test_eq(y.dtype, np.float32)
test_eq(y.shape, (256 * mel.shape[1],))
test_eq(voc.num_mels, 80)
test_eq(voc.sampling_rate, 22050)
test_eq(voc.hop_size, 256)
print(voc)
# tensors out are ordinary tensors, even from a tensor that requires grad
for backend in ["torch", "openvino"]:
    y = Vocoder.from_checkpoint(tiny_ckpt, device="cpu", backend=backend)(mel.clone().requires_grad_())
    y *= 0.5
test_fail(lambda: voc(np.zeros((40, 10))), contains="expected a log-mel [80, T] or [B, 80, T], got shape (40,")
test_fail(lambda: voc(np.zeros((2, 3, 80, 10))), contains="got shape (2, 3, 80, 10)")
test_fail(lambda: Vocoder(Generator.from_preset("tiny", num_mels=64), tiny_cfg), contains="reads 64 mel bands")
test_fail(lambda: Vocoder(voc.generator, tiny_cfg, backend="tensorrt"), contains="unknown backend 'tensorrt'")

# %% [markdown]
# `from_checkpoint` takes a run folder or a pretrained model's name as well as a file:

# %%
test_eq(Vocoder.from_checkpoint(tiny_ckpt.parent, device="cpu", backend="torch").config.preset, "tiny")
test_eq(Vocoder.from_checkpoint("universal", device="cpu", backend="torch").config.generator_preset, "v1")
test_fail(lambda: Vocoder.from_checkpoint("universl"), contains="universl: no such checkpoint file or folder")

# %% [markdown]
# ### Precision and fallbacks
#
# What runs is never a surprise: an unknown precision is a `UserError` listing the choices; `bf16` on a CPU without
# native bf16 (simulated here by replacing the check) warns once and runs fp32, and the attributes say so; a missing
# OpenVINO (simulated by hiding the package) or a model it fails to compile leaves eager PyTorch under `auto`, with
# one warning naming the reason, while an explicit `backend="openvino"` fails.

# %%
from unittest import mock
import sys


# %%
def built_with_warnings(**kwargs) -> tuple[Vocoder, list[str]]:
    "A tiny vocoder built with `kwargs`, and the messages of the warnings it gave."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vocoder = Vocoder.from_checkpoint(tiny_ckpt, device="cpu", **kwargs)
    return vocoder, [str(w.message) for w in caught]

test_fail(lambda: Vocoder.from_checkpoint(tiny_ckpt, precision="fp16"), contains="unknown precision 'fp16': choose")
test_fail(lambda: Vocoder.from_pretrained("nope"), contains="'nope' is not a pretrained model: choose one of")
with mock.patch("hifigan_ruslan.cpu_runtime.native_bf16", return_value=False):
    no_bf16, messages = built_with_warnings(precision="bf16")
test_eq(no_bf16.backend, "openvino")
test_eq(no_bf16.precision, "fp32")
test_eq(messages, ["precision bf16: this CPU has no native bf16 (AMX or AVX512-BF16): using fp32"])
print(no_bf16)
with mock.patch.dict(sys.modules, {"openvino": None}):
    no_openvino, messages = built_with_warnings()
    test_fail(lambda: Vocoder.from_checkpoint(tiny_ckpt, backend="openvino"), contains="openvino package is not")
test_eq(no_openvino.backend, "torch")
test_eq(no_openvino.precision, "fp32")
test_eq(len(messages), 1)
assert messages[0].endswith(": using eager PyTorch")
failing_compile = mock.patch.object(OpenVINOGenerator, "from_generator", side_effect=RuntimeError("no kernel"))
with failing_compile:
    not_compiled, messages = built_with_warnings()
    test_fail(lambda: Vocoder.from_checkpoint(tiny_ckpt, backend="openvino"), contains="no kernel")
test_eq(not_compiled.backend, "torch")
test_eq(messages, ["OpenVINO failed (RuntimeError: no kernel): using eager PyTorch"])

# %% [markdown]
# ### The pretrained generator: fp32 exact, bf16 close
#
# `Vocoder.from_pretrained` loads an official generator by name. With trained weights the OpenVINO fp32 path must
# give PyTorch's audio to float rounding. Trained V1 is ill-conditioned: PyTorch's own fp32 output differs from a
# float64 run by a relative RMS of 1e-5 to 4e-5 (single samples by up to 1.6e-4), so the bound is on the relative RMS
# error, and OpenVINO must be about as close to float64 as PyTorch is (within three times its distance).

# %%
import copy
import soxr
from pesq import pesq
from hifigan_ruslan.clips import bundled_corpus
from hifigan_ruslan.cpu_runtime import native_bf16
from hifigan_ruslan.evaluation import distillmos, optional_metrics
from hifigan_ruslan.testing import tiny_corpus

# %%
clips = sorted((tiny_corpus() / "RUSLAN").glob("*.wav"))[:3]  # short clips: the float64 run is slow
originals = [load_audio(clip) for clip in clips]
clip_mels = [chunked_mel(torch.from_numpy(audio)) for audio in originals]
eager = Vocoder.from_pretrained("universal", device="cpu", backend="torch")
fp32 = Vocoder.from_pretrained("universal", device="cpu")
print(fp32)
eager_out = [eager(m).numpy() for m in clip_mels]
fp32_out = [fp32(m).numpy() for m in clip_mels]
generator64 = copy.deepcopy(eager.generator).double()
with torch.inference_mode():
    exact = [generator64(m[None].double())[0, 0].float().numpy() for m in clip_mels]
for name, a, b, x in zip([c.name for c in clips], fp32_out, eager_out, exact):
    err, err_eager, err_openvino = relative_rms_error(a, b), relative_rms_error(b, x), relative_rms_error(a, x)
    print(f"{name}: relative RMS error OpenVINO - PyTorch {err:.1e}; from float64: PyTorch {err_eager:.1e}, "
          f"OpenVINO {err_openvino:.1e}")
    assert err < 1e-4, err  # measured 9.5e-6 .. 1.9e-5 here, up to 4.0e-5 on all 12 clips: margin 2.5
    assert err_openvino < 3 * err_eager + 1e-6, err_openvino  # measured 0.7 .. 2.2 times PyTorch's distance


# %% [markdown]
# bf16 (8 bits of mantissa) changes the output more than float rounding, and this network amplifies small changes
# made early in it: even the **fp32** vocoder, given the mel plus noise of standard deviation 1e-3 (a thousandth of a
# natural-log unit, far below what any acoustic model predicts), returns a waveform only 18 to 44 dB away from its
# noiseless output (measured on 8 RUSLAN recordings). That is why the bf16 path keeps the generator's first steps
# in fp32 ([CPU runtime](10_cpu_runtime.ipynb)). Its acceptance, on real speech with the pretrained universal
# generator:
#
# - the waveform SNR of bf16 against fp32 is at least 40 dB on every clip;
# - the wide-band PESQ against the original recordings is, on average, within 0.05 of fp32's, and so is the
#   perceptual score of the output on its own (DistillMOS, [Evaluation](11_evaluation.ipynb));
# - and, as a check of what is heard, the log-mel of the bf16 output stays within a quarter of the vocoder's own
#   error from the fp32 output's (the mean absolute log difference counts quiet bins as much as loud ones, so even
#   40 dB of SNR leaves 0.02 to 0.05 natural-log units against the vocoder's 0.25 to 0.31).
#
# Measured here on the real voice bundled with the package (24 festvox-ru clips, 159 s of a male Russian speaker);
# `benchmarks/bench_bf16.py --real` measures the same on the 24 clips that the transfer benchmark holds out of the
# whole voice (233 s): SNR 44.1 to 47.8 dB (median 46.1), and bf16 minus fp32 on average +0.002 PESQ-wb and
# +0.021 DistillMOS (per clip 0.000 to +0.049), on an Intel Xeon with AMX. On a CPU without native bf16 the cell
# says so and checks nothing.

# %%
def pesq_wb(reference: np.ndarray, degraded: np.ndarray, rate: int = 22050) -> float:
    "Wide-band PESQ of `degraded` against `reference` (both at `rate`), at 16 kHz."
    ref16, deg16 = (soxr.resample(x, rate, 16000) for x in (reference, degraded))
    n = min(len(ref16), len(deg16))
    return float(pesq(16000, ref16[:n], deg16[:n], "wb"))

def snr_db(signal: np.ndarray, reference: np.ndarray) -> float:
    "Signal-to-noise ratio of `signal` against `reference`, in dB."
    return float(10 * np.log10(np.sum(reference ** 2) / max(np.sum((signal - reference) ** 2), 1e-30)))

def log_mel_distance(audio: np.ndarray, reference: np.ndarray) -> float:
    "Mean absolute difference of the log-mels of two signals (the shorter length), in natural-log units."
    n = min(len(audio), len(reference))
    return float((mel_spectrogram(torch.from_numpy(audio[:n])) - mel_spectrogram(torch.from_numpy(reference[:n])))
                 .abs().mean())


# %%
if native_bf16():
    bf16 = Vocoder.from_pretrained("universal", device="cpu", precision="bf16")
    test_eq(bf16.backend, "openvino")
    test_eq(bf16.precision, "bf16")
    scored = "mos" in optional_metrics()[0]
    mos = (lambda audio: distillmos(soxr.resample(audio, 22050, 16000).astype(np.float32))) if scored else \
        (lambda audio: np.nan)
    rows = []
    for clip in sorted((bundled_corpus() / "wav").glob("*.flac")):
        original = load_audio(clip)
        mel_in = chunked_mel(torch.from_numpy(original))
        reference, out = fp32(mel_in).numpy(), bf16(mel_in).numpy()
        rows.append([snr_db(out, reference), pesq_wb(original, reference), pesq_wb(original, out),
                     mos(reference), mos(out), log_mel_distance(out, reference), log_mel_distance(reference, original)])
        print(f"{clip.stem}: SNR {rows[-1][0]:.1f} dB; PESQ-wb fp32 {rows[-1][1]:.3f}, bf16 {rows[-1][2]:.3f}; "
              f"MOS fp32 {rows[-1][3]:.3f}, bf16 {rows[-1][4]:.3f}; log-mel change {rows[-1][5]:.4f} "
              f"(fp32's own error {rows[-1][6]:.3f})")
    snr, pesq_fp32, pesq_bf16, mos_fp32, mos_bf16, change, own_error = np.array(rows).T
    pesq_change, mos_change = pesq_bf16.mean() - pesq_fp32.mean(), mos_bf16.mean() - mos_fp32.mean()
    print(f"SNR {snr.min():.1f} .. {snr.max():.1f} dB; mean PESQ-wb fp32 {pesq_fp32.mean():.3f}, bf16 "
          f"{pesq_bf16.mean():.3f} ({pesq_change:+.3f}); mean MOS fp32 {mos_fp32.mean():.3f}, bf16 "
          f"{mos_bf16.mean():.3f} ({mos_change:+.3f})")
    # the rule: 40 dB; measured 43.4 .. 47.7 here (3.4 dB to spare), 44.1 .. 47.8 on 24 held-out clips
    assert snr.min() >= 40, snr.min()
    assert abs(pesq_change) <= 0.05, pesq_change  # measured +0.001 (held-out clips: +0.002)
    if scored:
        assert abs(mos_change) <= 0.05, mos_change  # measured +0.014 (held-out clips: +0.021)
    assert (change < own_error / 4).all()  # measured at most 0.13 of it
    del bf16
else:
    print("this CPU has no native bf16 (AMX or AVX512-BF16): the bf16 acceptance is skipped")
del eager, fp32, generator64

# %% [markdown]
# ### Start-up
#
# What a `generate` run waits for before its first audio, measured in a fresh process: importing the package,
# loading the pretrained V1 generator and building the vocoder (for OpenVINO: building the graph and compiling it),
# then vocoding one second of mel (the first call on a new length also prepares OpenVINO's kernels for it, which in
# bf16 is most of its start-up).

# %%
import subprocess

# %%
STARTUP_PROBE = """
import sys, time
start = time.perf_counter()
import numpy as np
from hifigan_ruslan.inference import Vocoder
imported = time.perf_counter()
vocoder = Vocoder.from_pretrained("universal", device="cpu", backend=sys.argv[1], precision=sys.argv[2])
built = time.perf_counter()
vocoder(np.full((80, 86), -5.0, np.float32))
print(imported - start, built - imported, time.perf_counter() - built)
"""

def startup_seconds(backend: str, precision: str = "fp32") -> list[float]:
    "Seconds to import, to build a `backend` vocoder of the pretrained generator, and to its first audio (1 s)."
    res = subprocess.run([sys.executable, "-c", STARTUP_PROBE, backend, precision], capture_output=True,
                         text=True, timeout=300, check=True)
    return [float(x) for x in res.stdout.split()]

for backend, precision in [("torch", "fp32"), ("openvino", "fp32")] + [("openvino", "bf16")] * native_bf16():
    imported, built, first = startup_seconds(backend, precision)
    print(f"{backend:>8} {precision}: import {imported:.1f} s, build {built:.1f} s, first audio {first:.2f} s: "
          f"{imported + built + first:.1f} s to the first audio")

# %% [markdown]
# ### Resynthesis from any WAV
#
# Stereo at 44.1 kHz, mono at 16 kHz: both come back as mono 22,050 Hz audio of the same duration.

# %%
import soundfile as sf

# %%
speech = np.load(ref_dir / "mel_espeak_ru.npz")["audio"]
stereo = soxr.resample(np.stack([speech, 0.5 * speech], 1), 22050, 44100)
sf.write(tmp / "stereo44k.wav", stereo, 44100)
sf.write(tmp / "mono16k.wav", soxr.resample(speech, 22050, 16000), 16000, subtype="PCM_16")
for f in ["stereo44k.wav", "mono16k.wav"]:
    out = voc.resynthesize(tmp / f)
    test_eq(out.dtype, np.float32)
    assert abs(len(out) - len(speech)) <= 256, abs(len(out) - len(speech))
mono_mix = load_audio(tmp / "stereo44k.wav")[:len(speech)]
mix_err = np.abs(mono_mix - 0.75 * speech).max()
assert mix_err < 0.02, mix_err  # the channels averaged, resampled back
test_fail(lambda: voc.resynthesize(tmp / "missing.wav"), contains="missing.wav: audio file not found")
test_fail(lambda: voc.resynthesize(tmp), contains=": is a folder, not an audio file")
(tmp / "noise.wav").write_text("not audio")
test_fail(lambda: load_audio(tmp / "noise.wav"), contains="noise.wav: not a readable audio file")
test_fail(lambda: load_audio(np.array([0.0, np.nan])), contains="NaN or infinite")

# %% [markdown]
# A file is read block by block and resampled as a stream; the result is exactly the one-shot resampling of the
# whole file, and so is the resynthesis:

# %%
reader = AudioFile(tmp / "stereo44k.wav", block=5000)
held = sf.read(tmp / "stereo44k.wav", dtype="float32")[0].mean(1)
test_eq(np.concatenate(list(reader.blocks())), soxr.resample(held, 44100, 22050, quality="HQ"))
whole = voc(chunked_mel(torch.from_numpy(load_audio(tmp / "stereo44k.wav"))).numpy())
voc.chunk_frames = 16  # many chunks, and mel pieces arriving in blocks of all sizes
test_eq(np.concatenate(list(voc.resynthesis(AudioFile(tmp / "stereo44k.wav", block=3000).blocks()))).shape,
        whole.shape)
err = relative_rms_error(np.concatenate(list(voc.resynthesis(AudioFile(tmp / "stereo44k.wav", block=3000)
                                                             .blocks()))), whole)
assert err < 1e-5, err  # float rounding of a different chunking (measured 1e-7)
voc.chunk_frames = 1024


# %% [markdown]
# What `prepare` would flag is said in one warning naming the file: float samples beyond [-1, 1] (scaled to a
# peak of 0.99, as `prepare` scales them) and a WAV cut short (what it holds is vocoded). A clip shorter than one
# mel window (1,024 samples, 46 ms) is padded with silence for its mel and cut back to its length; even 10 samples
# give 10 samples.

# %%
def warned(action) -> tuple[object, list[str]]:
    "The result of `action()` and the messages of the warnings it gave."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = action()
    return result, [str(w.message) for w in caught]

sf.write(tmp / "loud.wav", 1.6 * speech, 22050, subtype="FLOAT")
sf.write(tmp / "whole.wav", speech, 22050, subtype="PCM_16")
(tmp / "cut.wav").write_bytes((tmp / "whole.wav").read_bytes()[:20000])
loud, messages = warned(lambda: load_audio(tmp / "loud.wav"))
peak = 1.6 * np.abs(speech).max()
test_eq(messages, [f"{tmp / 'loud.wav'}: samples reach {peak:.2f}, beyond [-1, 1]: scaled by "
                   f"{0.99 / peak:.3f}, as prepare does"])
test_close(np.abs(loud).max(), 0.99, eps=1e-6)
cut, messages = warned(lambda: voc.resynthesize(tmp / "cut.wav"))
print(messages[0].replace(str(tmp), "TMP"))
assert "cut.wav: truncated: the data chunk declares" in messages[0] and messages[0].endswith("what it holds")
test_eq(len(cut), (20000 - 44) // 2 // 256 * 256)  # the samples it holds, in whole frames
for n in (10, 300, 1000):
    sf.write(tmp / "short.wav", speech[:n], 22050)
    test_eq(voc.resynthesize(tmp / "short.wav").shape, (n,))

# %% [markdown]
# ### Memory stays bounded
#
# Ten minutes of audio through `resynthesize`, measured in a separate process by its peak resident memory (Python, PyTorch and OpenVINO included; `VmHWM`, because `ru_maxrss` would carry over the peak of the notebook process that started it): chunked mel and chunked synthesis add roughly the audio itself (53 MB) plus one chunk's activations. In one piece, the mel's STFT alone would hold a few hundred MB and a V1 generator several GB.

# %%
#| slow
import subprocess, sys


# %%
#| slow
def peak_memory(minutes: int) -> tuple[float, float]:
    "Seconds resynthesised and peak resident MB of a fresh process that resynthesises `minutes` of audio."
    probe = f"""
from pathlib import Path
import numpy as np, torch
from hifigan_ruslan.inference import Vocoder
voc = Vocoder.from_checkpoint({str(tiny_ckpt)!r}, device="cpu")
voc(np.zeros((80, 600), np.float32))  # warm up: session and kernels
audio = (0.1 * np.sin(np.arange(22050 * 60 * {minutes}) * 0.05)).astype(np.float32)
out = voc.resynthesize(audio, 22050)
peak_kb = next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
print(len(out) / 22050, int(peak_kb) / 1024)
"""
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    return tuple(map(float, res.stdout.split()))

(s1, mb1), (s10, mb10) = peak_memory(1), peak_memory(10)
print(f"peak resident memory of the whole process: {mb1:.0f} MB for {s1 / 60:.0f} min, "
      f"{mb10:.0f} MB for {s10 / 60:.0f} min")
assert s10 > 599, s10
# Ten times the input costs little more than the input and output arrays themselves (2 x 53 MB).
assert mb10 - mb1 < 500, mb10 - mb1

# %% [markdown]
# Once a trained checkpoint exists, listening is the real test:
#
# ```python
# from IPython.display import Audio
# vocoder = Vocoder.from_checkpoint("runs/recipe/checkpoints/generator_best.pt")
# Audio(vocoder.resynthesize("speech.wav"), rate=22050)
# ```
#
# Here is what that gives for a validation clip of the bundled real voice after `hifigan-ruslan demo` (the `tiny` preset, 300 steps on a CPU: rough, but clearly the sentence), next to the original:

# %%
from IPython.display import Audio, display

# %%
for name in ["original", "resynth"]:
    print(name)
    display(Audio(url=f"assets/demo/{name}_ru_0063.wav", embed=False))  # a link, not 190 KB of base64

# %% [markdown]
# ## Mel files from acoustic models
#
# Acoustic models write mels as `.npy` or `.pt` files, which `generate` reads with `MelFile` of [Mel files](01a_mel_files.ipynb): in pieces, with the same rules as training uses for an acoustic model's mels, so that a file gets the same verdict whether it is vocoded or trained on.

# %%
good = np.load(ref_dir / "mel_espeak_ru.npz")["mel"]
mels = tmp / "mels"
mels.mkdir()

# %% [markdown]
# ### Long mel files in bounded memory
#
# `MelFile` and `Vocoder.stream` together vocode a mel file of any length in the memory of a few chunks:
# `generate` writes each chunk's audio to its WAV as it comes. Measured in fresh processes by their peak resident
# memory (as for `resynthesize` above), for a 2-minute and a 12-minute mel file (the audio of the longer one,
# 12 minutes at 22,050 Hz in float32, is 64 MB on its own):

# %%
#| slow
STREAM_PROBE = """
import sys
from pathlib import Path
import numpy as np, soundfile as sf, torch
from hifigan_ruslan.inference import Vocoder
from hifigan_ruslan.mel_files import MelFile
voc = Vocoder.from_checkpoint(sys.argv[1], device="cpu")
mel = MelFile(sys.argv[2])
with sf.SoundFile(sys.argv[3], "w", 22050, 1, "PCM_16") as out:
    for audio in voc.stream(torch.from_numpy(m)[None] for m in mel.blocks(voc.chunk_frames)):
        out.write(audio[0].numpy())
peak_kb = next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
print(sf.info(sys.argv[3]).duration, int(peak_kb) / 1024)
"""

def streamed_peak(minutes: int) -> tuple[float, float]:
    "Seconds written and peak resident MB of a fresh process that vocodes a `minutes`-long mel file."
    frames = minutes * 60 * 22050 // 256
    path = tmp / f"long_{minutes}.npy"
    np.save(path, np.tile(good, frames // good.shape[1] + 1)[:, :frames])
    argv = [sys.executable, "-c", STREAM_PROBE, str(tiny_ckpt), str(path), str(tmp / "long.wav")]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True)
    return tuple(map(float, res.stdout.split()))

(s2, mb2), (s12, mb12) = streamed_peak(2), streamed_peak(12)
print(f"peak resident memory of the whole process: {mb2:.0f} MB for {s2 / 60:.0f} min, {mb12:.0f} MB for "
      f"{s12 / 60:.0f} min")
assert s12 > 12 * 60 - 1, s12
assert mb12 - mb2 < 30, mb12 - mb2  # six times the input costs nothing more (the audio alone is 53 MB more)

# %%
import shutil

# %%
shutil.rmtree(tmp)
