# %% [markdown]
# # The trainer
#
# > A `Trainer` holds one run's networks, optimizers, data and position, and its methods are the run's steps: one training step (generate, update the discriminators, update the generator) in mixed precision, with gradient accumulation and two-GPU data parallelism; the training data in order; validation; and the run's checkpoints.

# %%
#| default_exp trainer

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import dataclasses, itertools, math, os, time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
import torch
import torch.distributed as dist
from fastcore.basics import patch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler
from hifigan_ruslan.config import TRAIN_PRECISIONS, Config, TrainConfig
from hifigan_ruslan.devices import resolve_device
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.mel import mel_figure
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from hifigan_ruslan.losses import discriminator_loss, generator_loss, feature_loss, loss_mel, mel_loss
from hifigan_ruslan.checkpoints import (RunPosition, atomic_save, discriminator_parameters, load_initial_weights,
                                        payload_bytes, restore_training_state, save_checkpoint, space_guard,
                                        step_path, training_payloads)
from hifigan_ruslan.data import VocoderDataset, make_dataloader, mixed_seed
from hifigan_ruslan.run_folder import prune_samples, sample_stem

# %%
from fastcore.test import test_eq, test_fail
from hifigan_ruslan.config import apply_overrides, preset_config
from hifigan_ruslan.mel import mel_spectrogram


# %% [markdown]
# A `Trainer` holds what a run consists of and its methods are the steps of training, introduced below: one training step in the stages of the official HiFi-GAN `train.py` (generate, update the discriminators, update the generator), the class that holds the models and optimizers and takes that step, the training data in order, validation, and the checkpoints. The loop that calls them (`fit`) and the command's entry point `train` are plain functions in the next notebook, [Training](09a_training.ipynb); the reasons a run stops are in [Stopping a run](08b_stopping.ipynb).
#
# ## Precision
#
# Mixed precision roughly halves the memory and doubles the speed of the convolutions on a GPU. Which kind depends on the GPU:
#
# - **bf16** (Ampere and newer: A100, L4, H100) has the exponent range of fp32, so gradients cannot overflow and no loss scaling is needed.
# - **fp16** is all a T4 (Kaggle's GPU) has. Its range ends at 65,504 and small gradients underflow to zero, so the loss is multiplied by a large factor before the backward pass and the gradients divided by it before the optimizer step; a `GradScaler` picks the factor, lowers it whenever a step produces `inf`, and skips that step.
# - **fp32** on the CPU, where half precision buys nothing.
#
# `auto` picks one of these; an explicit `fp16` or `bf16` is honoured on every device. On the CPU that is for tests: PyTorch runs fp16 autocast and the `GradScaler` there exactly as on a GPU, so the T4 path of every Kaggle run (scaled losses, unscaling, skipped overflow steps, the scaler's state in the checkpoints) is tested without one. It is slow, though: the backward pass of a convolution in fp16 takes about 100 times as long as in fp32 on the CPU (measured with PyTorch 2.13 on a Xeon with AVX512-FP16), so the fp16 tests use batches of one short segment.
#
# Only the networks run in reduced precision. The mel spectrogram (STFT and log) is always fp32 (`mel_spectrogram` switches autocast off), and so are the losses: their small differences of large numbers are exactly what fp16 rounds away.

# %%
#| export
def resolve_precision(precision: str, device) -> str:
    "A run's precision: `auto` is bf16 on GPUs of compute capability 8+, fp16 on older GPUs, fp32 on CPUs."
    if precision not in TRAIN_PRECISIONS:
        raise UserError(f"train.precision {precision!r}: choose one of {', '.join(TRAIN_PRECISIONS)}")
    device = torch.device(device)
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"


# %%
test_eq(resolve_precision("auto", "cpu"), "fp32")
test_eq(resolve_precision("fp16", "cpu"), "fp16")  # honoured on every device
test_eq(resolve_precision("bf16", "cpu"), "bf16")
test_fail(lambda: resolve_precision("fp8", "cpu"), contains="train.precision 'fp8': choose one of auto, fp32")


# %% [markdown]
# `torch.cuda.is_bf16_supported()` is not used for the decision: on recent PyTorch it also answers yes for a T4, where bf16 is emulated and slow.
#
# ## Two GPUs
#
# Kaggle offers two T4s. `torchrun --nproc-per-node 2 -m hifigan_ruslan train ...` starts one process per GPU; each holds a full copy of the three networks, trains on its own share of every epoch (a `DistributedSampler`), and `DistributedDataParallel` averages the gradients across the processes during the backward pass, so the copies stay identical. Only process 0 writes logs, samples and checkpoints. Joining the process group is the job of the entry point (`init_distributed`, called by `train`), not of the trainer: a `Trainer` is told where it stands.
#
# The **effective batch** (the number of clips behind one optimizer step) must not change with the number of GPUs, or a recipe tuned on one GPU would train differently on two. It is `batch_size x grad_accum_steps` over all processes, so with two processes the accumulation steps are halved (the recipe's 4 x 2 becomes 4 per GPU with no accumulation), or, if that is not possible, the per-process batch.

# %%
#| export
@dataclass
class DistInfo:
    "Where this process stands in a (possibly one-process) group."
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool: return self.rank == 0

