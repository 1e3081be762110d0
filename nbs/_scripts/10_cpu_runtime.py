# %% [markdown]
# # CPU runtime
#
# > The generator on OpenVINO for fast CPU inference: its graph built from the weights, upsampling as plain convolutions, exact in fp32, and a bf16 path with its first steps in fp32 on CPUs that compute bf16 natively.

# %%
#| default_exp cpu_runtime

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import warnings
from pathlib import Path
from typing import Sequence
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from fastcore.basics import patch
from hifigan_ruslan.config import INFERENCE_PRECISIONS
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.generator import LRELU_SLOPE, Generator


# %% [markdown]
# ## Why another runtime
#
# On a CPU, eager PyTorch spends HiFi-GAN's time in many small operations (convolutions interleaved with LeakyReLUs
# and residual adds) and in the memory traffic between them. An inference engine that sees the whole graph fuses
# the element-wise operations into the convolutions and picks kernels for the CPU it runs on. Of the engines tried on
# the project's benchmark (`benchmarks/bench_inference.py`; the inference notebook quotes a run), **OpenVINO** was
# the fastest for every preset, where ONNX Runtime gained 1.0 to 1.5 times over eager PyTorch. So OpenVINO is the
# CPU backend of the `Vocoder`, and ONNX Runtime is not a dependency (the benchmark still times it when installed).
#
# OpenVINO could read the ONNX model that the project exports (`hifigan-ruslan export`), but exporting costs more
# than compiling: 1.8 s for V1 in a fresh process (0.7 s of it the export proper, the rest the exporter's first use)
# against 0.3 s to compile. Converting straight from the PyTorch module (`openvino.convert_model`) took 4 to 12 s.
# So the runtime builds OpenVINO's graph itself, from the generator's weights, with OpenVINO's operations: it takes
# a few hundredths of a second, and it is the place to shape the graph for the CPU (below). The ONNX export stays for
# other runtimes.

# %% [markdown]
# ## Upsampling as plain convolutions
#
# OpenVINO's profile of V1 showed where its time went: 41 % in the four transposed convolutions, which its CPU
# plugin runs on slower kernels than plain convolutions (in bf16 not on the AMX matrix units at all). A transposed
# convolution with stride `u` is `u` plain convolutions in disguise: output sample `q u + r` (phase `r` of input frame
# `q`) is a sum over a few input frames around `q`, with the kernel taps `j = r + p (mod u)`. Phases that read the
# same input frames share one plain convolution at the *input* rate with `u'` times the output channels; the phases
# are then interleaved. HiFi-GAN's kernels are twice their strides, so the `u` phases form two groups of `u / 2`, each
# reading two frames: exactly the multiplications of the transposed convolution, none wasted on zero taps.
#
# `PolyphaseUpsample` builds these convolutions from a `ConvTranspose1d`. It computes the same sums in another
# order, so it matches to float rounding, on any kernel, stride and padding whose output is `u` samples per input
# frame (the generator's, `padding = (k - u) / 2`). The runtimes use it in the graphs they compile; the generator
# itself keeps the reference's layers, so checkpoints and training are unchanged.

# %%
#| export
class PolyphaseUpsample(nn.Module):
    "A `ConvTranspose1d` (padding `(k - stride) / 2`) as plain convolutions, one per group of output phases."
    def __init__(self, up: nn.ConvTranspose1d):
        super().__init__()
        weight, (u,), (p,) = up.weight.detach(), up.stride, up.padding
        c_in, c_out, k = weight.shape
        if k - u != 2 * p or up.groups != 1 or up.dilation != (1,) or up.output_padding != (0,):
            raise ValueError(f"{up}: only stride-u convolutions with padding (k - u) / 2 are rewritten")
        bias = up.bias.detach() if up.bias is not None else torch.zeros(c_out)
        taps = {}  # phase r -> {input frame offset d: kernel tap j}
        for r in range(u):
            a, b = divmod(r + p, u)
            taps[r] = {a - m: j for m, j in enumerate(range(b, k, u))}
        groups = {}  # (first, last offset) -> the phases that read those frames
        for r, by_offset in taps.items():
            groups.setdefault((min(by_offset), max(by_offset)), []).append(r)
        self.pad = (max(0, -min(lo for lo, _ in groups)), max(0, max(hi for _, hi in groups)))
        self.stride, self.out_channels = u, c_out
        self.convs, self.windows = nn.ModuleList(), []
        for (lo, hi), phases in groups.items():
            kernel = torch.zeros(len(phases), c_out, c_in, hi - lo + 1)
            for n, r in enumerate(phases):
                for d, j in taps[r].items():
                    kernel[n, :, :, d - lo] = weight[:, :, j].T
            conv = nn.Conv1d(c_in, len(phases) * c_out, hi - lo + 1)
            conv.weight.data, conv.bias.data = kernel.flatten(0, 1), bias.repeat(len(phases))
            self.convs.append(conv)
            self.windows.append((self.pad[0] + lo, self.pad[1] - hi))  # the padded input each one reads
        order = [r for phases in groups.values() for r in phases]
        self.order = None if order == sorted(order) else [order.index(r) for r in range(u)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, self.pad)
        length = padded.shape[-1]
        y = torch.cat([conv(padded[..., first:length - last])
                       for conv, (first, last) in zip(self.convs, self.windows)], 1)
        y = y.unflatten(1, (self.stride, self.out_channels))  # [B, phase, channel, frame]
        if self.order is not None:
            y = y[:, self.order]
        return y.permute(0, 2, 3, 1).flatten(2)  # sample q u + r is phase r of frame q


