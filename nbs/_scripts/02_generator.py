# %% [markdown]
# # Generator
#
# > The HiFi-GAN generator: transposed-convolution upsampling by 256 with multi-receptive-field fusion, loading the official checkpoints.

# %%
#| default_exp generator

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_close, test_fail

# %%
#| export
from __future__ import annotations
import dataclasses, warnings
import torch
import torch.nn as nn
import torch.nn.functional as F
from fastcore.basics import patch
from hifigan_ruslan.config import GENERATOR_PRESETS, GeneratorConfig, MelConfig
from hifigan_ruslan.errors import UserError

# %% [markdown]
# ## How the generator works
#
# The generator turns a log-mel `[B, 80, T]` into a waveform `[B, 1, 256 T]`. It is fully convolutional, so it accepts any length `T`.
#
# | stage | V1 | V2 | V3 |
# |---|---|---|---|
# | `conv_pre`: 80 mel bands to `C` channels, kernel 7 | C = 512 | C = 128 | C = 256 |
# | upsampling: transposed convolutions, halving the channels each time | x8, x8, x2, x2 | x8, x8, x2, x2 | x8, x8, x4 |
# | after each upsampling: an MRF block (3 residual blocks, kernels) | 3, 7, 11 | 3, 7, 11 | 3, 5, 7 |
# | residual block type | ResBlock1 | ResBlock1 | ResBlock2 |
# | `conv_post`: to 1 channel, kernel 7, then `tanh` | | | |
#
# **Upsampling.** Each transposed convolution multiplies the time resolution by its rate; the product of the rates is the hop size (256), so one mel frame becomes 256 samples. Kernel sizes are twice the stride (`padding = (k - u) / 2`) to limit checkerboard artefacts.
#
# **Multi-receptive-field fusion (MRF).** After every upsampling stage, several residual blocks with different kernel sizes and dilations look at the same signal, and their outputs are averaged. Small kernels model fine, fast detail; large dilated kernels model slow periodic structure (pitch). Summing them lets one stage see patterns of many lengths at once: this is what makes HiFi-GAN both fast and sharp.
#
# **ResBlock1** applies, for each dilation, LeakyReLU, a dilated convolution, LeakyReLU and a plain convolution, with a skip connection. **ResBlock2** (V3) keeps only the dilated convolution: half the cost.
#
# **Weight normalisation** reparametrises every convolution's weight as a direction `v` times a magnitude `g` (`w = g v / ||v||`). It makes GAN training better conditioned, and it is why the official checkpoints store `weight_g` and `weight_v`. For inference it is folded back into plain weights with `remove_weight_norm()`, which is free speed.
#
# Activations are LeakyReLU with slope 0.1, except the one before `conv_post`, which in the reference implementation uses PyTorch's default slope (0.01); we keep that quirk so that official checkpoints sound the same here.

# %%
#| export
LRELU_SLOPE = 0.1

def get_padding(kernel_size: int, dilation: int = 1) -> int:
    "Padding that keeps the length of a stride-1 convolution."
    return (kernel_size * dilation - dilation) // 2

def weight_norm(module: nn.Module) -> nn.Module:
    "Weight normalisation with the official state-dict keys (`weight_g`, `weight_v`)."
    # the parametrization API would rename the keys to parametrizations.weight.*
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return nn.utils.weight_norm(module)

def remove_weight_norm_from(modules) -> None:
    "Fold weight normalisation into plain weights (for inference)."
    for m in modules:
        try:
            nn.utils.remove_weight_norm(m)
        except ValueError:
            pass  # already removed

def init_weights(m: nn.Module, std: float = 0.01) -> None:
    "The reference initialisation of the generator's convolutions: normal with standard deviation `std`."
    if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
        m.weight.data.normal_(0.0, std)


# %% [markdown]
# One residual block class serves both block types: `ResBlock1` is the case `two_convs=True`. The state-dict keys follow the reference (`convs1`/`convs2` for ResBlock1, `convs` for ResBlock2) so that official weights load unchanged.

# %%
#| export
def _block_conv(channels: int, kernel_size: int, dilation: int) -> nn.Module:
    "A length-preserving, weight-normalised convolution of a residual block."
    padding = get_padding(kernel_size, dilation)
    return weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=dilation, padding=padding))