def init_distributed(device="auto") -> tuple[DistInfo, torch.device]:
    "Join the process group `torchrun` describes in the environment (NCCL on GPUs, gloo on CPUs), if any."
    env = {k: int(os.environ.get(k, d)) for k, d in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0))}
    info = DistInfo(env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"])
    dev = resolve_device(device, info.local_rank)
    if info.world_size > 1 and dev.type == "cuda":
        torch.cuda.set_device(dev)
    if info.world_size > 1 and dev.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // info.world_size))  # no oversubscription
    if info.world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return info, dev

def per_process_batch(train: TrainConfig, world_size: int) -> tuple[int, int]:
    "`(batch_size, grad_accum_steps)` per process giving the effective batch `batch_size x grad_accum_steps`."
    b, k = train.batch_size, train.grad_accum_steps
    if k % world_size == 0:
        return b, k // world_size
    if b % world_size == 0:
        return b // world_size, k
    raise UserError(f"the effective batch {b} x {k} cannot be split over {world_size} processes; "
                    f"make train.batch_size or train.grad_accum_steps a multiple of {world_size}")


# %%
recipe = preset_config("recipe").train
test_eq([per_process_batch(recipe, n) for n in (1, 2, 4)], [(4, 2), (4, 1), (1, 2)])
test_eq(per_process_batch(preset_config("tiny").train, 2), (2, 1))
test_fail(lambda: per_process_batch(recipe, 3), contains="cannot be split over 3 processes")


# %% [markdown]
# ## One training step
#
# The heart of the trainer is `train_step`: it takes `grad_accum_steps` batches of `(mel, audio)` and makes one update of each side, in the stages of the official `train.py`:
#
# 1. **Generate**: `y_hat = G(mel)` for every batch.
# 2. **Discriminators.** Both discriminators score the real audio and the *detached* generated audio; the least-squares loss pushes real scores to 1 and generated ones to 0. Gradients accumulate over the batches, then the discriminators take one step.
# 3. **Generator**, against the discriminators just updated: the adversarial loss (generated scores pushed to 1), plus `lambda_fm` x feature matching (the discriminators' inner activations on generated audio pulled towards those on real audio), plus `lambda_mel` x the L1 distance between full-band loss mels. Then one generator step.
#
# With one batch per step (no accumulation) this is exactly the reference order. Both optimizers clip the gradient norm (`train.grad_clip`; 0 measures the norm without clipping) and skip a step whose loss or gradient is not finite.
#
# Where it differs from a straightforward transcription, it does so for speed, with the same mathematics:
#
# - In the discriminator stage the real and generated batches go through each discriminator **stacked in one call** (`[2B, 1, N]`) instead of two: fewer, larger kernels. There is no batch normalisation in HiFi-GAN's discriminators, so stacking changes nothing (only the power iteration of the spectral-normalised scale runs once instead of twice).
# - In the generator stage the discriminators' weights are **frozen**: the reference computes gradients for every discriminator weight there and throws them away at the next `zero_grad`. The real audio's activations, which are only targets, are computed under `no_grad`.
# - The **real audio's loss mel** is computed once per batch and reused; the mel filterbanks are cached per device (`mel_filterbank`).
# - **No host-device synchronisation per loss.** The statistics of a step are a dictionary of tensors on the device, added to running sums there; the host reads them once per logging interval. The only per-step synchronisation is the one question each optimizer step must answer on the host: are the loss and the gradient finite?
#
# The step uses three small pieces: both discriminators scored as one (MPD first, as the official code concatenates them), the DDP gradient all-reduce left for the last batch of an accumulation, and the discriminators' weights frozen for the generator stage.

# %%
#| export
def discriminate(mpd, msd, audio: torch.Tensor):
    "Scores and feature maps of all sub-discriminators, MPD first, for audio `[B, 1, N]`."
    s1, f1 = mpd(audio)
    s2, f2 = msd(audio)
    return s1 + s2, f1 + f2

@contextmanager
def _sync_if(model, sync: bool):
    "Inside: DDP gradient all-reduce only when `sync` (the last accumulation batch)."
    with (model.no_sync() if isinstance(model, DistributedDataParallel) and not sync else nullcontext()):
        yield

@contextmanager
def _frozen(*modules):
    "Temporarily stop gradients to the modules' parameters."
    params = [p for m in modules for p in m.parameters()]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


# %% [markdown]
# Each side's optimizer step is the same decision, made in one place: the gradients are unscaled (fp16) and clipped, and the step is taken only if the loss and the gradient are finite, a question every process answers alike under DDP. What a step returns is its statistics (still on the device), whether both sides stepped, whether it was finite, and the last batch's audio for the health monitor.

# %%
#| export
def _optimizer_step(optimizer, scaler, max_norm: float,
                    loss: torch.Tensor) -> tuple[torch.Tensor, bool, bool]:
    "Unscale, clip (0: only measure), step if loss and gradient are finite: `(norm, stepped, finite)`."
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    scaler.unscale_(optimizer)
    if max_norm > 0:
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    finite = torch.isfinite(torch.stack([loss.detach().float(), norm.detach().float()])).float()
    if dist.is_initialized():
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)  # all processes take the same decision
    loss_ok, grad_ok = (bool(v) for v in finite.tolist())  # the one host sync of this optimizer step
    if loss_ok and grad_ok:
        scaler.step(optimizer)
    scaler.update()
    # a non-finite gradient from a finite loss under fp16 is an overflow: the scaler lowers its scale
    return norm.detach(), loss_ok and grad_ok, loss_ok and (grad_ok or scaler.is_enabled())

