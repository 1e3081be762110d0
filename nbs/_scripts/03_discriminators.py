# %% [markdown]
# # Discriminators
#
# > The multi-period (MPD) and multi-scale (MSD) discriminators that teach the generator what real speech looks like.

# %%
#| default_exp discriminators

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_close

# %%
#| export
from __future__ import annotations
import torch
import torch.nn as nn
import torch.nn.functional as F
from hifigan_ruslan.config import DiscriminatorConfig
from hifigan_ruslan.generator import LRELU_SLOPE, get_padding, weight_norm


# %% [markdown]
# ## Why two discriminators
#
# A mel L1 loss alone gives muffled, phase-less audio: many waveforms share one mel, and the average of them is buzzy. HiFi-GAN adds adversaries that judge the waveform itself, each from a different angle:
#
# - **Multi-period discriminator (MPD).** Speech is made of periodic patterns (the glottal pulses of the voice). Each of its five sub-discriminators folds the 1-D waveform into a 2-D array of width `p` (periods 2, 3, 5, 7, 11: primes, so that they overlap as little as possible) and runs 2-D convolutions along the time axis only. Every column then holds samples exactly `p` apart, so each sub-discriminator sees one family of periodicities in isolation.
# - **Multi-scale discriminator (MSD)**, from MelGAN. Three sub-discriminators look at the raw audio, at x2 and at x4 average-pooled audio, with large grouped strided 1-D convolutions. They judge the waveform's consecutive structure and its smoothness at several time scales, which the MPD, by design, cannot.
#
# Both return, for every sub-discriminator, a **score map** (least-squares GAN: near 1 means "real", near 0 "generated") and the list of its intermediate **feature maps**, which the feature-matching loss compares between real and generated audio.
#
# **Normalisation.** Every convolution uses weight normalisation, except in the first MSD scale, which uses **spectral normalisation**: it divides the weight by its largest singular value, which bounds how sharply the discriminator can react to its raw-resolution input and stabilises training (as in the reference). The official `do_XXXXXXXX` files accordingly store `weight_orig`, `weight_u`, `weight_v` for that scale and `weight_g`, `weight_v` elsewhere.
#
# **One call for real and fake.** `disc(y)` takes a single batch. The trainer stacks real and generated audio along the batch dimension and calls each discriminator once, then splits the outputs: half the kernel launches of the reference's `disc(y, y_hat)`.

# %%
#| export
def spectral_norm(module: nn.Module) -> nn.Module:
    "Spectral normalisation with the official keys (`weight_orig`, `weight_u`, `weight_v`)."
    return nn.utils.spectral_norm(module)

def _ch(c: int, width: float) -> int:
    "Channel count scaled by `width`, kept a multiple of 16 so that the grouped convolutions stay valid."
    return c if width == 1 else max(16, int(round(c * width / 16)) * 16)


# %% [markdown]
# Both kinds of sub-discriminator are a stack of convolutions, each followed by a LeakyReLU whose output is a feature
# map, and a final convolution whose output is the score map. They differ only in the layers and in how the
# waveform is shaped for them, so one base class runs the stack and each kind says how it shapes its input.

# %%
#| export
class _ConvStack(nn.Module):
    "A sub-discriminator: `convs` with LeakyReLU, then `conv_post`; subclasses shape the input in `prepare`."
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor):
        "Audio `[B, 1, N]` to `(score [B, frames], feature maps)`."
        x = self.prepare(x)
        fmap = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


# %%
#| export
class PeriodDiscriminator(_ConvStack):
    "One MPD sub-discriminator: waveform folded to `[B, 1, N / period, period]`, 2-D convolutions in time."
    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3, width: float = 1.0):
        super().__init__()
        self.period = period
        chans = [1] + [_ch(c, width) for c in (32, 128, 512, 1024, 1024)]
        pad = (get_padding(5, 1), 0)
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(cin, cout, (kernel_size, 1), (stride if i < 4 else 1, 1), padding=pad))
            for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:]))])
        self.conv_post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def prepare(self, x):
        "Reflect-pad to a multiple of the period, then fold: each column holds samples `period` apart."
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), "reflect")
        return x.view(b, c, -1, self.period)


# %%
#| export
class ScaleDiscriminator(_ConvStack):
    "One MSD sub-discriminator: grouped, strided 1-D convolutions over the (pooled) waveform."
    def __init__(self, use_spectral_norm: bool = False, width: float = 1.0):
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm
        c128, c256, c512, c1024 = (_ch(c, width) for c in (128, 256, 512, 1024))
        #          in     out    k  stride groups pad
        layers = [(1,     c128,  15, 1, 1,  7),
                  (c128,  c128,  41, 2, 4,  20),
                  (c128,  c256,  41, 2, 16, 20),
                  (c256,  c512,  41, 4, 16, 20),
                  (c512,  c1024, 41, 4, 16, 20),
                  (c1024, c1024, 41, 1, 16, 20),
                  (c1024, c1024, 5,  1, 1,  2)]
        self.convs = nn.ModuleList([norm(nn.Conv1d(i, o, k, s, groups=g, padding=p))
                                    for i, o, k, s, g, p in layers])
        self.conv_post = norm(nn.Conv1d(c1024, 1, 3, 1, padding=1))


