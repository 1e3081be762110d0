# %% [markdown]
# # Generator
#
# > The HiFi-GAN generator: transposed-convolution upsampling by 256 with multi-receptive-field fusion, loading the official checkpoints.

# %%
#| default_exp generator

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import warnings
import torch
import torch.nn as nn
import torch.nn.functional as F
from hifigan_ruslan.config import GeneratorConfig, GENERATOR_PRESETS

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
    with warnings.catch_warnings():  # the parametrization API would rename the keys to parametrizations.weight.*
        warnings.simplefilter("ignore", FutureWarning)
        return nn.utils.weight_norm(module)

def remove_weight_norm_from(modules) -> None:
    "Fold weight normalisation into plain weights (for inference)."
    for m in modules:
        try: nn.utils.remove_weight_norm(m)
        except ValueError: pass  # already removed

def init_weights(m: nn.Module, std: float = 0.01) -> None:
    if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)): m.weight.data.normal_(0.0, std)


# %% [markdown]
# One residual block class serves both block types: `ResBlock1` is the case `two_convs=True`. The state-dict keys follow the reference (`convs1`/`convs2` for ResBlock1, `convs` for ResBlock2) so that official weights load unchanged.

# %%
#| export
class ResBlock(nn.Module):
    "HiFi-GAN residual block: ResBlock1 (`two_convs=True`: dilated conv + conv per dilation) or ResBlock2 (dilated conv only)."
    def __init__(self, channels: int, kernel_size: int = 3, dilation=(1, 3, 5), two_convs: bool = True):
        super().__init__()
        conv = lambda d: weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=get_padding(kernel_size, d)))
        dilated = nn.ModuleList([conv(d) for d in dilation])
        if two_convs:
            self.convs1, self.convs2 = dilated, nn.ModuleList([conv(1) for _ in dilation])
            self.convs2.apply(init_weights)
        else: self.convs = dilated
        dilated.apply(init_weights)

    def layers(self):
        "Pairs (dilated conv, optional second conv) in order."
        if hasattr(self, "convs"): return [(c, None) for c in self.convs]
        return list(zip(self.convs1, self.convs2))

    def forward(self, x):
        for c1, c2 in self.layers():
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            if c2 is not None: xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


# %%
#| export
class Generator(nn.Module):
    "HiFi-GAN generator: log-mel `[B, num_mels, T]` to audio `[B, 1, hop * T]` in [-1, 1]."
    def __init__(self, cfg: GeneratorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or GeneratorConfig()
        ch = cfg.upsample_initial_channel
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.conv_pre = weight_norm(nn.Conv1d(cfg.num_mels, ch, 7, 1, padding=3))
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

    @classmethod
    def from_preset(cls, name: str = "v1") -> "Generator":
        "A randomly initialised generator of preset `v1`, `v2`, `v3` or `tiny`."
        if name.lower() not in GENERATOR_PRESETS:
            raise ValueError(f"unknown generator preset {name!r}: choose one of {', '.join(GENERATOR_PRESETS)}")
        return cls(GENERATOR_PRESETS[name.lower()])

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01, as in the reference
        return torch.tanh(x)

    def remove_weight_norm(self) -> "Generator":
        "Fold weight normalisation into plain weights (inference only; returns self)."
        remove_weight_norm_from([self.conv_pre, *self.ups, self.conv_post,
                                 *(c for b in self.resblocks for pair in b.layers() for c in pair if c is not None)])
        return self

    @property
    def num_params(self) -> int: return sum(p.numel() for p in self.parameters())


# %%
show_doc(Generator.from_preset)

# %%
show_doc(Generator.remove_weight_norm)

# %% [markdown]
# ## Sizes
#
# The parameter counts of the three paper presets (and the `tiny` one used in tests):

# %%
sizes = {}
for name in ["v1", "v2", "v3", "tiny"]:
    g = Generator.from_preset(name)
    sizes[name] = g.num_params / 1e6
    print(f"{name:>4}: {sizes[name]:6.2f} M parameters, upsampling {' x '.join(map(str, g.cfg.upsample_rates))}, ResBlock{g.cfg.resblock}")

# %%
assert abs(sizes["v1"] - 13.93) < 0.05 and abs(sizes["v2"] - 0.93) < 0.02 and abs(sizes["v3"] - 1.46) < 0.02

# %% [markdown]
# Any number of frames in, 256 samples per frame out, in [-1, 1]:

# %%
g = Generator.from_preset("v3")
with torch.no_grad():
    for frames in (1, 7, 32):
        y = g(torch.randn(2, 80, frames))
        assert y.shape == (2, 1, 256 * frames) and y.abs().max() <= 1
print(tuple(y.shape))


# %% [markdown]
# ## Official checkpoints
#
# The official `g_XXXXXXXX` files hold `{"generator": state_dict}` with weight-norm keys. The reference test data lists every key and shape of those state dicts, and holds the reference generator's output for a fixed input with weights that anyone can rebuild from the key names alone (each tensor is filled from a random generator seeded with the CRC-32 of its key; see `testdata/reference/README.md`). `reference_weights` rebuilds them; loading is strict, so a single missing or unexpected key fails.

# %%
#| export
def reference_weights(manifest: dict[str, list[int]], fill_scale: float = 0.05) -> dict[str, torch.Tensor]:
    "Deterministic weights for an official state-dict layout (`{key: shape}`), as used by the reference test data."
    import zlib
    sd = {k: torch.randn(shape, generator=torch.Generator().manual_seed(zlib.crc32(k.encode()))) * fill_scale
          for k, shape in manifest.items()}
    for k in [k for k in sd if k.endswith(".weight_g")]:  # make the effective weight equal weight_v
        v = sd[k[:-1] + "v"]
        sd[k] = v.flatten(1).norm(dim=1).reshape(sd[k].shape)
    for k in [k for k in sd if k.endswith(".weight_orig")]:  # converged spectral-norm vectors
        U, S, Vh = torch.linalg.svd(sd[k].flatten(1), full_matrices=False)
        sd[k[:-4] + "u"], sd[k[:-4] + "v"] = U[:, 0].contiguous(), Vh[0].contiguous()
    return sd


# %%
import json, numpy as np
from pathlib import Path

# %%
ref_dir = Path("testdata/reference")
manifest = json.loads((ref_dir / "state_dict_manifest.json").read_text())
for name in ["v1", "v2", "v3"]:
    gold = np.load(ref_dir / f"generator_{name}.npz")
    g = Generator.from_preset(name).eval()
    ours = {k: list(v.shape) for k, v in g.state_dict().items()}
    assert ours == manifest[f"generator_{name}"], f"{name}: layout differs from the official one"
    g.load_state_dict(reference_weights(manifest[f"generator_{name}"], float(gold["fill_scale"])), strict=True)
    with torch.no_grad():
        y = g(torch.from_numpy(gold["mel"])[None])[0, 0].numpy()
        scale = np.abs(gold["audio"]).max()
        err = np.abs(y - gold["audio"]).max()
        y_fused = g.remove_weight_norm()(torch.from_numpy(gold["mel"])[None])[0, 0].numpy()
    print(f"{name}: output peak {scale:.2e}, max error {err:.1e} ({err / scale:.1e} relative); after remove_weight_norm {np.abs(y_fused - gold['audio']).max():.1e}")
    assert err < 1e-4 and err / scale < 1e-3
    assert np.abs(y_fused - gold["audio"]).max() / scale < 1e-3