@dataclass
class StepResult:
    "One training step: named statistics (device tensors), skipped or not, finite or not, last batch's audio."
    stats: dict
    skipped: bool
    finite: bool
    fake: torch.Tensor
    real: torch.Tensor


# %% [markdown]
# ## The trainer
#
# A `Trainer` holds what the official `train.py` builds: the generator, the multi-period and multi-scale discriminators, an AdamW optimizer for the generator and one for both discriminators, whose parameters are **MSD first, then MPD** (`discriminator_parameters`, the order the official `do_` files depend on), and an exponential learning-rate schedule for each. On top of that a gradient scaler for each side (only active in fp16: the two sides' gradients differ by orders of magnitude, so each gets its own loss scale), the datasets, and where the run stands (`RunPosition`: steps, epoch, batches consumed in it, best validation error). Under `torchrun` the networks are also wrapped in `DistributedDataParallel`; the plain modules stay reachable for the places that must not synchronise.
#
# The class body holds the run's state and its learning: `train_step`, in the three stages above, and `end_epoch`. The trainer keeps its own position: `train_step` counts the step (from its start, so that inside it `step` is the number its logs and checkpoint will carry) and the batches it consumed; `end_epoch` decays both learning rates (the reference's `ExponentialLR`, stepped once per epoch) and starts the next epoch's data. Transfer learning may start with a **discriminator warm-up** (`train.d_warmup_steps`, below): during its first steps only the discriminators learn, and the generator's learning rate starts decaying only once it trains. Both rules ask one question, `warming_up`.
#
# The initial weights come from the global random number generator, which the entry point seeds; the trainer itself changes no global setting. The helpers that build the networks, give them by name and write the log follow the class.

# %%
#| export
class Trainer:
    "Models, optimizers, schedules, scalers, data and position of one training run writing to `run_dir`."
    def __init__(self, cfg: Config, data_dir=None, run_dir=None, device="auto",
                 dist_info: DistInfo | None = None, mel_dir=None):
        self.started = time.monotonic()  # the time budget counts from here
        self.cfg, t = cfg, cfg.train
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.dist = dist_info or DistInfo()
        self.device = resolve_device(device, self.dist.local_rank)
        self.precision = resolve_precision(t.precision, self.device)
        self.amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        self.batch_size, self.accum = per_process_batch(t, self.dist.world_size)
        self._build_models()
        self._build_optimizers()
        self.step = self.epoch = self.batch_in_epoch = 0
        self.warmup_steps = t.d_warmup_steps  # 0 once the discriminators come with the weights
        self.best_val, self.best_step = math.inf, None
        if self.data_dir is not None:
            self.train_set = VocoderDataset(self.data_dir, "train", cfg, train=True, seed=t.seed,
                                            mel_dir=mel_dir)
            self.val_set = VocoderDataset(self.data_dir, "val", cfg, train=False, mel_dir=mel_dir)

    @property
    def warming_up(self) -> bool:
        "Whether the step in progress (between steps: the last one) is one the discriminators learn alone in."
        return 0 < self.step <= self.warmup_steps

    def autocast(self):
        "Mixed-precision context for the networks' forward passes (a no-op in fp32)."
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def train_step(self, batches: list) -> StepResult:
        "One discriminator and one generator update from `len(batches)` accumulated `(mel, audio)` batches."
        t, k, dev = self.cfg.train, len(batches), self.device
        self.step, self.batch_in_epoch = self.step + 1, self.batch_in_epoch + k
        train_g = not self.warming_up  # in the warm-up the generator is only measured
        # 1. generate (without the generator's graph while it is frozen)
        generated = []  # (audio, its loss mel, generated audio) per batch
        for i, (mel, audio) in enumerate(batches):
            y = audio.to(dev, non_blocking=True).unsqueeze(1)
            with _sync_if(self.generator_ddp, i == k - 1), self.autocast(), torch.set_grad_enabled(train_g):
                y_hat = self.generator_ddp(mel.to(dev, non_blocking=True))
            generated.append((y, loss_mel(y, self.cfg.mel), y_hat))
        # 2. discriminators: real and generated audio stacked, gradients accumulated, one step
        self.optim_d.zero_grad(set_to_none=True)
        loss_d = real = fake = 0.0
        for i, (y, _, y_hat) in enumerate(generated):
            b = y.shape[0]
            with _sync_if(self.mpd_ddp, i == k - 1), _sync_if(self.msd_ddp, i == k - 1):
                with self.autocast():
                    scores, _ = discriminate(self.mpd_ddp, self.msd_ddp, torch.cat([y, y_hat.detach()]))
                loss, _, _ = discriminator_loss([s[:b] for s in scores], [s[b:] for s in scores])
                self.scaler_d.scale(loss / k).backward()
            loss_d = loss_d + loss.detach()
            real = real + torch.stack([s[:b].float().mean() for s in scores]).mean().detach()
            fake = fake + torch.stack([s[b:].float().mean() for s in scores]).mean().detach()
        norm_d, stepped_d, finite_d = _optimizer_step(self.optim_d, self.scaler_d, t.grad_clip, loss_d)
        # 3. generator: adversarial + feature matching + mel loss against the updated discriminators
        self.optim_g.zero_grad(set_to_none=True)
        loss_g = adv_sum = fm_sum = mel_sum = 0.0
        # the discriminators are frozen: the generator's step needs no gradients for their weights
        with _frozen(self.mpd, self.msd), torch.set_grad_enabled(train_g):
            for y, real_mel, y_hat in generated:
                with self.autocast():
                    with torch.no_grad():  # the real audio's activations are only targets
                        _, real_fmaps = discriminate(self.mpd, self.msd, y)
                    fake_scores, fake_fmaps = discriminate(self.mpd, self.msd, y_hat)
                adv, _ = generator_loss(fake_scores)
                fm, _ = feature_loss(real_fmaps, fake_fmaps)
                mel_l1 = mel_loss(real_mel, y_hat, self.cfg.mel)
                loss_g = loss_g + (adv + t.lambda_fm * fm + t.lambda_mel * mel_l1) / k
                adv_sum, fm_sum = adv_sum + adv.detach(), fm_sum + fm.detach()
                mel_sum = mel_sum + mel_l1.detach()
            if train_g:  # one backward: DDP all-reduces the accumulated gradient once
                self.scaler_g.scale(loss_g).backward()
        if train_g:
            norm_g, stepped_g, finite_g = _optimizer_step(self.optim_g, self.scaler_g, t.grad_clip, loss_g)
        else:  # the warm-up: measured, not stepped
            norm_g, stepped_g, finite_g = torch.zeros((), device=dev), True, bool(torch.isfinite(loss_g))
        stats = {"loss_g": loss_g.detach(), "loss_adv": adv_sum / k, "loss_fm": fm_sum / k,
                 "loss_mel": mel_sum / k, "grad_norm_g": norm_g, "loss_d": loss_d / k, "grad_norm_d": norm_d,
                 "real_score": real / k, "fake_score": fake / k}
        y, _, y_hat = generated[-1]
        return StepResult({name: v.float() for name, v in stats.items()},
                          skipped=not (stepped_d and stepped_g), finite=finite_d and finite_g,
                          fake=y_hat.detach(), real=y)

    def end_epoch(self):
        "Decay both learning rates (the generator's once it trains) and start the next epoch's data."
        if not self.warming_up:
            self.sched_g.step()
        self.sched_d.step()
        self.epoch, self.batch_in_epoch = self.epoch + 1, 0