# %% [markdown]
# The two ensembles share their forward pass: run every sub-discriminator, collect scores and feature maps. The MSD feeds each scale the average-pooled output of the previous one.

# %%
#| export
class _Ensemble(nn.Module):
    def inputs(self, y):
        "The input of each sub-discriminator, in order."
        return [y] * len(self.discriminators)

    def forward(self, y: torch.Tensor):
        "Audio `[B, 1, N]` to `(scores, fmaps)`: per sub-discriminator, a score `[B, frames]` and its fmaps."
        outputs = [d(x) for d, x in zip(self.discriminators, self.inputs(y))]
        return [s for s, _ in outputs], [f for _, f in outputs]

class MultiPeriodDiscriminator(_Ensemble):
    "MPD: one `PeriodDiscriminator` per period (2, 3, 5, 7, 11 by default)."
    def __init__(self, cfg: DiscriminatorConfig | None = None):
        super().__init__()
        cfg = cfg or DiscriminatorConfig()
        self.discriminators = nn.ModuleList([PeriodDiscriminator(p, width=cfg.width) for p in cfg.periods])

class MultiScaleDiscriminator(_Ensemble):
    "MSD: `ScaleDiscriminator`s on the raw, x2 and x4 average-pooled audio; spectral norm on the first."
    def __init__(self, cfg: DiscriminatorConfig | None = None):
        super().__init__()
        cfg = cfg or DiscriminatorConfig()
        self.discriminators = nn.ModuleList([ScaleDiscriminator(use_spectral_norm=i == 0, width=cfg.width)
                                             for i in range(cfg.num_scales)])
        self.meanpools = nn.ModuleList([nn.AvgPool1d(4, 2, padding=2) for _ in range(cfg.num_scales - 1)])

    def inputs(self, y):
        "The raw audio, then each scale average-pooled from the previous one."
        xs = [y]
        for pool in self.meanpools:
            xs.append(pool(xs[-1]))
        return xs


# %%
show_doc(MultiScaleDiscriminator)

# %%
show_doc(MultiPeriodDiscriminator.forward)

# %%
mpd, msd = MultiPeriodDiscriminator(), MultiScaleDiscriminator()
y = torch.randn(2, 1, 8192) * 0.1
with torch.no_grad():
    for name, d in [("MPD", mpd), ("MSD", msd)]:
        scores, fmaps = d(y)
        millions = sum(p.numel() for p in d.parameters()) / 1e6
        print(f"{name}: {millions:.1f} M parameters; score shapes", [tuple(s.shape) for s in scores],
              "; feature maps per sub-discriminator:", len(fmaps[0]))
    mpd_scores, mpd_fmaps = mpd(y)
    msd_scores, msd_fmaps = msd(y)
test_eq(len(mpd_scores), 5)
test_eq(len(msd_scores), 3)
test_eq([len(f) for f in mpd_fmaps], [6] * 5)
test_eq([len(f) for f in msd_fmaps], [8] * 3)

# %% [markdown]
# ## Official checkpoints
#
# The `mpd` and `msd` entries of an official `do_XXXXXXXX` file load strictly. The reference test data gives, for deterministic weights and a fixed pair of real/generated segments, the mean score of every sub-discriminator on the real input; in eval mode (where spectral norm uses its stored vectors) ours must agree.

# %%
import json, numpy as np
from pathlib import Path
from hifigan_ruslan.testing import reference_weights

# %%
ref_dir = Path("testdata/reference")
manifest = json.loads((ref_dir / "state_dict_manifest.json").read_text())
gold = json.loads((ref_dir / "discriminators.json").read_text())
inputs = np.load(ref_dir / "discriminator_inputs.npz")
real = torch.from_numpy(inputs["real"]).view(1, 1, -1)
for name, d in [("mpd", mpd), ("msd", msd)]:
    test_eq({k: list(v.shape) for k, v in d.state_dict().items()}, manifest[name])
    d.load_state_dict(reference_weights(manifest[name], gold["fill_scale"]), strict=True)
    with torch.no_grad():
        means = [s.mean().item() for s in d.eval()(real)[0]]
    err = np.abs(np.array(means) - gold[f"{name}_real_score_means"]).max()
    print(f"{name}: mean real scores {np.round(means, 4).tolist()}, max error {err:.1e}")
    test_close(means, gold[f"{name}_real_score_means"], eps=1e-4)  # scores ~1; measured 0 to 6e-8

# %% [markdown]
# A smaller discriminator for tests and demos (`width` scales every channel count; only `width=1` matches the official layout):

# %%
tiny = MultiPeriodDiscriminator(DiscriminatorConfig(periods=(2, 3, 5), width=0.25))
print(f"tiny MPD: {sum(p.numel() for p in tiny.parameters()) / 1e6:.2f} M parameters")
test_eq(len(tiny(y)[0]), 3)