class ResBlock(nn.Module):
    "HiFi-GAN residual block: ResBlock1 (`two_convs=True`: dilated conv + conv per dilation) or ResBlock2."
    def __init__(self, channels: int, kernel_size: int = 3, dilation=(1, 3, 5), two_convs: bool = True):
        super().__init__()
        dilated = nn.ModuleList([_block_conv(channels, kernel_size, d) for d in dilation])
        if two_convs:
            self.convs1 = dilated
            self.convs2 = nn.ModuleList([_block_conv(channels, kernel_size, 1) for _ in dilation])
            self.convs2.apply(init_weights)
        else:
            self.convs = dilated
        dilated.apply(init_weights)  # after convs2, as always here: the same weights for the same seed

    def layers(self):
        "Pairs (dilated conv, second conv or None) in order."
        if hasattr(self, "convs"):
            return [(c, None) for c in self.convs]
        return list(zip(self.convs1, self.convs2))

    def forward(self, x):
        for c1, c2 in self.layers():
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            if c2 is not None:
                xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


# %%
#| export
class Generator(nn.Module):
    "HiFi-GAN generator: log-mel `[B, num_mels, T]` to audio `[B, 1, hop * T]` in [-1, 1]."
    def __init__(self, cfg: GeneratorConfig | None = None, num_mels: int = MelConfig.num_mels):
        super().__init__()
        self.cfg = cfg = cfg or GeneratorConfig()
        self.num_mels = num_mels  # owned by the mel config; the presets read 80 bands
        ch = cfg.upsample_initial_channel
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.conv_pre = weight_norm(nn.Conv1d(num_mels, ch, 7, 1, padding=3))
        self.ups = nn.ModuleList([
            weight_norm(nn.ConvTranspose1d(ch // 2**i, ch // 2**(i + 1), k, u, padding=(k - u) // 2))
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes))])
        self.resblocks = nn.ModuleList([
            ResBlock(ch // 2**(i + 1), k, d, two_convs=cfg.resblock == "1")
            for i in range(len(self.ups))
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes)])
        self.conv_post = weight_norm(nn.Conv1d(ch // 2**len(self.ups), 1, 7, 1, padding=3))
        self.ups.apply(init_weights)
        self.conv_post.apply(init_weights)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01, as in the reference
        return torch.tanh(x)


# %% [markdown]
# Besides the forward pass: a generator of a preset by name, the weight normalisation folded for inference (the runtimes and the export start from that), and its size.

# %%
#| export
@patch(cls_method=True)
def from_preset(cls: Generator, name: str = "v1", num_mels: int = MelConfig.num_mels) -> "Generator":
    "A randomly initialised generator of preset `v1`, `v2`, `v3` or `tiny`."
    if name.lower() not in GENERATOR_PRESETS:
        raise UserError(f"unknown generator preset {name!r}: "
                        f"choose one of {', '.join(GENERATOR_PRESETS)}")
    return cls(dataclasses.replace(GENERATOR_PRESETS[name.lower()]), num_mels)

@patch
def remove_weight_norm(self: Generator) -> "Generator":
    "Fold weight normalisation into plain weights (inference only; returns self)."
    block_convs = [c for block in self.resblocks for pair in block.layers()
                   for c in pair if c is not None]
    remove_weight_norm_from([self.conv_pre, *self.ups, self.conv_post, *block_convs])
    return self

@patch(as_prop=True)
def num_params(self: Generator) -> int:
    "Number of parameters."
    return sum(p.numel() for p in self.parameters())


# %%
show_doc(Generator.from_preset)

# %%
show_doc(Generator.remove_weight_norm)

# %% [markdown]
# ## Sizes
#
# The parameter counts of the three paper presets (and the `tiny` one used in tests):

# %%
show_doc(Generator)

# %%
sizes = {}
for name in ["v1", "v2", "v3", "tiny"]:
    g = Generator.from_preset(name)
    sizes[name] = g.num_params / 1e6
    rates = " x ".join(map(str, g.cfg.upsample_rates))
    print(f"{name:>4}: {sizes[name]:6.2f} M parameters, upsampling {rates}, ResBlock{g.cfg.resblock}")

# %%
test_close(sizes["v1"], 13.93, eps=0.05)
test_close(sizes["v2"], 0.93, eps=0.02)
test_close(sizes["v3"], 1.46, eps=0.02)
test_fail(lambda: Generator.from_preset("v4"), contains="unknown generator preset 'v4'")

# %% [markdown]
# Any number of frames in, 256 samples per frame out, in [-1, 1]; the number of mel bands is the mel's, 80 unless a
# config says otherwise:

# %%
g = Generator.from_preset("v3")
with torch.no_grad():
    outputs = [g(torch.randn(2, 80, frames)) for frames in (1, 7, 32)]
test_eq([tuple(y.shape) for y in outputs], [(2, 1, 256), (2, 1, 256 * 7), (2, 1, 256 * 32)])
assert max(y.abs().max().item() for y in outputs) <= 1, max(y.abs().max().item() for y in outputs)
test_eq(Generator(GENERATOR_PRESETS["tiny"], num_mels=100).conv_pre.in_channels, 100)

# %% [markdown]
# ## Official checkpoints
#
# The official `g_XXXXXXXX` files hold `{"generator": state_dict}` with weight-norm keys. The reference test data lists every key and shape of those state dicts, and holds the reference generator's output for a fixed input with weights that anyone can rebuild from the key names alone (each tensor is filled from a random generator seeded with the CRC-32 of its key; see `testdata/reference/README.md`). `reference_weights` ([Testing helpers](00b_testing.ipynb)) rebuilds them; loading is strict, so a single missing or unexpected key fails.

# %%
from hifigan_ruslan.testing import reference_weights, relative_rms_error

# %% [markdown]
# How close must our output be? The reference weights are untrained and large, so V1's activations grow far beyond
# those of a trained model and its output sits mostly in the saturated part of the `tanh`; a float32 network of
# this depth then differs from the reference by a few `1e-4` in its worst sample, depending on the CPU's kernels and
# the thread count (the order in which the convolutions sum). What a float32 implementation can promise everywhere
# is a small error *on average*, relative to the signal: the RMS of the difference over the RMS of the reference
# (`relative_rms_error`).

# %%
import json
from pathlib import Path
import numpy as np

# %%
ref_dir = Path("testdata/reference")
manifest = json.loads((ref_dir / "state_dict_manifest.json").read_text())
golds = {name: np.load(ref_dir / f"generator_{name}.npz") for name in ["v1", "v2", "v3"]}

def reference_generator(name: str) -> Generator:
    "A generator of preset `name` with the reference test data's deterministic weights, loaded strictly."
    g = Generator.from_preset(name).eval()
    weights = reference_weights(manifest[f"generator_{name}"], float(golds[name]["fill_scale"]))
    g.load_state_dict(weights, strict=True)
    return g

def reference_error(g: Generator, name: str) -> float:
    "Relative RMS error of `g`'s output against the reference output of preset `name`."
    with torch.no_grad():
        audio = g(torch.from_numpy(golds[name]["mel"])[None])[0, 0]
    return relative_rms_error(audio, golds[name]["audio"])


# %% [markdown]
# The layouts match the official ones key by key, the outputs agree to a relative RMS error below `1e-4`, also
# after `remove_weight_norm()`. Measured on Intel Xeon CPUs at 1 and 2 threads: V1 `8.9e-6` to `1.3e-5` (a margin of
# about 8), V2 `3.9e-7`, V3 `6.7e-7`.

# %%
for name in golds:
    g = reference_generator(name)
    test_eq({k: list(v.shape) for k, v in g.state_dict().items()}, manifest[f"generator_{name}"])
    err = reference_error(g, name)
    fused_err = reference_error(g.remove_weight_norm(), name)
    print(f"{name}: relative RMS error {err:.1e}; after remove_weight_norm {fused_err:.1e}")
    assert err < 1e-4, err  # measured 9e-6 .. 1.3e-5 (V1), 3.9e-7 (V2), 6.7e-7 (V3)
    assert fused_err < 1e-4, fused_err  # the same within rounding

# %% [markdown]
# The bound must catch real mistakes. Two that a reimplementation makes easily, patched in for the duration of one
# call:
#
# - a residual block **without its skip connection** (`x = xt` instead of `x = xt + x`);
# - the **LeakyReLU before `conv_post` at slope 0.1**, like every other activation, instead of the reference's 0.01.
#
# Each misses the bound by three to four orders of magnitude, for every preset.

# %%
from unittest import mock


# %%
def forward_without_skip(self, x):
    "The bug: a residual block that forgets to add its input."
    for c1, c2 in self.layers():
        xt = c1(F.leaky_relu(x, LRELU_SLOPE))
        if c2 is not None:
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
        x = xt
    return x

def forward_uniform_slope(self, mel):
    "The bug: slope 0.1 before `conv_post` too."
    x = self.conv_pre(mel)
    for i, up in enumerate(self.ups):
        x = up(F.leaky_relu(x, LRELU_SLOPE))
        blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
        x = sum(block(x) for block in blocks) / self.num_kernels
    return torch.tanh(self.conv_post(F.leaky_relu(x, LRELU_SLOPE)))

for name in golds:
    g = reference_generator(name)
    with mock.patch.object(ResBlock, "forward", forward_without_skip):
        no_skip = reference_error(g, name)
    with mock.patch.object(Generator, "forward", forward_uniform_slope):
        slope = reference_error(g, name)
    print(f"{name}: no skip connection {no_skip:.1e}, slope 0.1 before conv_post {slope:.1e} (bound 1e-4)")
    assert min(no_skip, slope) > 100 * 1e-4, min(no_skip, slope)  # measured 6.9e-2 (V3 slope) .. 1.1 (V3 no skip)
