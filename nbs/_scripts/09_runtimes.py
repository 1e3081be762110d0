# %% [markdown]
# # Runtimes
#
# > The generator on OpenVINO for fast CPU inference: one ONNX export read once, exact in fp32, and a bf16 path on
# > CPUs that compute bf16 natively.

# %%
#| default_exp runtimes

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import io, warnings
from pathlib import Path
import numpy as np
import torch
from hifigan_ruslan.config import UserError
from hifigan_ruslan.generator import Generator


# %% [markdown]
# ## Why another runtime
#
# On a CPU, eager PyTorch spends HiFi-GAN's time in many small operations (convolutions interleaved with LeakyReLUs
# and residual adds) and in the memory traffic between them. An inference engine that sees the whole graph fuses
# the element-wise operations into the convolutions and picks kernels for the CPU it runs on. Of the engines tried on
# the project's benchmark (`benchmarks/bench_inference.py`, 2 threads of an Intel Xeon with AMX, 10 s of audio; the
# inference notebook quotes a run), **OpenVINO** was the fastest in fp32 for every preset, 1.3 to 1.9 times eager
# PyTorch with the same output to float rounding, where ONNX Runtime gained 1.0 to 1.5 times. So OpenVINO is the CPU
# backend of the `Vocoder`, and ONNX Runtime is not a dependency (the benchmark still times it when installed).
#
# OpenVINO reads the ONNX model that the project exports anyway (`hifigan-ruslan export`), so one exporter serves
# both. Converting straight from the PyTorch module (`openvino.convert_model`) was tried and took 12 s for V1 against
# under 1 s for the ONNX export.

# %% [markdown]
# ## The ONNX model
#
# Weight norm must be folded first (`Generator.remove_weight_norm`), so the weights are plain constants; the
# exporter's own constant folding then has nothing to fold but still copies every weight, which for V1's 55 MB took
# 1.5 s of a 2.2 s export, so it is switched off (OpenVINO folds constants itself). Tracing on 8 frames is enough:
# batch and length are dynamic axes.