# %%
show_doc(PolyphaseUpsample)

# %% [markdown]
# The rewrite against PyTorch's transposed convolution, on the generator's shapes (V1 and V3 strides 8, 4 and 2
# with kernels twice as long) and on shapes the generator does not use (odd stride, kernel not a multiple of the
# stride, a single tap per phase), with the relative RMS error of the generator notebook; any other padding is
# refused:

# %%
from hifigan_ruslan.testing import relative_rms_error

# %%
torch.manual_seed(0)
for c_in, c_out, k, u in [(512, 256, 16, 8), (128, 64, 8, 4), (64, 32, 4, 2), (16, 8, 11, 5), (8, 4, 9, 3),
                          (8, 4, 3, 3)]:
    up = nn.ConvTranspose1d(c_in, c_out, k, u, padding=(k - u) // 2)
    x = torch.randn(2, c_in, 37)
    with torch.no_grad():
        expected, got = up(x), PolyphaseUpsample(up)(x)
    test_eq(got.shape, expected.shape)
    err = relative_rms_error(got, expected)
    assert err < 1e-5, err  # measured 6.1e-8 .. 4.7e-7
    convs = len(PolyphaseUpsample(up).convs)
    print(f"stride {u}, kernel {k:2}: {convs} convolution(s), relative RMS error {err:.1e}")
test_fail(lambda: PolyphaseUpsample(nn.ConvTranspose1d(8, 4, 16, 8, padding=3)), contains="padding (k - u)")


# %% [markdown]
# ## The OpenVINO graph
#
# `openvino_model` writes the generator's forward pass with OpenVINO's operations: the same convolutions (weights
# shared with the module's tensors at build time, copied into the model), LeakyReLU as OpenVINO's `PRelu` with one
# slope, and the upsampling as `PolyphaseUpsample` computes it. Its steps are counted as in the forward pass:
# `conv_pre` (step 0), then each stage's upsampling and its MRF (steps 1 and 2 for the first stage, 3 and 4 for the
# second, ...), then the output layer; `start` and `stop` select consecutive steps, so that parts of the generator
# can be compiled apart (the bf16 path below). A part's input is the mel when it starts at step 0 and the previous
# step's output otherwise; batch and length are dynamic.

# %%
#| export
def _conv(ops, x, conv: nn.Conv1d):
    "OpenVINO nodes for a `Conv1d` with bias."
    weight = ops.constant(conv.weight.detach().numpy())
    y = ops.convolution(x, weight, conv.stride, conv.padding, conv.padding, conv.dilation)
    return ops.add(y, ops.constant(conv.bias.detach().numpy().reshape(1, -1, 1)))

def _leaky_relu(ops, x, slope: float):
    return ops.prelu(x, ops.constant(np.array([slope], dtype=np.float32)))

def _upsample(ops, x, transposed: nn.ConvTranspose1d):
    "OpenVINO nodes for a stage's upsampling: LeakyReLU, then `PolyphaseUpsample(transposed).forward`."
    up = PolyphaseUpsample(transposed)
    padded = ops.pad(_leaky_relu(ops, x, LRELU_SLOPE), [0, 0, up.pad[0]], [0, 0, up.pad[1]], "constant")
    ends = [-last if last else np.iinfo(np.int64).max for _, last in up.windows]
    y = ops.concat([_conv(ops, ops.slice(padded, [first], [end], [1], [2]), conv)
                    for conv, (first, _), end in zip(up.convs, up.windows, ends)], 1)
    y = ops.reshape(y, [0, up.stride, up.out_channels, -1], special_zero=True)
    if up.order is not None:
        y = ops.gather(y, up.order, 1)
    return ops.reshape(ops.transpose(y, [0, 2, 3, 1]), [0, up.out_channels, -1], special_zero=True)

def _mrf(ops, x, blocks):
    "OpenVINO nodes for a stage's residual blocks, averaged."
    outs = []
    for block in blocks:
        y = x
        for c1, c2 in block.layers():
            t = _conv(ops, _leaky_relu(ops, y, LRELU_SLOPE), c1)
            if c2 is not None:
                t = _conv(ops, _leaky_relu(ops, t, LRELU_SLOPE), c2)
            y = ops.add(t, y)
        outs.append(y)
    total = outs[0]
    for y in outs[1:]:
        total = ops.add(total, y)
    return ops.divide(total, ops.constant(np.float32(len(blocks))))


# %% [markdown]
# The forward pass is a list of steps: `conv_pre`, an upsampling and an MRF per stage, the output layer. A model can be built from any consecutive run of them, which is how bf16 keeps its first steps in fp32.

# %%
#| export
def num_steps(generator: Generator) -> int:
    "Steps of `generator`'s forward pass: `conv_pre`, an upsampling and an MRF per stage, the output layer."
    return 2 * len(generator.ups) + 2

def _channels_into(generator: Generator, step: int) -> int:
    "Channels of the input of `step`: the mel's, `conv_pre`'s output, then halved by each upsampling."
    if step == 0:
        return generator.num_mels
    return generator.cfg.upsample_initial_channel // 2 ** (step // 2)

def openvino_model(generator: Generator, start: int = 0, stop: int | None = None):
    "Steps `start:stop` (all by default) of `generator` (weight norm folded) as an `openvino.Model`."
    import openvino
    import openvino.opset13 as ops
    stop = num_steps(generator) if stop is None else stop
    g, k = generator, generator.num_kernels
    stages = [step for i in range(len(g.ups))  # built only when run: a part rewrites just its own upsampling
              for step in (lambda x, i=i: _upsample(ops, x, g.ups[i]),
                           lambda x, i=i: _mrf(ops, x, g.resblocks[i * k:(i + 1) * k]))]
    output = lambda x: ops.tanh(_conv(ops, _leaky_relu(ops, x, 0.01), g.conv_post))  # the default slope
    steps = [lambda x: _conv(ops, x, g.conv_pre), *stages, output]
    name = "mel" if start == 0 else "features"
    inputs = ops.parameter([-1, _channels_into(g, start), -1], np.float32, name=name)
    x = inputs
    for step in steps[start:stop]:
        x = step(x)
    return openvino.Model([x], [inputs], "hifigan_generator")


# %%
show_doc(openvino_model)

# %% [markdown]
# Compiled in fp32, the graph gives PyTorch's output to float rounding (the relative RMS error of the generator
# notebook), for the whole V1 generator and for two parts run in turn:

# %%
import openvino


# %%
def compiled(model, precision: str = "f32"):
    "A function numpy -> numpy running `model` on the CPU in `precision`."
    config = {"INFERENCE_PRECISION_HINT": precision}
    request = openvino.Core().compile_model(model, "CPU", config).create_infer_request()
    return lambda x: request.infer({0: x})[0]

torch.manual_seed(0)
v1 = Generator.from_preset("v1").eval().remove_weight_norm()
mel = torch.from_numpy(np.load("testdata/reference/mel_espeak_ru.npz")["mel"])[None, :, :64]
with torch.no_grad():
    expected = v1(mel).numpy()
whole = compiled(openvino_model(v1))(mel.numpy())
front, back = compiled(openvino_model(v1, stop=4)), compiled(openvino_model(v1, start=4))
features = front(mel.numpy())
in_parts = back(features)
print(f"V1: relative RMS error {relative_rms_error(whole, expected):.1e} whole, "
      f"{relative_rms_error(in_parts, expected):.1e} in two parts; features after step 4: {features.shape}")
test_eq(whole.shape, expected.shape)
test_eq(features.shape, (1, 128, 64 * 64))  # after V1's second upsampling
assert relative_rms_error(whole, expected) < 1e-5, relative_rms_error(whole, expected)  # measured 1.8e-7
assert relative_rms_error(in_parts, expected) < 1e-5, relative_rms_error(in_parts, expected)
test_eq(num_steps(v1), 10)

# %% [markdown]
# ## Precision
#
# In fp32 OpenVINO computes what PyTorch computes, up to the order of float sums. **bf16** keeps fp32's range with
# 8 bits of mantissa, and a CPU with AMX (matrix units for bf16) or AVX512-BF16 runs its convolutions several times
# faster. On a CPU without those instructions bf16 would only be emulated, slower and still less exact, so `bf16`
# falls back to fp32 there with one warning. OpenVINO's CPU plugin lists `BF16` among its optimisation capabilities
# exactly when the CPU computes it natively, so that is the test. The fp32 hint is set explicitly as well: on a CPU
# with AMX OpenVINO's default inference precision is bf16, which would silently change the output.
#
# A trained HiFi-GAN amplifies small changes made early in the network: the whole generator in bf16 puts the
# pretrained universal V1's waveform only 6 to 26 dB from its fp32 output on real speech, and most of that comes
# from the first steps, at the frame rate and the first upsampled rate, on which every later sample depends.
# Keeping steps in fp32, measured by `benchmarks/bench_bf16.py` on 36 synthetic clips (99 s: the test corpus and the fixture
# corpus; speed-up of the whole over eager PyTorch on 10 s of speech, 2 threads).
#
# | steps in fp32 | SNR against fp32, dB | PESQ-wb against fp32 | speed-up |
# |---|---|---|---|
# | none | 5.9 .. 26.3 | -0.001 | 4.90x |
# | `conv_pre` and the first upsampling (2) | 23.5 .. 40.9 | -0.010 | 4.84x |
# | and the first stage's MRF (3) | 36.6 .. 46.4 | -0.009 | 3.72x |
# | **and the second stage's upsampling (4)** | **40.9 .. 47.4** | **-0.005** | **3.32x** |
# | and the second stage's MRF (5) | 44.5 .. 49.1 | -0.002 | 2.24x |
#
# (PESQ barely moves in any row: what bf16 changes is not what is heard. The rule of at least 40 dB asks for four
# steps. The speed-ups move by 10 % between runs; the inference notebook's benchmark run gave 3.63x for four.)
#
# So `bf16` compiles the generator in two parts: its first `BF16_FP32_STEPS` steps (through the second stage's
# upsampling) in fp32, where they cost a quarter of the arithmetic, and the rest in bf16, where most of the time goes.
# Marking single operations as fp32 inside one bf16 model (OpenVINO's runtime attributes) was tried: it reached the
# convolutions and adds but not the activations, which stayed bf16 and gave no gain.

# %%
#| export
OPENVINO_PRECISION = {"fp32": "f32", "bf16": "bf16"}  # INFERENCE_PRECISION_HINT values
BF16_FP32_STEPS = 4  # conv_pre, the first stage, the second upsampling: fp32 under `bf16`

def native_bf16() -> bool:
    "Whether this CPU computes bf16 natively (AMX or AVX512-BF16), as OpenVINO's CPU plugin reports it."
    import openvino
    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")

def check_precision(precision: str) -> str:
    "`precision` if it is one of `INFERENCE_PRECISIONS`; a `UserError` listing them otherwise."
    if precision not in INFERENCE_PRECISIONS:
        raise UserError(f"unknown precision {precision!r}: choose one of {', '.join(INFERENCE_PRECISIONS)}")
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
# `OpenVINOGenerator` compiles consecutive parts of a generator once for this CPU, each with its inference
# precision, all with the number of threads fixed (by default PyTorch's, so `OMP_NUM_THREADS` and
# `torch.set_num_threads` apply to both backends), and keeps one infer request per part; a call runs them in turn.
# `from_generator` builds it from a `Generator`: in fp32 one part, in bf16 the two parts above. The models keep
# dynamic shapes. OpenVINO prepares its kernels for each new input length on the first call with it: in fp32 a
# fraction of the synthesis (0.8 s for a 12 s window of V1), in bf16 seconds (2 to 7 s for V1, growing with the
# length); the `Vocoder` therefore cuts long inputs into windows of one length. Its cache of prepared lengths grows
# without bound by default (1.5 GB after 48 short V1 inputs of different lengths, still growing), so it is switched
# off (`CPU_RUNTIME_CACHE_CAPACITY` 0: the same inputs stayed at 0.7 GB, and a repeated length is not prepared again).
#
# OpenVINO can also cache compiled models on disk (`CACHE_DIR`). The cache is keyed on the model, so the graph must
# be built first anyway; what it could save is the compilation, 0.3 s for V1 in fp32, against 55 MB written per
# checkpoint, and not the preparation for each input length, which happens on the first calls. It is not used.

# %%
#| export
class OpenVINOGenerator:
    "Consecutive parts of a generator (OpenVINO or ONNX models) compiled for the CPU: mel -> audio."
    def __init__(self, parts: Sequence[tuple], num_threads: int | None = None):
        import openvino
        core = openvino.Core()
        self.num_threads = num_threads or torch.get_num_threads()
        self.precisions = [check_precision(precision) for _, precision in parts]
        self.precision = "bf16" if "bf16" in self.precisions else "fp32"
        self._requests = []
        for model, precision in parts:
            if isinstance(model, bytes):  # ONNX in memory
                model = core.read_model(model, b"")
            elif isinstance(model, (str, Path)):  # an ONNX file
                model = core.read_model(str(model))
            config = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[precision],
                      "INFERENCE_NUM_THREADS": self.num_threads, "PERFORMANCE_HINT": "LATENCY",
                      "CPU_RUNTIME_CACHE_CAPACITY": 0}  # its per-length cache grows without bound
            self._requests.append(core.compile_model(model, "CPU", config).create_infer_request())

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        "Audio `[B, hop T]` float32 for a mel `[B, num_mels, T]`: the parts in turn."
        x = np.ascontiguousarray(mel, dtype=np.float32)
        for n, request in enumerate(self._requests):
            last = n == len(self._requests) - 1  # between parts the features stay in OpenVINO's buffers
            x = request.infer({0: x}, share_inputs=True, share_outputs=not last)[0]
        return np.ascontiguousarray(x[:, 0])

    def __repr__(self):
        parts = " + ".join(self.precisions)
        return f"OpenVINOGenerator(precision={self.precision} ({parts}), num_threads={self.num_threads})"


