# %% [markdown]
# # Losses
#
# > Least-squares GAN losses, feature matching and the mel L1 loss, and what their values mean.

# %%
#| default_exp losses

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_close

# %%
#| export
from __future__ import annotations
import torch
import torch.nn.functional as F
from hifigan_ruslan.config import MelConfig
from hifigan_ruslan.mel import mel_spectrogram


# %% [markdown]
# HiFi-GAN trains with three kinds of loss. Each function returns the total first and, after it, the value per sub-discriminator, so that a trainer can log which sub-discriminator is winning without recomputing anything.
#
# **Least-squares GAN (LSGAN).** The discriminator is trained to output 1 on real audio and 0 on generated audio, with squared errors: `D = sum_k mean((1 - D_k(y))^2) + mean(D_k(G(x))^2)` over the `K` sub-discriminators. The generator is trained to make the discriminator output 1 on its audio: `G_adv = sum_k mean((1 - D_k(G(x)))^2)`. Squared errors, unlike the log-loss of the original GAN, keep a useful gradient when the discriminator is very sure.
#
# Both are **sums of squares, so never negative**. They also have a landmark worth knowing: a discriminator that has given up and outputs 0.5 everywhere scores `(1 - 0.5)^2 + 0.5^2 = 0.5` per sub-discriminator, so **`K / 2` in total: 4.0 with the 8 sub-discriminators of HiFi-GAN** (5 MPD + 3 MSD). A discriminator loss that sits at about 4 for a whole run is not "stable training", it is a discriminator that is not discriminating. `chance_discriminator_loss` gives that landmark for any configuration; the training health monitor compares against it.
#
# **Feature matching** (weight `lambda_fm`, 2 in the recipe): the L1 distance between the discriminators' intermediate feature maps for real and generated audio, summed over every layer of every sub-discriminator. It asks the generator to sound real *in the way the discriminator perceives it*, which is a much denser signal than the single score. This function is unweighted; the trainer multiplies by `lambda_fm` (the reference multiplies by 2 inside its function).
#
# **Mel L1** (weight `lambda_mel`, 45): the mean absolute difference between the log-mels of real and generated audio, computed with the full-band loss mel (`fmax = None`). It anchors the generator to the content early in training, when the discriminators know nothing yet. It is also the number reported as the validation error (the project's RUSLAN run reached 0.231 after 50 epochs).
#
# A caution from experience: with a large `lambda_mel` and no feature matching, the mel loss can look fine while the generator emits a constant offset plus noise: the log-mel is forgiving of what the ear is not. That is why the trainer watches the audio itself, not only the losses.

# %%
#| export
def discriminator_loss(real_scores: list[torch.Tensor], fake_scores: list[torch.Tensor]):
    "LSGAN discriminator loss `(total, real_losses, fake_losses)`: real pushed to 1, fake to 0."
    real_losses = [torch.mean((1 - r.float()) ** 2) for r in real_scores]
    fake_losses = [torch.mean(f.float() ** 2) for f in fake_scores]
    return sum(real_losses) + sum(fake_losses), real_losses, fake_losses

def generator_loss(fake_scores: list[torch.Tensor]):
    "LSGAN generator loss: `(total, per_subdiscriminator)`, fake scores pushed to 1."
    losses = [torch.mean((1 - f.float()) ** 2) for f in fake_scores]
    return sum(losses), losses

def feature_loss(real_fmaps: list[list[torch.Tensor]], fake_fmaps: list[list[torch.Tensor]]):
    "Feature matching: `(total, per_subdiscriminator)`, mean |real - fake| summed over layers, unweighted."
    losses = [sum(torch.mean(torch.abs(r.float() - f.float())) for r, f in zip(rs, fs))
              for rs, fs in zip(real_fmaps, fake_fmaps)]
    return sum(losses), losses

def chance_discriminator_loss(num_subdiscriminators: int) -> float:
    "The LSGAN discriminator loss of a discriminator that outputs 0.5 everywhere: 0.5 per sub-discriminator."
    return 0.5 * num_subdiscriminators


# %%
show_doc(feature_loss)

# %%
show_doc(discriminator_loss)