# %% [markdown]
# The networks are built on the run's device, and wrapped for data parallelism only when there are several processes.

# %%
#| export
@patch
def _build_models(self: Trainer):
    with torch.device(self.device):
        self.generator = Generator(self.cfg.generator, self.cfg.mel.num_mels)
        self.mpd = MultiPeriodDiscriminator(self.cfg.discriminator)
        self.msd = MultiScaleDiscriminator(self.cfg.discriminator)
    self.generator_ddp = self._ddp(self.generator)
    self.mpd_ddp, self.msd_ddp = self._ddp(self.mpd), self._ddp(self.msd)

@patch
def _ddp(self: Trainer, module: torch.nn.Module) -> torch.nn.Module:
    "`module` wrapped for data parallelism when there are several processes."
    if self.dist.world_size == 1:
        return module
    return DistributedDataParallel(module,
                                   device_ids=[self.device] if self.device.type == "cuda" else None)


# %% [markdown]
# The optimizers follow the recipe: AdamW with the recipe's betas and weight decay (fused kernels on a GPU), an exponential decay per epoch, and a gradient scaler per side that only fp16 enables.

# %%
#| export
@patch
def _build_optimizers(self: Trainer):
    t = self.cfg.train
    fused = {"fused": True} if self.device.type == "cuda" else {}
    options = dict(betas=t.betas, weight_decay=t.weight_decay, **fused)
    self.optim_g = torch.optim.AdamW(self.generator.parameters(), t.lr_g, **options)
    self.optim_d = torch.optim.AdamW(discriminator_parameters(self.mpd, self.msd), t.lr_d, **options)
    self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, t.lr_decay)
    self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, t.lr_decay)
    scaler_device = "cuda" if self.device.type == "cuda" else "cpu"
    self.scaler_g = torch.amp.GradScaler(scaler_device, enabled=self.precision == "fp16")
    self.scaler_d = torch.amp.GradScaler(scaler_device, enabled=self.precision == "fp16")


# %% [markdown]
# The checkpoints name the networks and the optimizers' state; the log is process 0's.

# %%
#| export
@patch(as_prop=True)
def modules(self: Trainer) -> dict:
    "The networks by their checkpoint names."
    return {"generator": self.generator, "mpd": self.mpd, "msd": self.msd}