# %% [markdown]
# Two ways to make one: from an ONNX model (an exported file), or from a generator's weights, whole in fp32, or in two parts for bf16.

# %%
#| export
@patch(cls_method=True)
def from_onnx(cls: OpenVINOGenerator, model: bytes | str | Path, precision: str = "fp32",
              num_threads: int | None = None) -> "OpenVINOGenerator":
    "One ONNX generator (an `export`ed file, say) compiled in `precision`."
    return cls([(model, precision)], num_threads)

@patch(cls_method=True)
def from_generator(cls: OpenVINOGenerator, generator: Generator, precision: str = "fp32",
                   num_threads: int | None = None, fp32_steps: int = BF16_FP32_STEPS) -> "OpenVINOGenerator":
    "`generator` (weight norm folded) compiled; in bf16 with its first `fp32_steps` steps in fp32."
    if check_precision(precision) == "fp32":
        return cls([(openvino_model(generator), "fp32")], num_threads)
    split = min(fp32_steps, num_steps(generator) - 1)
    parts = [(openvino_model(generator, stop=split), "fp32")] if split > 0 else []
    return cls(parts + [(openvino_model(generator, start=split), "bf16")], num_threads)


# %%
show_doc(OpenVINOGenerator)

# %%
show_doc(OpenVINOGenerator.from_generator)

