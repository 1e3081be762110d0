# %% [markdown]
# # Inference
#
# > `Vocoder`: mel to audio and audio to mel to audio from any checkpoint, in seamless chunks of bounded memory, with a fast CPU path; the `generate`, `resynth` and `export` commands.

# %%
#| default_exp inference

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import argparse, io, math, os, pickle, sys, tempfile, warnings
from pathlib import Path
import numpy as np
import torch
from hifigan_ruslan.config import Config, GeneratorConfig, MelConfig
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.checkpoints import generator_from_checkpoint
from hifigan_ruslan.mel import mel_spectrogram


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
    "Mel frames of context on each side that fully determine an output sample of a generator with config `cfg`."
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
from hifigan_ruslan.config import GENERATOR_PRESETS

# %%
print({name: receptive_field_frames(c) for name, c in GENERATOR_PRESETS.items()})


# %% [markdown]
# A bound is only useful if it is not too small. Check it empirically: perturb one input frame of a random generator and see how far from it the output changes. The measured reach must never exceed the computed one (and should not be far below it, or chunks would carry useless context).

# %%
def measured_reach(g: Generator, frames: int = 40) -> int:
    "Farthest mel frame (from a perturbed frame) whose output samples change."
    mel = torch.randn(1, 80, frames)
    bumped = mel.clone(); bumped[..., frames // 2] += 3
    with torch.no_grad(): diff = (g(bumped) - g(mel)).abs()[0, 0].reshape(frames, -1).amax(1)
    changed = torch.nonzero(diff > 0).flatten()
    return int(max(frames // 2 - changed.min(), changed.max() - frames // 2))

for name in ["v3", "tiny"]:
    g = Generator.from_preset(name).eval()
    reach, bound = measured_reach(g), receptive_field_frames(g.cfg)
    print(f"{name}: measured reach {reach} frames, computed receptive field {bound}")
    assert reach <= bound <= reach + 3


# %% [markdown]
# The same idea for the mel itself: a mel frame depends only on its own 1,024-sample window, so a long recording can be turned into a mel piece by piece, each piece with a few frames of margin, and the result equals the one-shot mel (the reflect padding at the true ends of the signal is reproduced by letting the first and last pieces touch those ends).

# %%
#| export
def chunked_mel(audio: torch.Tensor, cfg: MelConfig | None = None, chunk_frames: int = 2048) -> torch.Tensor:
    "`mel_spectrogram(audio)` of a 1-D signal, computed in pieces of `chunk_frames` frames so that memory stays bounded."
    cfg = cfg or MelConfig()
    hop, total = cfg.hop_size, audio.shape[-1] // cfg.hop_size
    margin = math.ceil(cfg.n_fft / hop)  # frames of signal either side that a frame's window can reach
    pieces = []
    for start in range(0, total, chunk_frames):
        stop = min(start + chunk_frames, total)
        lo, hi = max(0, start - margin), stop + margin
        piece = audio[lo * hop:] if hi >= total else audio[lo * hop:hi * hop]  # at the ends: the real edge, as one-shot
        pieces.append(mel_spectrogram(piece, cfg)[:, start - lo:stop - lo])
    return torch.cat(pieces, -1) if pieces else mel_spectrogram(audio, cfg)


# %%
x = torch.from_numpy(np.load("testdata/reference/mel_espeak_ru.npz")["audio"])
for n in (len(x), len(x) - 100, 256 * 37 + 5):
    whole, parts = mel_spectrogram(x[:n]), chunked_mel(x[:n], chunk_frames=16)
    assert parts.shape == whole.shape and (parts - whole).abs().max() < 1e-4, n


# %% [markdown]
# ## The fast CPU path
#
# For inference the generator needs no gradients and no weight normalisation: `remove_weight_norm()` folds each `g v / ||v||` into one plain weight, and `torch.inference_mode()` drops autograd bookkeeping. On a CPU these two alone gain little: the time goes into the convolutions and into memory traffic between many small operations. The largest gain in the project's measurements (`benchmarks/bench_inference.py`, which compares against an eager generator with weight norm in place) came from running the same network in **ONNX Runtime**: its convolution kernels and graph fusions (the LeakyReLU and the residual adds folded into neighbouring operations) ran V1 1.4 to 1.6 times and V2 and V3 1.2 times faster than eager PyTorch on an otherwise idle 2-core CPU, and V2 and V3 two to five times faster while other processes competed for the cores, with outputs within `1e-6` of PyTorch's for realistically scaled weights. (At about 60 billion multiply-adds per second, V2 and V3 already run near the fp32 limit of such a CPU; a bf16 path moved the output by more than `1e-3` and was not faster in eager PyTorch.) `torch.compile` matched it for V3 but not for V2, after compiling for 17 to 88 seconds on a 2-core CPU, which does not pay off for a command that vocodes a few files, and it needs a working C compiler.
#
# So a `Vocoder` on CPU exports its generator to ONNX in memory once, on first use, and checks the session against PyTorch on a short probe. If onnxruntime is missing, the export fails, or the check disagrees by more than `1e-3`, it warns once and stays with eager PyTorch. On GPU it uses PyTorch (cuDNN is already fast there). `backend="torch"` forces PyTorch.

# %%
#| export
def _onnx_bytes(generator: Generator, frames: int = 32) -> bytes:
    "The generator as an ONNX model with dynamic batch and length."
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(generator, (torch.zeros(1, generator.cfg.num_mels, frames),), buf, input_names=["mel"],
                          output_names=["audio"], opset_version=17, dynamo=False,
                          dynamic_axes={"mel": {0: "batch", 2: "frames"}, "audio": {0: "batch", 2: "samples"}})
    return buf.getvalue()

def _ort_session(model: bytes):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.log_severity_level = 3
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


# %% [markdown]
# ## `Vocoder`

# %%
#| export
def _as_mel_batch(mel, num_mels: int) -> torch.Tensor:
    mel = torch.as_tensor(mel).detach().float()
    if mel.dim() == 2: mel = mel[None]
    if mel.dim() != 3 or mel.shape[1] != num_mels:
        raise ValueError(f"expected a log-mel [{num_mels}, T] or [B, {num_mels}, T], got shape {tuple(mel.shape)}")
    return mel

class Vocoder:
    "A generator ready for inference: log-mel `[80, T]` / `[B, 80, T]` to float audio at the config's sampling rate."
    def __init__(self, generator: Generator, config: Config, device=None, backend: str = "auto",
                 chunk_frames: int = 1024):
        if backend not in ("auto", "torch", "onnxruntime"): raise ValueError(f"unknown backend {backend!r}: auto, torch or onnxruntime")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.config, self.mel_config = config, config.mel
        self.generator = generator.remove_weight_norm().eval().requires_grad_(False).to(self.device)
        self.context = receptive_field_frames(generator.cfg)
        self.chunk_frames = chunk_frames
        self.backend = "torch" if backend == "auto" and self.device.type != "cpu" else backend
        self._session = None

    @classmethod
    def from_checkpoint(cls, path, preset: str | None = None, device=None, **kwargs) -> "Vocoder":
        "Load a project checkpoint (config stored in it) or an official `g_XXXXXXXX` file (`preset` given or inferred), safely."
        generator, config = generator_from_checkpoint(path, preset)
        return cls(generator, config, device, **kwargs)

    @property
    def sampling_rate(self) -> int: return self.mel_config.sampling_rate

    def _run(self, mel: torch.Tensor) -> torch.Tensor:
        "One generator pass `[B, 80, t]` -> `[B, hop t]` on the chosen backend."
        if self.backend != "torch" and self._session is None: self._start_onnxruntime()
        if self._session is not None:
            return torch.from_numpy(self._session.run(None, {"mel": mel.cpu().numpy()})[0][:, 0])
        with torch.inference_mode(): audio = self.generator(mel.to(self.device))[:, 0].float().cpu()
        return audio.clone()  # an ordinary tensor: inference-mode tensors refuse later in-place updates

    def _start_onnxruntime(self) -> None:
        try:
            session = _ort_session(_onnx_bytes(self.generator))
            probe = torch.randn(1, self.generator.cfg.num_mels, 24) - 5
            with torch.inference_mode(): expected = self.generator(probe)[:, 0]
            err = float(np.abs(session.run(None, {"mel": probe.numpy()})[0][:, 0] - expected.numpy()).max())
            if err > 1e-3: raise RuntimeError(f"ONNX Runtime differs from PyTorch by {err:.1e}")
            self._session = session
        except Exception as e:
            if self.backend == "onnxruntime": raise
            warnings.warn(f"ONNX Runtime unavailable ({type(e).__name__}: {str(e)[:100]}); using eager PyTorch")
        self.backend = "onnxruntime" if self._session is not None else "torch"

    def synthesize(self, mel: torch.Tensor) -> torch.Tensor:
        "Audio `[B, hop T]` for a mel batch `[B, 80, T]`, in chunks of `chunk_frames` frames plus the receptive field on each side."
        total, hop, ctx = mel.shape[-1], self.generator.cfg.hop_size, self.context
        if total <= self.chunk_frames + 2 * ctx: return self._run(mel)
        out = torch.empty(mel.shape[0], total * hop)
        for start in range(0, total, self.chunk_frames):
            stop = min(start + self.chunk_frames, total)
            lo, hi = max(0, start - ctx), min(total, stop + ctx)
            audio = self._run(mel[..., lo:hi])
            out[:, start * hop:stop * hop] = audio[:, (start - lo) * hop:(stop - lo) * hop]
        return out

    def __call__(self, mel):
        "Float audio for a log-mel `[80, T]` (-> `[hop T]`) or `[B, 80, T]` (-> `[B, hop T]`); numpy in, numpy out."
        batch = _as_mel_batch(mel, self.generator.cfg.num_mels)
        audio = self.synthesize(batch)
        audio = audio[0] if len(mel.shape) == 2 else audio
        return audio.numpy() if isinstance(mel, np.ndarray) else audio

    def resynthesize(self, wav_or_path, sampling_rate: int | None = None) -> np.ndarray:
        "Audio -> mel -> audio: any WAV file (or a float array at `sampling_rate`), mono or stereo, any rate; returns mono float32 at 22,050 Hz."
        audio = load_audio(wav_or_path, self.sampling_rate, sampling_rate)
        return self(chunked_mel(torch.from_numpy(audio), self.mel_config).numpy())

    def __repr__(self):
        return f"Vocoder({self.config.generator_preset}, device={self.device}, backend={self.backend}, context={self.context} frames)"


# %% [markdown]
# Reading audio: any format libsndfile reads, channels averaged to mono, resampled with soxr (high quality) to the vocoder's rate.

# %%
#| export
def load_audio(wav_or_path, target_rate: int = 22050, sampling_rate: int | None = None) -> np.ndarray:
    "Mono float32 audio at `target_rate` from a file path or an array (`[N]` or `[N, channels]` at `sampling_rate`)."
    import soundfile as sf, soxr
    if isinstance(wav_or_path, (str, os.PathLike)):
        path = Path(wav_or_path)
        if not path.is_file(): raise FileNotFoundError(f"{path}: audio file not found")
        try: audio, sampling_rate = sf.read(path, dtype="float32", always_2d=True)
        except Exception as e: raise ValueError(f"{path}: not a readable audio file ({str(e).splitlines()[0][:120]})") from None
        name = str(path)
    else:
        audio, name = np.asarray(wav_or_path, dtype=np.float32), "audio"
        sampling_rate = sampling_rate or target_rate
        if audio.ndim == 1: audio = audio[:, None]
    if audio.ndim != 2 or audio.shape[0] == 0: raise ValueError(f"{name}: empty or not [samples, channels] audio (shape {audio.shape})")
    mono = audio.mean(axis=1)
    if not np.isfinite(mono).all(): raise ValueError(f"{name}: audio contains NaN or infinite samples")
    if sampling_rate != target_rate: mono = soxr.resample(mono, sampling_rate, target_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


# %%
show_doc(Vocoder.from_checkpoint)

# %%
show_doc(Vocoder.__call__)

# %%
show_doc(Vocoder.resynthesize)

# %% [markdown]
# ### Official checkpoints give the reference output
#
# An official-format `g_XXXXXXXX` file (`{"generator": state_dict}` with weight-norm keys), filled with the deterministic weights of the reference test data, loads through `Vocoder.from_checkpoint` and reproduces the reference implementation's output: within `1e-4` in PyTorch, and within the `1e-3` that the ONNX Runtime path is held to (its kernels sum in a different order; these untrained weights drive V1's activations far beyond those of a trained model, which magnifies rounding). (With untrained weights the audio is noise, so this is a numeric check, not something to listen to.)

# %%
import json
from hifigan_ruslan.checkpoints import atomic_save
from hifigan_ruslan.generator import reference_weights

# %%
ref_dir = Path("testdata/reference")
manifest = json.loads((ref_dir / "state_dict_manifest.json").read_text())
tmp = Path(tempfile.mkdtemp())
for name in ["v1", "v2", "v3"]:
    gold = np.load(ref_dir / f"generator_{name}.npz")
    ckpt = atomic_save({"generator": reference_weights(manifest[f"generator_{name}"], float(gold["fill_scale"]))},
                       tmp / f"official_{name}" / "g_02500000")
    scale = np.abs(gold["audio"]).max()
    for backend in ["torch", "onnxruntime"] if name == "v3" else ["torch"]:  # exporting V1 to ONNX takes a while
        voc = Vocoder.from_checkpoint(ckpt, preset=name, device="cpu", backend=backend)
        err = np.abs(voc(gold["mel"]) - gold["audio"]).max()
        print(f"{name} {backend:>11}: max |ours - reference| = {err:.1e} ({err / scale:.1e} of the peak)")
        assert err < (1e-4 if backend == "torch" else 1e-3) and err / scale < 1e-3

# %% [markdown]
# ### Chunked equals one-shot
#
# With chunks far shorter than the input (16 frames, so dozens of joins), the output equals a single pass everywhere, edges included:

# %%
from hifigan_ruslan.config import preset_config
from hifigan_ruslan.config import config_to_dict

# %%
tiny_cfg = preset_config("tiny")
torch.manual_seed(0)
tiny_ckpt = atomic_save({"generator": Generator(tiny_cfg.generator).state_dict(), "config": config_to_dict(tiny_cfg), "steps": 0},
                        tmp / "tiny" / "g_00000000")
mel = torch.from_numpy(np.load(ref_dir / "mel_espeak_ru.npz")["mel"])
for backend in ["torch", "onnxruntime"]:
    one_shot = Vocoder.from_checkpoint(tiny_ckpt, backend=backend, device="cpu", chunk_frames=10_000)(mel)
    chunked = Vocoder.from_checkpoint(tiny_ckpt, backend=backend, device="cpu", chunk_frames=16)(mel)
    err = (chunked - one_shot).abs().max().item()
    print(f"{backend}: {mel.shape[-1]} frames in chunks of 16: max |chunked - one-shot| = {err:.1e}")
    assert chunked.shape == one_shot.shape == (256 * mel.shape[-1],) and err < 1e-5

# %% [markdown]
# The same for a V2 generator (the widest receptive field, shared with V1) and a batch. Its freshly initialised weights keep activations at a realistic scale; the reference weights above drive them so high that even a batch and a single pass of the same input differ by `1e-4` through rounding alone.

# %%
torch.manual_seed(1)
v2 = Vocoder(Generator.from_preset("v2"), preset_config("v2"), device="cpu", backend="torch")
batch = torch.stack([mel[:, :48], mel[:, 40:88]])
whole = v2(batch)
v2.chunk_frames = 16
err = (v2(batch) - whole).abs().max().item()
print(f"V2, batch of 2 x 48 frames in chunks of 16: max |chunked - one-shot| = {err:.1e} (output peak {whole.abs().max():.2f})")
assert whole.shape == (2, 256 * 48) and err < 1e-5

# %% [markdown]
# Inputs: numpy in gives numpy out; a wrong shape is a one-line error.

# %%
voc = Vocoder.from_checkpoint(tiny_ckpt, device="cpu")
y = voc(mel.numpy())
assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == (256 * mel.shape[1],)
for backend in ["torch", "onnxruntime"]:  # tensors out are ordinary tensors, even from a tensor that requires grad
    y = Vocoder.from_checkpoint(tiny_ckpt, device="cpu", backend=backend)(mel.clone().requires_grad_())
    y *= 0.5
print(voc)
for bad in [np.zeros((40, 10)), np.zeros((2, 3, 80, 10))]:
    try: voc(bad); raise AssertionError
    except ValueError as e: print(e)

# %% [markdown]
# ### Resynthesis from any WAV
#
# Stereo at 44.1 kHz, mono at 16 kHz: both come back as mono 22,050 Hz audio of the same duration.

# %%
import soundfile as sf
import soxr

# %%
speech = np.load(ref_dir / "mel_espeak_ru.npz")["audio"]
stereo = soxr.resample(np.stack([speech, 0.5 * speech], 1), 22050, 44100)
sf.write(tmp / "stereo44k.wav", stereo, 44100)
sf.write(tmp / "mono16k.wav", soxr.resample(speech, 22050, 16000), 16000, subtype="PCM_16")
for f in ["stereo44k.wav", "mono16k.wav"]:
    out = voc.resynthesize(tmp / f)
    assert out.dtype == np.float32 and abs(len(out) - len(speech)) <= 256, (f, len(out), len(speech))
assert np.abs(load_audio(tmp / "stereo44k.wav")[:len(speech)] - 0.75 * speech).max() < 0.02  # mono mix, resampled back
try: voc.resynthesize(tmp / "missing.wav")
except FileNotFoundError as e: print(e)

# %% [markdown]
# ### Memory stays bounded
#
# Ten minutes of audio through `resynthesize`, measured in a separate process by its peak resident memory (Python, PyTorch and ONNX Runtime included): chunked mel and chunked synthesis add roughly the audio itself (53 MB) plus one chunk's activations. In one piece, the mel's STFT alone would hold a few hundred MB and a V1 generator several GB.

# %%
#| slow
import subprocess


# %%
#| slow
def peak_memory(minutes: int) -> tuple[float, float]:
    "Seconds resynthesised and peak resident MB of a fresh process that resynthesises `minutes` of audio."
    probe = f"""
import resource, numpy as np, torch
from hifigan_ruslan.inference import Vocoder
voc = Vocoder.from_checkpoint({str(tiny_ckpt)!r}, device="cpu")
voc(np.zeros((80, 600), np.float32))  # warm up: session and kernels
audio = (0.1 * np.sin(np.arange(22050 * 60 * {minutes}) * 0.05)).astype(np.float32)
out = voc.resynthesize(audio, 22050)
print(len(out) / 22050, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    return tuple(map(float, res.stdout.split()))

(s1, mb1), (s10, mb10) = peak_memory(1), peak_memory(10)
print(f"peak resident memory of the whole process: {mb1:.0f} MB for {s1 / 60:.0f} min, {mb10:.0f} MB for {s10 / 60:.0f} min")
# Ten times the input costs little more than the input and output arrays themselves (2 x 53 MB), not ten times the memory.
assert s10 > 599 and mb10 - mb1 < 500

# %% [markdown]
# Once a trained checkpoint exists, listening is the real test:
#
# ```python
# from IPython.display import Audio
# vocoder = Vocoder.from_checkpoint("runs/recipe/checkpoints/generator_best.pt")
# Audio(vocoder.resynthesize("speech.wav"), rate=22050)
# ```
#
# Here is what that gives for a validation clip of the bundled corpus after `hifigan-ruslan demo` (the `tiny` preset, 300 steps on a CPU: rough, but clearly the sentence), next to the original:

# %%
from IPython.display import Audio, display

# %%
for name in ["original", "resynth"]:
    print(name); display(Audio(url=f"assets/demo/{name}_000001.wav", embed=False))  # a link, not 64 KB of base64

# %% [markdown]
# ## Mel files from acoustic models
#
# Acoustic models write mels as `.npy` or `.pt`, as `[80, T]` or with a batch axis `[1, 80, T]`. A file that cannot be a HiFi-GAN log-mel is refused with a reason, because vocoding it would silently produce noise:
#
# - the wrong number of bands or rank; a `[T, 80]` layout is transposed only when unambiguous (exactly one axis has 80 entries);
# - NaN or infinite values;
# - values that are not a natural-log mel: all values `>= 0` (a linear magnitude or power mel: a log-mel of speech always has negative values, silence sits at `log(1e-5) = -11.5`), or values above 12 (a dB scale; no audio in [-1, 1] reaches `exp(12)`);
# - `.pt` files that need pickle beyond tensors (`weights_only=True` refuses them) and `.npy` files holding Python objects.

# %%
#| export
MAX_LOG_MEL = 12.0  # exp(12) ~ 1.6e5: far above any mel magnitude of audio in [-1, 1]

def load_mel_file(path, num_mels: int = 80) -> np.ndarray:
    "A log-mel `[num_mels, T]` from a `.npy` / `.pt` file; raises a one-line `ValueError` naming the file and the problem."
    path = Path(path)
    if not path.is_file(): raise FileNotFoundError(f"{path}: mel file not found")
    try:
        if path.suffix == ".npy": mel = np.load(path, allow_pickle=False)
        elif path.suffix == ".pt":
            mel = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(mel, dict) and "mel" in mel: mel = mel["mel"]
            if not isinstance(mel, torch.Tensor): raise ValueError(f"holds a {type(mel).__name__}, not a tensor")
            mel = mel.float().numpy()
        else: raise ValueError(f"unknown mel file type {path.suffix!r} (expected .npy or .pt)")
    except ValueError as e: raise ValueError(f"{path}: {str(e).splitlines()[0][:160]}") from None
    except pickle.UnpicklingError: raise ValueError(f"{path}: not a plain tensor file (needs pickle, refused: weights_only=True)") from None
    except Exception as e: raise ValueError(f"{path}: not a readable mel file ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if mel.dtype.kind not in "fiu": raise ValueError(f"{path}: holds {mel.dtype} values, not numbers")
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim == 3 and mel.shape[0] == 1: mel = mel[0]
    if mel.ndim != 2: raise ValueError(f"{path}: shape {mel.shape}: expected [{num_mels}, T] or [1, {num_mels}, T]")
    if mel.shape[0] != num_mels and mel.shape[1] == num_mels: mel = mel.T  # [T, 80], unambiguous
    if mel.shape[0] != num_mels: raise ValueError(f"{path}: shape {mel.shape}: {mel.shape[0]} bands, expected {num_mels}")
    if mel.shape[1] == 0: raise ValueError(f"{path}: has no frames")
    if not np.isfinite(mel).all(): raise ValueError(f"{path}: contains {int((~np.isfinite(mel)).sum())} NaN or infinite values")
    if mel.min() >= 0: raise ValueError(f"{path}: all values >= 0 (min {mel.min():.3g}): looks like a linear mel, expected a natural-log mel")
    if mel.max() > MAX_LOG_MEL: raise ValueError(f"{path}: values up to {mel.max():.3g}: not a natural-log mel (dB or linear scale?)")
    return np.ascontiguousarray(mel)


# %%
show_doc(load_mel_file)

# %%
good = np.load(ref_dir / "mel_espeak_ru.npz")["mel"]
mels = tmp / "mels"; mels.mkdir()
np.save(mels / "ok.npy", good)
torch.save(torch.from_numpy(good)[None], mels / "batched.pt")
np.save(mels / "time_major.npy", good.T)
cases = {"bands.npy": good[:64], "rank.npy": good[None, None], "nan.npy": np.where(good > -3, np.nan, good),
         "linear.npy": np.exp(good), "decibel.npy": 20 * np.log10(np.exp(good)) + 100, "empty.npy": good[:, :0]}
for name, arr in cases.items(): np.save(mels / name, arr)
np.save(mels / "objects.npy", np.array([{"mel": 1}], dtype=object), allow_pickle=True)
(mels / "text.pt").write_text("not a tensor")
class Evil:
    def __reduce__(self): return (os.system, ("echo pwned",))
torch.save({"mel": Evil()}, mels / "pickled.pt")
for ok in ["ok.npy", "batched.pt", "time_major.npy"]: assert np.array_equal(load_mel_file(mels / ok), good), ok
errors = {}
for name in [*cases, "objects.npy", "text.pt", "pickled.pt"]:
    try: load_mel_file(mels / name); raise AssertionError(name)
    except ValueError as e: errors[name] = str(e); print(str(e).replace(str(mels), "mels")[:140])
assert all(name in msg and "\n" not in msg for name, msg in errors.items())
assert "80" in errors["bands.npy"] and "NaN" in errors["nan.npy"] and "linear" in errors["linear.npy"]


# %% [markdown]
# ## Export
#
# Exported models take a mel `[B, 80, T]` of any length and return audio `[B, 1, 256 T]`: ONNX for ONNX Runtime and other engines, TorchScript for C++ (libtorch) or mobile. Weight norm is folded first. The file is written to a temporary name and renamed, so a failed export never leaves a half-written model behind.

# %%
#| export
def export_generator(vocoder: Vocoder, path, fmt: str = "onnx") -> Path:
    "Write the vocoder's generator as a dynamic-length ONNX or TorchScript model; returns the path."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    generator = vocoder.generator.cpu()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if fmt == "onnx": Path(tmp_name).write_bytes(_onnx_bytes(generator))
        elif fmt == "torchscript":
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.jit.trace(generator, torch.zeros(1, generator.cfg.num_mels, 32), check_trace=False).save(tmp_name)
        else: raise ValueError(f"unknown export format {fmt!r}: onnx or torchscript")
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
        generator.to(vocoder.device)
    return path

def check_export(vocoder: Vocoder, path, fmt: str, frames: int = 77) -> float:
    "Max absolute difference between the exported model and PyTorch on a random mel of a length unlike the export's."
    mel = torch.randn(2, vocoder.generator.cfg.num_mels, frames) - 5
    with torch.inference_mode(): expected = vocoder.generator.cpu()(mel).numpy()
    vocoder.generator.to(vocoder.device)
    if fmt == "onnx": got = _ort_session(Path(path).read_bytes()).run(None, {"mel": mel.numpy()})[0]
    else:
        with torch.inference_mode(): got = torch.jit.load(str(path))(mel).numpy()
    return float(np.abs(got - expected).max())


# %%
show_doc(export_generator)

# %%
for fmt in ["onnx", "torchscript"]:
    p = export_generator(voc, tmp / f"tiny.{fmt}", fmt)
    err = check_export(voc, p, fmt)
    print(f"{fmt}: {p.stat().st_size / 1e6:.2f} MB, max |exported - PyTorch| = {err:.1e}")
    assert err < 1e-4 and not list(tmp.glob(".*.tmp"))


# %% [markdown]
# ## Command line
#
# `generate` vocodes mel files, `resynth` WAV files, `export` writes a model. All take `--checkpoint` (this project's `g_` files or `generator_best.pt`; official `g_XXXXXXXX` files with `--preset` when their layout is ambiguous), `--device cpu|cuda` and `--backend`. A bad input file gets one line on stderr and the others are still processed; the exit status is 0 only if every file succeeded.

# %%
#| export
def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="g_XXXXXXXX / generator_best.pt of this project, or an official g_ file")
    p.add_argument("--preset", choices=["v1", "v2", "v3", "tiny"], help="generator preset of an official checkpoint (inferred if omitted)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if available")
    p.add_argument("--backend", choices=["auto", "torch", "onnxruntime"], default="auto", help="default: onnxruntime on CPU if installed")

def _vocoder(args) -> Vocoder:
    if args.device == "cuda" and not torch.cuda.is_available(): raise ValueError("--device cuda: no CUDA device available")
    return Vocoder.from_checkpoint(args.checkpoint, args.preset, args.device, backend=args.backend)

def _unique_wav(out: Path, stem: str, used: set) -> Path:
    name, n = stem, 1
    while name in used: n += 1; name = f"{stem}_{n}"
    used.add(name)
    return out / f"{name}.wav"

def _process_files(command: str, files: list[str], out_dir, work, what: str, rate: int = 22050) -> int:
    "Run `work(path) -> audio` on each file with a progress bar, write WAVs, report failures; returns the exit status."
    import soundfile as sf
    from tqdm.auto import tqdm
    out = Path(out_dir)
    if out.exists() and not out.is_dir(): raise NotADirectoryError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    written, failed, used = [], [], set()
    for f in tqdm(files, desc=command, unit="file", disable=len(files) < 2):
        try: audio = work(f)
        except (ValueError, FileNotFoundError) as e:
            failed.append(f); tqdm.write(f"hifigan-ruslan {command}: error: {e}", file=sys.stderr); continue
        target = _unique_wav(out, Path(f).stem, used)
        sf.write(target, np.clip(audio, -1, 1), rate, subtype="PCM_16")
        written.append((target, len(audio) / rate))
    seconds = sum(s for _, s in written)
    print(f"{command}: wrote {len(written)} WAV file(s), {seconds:.1f} s of audio, to {out}"
          + (f"; {len(failed)} of {len(files)} {what} failed" if failed else ""))
    return 0 if not failed else 1

def main_generate(argv: list[str] | None = None) -> int:
    "`hifigan-ruslan generate`: vocode mel files (`.npy` / `.pt`, `[80, T]` or `[1, 80, T]`) into WAVs."
    p = argparse.ArgumentParser(prog="hifigan-ruslan generate", description="Vocode mel spectrograms into 22,050 Hz WAV files.")
    _common_args(p)
    p.add_argument("--mel", nargs="+", required=True, metavar="FILE", help=".npy or .pt log-mel files")
    p.add_argument("--out", required=True, help="output directory (one WAV per mel, named after it)")
    args = p.parse_args(argv)
    voc = _vocoder(args)
    return _process_files("generate", args.mel, args.out, lambda f: voc(load_mel_file(f, voc.generator.cfg.num_mels)), "mel files",
                          voc.sampling_rate)

def main_resynth(argv: list[str] | None = None) -> int:
    "`hifigan-ruslan resynth`: audio -> mel -> audio for WAV files of any rate and channel count."
    p = argparse.ArgumentParser(prog="hifigan-ruslan resynth", description="Resynthesise audio files through mel and the vocoder.")
    _common_args(p)
    p.add_argument("--wav", nargs="+", required=True, metavar="FILE", help="audio files (any sample rate, mono or stereo)")
    p.add_argument("--out", required=True, help="output directory")
    args = p.parse_args(argv)
    voc = _vocoder(args)
    return _process_files("resynth", args.wav, args.out, voc.resynthesize, "audio files", voc.sampling_rate)

def main_export(argv: list[str] | None = None) -> int:
    "`hifigan-ruslan export`: the generator as a dynamic-length ONNX or TorchScript model, checked against PyTorch."
    p = argparse.ArgumentParser(prog="hifigan-ruslan export", description="Export the generator (mel [B, 80, T] -> audio [B, 1, 256 T]).")
    _common_args(p)
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    p.add_argument("--out", required=True, help="output model file")
    args = p.parse_args(argv)
    voc = _vocoder(args)
    path = export_generator(voc, args.out, args.format)
    try: check = f"max |{args.format} - PyTorch| = {check_export(voc, path, args.format):.1e}"
    except ImportError: check = "not checked (onnxruntime is not installed)"
    print(f"export: wrote {args.format} model ({path.stat().st_size / 1e6:.1f} MB) to {path}; input mel [B, "
          f"{voc.generator.cfg.num_mels}, T] -> audio [B, 1, {voc.generator.cfg.hop_size} T]; {check}")
    return 0


# %% [markdown]
# From the command line: two good mel files and three bad ones; the good ones become WAVs, each bad one gets its line, and the status is 1.

# %%
import subprocess


# %%
def cli(*args):
    res = subprocess.run([sys.executable, "-m", "hifigan_ruslan", *map(str, args)], capture_output=True, text=True, timeout=300)
    return res.returncode, res.stdout, res.stderr

rc, out, err = cli("generate", "--checkpoint", tiny_ckpt, "--mel", mels / "ok.npy", mels / "batched.pt",
                   mels / "bands.npy", mels / "linear.npy", mels / "missing.npy", "--out", tmp / "gen", "--device", "cpu")
print(out.strip()); print("\n".join(l for l in err.splitlines() if "error" in l).replace(str(mels), "mels"))
assert rc == 1 and sorted(f.name for f in (tmp / "gen").iterdir()) == ["batched.wav", "ok.wav"]
assert err.count("error:") == 3 and "bands.npy" in err and "linear.npy" in err and "missing.npy" in err
assert sf.info(tmp / "gen" / "ok.wav").samplerate == 22050 and sf.info(tmp / "gen" / "ok.wav").frames == 256 * good.shape[1]

# %%
rc, out, err = cli("resynth", "--checkpoint", tiny_ckpt, "--wav", tmp / "stereo44k.wav", tmp / "mono16k.wav", "--out", tmp / "re")
print(out.strip())
assert rc == 0 and len(list((tmp / "re").glob("*.wav"))) == 2

# %% [markdown]
# An official file with the wrong `--preset` is refused by the dispatcher with status 2 and one line:

# %%
rc, out, err = cli("export", "--checkpoint", tmp / "official_v3" / "g_02500000", "--preset", "v1", "--format", "onnx", "--out", tmp / "x.onnx")
print(err.strip().replace(str(tmp), "tmp"))
assert rc == 2 and len(err.strip().splitlines()) == 1

# %%
#| slow
rc, out, err = cli("export", "--checkpoint", tmp / "official_v3" / "g_02500000", "--format", "onnx", "--out", tmp / "v3.onnx")
print(out.strip().replace(str(tmp), "tmp"))
assert rc == 0 and float(out.rsplit("=", 1)[1].strip().rstrip(".")) < 1e-4

# %%
import shutil

# %%
shutil.rmtree(tmp)