@patch(as_prop=True)
def optimizers(self: Trainer) -> dict:
    "Optimizers, schedules and gradient scalers by their checkpoint names."
    return {"optim_g": self.optim_g, "optim_d": self.optim_d, "sched_g": self.sched_g,
            "sched_d": self.sched_d, "scaler_g": self.scaler_g, "scaler_d": self.scaler_d}

@patch(as_prop=True)
def ckpt_dir(self: Trainer) -> Path: return self.run_dir / "checkpoints"

@patch
def log(self: Trainer, message: str):
    "Print (above the progress bar) and append to `RUN/train.log`, in process 0 only."
    if not self.dist.main:
        return
    from tqdm.auto import tqdm
    tqdm.write(message)
    if self.run_dir is not None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "train.log", "a", encoding="utf-8") as f:
            f.write(message + "\n")


# %%
show_doc(Trainer)

# %%
show_doc(Trainer.train_step)

# %%
show_doc(Trainer.end_epoch)

# %% [markdown]
# How much the differences above buy is measured by `benchmarks/bench_training.py`, which runs this step and a direct transcription of the reference step (separate discriminator calls for real and generated audio, a filterbank built per mel, discriminator weight gradients in the generator step, `.item()` on every loss) side by side on copies of the same networks and the same batch. Both give the same losses on the first step. On a 2-core CPU it measured 0.30 s against 0.43 s per step for the tiny preset (batch 4 x 4,096 samples: x1.43) and 2.3 s against 3.6 s for V1 (batch 1 x 8,192: x1.58); with `--device cuda` it uses the T4 settings (batch 4 x 8,192, fp16) and reports the peak GPU memory.
#
# Gradient accumulation with a GAN needs a choice the single-batch step does not: when does the discriminator move? Here the discriminator accumulates over all the batches of a step and updates once, then the generator is trained on all of them against the updated discriminator, which keeps the reference's order for the whole effective batch. The generated audio of every batch is kept for the generator step (its graph costs memory: about 0.5 GB per batch of 4 x 8,192 samples for the V1 generator in fp32, well within a T4 for the recipe's two batches).
#
# A quick check on random data with the tiny preset: the losses are finite, both networks' weights move, the discriminators get no gradient from the generator step, and the statistics are still on the device.

# %%
cfg_tiny = preset_config("tiny")
torch.manual_seed(0)
tr = Trainer(cfg_tiny, device="cpu")
batch = (mel_spectrogram(torch.randn(4, 4096) * 0.1, cfg_tiny.mel), torch.randn(4, 4096) * 0.1)
g0, d0 = tr.generator.conv_pre.bias.clone(), tr.mpd.discriminators[0].conv_post.bias.clone()
out = tr.train_step([batch])
print({k: round(v.item(), 3) for k, v in out.stats.items()})
assert not out.skipped
assert out.finite
test_eq(out.fake.shape, (4, 1, 4096))
assert all(torch.isfinite(v) for v in out.stats.values())
assert not torch.equal(g0, tr.generator.conv_pre.bias)
assert not torch.equal(d0, tr.mpd.discriminators[0].conv_post.bias)
assert all(p.requires_grad for p in tr.mpd.parameters())  # unfrozen again
test_eq((tr.step, tr.batch_in_epoch), (1, 1))  # the trainer counts its steps and batches

# %% [markdown]
# ### Discriminator warm-up
#
# Transfer learning starts from a generator that already speaks, but usually with discriminators that know nothing (the published HiFi-GAN generators come without theirs). For the first steps such discriminators answer at random, and a generator that follows them loses some of the quality it started with. With `train.d_warmup_steps = N` the generator stays frozen for the first N steps of a run while the discriminators learn from its output; its losses are still measured and logged. When the discriminators come with the weights (a `do_` file beside the `g_` of `--init-from`) the warm-up is skipped. The `finetune` preset uses it; the measurements that chose its values are in the training notebook.

# %%
warm_cfg = preset_config("tiny")
warm_cfg.train.d_warmup_steps = 1
torch.manual_seed(0)
warm = Trainer(warm_cfg, device="cpu")
g0, d0 = warm.generator.conv_pre.bias.clone(), warm.mpd.discriminators[0].conv_post.bias.clone()
out = warm.train_step([batch])
assert not out.skipped
assert out.finite
test_eq((warm.step, warm.warming_up), (1, True))
test_eq(float(out.stats["grad_norm_g"]), 0.0)
assert torch.equal(g0, warm.generator.conv_pre.bias)  # frozen during the warm-up
assert not torch.equal(d0, warm.mpd.discriminators[0].conv_post.bias)
warm.train_step([batch])
test_eq((warm.step, warm.warming_up), (2, False))
assert not torch.equal(g0, warm.generator.conv_pre.bias)  # and training after it


# %% [markdown]
# ### The end of an epoch
#
# `end_epoch` decays both learning rates by `lr_decay` and starts the next epoch's data; the generator's rate decays only once the generator has trained, so an epoch that ends with the warm-up leaves it where it started:

# %%
def learning_rates(tr: Trainer) -> tuple[float, float]:
    return tr.optim_g.param_groups[0]["lr"], tr.optim_d.param_groups[0]["lr"]