# %%
#| export
def onnx_model(generator: Generator, frames: int = 8) -> bytes:
    "`generator` as ONNX opset 17, dynamic batch and length: mel `[B, num_mels, T]` -> audio `[B, 1, hop T]`."
    buf = io.BytesIO()
    mel = torch.zeros(1, generator.num_mels, frames)
    dynamic_axes = {"mel": {0: "batch", 2: "frames"}, "audio": {0: "batch", 2: "samples"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(generator, (mel,), buf, input_names=["mel"], output_names=["audio"],
                          opset_version=17, dynamo=False, do_constant_folding=False,
                          dynamic_axes=dynamic_axes)
    return buf.getvalue()


# %%
show_doc(onnx_model)

# %% [markdown]
# ## Precision
#
# In fp32 OpenVINO computes what PyTorch computes, up to the order of float sums. In **bf16** (8 bits of mantissa)
# V1 runs more than twice as fast again on a CPU with AMX (matrix units for bf16) or AVX512-BF16; the narrower V2
# and V3 gain nothing, their time is not in large convolutions. With random weights the output moves by about 1e-3,
# 40 to 55 dB below the signal; with trained weights the waveform moves much more while its spectrum stays put, which
# the inference notebook measures on real speech. bf16 is therefore a choice, not the default. On a CPU without those
# instructions bf16 would only be emulated, slower and still less exact, so `bf16` falls back to fp32 there with one
# warning.
#
# OpenVINO's CPU plugin lists `BF16` among its optimisation capabilities exactly when the CPU computes it natively,
# so that is the test. The fp32 hint is set explicitly as well: on a CPU with AMX OpenVINO's default inference
# precision is bf16, which would silently change the output.

# %%
#| export
PRECISIONS = ("fp32", "bf16")
OPENVINO_PRECISION = {"fp32": "f32", "bf16": "bf16"}  # INFERENCE_PRECISION_HINT values

def native_bf16() -> bool:
    "Whether this CPU computes bf16 natively (AMX or AVX512-BF16), as OpenVINO's CPU plugin reports it."
    import openvino
    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")

def check_precision(precision: str) -> str:
    "`precision` if it is one of `PRECISIONS`; a `UserError` listing them otherwise."
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return precision

def runnable_precision(precision: str, backend: str) -> str:
    "The precision that runs: bf16 only on the OpenVINO backend with native bf16, else fp32 (with a warning)."
    if check_precision(precision) == "fp32":
        return "fp32"
    if backend != "openvino":
        warnings.warn(f"precision bf16 runs on the OpenVINO CPU backend only, not on {backend}: using fp32")
        return "fp32"
    if not native_bf16():
        warnings.warn("precision bf16: this CPU has no native bf16 (AMX or AVX512-BF16): using fp32")
        return "fp32"
    return "bf16"


# %%
show_doc(native_bf16)

# %%
show_doc(runnable_precision)

# %%
print(f"native bf16 on this CPU: {native_bf16()}")
test_eq(runnable_precision("fp32", "openvino"), "fp32")
test_eq(runnable_precision("bf16", "openvino"), "bf16" if native_bf16() else "fp32")
test_fail(lambda: runnable_precision("fp16", "openvino"), contains="unknown precision 'fp16': choose one of fp32")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    test_eq(runnable_precision("bf16", "torch"), "fp32")
test_eq([str(w.message) for w in caught], ["precision bf16 runs on the OpenVINO CPU backend only, not on torch: "
                                          "using fp32"])


# %% [markdown]
# ## A compiled generator
#
# `OpenVINOGenerator` compiles the ONNX model once for this CPU, with the inference precision and the number of
# threads fixed (by default PyTorch's, so `OMP_NUM_THREADS` and `torch.set_num_threads` apply to both backends),
# and keeps one infer request for its calls. The model keeps dynamic shapes: chunked synthesis meets three lengths
# per file (first, middle and last chunk), and OpenVINO prepares a new length in a fraction of a chunk's time.
#
# OpenVINO can also cache compiled models on disk (`CACHE_DIR`). Measured on V1 it shortened compilation by
# 0.25 s, against an export that has to run anyway (the cache is keyed on the model, so the model must exist first)
# and 55 MB written per checkpoint; it is not used.

# %%
#| export
class OpenVINOGenerator:
    "An ONNX generator compiled by OpenVINO for the CPU: numpy mel `[B, num_mels, T]` -> audio `[B, hop T]`."
    def __init__(self, model: bytes | str | Path, precision: str = "fp32", num_threads: int | None = None):
        import openvino
        core = openvino.Core()
        network = core.read_model(model, b"") if isinstance(model, bytes) else core.read_model(str(model))
        self.precision = check_precision(precision)
        self.num_threads = num_threads or torch.get_num_threads()
        config = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[precision],
                  "INFERENCE_NUM_THREADS": self.num_threads, "PERFORMANCE_HINT": "LATENCY"}
        self._request = core.compile_model(network, "CPU", config).create_infer_request()

    @classmethod
    def from_generator(cls, generator: Generator, precision: str = "fp32",
                       num_threads: int | None = None) -> "OpenVINOGenerator":
        "Export `generator` (weight norm folded) to ONNX in memory and compile it."
        return cls(onnx_model(generator), precision, num_threads)

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        "Audio `[B, hop T]` float32 for a mel `[B, num_mels, T]`."
        audio = self._request.infer({0: np.ascontiguousarray(mel, dtype=np.float32)})[0]
        return np.ascontiguousarray(audio[:, 0])

    def __repr__(self):
        return f"OpenVINOGenerator(precision={self.precision}, num_threads={self.num_threads})"


# %%
show_doc(OpenVINOGenerator)

# %%
show_doc(OpenVINOGenerator.from_generator)

# %% [markdown]
# A tiny generator compiled in fp32 gives PyTorch's output to float rounding, for a batch and for lengths it has
# not seen before (the relative RMS error is the generator notebook's measure):

# %%
from hifigan_ruslan.generator import relative_rms_error

# %%
torch.manual_seed(0)
tiny = Generator.from_preset("tiny").eval().remove_weight_norm()
compiled = OpenVINOGenerator.from_generator(tiny)
print(compiled)
mel = torch.from_numpy(np.load("testdata/reference/mel_espeak_ru.npz")["mel"])
for batch in [mel[None, :, :40], torch.stack([mel[:, :61], mel[:, 30:91]]), mel[None]]:
    with torch.no_grad():
        expected = tiny(batch)[:, 0].numpy()
    got = compiled(batch.numpy())
    test_eq(got.shape, expected.shape)
    err = relative_rms_error(got, expected)
    test_eq(err < 1e-5, True)  # measured 1.3e-7 at most: margin 75
print(f"fp32: relative RMS error {err:.1e}, max |difference| {np.abs(got - expected).max():.1e}")


# %% [markdown]
# In bf16 the same generator (random weights) stays some 40 dB below its signal (the bound says "a rounding
# difference, not a bug": a wrong weight or a missing layer gives errors near 0 dB). On a CPU without native bf16
# the cell says so and checks nothing.

# %%
def snr_db(signal: np.ndarray, reference: np.ndarray) -> float:
    "Signal-to-noise ratio of `signal` against `reference`, in dB."
    noise = np.sum((signal - reference) ** 2)
    return float(10 * np.log10(np.sum(reference ** 2) / max(noise, 1e-30)))

if native_bf16():
    bf16 = OpenVINOGenerator.from_generator(tiny, "bf16")
    snr = snr_db(bf16(mel[None].numpy()), expected)
    print(f"bf16: {snr:.0f} dB against PyTorch fp32")
    test_eq(snr > 30, True)  # measured 53 dB
else:
    print("this CPU has no native bf16: the bf16 check is skipped")