# %%
half = [torch.full((4, 10), 0.5) for _ in range(8)]
test_eq(discriminator_loss(half, half)[0].item(), 4.0)
test_eq(chance_discriminator_loss(8), 4.0)
perfect = discriminator_loss([torch.ones(2, 5)] * 8, [torch.zeros(2, 5)] * 8)[0]
test_eq(perfect.item(), 0)
test_eq(generator_loss([torch.ones(3)] * 8)[0].item(), 0)  # a generator that fools it completely
wild = [torch.randn(9) * 10 for _ in range(8)]
assert discriminator_loss(wild, wild)[0].item() >= 0  # sums of squares: never negative
wild_loss = generator_loss(wild)[0].item()
assert wild_loss >= 0, wild_loss


# %%
#| export
def loss_mel(audio: torch.Tensor, cfg: MelConfig | None = None) -> torch.Tensor:
    "The full-band log-mel `[B, num_mels, frames]` the mel loss compares, of audio `[B, 1, N]` or `[B, N]`."
    return mel_spectrogram(audio.flatten(1), cfg, for_loss=True)

def mel_loss(real_mel: torch.Tensor, fake_audio: torch.Tensor, cfg: MelConfig | None = None) -> torch.Tensor:
    "L1 between the real audio's loss mel (`loss_mel`, computed once per batch) and the generated audio's."
    return F.l1_loss(loss_mel(fake_audio, cfg), real_mel)


# %%
show_doc(loss_mel)

# %%
show_doc(mel_loss)

# %%
t = torch.arange(8192) / 22050
tone = 0.5 * torch.sin(2 * torch.pi * 220 * t)[None]
tone_mel = loss_mel(tone)
test_eq(tone_mel.shape, (1, 80, 32))
test_eq(mel_loss(tone_mel, tone).item(), 0)
noisy_loss = mel_loss(tone_mel, tone + 0.01 * torch.randn_like(tone)).item()
silent_loss = mel_loss(tone_mel, torch.zeros_like(tone)).item()
print(f"mel L1, tone vs. tone + noise: {noisy_loss:.3f}; tone vs. silence: {silent_loss:.3f}")
assert noisy_loss > silent_loss, (noisy_loss, silent_loss)

# %% [markdown]
# Faint noise costs more than silence here. The tone fills a few bands; everywhere else both the tone and silence sit at the log floor (`log(1e-5)`), while noise, however faint, lifts every one of those empty bins by several nats. The log-mel L1 weighs quiet regions as much as loud ones, which is why it captures noise and breath well, and also why a low mel loss alone does not prove that the audio is speech.

# %% [markdown]
# ## Agreement with the reference
#
# With the deterministic reference weights, the reference losses on a fixed real/generated pair (its feature loss includes the factor 2, so we compare `2 * feature_loss`):

# %%
import json, numpy as np
from pathlib import Path
from hifigan_ruslan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from hifigan_ruslan.testing import reference_weights

# %%
ref_dir = Path("testdata/reference")
manifest = json.loads((ref_dir / "state_dict_manifest.json").read_text())
gold = json.loads((ref_dir / "discriminators.json").read_text())
inputs = np.load(ref_dir / "discriminator_inputs.npz")
real, fake = (torch.from_numpy(inputs[k]).view(1, 1, -1) for k in ("real", "fake"))
for name, d in [("mpd", MultiPeriodDiscriminator()), ("msd", MultiScaleDiscriminator())]:
    d.load_state_dict(reference_weights(manifest[name], gold["fill_scale"]), strict=True)
    with torch.no_grad():
        scores, fmaps = d.eval()(torch.cat([real, fake]))  # one call, real and fake stacked
    rs, fs = [s[:1] for s in scores], [s[1:] for s in scores]
    rf, ff = [[f[:1] for f in fm] for fm in fmaps], [[f[1:] for f in fm] for fm in fmaps]
    ours = {"d_loss": discriminator_loss(rs, fs)[0].item(), "g_loss": generator_loss(fs)[0].item(),
            "fm": 2 * feature_loss(rf, ff)[0].item()}
    for k, v in ours.items():
        ref = gold[f"{k}_{name}"]
        print(f"{name} {k:6}: ours {v:.6f}, reference {ref:.6f}")
        test_close(v / ref, 1.0, eps=1e-4)  # relative; measured below 1e-6: margin > 100