torch.manual_seed(0)
epochs = Trainer(warm_cfg, device="cpu")
lr_g, lr_d, decay = warm_cfg.train.lr_g, warm_cfg.train.lr_d, warm_cfg.train.lr_decay
epochs.train_step([batch])  # the warm-up's one step
epochs.end_epoch()
test_eq((epochs.epoch, epochs.batch_in_epoch), (1, 0))
test_eq(learning_rates(epochs), (lr_g, lr_d * decay))  # the generator has not trained yet
epochs.train_step([batch])
epochs.end_epoch()
test_eq(learning_rates(epochs), (lr_g * decay, lr_d * decay * decay))

# %% [markdown]
# ### Non-finite losses
#
# A NaN in one batch (a corrupt clip, an fp16 overflow in a forward pass, a learning rate too high) must not reach the weights: one step with NaN gradients turns every weight into NaN, and every checkpoint after it is poison. So a step whose loss or gradient is not finite is skipped (no optimizer update) and reported as not finite. Both are checked: an L1 loss against a NaN target is NaN but its gradient is zero, not NaN. Under DDP the processes agree on the decision, or their weights would drift apart. Counting such steps, warning about them and deciding that a run has diverged is the health monitor's job (`HealthMonitor.record_step`); the loop stops on its verdict.

# %%
nan_batch = (batch[0], torch.full((4, 4096), float("nan")))
before = {k: v.clone() for k, v in tr.generator.state_dict().items()}
out = tr.train_step([nan_batch])
assert out.skipped
assert not out.finite
assert all(torch.equal(before[k], v) for k, v in tr.generator.state_dict().items())
assert not tr.train_step([batch]).skipped  # the next good batch trains normally

# %% [markdown]
# ### fp16 and the gradient scaler
#
# Every Kaggle run trains in fp16 with a `GradScaler`, so that path is tested here on the CPU (`precision = "fp16"`), on batches of one 1,024-sample segment (fp16 backward passes are slow on a CPU). The first step's losses agree with fp32 to within what fp16's 11-bit mantissa allows (the discriminators' learning rate is 0 here, so that both runs measure the generator against the same discriminators).
#
# An **overflow** is an `inf` in the gradient of a finite loss: the scale was too large for fp16. That step is skipped and the scaler halves its scale, but the step counts as finite: it is the scaler's normal way of finding its scale, not a sign of divergence (which is a non-finite *loss*, or a non-finite gradient in fp32). A fresh scaler starts at 65,536, which is too large for the generator here: its first steps overflow until the scale is down to about 512 (the discriminators' settle at 16,384). The scaler's state is part of the `do_` checkpoint, so a resumed run does not search for its scale again.

# %%
small = (mel_spectrogram(torch.randn(1, 1024) * 0.1, cfg_tiny.mel), torch.randn(1, 1024) * 0.1)

def tiny_trainer(precision: str, *overrides: str) -> Trainer:
    "A CPU trainer of the tiny preset with the given precision, seeded alike."
    torch.manual_seed(0)
    cfg = apply_overrides(preset_config("tiny"), [f"train.precision={precision}", *overrides])
    return Trainer(cfg, device="cpu")

def frozen_discriminators(tr: Trainer) -> Trainer:
    "`tr` with the discriminators' learning rate at 0 (the config refuses 0: a run must learn)."
    tr.optim_d.param_groups[0]["lr"] = 0.0
    return tr

first = {p: frozen_discriminators(tiny_trainer(p)).train_step([small]).stats for p in ("fp32", "fp16")}
errors = {k: abs(first["fp16"][k] - v).item() / abs(v).item() for k, v in first["fp32"].items() if "loss" in k}
print({k: f"{e:.1e}" for k, e in errors.items()})
assert max(errors.values()) < 5e-3, errors  # measured: <= 2.5e-4 (seeds 0-2); fp16's rounding step is 4.9e-4
test_eq(first["fp32"]["loss_mel"].dtype, torch.float32)

# %%
half = tiny_trainer("fp16")
test_eq(half.precision, "fp16")
assert half.scaler_g.is_enabled()
test_eq(half.scaler_g.get_scale(), 65536.0)
out = half.train_step([small])  # a fresh scaler's scale is too large for the generator's gradients
assert out.skipped
assert out.finite
test_eq(half.scaler_g.get_scale(), 32768.0)
for scaler in (half.scaler_g, half.scaler_d):
    scaler.load_state_dict({**scaler.state_dict(), "scale": 256.0})  # as a resumed run restores it
out = half.train_step([small])
assert not out.skipped
assert out.finite
test_eq(half.scaler_g.get_scale(), 256.0)

def overflow(grad: torch.Tensor) -> torch.Tensor:
    "A gradient hook that turns the gradient into inf, as an fp16 overflow does."
    return torch.full_like(grad, float("inf"))

hook = half.generator.conv_pre.bias.register_hook(overflow)
before = {k: v.clone() for k, v in half.generator.state_dict().items()}
out = half.train_step([small])
hook.remove()
assert out.skipped
assert out.finite
test_eq(half.scaler_g.get_scale(), 128.0)  # skipped, halved, "finite"
assert all(torch.equal(before[k], v) for k, v in half.generator.state_dict().items())
assert not half.train_step([small]).skipped
test_eq(half.optimizers["scaler_g"].state_dict()["scale"], 128.0)  # what the do_ checkpoint stores