# %%
show_doc(OpenVINOGenerator.from_onnx)

# %% [markdown]
# A tiny generator compiled in fp32 gives PyTorch's output to float rounding, for a batch and for lengths it has
# not seen before, and so does an ONNX file written by the exporter:

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
    assert err < 1e-5, err  # measured 2.3e-7 at most: margin 40
print(f"fp32: relative RMS error {err:.1e}, max |difference| {np.abs(got - expected).max():.1e}")


# %% [markdown]
# In bf16 the generator runs as two compiled parts, the first in fp32. With random weights the output stays some
# 40 dB below its signal (the bound says "a rounding difference, not a bug": a wrong weight or a missing layer
# gives errors near 0 dB); the inference notebook measures the pretrained generator on real speech. On a CPU without
# native bf16 the cell says so and checks nothing.

# %%
def snr_db(signal: np.ndarray, reference: np.ndarray) -> float:
    "Signal-to-noise ratio of `signal` against `reference`, in dB."
    noise = np.sum((signal - reference) ** 2)
    return float(10 * np.log10(np.sum(reference ** 2) / max(noise, 1e-30)))

if native_bf16():
    bf16 = OpenVINOGenerator.from_generator(tiny, "bf16")
    print(bf16)
    test_eq(bf16.precisions, ["fp32", "bf16"])
    snr = snr_db(bf16(mel[None].numpy()), expected)
    print(f"bf16: {snr:.0f} dB against PyTorch fp32")
    assert snr > 30, snr  # measured 53 dB
else:
    print("this CPU has no native bf16: the bf16 check is skipped")