# %% [markdown]
# ## The training data, in order
#
# The training loader shuffles the clips anew each epoch, in an order fixed by the seed and the epoch number (see
# [Datasets and loaders](06a_data.ipynb)). A resumed run must continue where its checkpoint left the epoch: it
# replays the epoch's order minus the `batch_in_epoch` batches already consumed, and draws fresh random windows
# from its clips (seeded by the step, so a resumed run does not repeat the windows it has already seen).

# %%
#| export
class _ResumeSampler(Sampler):
    "Skips the first `skip` indices of the wrapped sampler's first pass: a resumed run continues mid-epoch."
    def __init__(self, sampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def set_epoch(self, epoch: int): self.sampler.set_epoch(epoch)

    def __len__(self): return len(self.sampler)

    def __iter__(self):
        skip, self.skip = self.skip, 0
        return itertools.islice(iter(self.sampler), skip, None)

@patch
def train_loader(self: Trainer) -> DataLoader:
    "The training loader of this process, continuing at the saved data position."
    cfg = dataclasses.replace(self.cfg, train=dataclasses.replace(self.cfg.train, batch_size=self.batch_size))
    base = make_dataloader(self.train_set, cfg, train=True, rank=self.dist.rank,
                           world_size=self.dist.world_size)
    if self.step == 0:
        return base
    # a resumed run draws new windows, reproducibly
    seed = mixed_seed(self.cfg.train.seed, self.step, self.dist.rank)
    self.train_set.reseed(seed)
    return DataLoader(base.dataset, batch_size=base.batch_size,
                      sampler=_ResumeSampler(base.sampler, self.batch_in_epoch * base.batch_size),
                      drop_last=True, num_workers=base.num_workers, pin_memory=base.pin_memory,
                      persistent_workers=base.persistent_workers, worker_init_fn=base.worker_init_fn,
                      generator=torch.Generator().manual_seed(seed))


# %%
show_doc(Trainer.train_loader)

# %%
test_eq(list(_ResumeSampler(range(6), 4)), [4, 5])  # the first pass skips what the checkpoint consumed ...
resume = _ResumeSampler(range(6), 4)
test_eq([list(resume), list(resume)], [[4, 5], [0, 1, 2, 3, 4, 5]])  # ... the next epochs are whole


# %% [markdown]
# ## Validation
#
# Every `val_every_steps` steps (and at step 0 of a new run, for a baseline) the generator vocodes the **whole** validation utterances (not segments), and the error is measured as the reference measures it: the L1 distance between the full-band loss mels of the real and the generated audio, averaged over the clips. This is the number to compare with the reference's "validation mel-spectrogram error" (the project's RUSLAN recipe reached 0.231). The first `num_val_samples` clips are also written to `RUN/samples/` as WAV, with the evaluation's mel figure (`mel_figure`: real, generated and their difference), so that a listener can tell what the number cannot; only the samples of the newest validations and of the best one are kept (see [The run folder](08a_run_folder.ipynb)). Validation only measures: the training loop keeps the generator of the lowest error so far (`save_best`, below). Under DDP every process validates its share and the errors are summed across processes.

# %%
#| export
def _write_sample(samples: Path, uid: str, step: int, y: torch.Tensor, y_hat: torch.Tensor, cfg: Config):
    "`samples/ID_real.wav` once, `samples/step_N_ID.wav` and its mel figure `.png`."
    import soundfile as sf
    samples.mkdir(parents=True, exist_ok=True)
    sr, real, generated = cfg.mel.sampling_rate, y.cpu().numpy(), y_hat.clamp(-1, 1).cpu().numpy()
    if not (samples / f"{uid}_real.wav").exists():
        sf.write(samples / f"{uid}_real.wav", real, sr, "PCM_16")
    stem = sample_stem(samples, step, uid)
    sf.write(stem.with_suffix(".wav"), generated, sr, "PCM_16")
    mel_figure(real, generated, f"{uid}, step {step}", cfg.mel).savefig(stem.with_suffix(".png"), dpi=60)


# %% [markdown]
# `validate` runs the generator in evaluation mode without gradients (in the run's mixed precision), sums the clips' errors on the device and reads them once at the end.

# %%
#| export
@patch
def validate(self: Trainer, write_samples: bool = True) -> float:
    "Mean loss-mel L1 of the generator on whole validation clips; writes samples of the first clips."
    loader = make_dataloader(self.val_set, self.cfg, train=False, rank=self.dist.rank,
                             world_size=self.dist.world_size)
    ids = [self.val_set.ids[i] for i in loader.sampler]
    samples = (self.run_dir / "samples"
               if self.run_dir is not None and write_samples and self.dist.main else None)
    total = torch.zeros(2, device=self.device)
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False  # every utterance has its own length: no per-shape autotuning
    self.generator.eval()
    try:
        for i, (mel, audio) in enumerate(loader):
            with torch.no_grad(), self.autocast():
                y_hat = self.generator(mel.to(self.device)).float()[:, 0]
            y = audio.to(self.device)
            error = mel_loss(loss_mel(y, self.cfg.mel), y_hat, self.cfg.mel)
            total += torch.stack([error, total.new_ones(())])
            if samples is not None and i < self.cfg.train.num_val_samples:
                _write_sample(samples, ids[i], self.step, y[0], y_hat[0], self.cfg)
    finally:
        self.generator.train()
        torch.backends.cudnn.benchmark = benchmark
    if self.dist.world_size > 1:
        dist.all_reduce(total)
    val = (total[0] / total[1].clamp(min=1)).item()
    if samples is not None:
        prune_samples(samples, keep={self.best_step})  # the newest validations' samples, and the best's
    return val


# %%
show_doc(Trainer.validate)


# %% [markdown]
# ## Checkpoints of the run
#
# The file format is the checkpoints module's ([Checkpoints](05a_checkpoints.ipynb)); the trainer only says what goes in. `save` writes the pair of the current step (process 0) and keeps the best step's pair when pruning; `load` restores a pair, this project's or an official one; `init_from` starts a new run from existing weights; `save_best`, which the training loop calls after a validation that improved on the best, writes `generator_best.pt` and lets the samples of the previous best go (unless they are among the newest).

# %%
#| export
@patch(as_prop=True)
def position(self: Trainer) -> RunPosition:
    "Where the run stands, as the checkpoints record it."
    return RunPosition(self.step, self.epoch, self.batch_in_epoch, self.best_val, self.best_step)

@patch
def payloads(self: Trainer) -> tuple[dict, dict]:
    "The `(g_, do_)` dictionaries of the current state."
    return training_payloads(self.modules, self.optimizers, self.cfg, self.position,
                             (self.dist.world_size, self.batch_size))

@patch
def save(self: Trainer) -> Path:
    "Write the current step's checkpoint pair (process 0 only) and prune old pairs; returns the `g_` path."
    if not self.dist.main:
        return step_path(self.ckpt_dir, "g", self.step)
    g, do = self.payloads()
    return save_checkpoint(self.ckpt_dir, self.step, g, do, self.cfg.train.keep_last, keep={self.best_step})

@patch
def save_best(self: Trainer, val: float):
    "Record `val` as the best error; write `generator_best.pt`, drop the previous best's samples (process 0)."
    self.best_val, self.best_step = val, self.step
    if not self.dist.main:
        return
    payload, path = {**self.payloads()[0], "val_mel_l1": val}, self.ckpt_dir / "generator_best.pt"
    with space_guard(path, self.ckpt_dir, payload_bytes(payload)):
        atomic_save(payload, path)
    prune_samples(self.run_dir / "samples", keep={self.best_step})  # unless among the newest validations'


# %% [markdown]
# Loading goes the other way: a pair restores the whole state of a run; `init_from` only the weights, into a new run.

# %%
#| export
@patch
def load(self: Trainer, g: dict, do: dict):
    "Restore the state of a `g_`/`do_` pair (this project's, an older version's or the official layout)."
    at = restore_training_state(g, do, self.modules, self.optimizers, (self.dist.world_size, self.batch_size))
    self.step, self.epoch, self.batch_in_epoch = at.step, at.epoch, at.batch_in_epoch
    self.best_val, self.best_step = at.best_val, at.best_step

@patch
def init_from(self: Trainer, path) -> str:
    "Start this (new) run from the weights of a checkpoint; returns what was loaded."
    loaded = load_initial_weights(path, self.modules, self.cfg.generator_preset)
    if self.warmup_steps and "discriminators" in loaded:
        self.warmup_steps = 0
        loaded += "; the discriminators are trained already: no warm-up"
    return loaded


# %% [markdown]
# The layout must match the reference exactly for the official files to load: here are the keys and shapes of a V1 run's files against the reference manifest. The networks are built on PyTorch's `meta` device (shapes without memory), so this costs almost nothing although V1 has 85 M parameters.

# %%
import json, tempfile
from hifigan_ruslan.checkpoints import load_checkpoint

# %%
manifest = json.loads(Path("testdata/reference/state_dict_manifest.json").read_text())
v1 = Trainer(preset_config("v1"), device="meta")
g_file, do_file = v1.payloads()
with tempfile.TemporaryDirectory() as d:
    atomic_save(g_file, Path(d) / "g_00000000")
    atomic_save(do_file, Path(d) / "do_00000000")
    g_file, do_file = load_checkpoint(Path(d) / "g_00000000"), load_checkpoint(Path(d) / "do_00000000")

def shapes(sd: dict) -> dict: return {k: list(v.shape) for k, v in sd.items()}

test_eq(shapes(g_file["generator"]), manifest["generator_v1"])
test_eq(shapes(do_file["mpd"]), manifest["mpd"])
test_eq(shapes(do_file["msd"]), manifest["msd"])
assert {"mpd", "msd", "optim_g", "optim_d", "steps", "epoch"} <= set(do_file)
test_eq(g_file["config"]["preset"], "v1")
print(len(g_file["generator"]), "generator tensors,", len(do_file["mpd"]) + len(do_file["msd"]), "discriminator tensors")
