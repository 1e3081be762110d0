# %% [markdown]
# # Training
#
# > The HiFi-GAN training loop: one step of discriminator and generator updates, mixed precision, two-GPU data parallelism, checkpoints that survive a kill, resume, a time budget, validation, and the health monitor.

# %%
#| default_exp training

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import argparse, csv, dataclasses, itertools, math, os, random, signal, threading, time
from contextlib import contextmanager, nullcontext
from pathlib import Path
import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler
from hifigan_ruslan.config import Config, TrainConfig, apply_overrides, config_to_dict, load_config, preset_config, save_config
from hifigan_ruslan.mel import mel_spectrogram
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from hifigan_ruslan.losses import discriminator_loss, generator_loss, feature_loss, mel_loss
from hifigan_ruslan.checkpoints import atomic_save, load_checkpoint, step_path, list_steps, infer_generator_preset
from hifigan_ruslan.data import VocoderDataset, make_dataloader
from hifigan_ruslan.health import HealthMonitor

# %% [markdown]
# A training run is a loop over one function, `train_step`, wrapped in the things that make a long run on rented hardware survivable: checkpoints that a kill cannot corrupt, resume from them, a clock that stops the run before the platform does, validation, and a monitor that notices when the GAN has stopped learning. The sections below build these pieces in order; `fit` at the end puts them together, and `hifigan-ruslan train` is a thin command line over `fit`.
#
# ## Precision
#
# Mixed precision roughly halves the memory and doubles the speed of the convolutions on a GPU. Which kind depends on the GPU:
#
# - **bf16** (Ampere and newer: A100, L4, H100) has the exponent range of fp32, so gradients cannot overflow and no loss scaling is needed.
# - **fp16** is all a T4 (Kaggle's GPU) has. Its range ends at 65,504 and small gradients underflow to zero, so the loss is multiplied by a large factor before the backward pass and the gradients divided by it before the optimizer step; a `GradScaler` picks the factor, lowers it whenever a step produces `inf`, and skips that step.
# - **fp32** on the CPU, where half precision buys nothing.
#
# Only the networks run in reduced precision. The mel spectrogram (STFT and log) is always fp32 (`mel_spectrogram` switches autocast off), and so are the losses: their small differences of large numbers are exactly what fp16 rounds away.

# %%
#| export
PRECISIONS = ("auto", "fp32", "fp16", "bf16")

def resolve_precision(precision: str, device) -> str:
    "The precision a run uses: with `auto`, bf16 on GPUs that have it (compute capability 8+), fp16 on older GPUs, fp32 on the CPU."
    if precision not in PRECISIONS: raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if device.type != "cuda": return "bf16" if precision == "bf16" else "fp32"
    if precision != "auto": return precision
    return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"


# %%
assert resolve_precision("auto", "cpu") == "fp32" and resolve_precision("fp16", "cpu") == "fp32"
try: resolve_precision("fp8", "cpu")
except ValueError as e: print(e)


# %% [markdown]
# `torch.cuda.is_bf16_supported()` is not used for the decision: on recent PyTorch it also answers yes for a T4, where bf16 is emulated and slow.
#
# ## Two GPUs
#
# Kaggle offers two T4s. `torchrun --nproc-per-node 2 -m hifigan_ruslan train ...` starts one process per GPU; each holds a full copy of the three networks, trains on its own share of every epoch (a `DistributedSampler`), and `DistributedDataParallel` averages the gradients across the processes during the backward pass, so the copies stay identical. Only process 0 writes logs, samples and checkpoints.
#
# The **effective batch** (the number of clips behind one optimizer step) must not change with the number of GPUs, or a recipe tuned on one GPU would train differently on two. It is `batch_size x grad_accum_steps` over all processes, so with two processes the accumulation steps are halved (the recipe's 4 x 2 becomes 4 per GPU with no accumulation), or, if that is not possible, the per-process batch.
#
# The same code runs with the gloo backend on the CPU, which is how the tests start two processes.

# %%
#| export
@dataclasses.dataclass
class DistInfo:
    "Where this process stands in a (possibly one-process) group."
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool: return self.rank == 0

def init_distributed(device: str = "auto") -> tuple[DistInfo, torch.device]:
    "Join the process group that `torchrun` describes in the environment (NCCL on GPUs, gloo on the CPU); one process otherwise."
    info = DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))
    if device == "auto": device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None: dev = torch.device("cuda", info.local_rank)
    if info.world_size > 1:
        if dev.type == "cuda": torch.cuda.set_device(dev)
        else: torch.set_num_threads(max(1, (os.cpu_count() or 1) // info.world_size))  # no oversubscription
        if not dist.is_initialized(): dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return info, dev

def per_process_batch(train: TrainConfig, world_size: int) -> tuple[int, int]:
    "`(batch_size, grad_accum_steps)` per process that keep the effective batch `batch_size x grad_accum_steps`."
    b, k = train.batch_size, train.grad_accum_steps
    if k % world_size == 0: return b, k // world_size
    if b % world_size == 0: return b // world_size, k
    raise ValueError(f"the effective batch {b} x {k} cannot be split over {world_size} processes; "
                     f"make train.batch_size or train.grad_accum_steps a multiple of {world_size}")


# %%
recipe = preset_config("recipe").train
assert per_process_batch(recipe, 1) == (4, 2) and per_process_batch(recipe, 2) == (4, 1) and per_process_batch(recipe, 4) == (1, 2)
assert per_process_batch(preset_config("tiny").train, 2) == (2, 1)


# %% [markdown]
# ## The trainer's state
#
# A `Trainer` holds everything a run consists of: the generator, the multi-period and multi-scale discriminators, an AdamW optimizer and an exponential learning-rate schedule for each side, a gradient scaler for each side (only active in fp16: the two sides' gradients differ by orders of magnitude, so each gets its own loss scale), the datasets, and the counters that say where the run is: optimizer steps, epoch, and batches consumed in the current epoch. Under `torchrun` the networks are also wrapped in `DistributedDataParallel`; the plain modules stay reachable for the places that must not synchronise.

# %%
#| export
class Trainer:
    "Models, optimizers, schedules, scalers, data and counters of one training run writing to `run_dir`."
    def __init__(self, cfg: Config, data_dir=None, run_dir=None, device: str = "auto", progress: bool = True):
        self.started = time.monotonic()  # the time budget counts from here
        self.cfg, t = cfg, cfg.train
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = progress
        self.dist, self.device = init_distributed(device)
        self.precision = resolve_precision(t.precision, self.device)
        if self.device.type == "cuda": torch.backends.cudnn.benchmark = True  # training segments have one fixed shape
        self.amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        self.batch_size, self.accum = per_process_batch(t, self.dist.world_size)
        torch.manual_seed(t.seed)  # identical initial weights in every process
        with torch.device(self.device):
            self.generator = Generator(cfg.generator)
            self.mpd = MultiPeriodDiscriminator(cfg.discriminator)
            self.msd = MultiScaleDiscriminator(cfg.discriminator)
        fused = {"fused": True} if self.device.type == "cuda" else {}
        adamw = lambda params, lr: torch.optim.AdamW(params, lr, betas=t.betas, weight_decay=t.weight_decay, **fused)
        self.optim_g = adamw(self.generator.parameters(), t.lr_g)
        self.optim_d = adamw([*self.mpd.parameters(), *self.msd.parameters()], t.lr_d)
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, t.lr_decay)
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, t.lr_decay)
        scaler_device = "cuda" if self.device.type == "cuda" else "cpu"
        self.scaler_g, self.scaler_d = (torch.amp.GradScaler(scaler_device, enabled=self.precision == "fp16") for _ in range(2))
        wrap = (lambda m: DistributedDataParallel(m, device_ids=[self.device] if self.device.type == "cuda" else None)) \
            if self.dist.world_size > 1 else (lambda m: m)
        self.generator_ddp, self.mpd_ddp, self.msd_ddp = wrap(self.generator), wrap(self.mpd), wrap(self.msd)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.best_val, self.best_step = math.inf, None
        self.bad_steps = 0
        self.health = HealthMonitor(cfg.discriminator.num_subdiscriminators, sampling_rate=cfg.mel.sampling_rate)
        if self.data_dir is not None:
            self.train_set = VocoderDataset(self.data_dir, "train", cfg, train=True, seed=t.seed)
            self.val_set = VocoderDataset(self.data_dir, "val", cfg, train=False)

    @property
    def ckpt_dir(self) -> Path: return self.run_dir / "checkpoints"

    def autocast(self):
        "Mixed-precision context for the networks' forward passes (a no-op in fp32)."
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def log(self, message: str):
        "Print (above the progress bar) and append to `RUN/train.log`, in process 0 only."
        if not self.dist.main: return
        from tqdm.auto import tqdm
        tqdm.write(message)
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.run_dir / "train.log", "a", encoding="utf-8") as f: f.write(message + "\n")


# %%
show_doc(Trainer)


# %% [markdown]
# ## One training step
#
# `train_step` takes `grad_accum_steps` batches of `(mel, audio)` and makes one update of each side. It follows the reference HiFi-GAN step:
#
# 1. **Generate** `y_hat = G(mel)` for every batch.
# 2. **Discriminator step.** Both discriminators score the real audio and the *detached* generated audio; the least-squares loss pushes real scores to 1 and generated ones to 0. Gradients accumulate over the batches, then the discriminators take one step.
# 3. **Generator step**, against the discriminators just updated: the adversarial loss (generated scores pushed to 1), plus `lambda_fm` x feature matching (the discriminators' inner activations on generated audio pulled towards those on real audio), plus `lambda_mel` x the L1 distance between full-band loss mels. Then one generator step.
#
# With one batch per step (no accumulation) this is exactly the reference order. Both optimizers clip the gradient norm (`train.grad_clip`; 0 measures the norm without clipping) and skip a step whose loss or gradient is not finite.
#
# Where it differs from a straightforward transcription, it does so for speed, with the same mathematics:
#
# - In the discriminator step the real and generated batches go through each discriminator **stacked in one call** (`[2B, 1, N]`) instead of two: fewer, larger kernels. There is no batch normalisation in HiFi-GAN's discriminators, so stacking changes nothing (only the power iteration of the spectral-normalised scale runs once instead of twice).
# - In the generator step the discriminators' weights are **frozen**: the reference computes gradients for every discriminator weight there and throws them away at the next `zero_grad`. The real audio's activations, which are only targets, are computed under `no_grad`.
# - The **real audio's loss mel** is computed once per batch and reused; the mel filterbanks are cached per device (`mel_filterbank`).
# - **No host-device synchronisation per loss.** The statistics of a step are one small tensor added to a running sum on the device; the host reads it once per logging interval. The only per-step synchronisation is the one question each optimizer step must answer on the host: are the loss and the gradient finite?

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
    with (model.no_sync() if isinstance(model, DistributedDataParallel) and not sync else nullcontext()): yield

@contextmanager
def _frozen(*modules):
    "Temporarily stop gradients to the modules' parameters."
    params = [p for m in modules for p in m.parameters()]
    for p in params: p.requires_grad_(False)
    try: yield
    finally:
        for p in params: p.requires_grad_(True)

def _optimizer_step(optimizer, scaler, max_norm: float, loss: torch.Tensor) -> tuple[torch.Tensor, bool, bool]:
    "Unscale, clip (0: only measure), step if loss and gradient are finite: `(norm before clipping, stepped, loss bad)`."
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    scaler.unscale_(optimizer)
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm) if max_norm > 0 else \
        torch.nn.utils.get_total_norm([p.grad for p in params])
    finite = torch.isfinite(torch.stack([loss.detach().float(), norm.detach().float()])).float()
    if dist.is_initialized(): dist.all_reduce(finite, op=dist.ReduceOp.MIN)  # all processes take the same decision
    loss_ok, grad_ok = (bool(v) for v in finite.tolist())  # the one host sync of this optimizer step
    if loss_ok and grad_ok: scaler.step(optimizer)
    scaler.update()
    # a non-finite gradient from a finite loss under fp16 is an overflow that the scaler handles by lowering its scale
    return norm.detach(), loss_ok and grad_ok, not loss_ok or (not grad_ok and not scaler.is_enabled())


# %%
#| export
STAT_NAMES = ("loss_g", "loss_d", "loss_adv", "loss_fm", "loss_mel", "grad_norm_g", "grad_norm_d", "real_score", "fake_score")

def train_step(tr: Trainer, batches: list) -> dict:
    "One discriminator and one generator update from `len(batches)` accumulated `(mel, audio)` batches."
    t, k, dev = tr.cfg.train, len(batches), tr.device
    inputs, fakes = [], []
    sum_d = sum_real = sum_fake = 0.0
    tr.optim_d.zero_grad(set_to_none=True)
    for i, (mel, audio) in enumerate(batches):
        mel, y = mel.to(dev, non_blocking=True), audio.to(dev, non_blocking=True).unsqueeze(1)
        real_mel = mel_spectrogram(y[:, 0], tr.cfg.mel, for_loss=True)
        last, b = i == k - 1, y.shape[0]
        with _sync_if(tr.generator_ddp, last), tr.autocast(): y_hat = tr.generator_ddp(mel)
        with _sync_if(tr.mpd_ddp, last), _sync_if(tr.msd_ddp, last):
            with tr.autocast(): scores, _ = discriminate(tr.mpd_ddp, tr.msd_ddp, torch.cat([y, y_hat.detach()]))
            loss_d, _, _ = discriminator_loss([s[:b] for s in scores], [s[b:] for s in scores])
            tr.scaler_d.scale(loss_d / k).backward()
        inputs.append((y, real_mel)); fakes.append(y_hat)
        sum_d = sum_d + loss_d.detach()
        sum_real = sum_real + torch.stack([s[:b].float().mean() for s in scores]).mean().detach()
        sum_fake = sum_fake + torch.stack([s[b:].float().mean() for s in scores]).mean().detach()
    norm_d, stepped_d, bad_d = _optimizer_step(tr.optim_d, tr.scaler_d, t.grad_clip, sum_d)

    tr.optim_g.zero_grad(set_to_none=True)
    loss_g = sum_adv = sum_fm = sum_mel = 0.0
    with _frozen(tr.mpd, tr.msd):  # the generator step needs no discriminator weight gradients
        for (y, real_mel), y_hat in zip(inputs, fakes):
            with tr.autocast():
                with torch.no_grad(): _, real_fmaps = discriminate(tr.mpd, tr.msd, y)
                fake_scores, fake_fmaps = discriminate(tr.mpd, tr.msd, y_hat)
            adv, _ = generator_loss(fake_scores)
            fm, _ = feature_loss(real_fmaps, fake_fmaps)
            mel_l1 = mel_loss(None, y_hat, tr.cfg.mel, real_mel=real_mel)
            loss_g = loss_g + (adv + t.lambda_fm * fm + t.lambda_mel * mel_l1) / k
            sum_adv, sum_fm, sum_mel = sum_adv + adv.detach(), sum_fm + fm.detach(), sum_mel + mel_l1.detach()
        tr.scaler_g.scale(loss_g).backward()  # one backward: DDP all-reduces the accumulated gradient once
    norm_g, stepped_g, bad_g = _optimizer_step(tr.optim_g, tr.scaler_g, t.grad_clip, loss_g)

    stats = torch.stack([loss_g.detach(), sum_d / k, sum_adv / k, sum_fm / k, sum_mel / k, norm_g.float(), norm_d.float(),
                         sum_real / k, sum_fake / k]).float()
    return {"stats": stats, "skipped": not (stepped_d and stepped_g), "bad": bad_d or bad_g, "fake": fakes[-1].detach(),
            "real": inputs[-1][0]}


# %%
show_doc(train_step)

# %% [markdown]
# How much the differences above buy is measured by `benchmarks/bench_training.py`, which runs this step and a direct transcription of the reference step (separate discriminator calls for real and generated audio, a filterbank built per mel, discriminator weight gradients in the generator step, `.item()` on every loss) side by side on copies of the same networks and the same batch. Both give the same losses on the first step. On a 2-core CPU it measured 0.30 s against 0.43 s per step for the tiny preset (batch 4 x 4,096 samples: x1.43) and 2.3 s against 3.6 s for V1 (batch 1 x 8,192: x1.58); with `--device cuda` it uses the T4 settings (batch 4 x 8,192, fp16) and reports the peak GPU memory.

# %% [markdown]
# Gradient accumulation with a GAN needs a choice the single-batch step does not: when does the discriminator move? Here the discriminator accumulates over all the batches of a step and updates once, then the generator is trained on all of them against the updated discriminator, which keeps the reference's order for the whole effective batch. The generated audio of every batch is kept for the generator step (its graph costs memory: about 0.5 GB per batch of 4 x 8,192 samples for the V1 generator in fp32, well within a T4 for the recipe's two batches).
#
# A quick check on random data with the tiny preset: the losses are finite, both networks' weights move, the discriminators get no gradient from the generator step, and the statistics are still on the device.

# %%
cfg_tiny = preset_config("tiny")
tr = Trainer(cfg_tiny, device="cpu")
batch = (mel_spectrogram(torch.randn(4, 4096) * 0.1, cfg_tiny.mel), torch.randn(4, 4096) * 0.1)
g0, d0 = tr.generator.conv_pre.bias.clone(), tr.mpd.discriminators[0].conv_post.bias.clone()
out = train_step(tr, [batch])
print({k: round(v, 3) for k, v in zip(STAT_NAMES, out["stats"].tolist())})
assert not out["skipped"] and torch.isfinite(out["stats"]).all() and out["fake"].shape == (4, 1, 4096)
assert not torch.equal(g0, tr.generator.conv_pre.bias) and not torch.equal(d0, tr.mpd.discriminators[0].conv_post.bias)
assert all(p.requires_grad for p in tr.mpd.parameters())  # unfrozen again

# %% [markdown]
# ### Non-finite losses
#
# A NaN in one batch (a corrupt clip, an fp16 overflow in a forward pass, a learning rate too high) must not reach the weights: one step with NaN gradients turns every weight into NaN, and every checkpoint after it is poison. So a step whose loss or gradient is not finite is skipped (no optimizer update) and logged. Both are checked: an L1 loss against a NaN target is NaN but its gradient is zero, not NaN. Under DDP the processes agree on the decision, or their weights would drift apart. One skipped step is harmless; many in a row mean the run has diverged, and after `MAX_BAD_STEPS` consecutive ones `fit` stops with a message saying so, leaving the last good checkpoint as the newest one.

# %%
#| export
MAX_BAD_STEPS = 10  # consecutive steps with a non-finite loss before the run stops

class TrainingDiverged(RuntimeError):
    "Raised by `fit` after `MAX_BAD_STEPS` consecutive steps with a non-finite loss."


# %%
nan_batch = (batch[0], torch.full((4, 4096), float("nan")))
before = {k: v.clone() for k, v in tr.generator.state_dict().items()}
out = train_step(tr, [nan_batch])
assert out["skipped"] and out["bad"] and all(torch.equal(before[k], v) for k, v in tr.generator.state_dict().items())
assert not train_step(tr, [batch])["skipped"]  # the next good batch trains normally


# %% [markdown]
# ## Checkpoints
#
# The files keep the official HiFi-GAN names and layouts (see the checkpoints notebook), so that the universal V1 weights can start a run here and this project's weights work in other HiFi-GAN tools:
#
# - `RUN/checkpoints/g_XXXXXXXX`: `{"generator": ...}`, plus `config` (the run's `Config` as a dict, so that inference knows the preset) and `steps`.
# - `RUN/checkpoints/do_XXXXXXXX`: `mpd`, `msd`, `optim_g`, `optim_d`, `steps`, `epoch`, plus what an exact resume needs: both schedules and gradient scalers, the random number generators, the config, the data position (epoch and batches already consumed in it) and the best validation error so far.
# - `RUN/checkpoints/generator_best.pt`: the `g_` layout of the step with the lowest validation mel error.
#
# Each file is written with `atomic_save` (temporary file, fsync, rename), `do_` before `g_`. Resume looks for `g_` files, so a kill at any instant leaves either a complete pair or a `do_` without its `g_` that nothing reads. After each save only the newest `keep_last` pairs are kept, plus the pair of the best step.

# %%
#| export
def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
             "numpy_pos": int(np_state[2]), "python": torch.tensor(random.getstate()[1], dtype=torch.int64)}
    if torch.cuda.is_available(): state["cuda"] = torch.cuda.get_rng_state_all()
    return state

def _set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(state["python"].tolist()), None))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])

def checkpoint_payloads(tr: Trainer) -> tuple[dict, dict]:
    "The `(g_, do_)` dictionaries of the trainer's current state, official keys first."
    config = config_to_dict(tr.cfg)
    g = {"generator": tr.generator.state_dict(), "config": config, "steps": tr.step}
    do = {"mpd": tr.mpd.state_dict(), "msd": tr.msd.state_dict(), "optim_g": tr.optim_g.state_dict(),
          "optim_d": tr.optim_d.state_dict(), "steps": tr.step, "epoch": tr.epoch,
          "sched_g": tr.sched_g.state_dict(), "sched_d": tr.sched_d.state_dict(),
          "scaler_g": tr.scaler_g.state_dict(), "scaler_d": tr.scaler_d.state_dict(), "rng": _rng_state(), "config": config,
          "data": {"epoch": tr.epoch, "batch_in_epoch": tr.batch_in_epoch, "world_size": tr.dist.world_size,
                   "batch_size": tr.batch_size},
          "best": {"val_mel_l1": tr.best_val, "step": -1 if tr.best_step is None else tr.best_step}}
    return g, do

def save_checkpoint(tr: Trainer) -> Path:
    "Write `do_` then `g_` of the current step atomically (process 0), prune old pairs; returns the `g_` path."
    path = step_path(tr.ckpt_dir, "g", tr.step)
    if not tr.dist.main: return path
    g, do = checkpoint_payloads(tr)
    atomic_save(do, step_path(tr.ckpt_dir, "do", tr.step))
    atomic_save(g, path)
    prune_checkpoints(tr.ckpt_dir, tr.cfg.train.keep_last, keep={tr.best_step})
    return path

def prune_checkpoints(ckpt_dir, keep_last: int, keep=()) -> list[int]:
    "Delete `g_`/`do_` pairs except the newest `keep_last` (0 keeps all) and the steps in `keep`; returns the deleted steps."
    if keep_last <= 0: return []
    steps = list_steps(ckpt_dir, "g")
    doomed = [s for s in steps[:-keep_last] if s not in keep]
    doomed += [s for s in list_steps(ckpt_dir, "do") if s not in steps and s < (steps[-1] if steps else 0)]  # orphans of a kill
    for s in doomed:
        for prefix in ("g", "do"): step_path(ckpt_dir, prefix, s).unlink(missing_ok=True)
    return doomed


# %%
show_doc(save_checkpoint)

# %% [markdown]
# The layout must match the reference exactly for the official files to load: here are the keys and shapes of a V1 run's files against the reference manifest. The networks are built on PyTorch's `meta` device (shapes without memory), so this costs almost nothing although V1 has 85 M parameters.

# %%
import json, tempfile

# %%
manifest = json.loads(Path("testdata/reference/state_dict_manifest.json").read_text())
v1 = Trainer(preset_config("v1"), device="meta")
g_file, do_file = checkpoint_payloads(v1)
with tempfile.TemporaryDirectory() as d:
    atomic_save(g_file, Path(d) / "g_00000000"); atomic_save(do_file, Path(d) / "do_00000000")
    g_file, do_file = load_checkpoint(Path(d) / "g_00000000"), load_checkpoint(Path(d) / "do_00000000")
shapes = lambda sd: {k: list(v.shape) for k, v in sd.items()}
assert shapes(g_file["generator"]) == manifest["generator_v1"]
assert shapes(do_file["mpd"]) == manifest["mpd"] and shapes(do_file["msd"]) == manifest["msd"]
assert {"mpd", "msd", "optim_g", "optim_d", "steps", "epoch"} <= set(do_file) and g_file["config"]["generator_preset"] == "v1"
print(len(g_file["generator"]), "generator tensors,", len(do_file["mpd"]) + len(do_file["msd"]), "discriminator tensors: layouts match")


# %% [markdown]
# ### Resume and transfer
#
# `find_resume_checkpoint` walks the `g_` files from the newest back and returns the first pair that loads completely; a file that does not (cut short by a crash on a file system without atomic rename, or damaged in a copy) is skipped with a warning. `load_training_state` restores everything `checkpoint_payloads` saved. If the number of processes or the batch size changed since, the epoch's data position no longer means the same batches, so the run restarts that epoch's data.
#
# `init_from_checkpoint` is for transfer learning instead: it starts a **new** run from existing weights (this project's `g_` files or the official ones, for example the universal V1 generator trained on English) with fresh optimizers. Given a `g_` file it also loads the discriminators from the `do_` file beside it when there is one: starting the discriminators from scratch against a pretrained generator wastes the first thousands of steps.

# %%
#| export
def find_resume_checkpoint(ckpt_dir) -> tuple[int | None, dict | None, dict | None, list[str]]:
    "`(step, g, do, warnings)` of the newest complete checkpoint pair in `ckpt_dir`; step None if there is none."
    warnings = []
    for s in reversed(list_steps(ckpt_dir, "g")):
        try:
            g, do = load_checkpoint(step_path(ckpt_dir, "g", s)), load_checkpoint(step_path(ckpt_dir, "do", s))
            missing = [k for k in ("mpd", "msd", "optim_g", "optim_d") if k not in do] + (["generator"] if "generator" not in g else [])
            if missing: raise ValueError(f"{step_path(ckpt_dir, 'g', s)}: incomplete checkpoint (no {', '.join(missing)})")
            return s, g, do, warnings
        except (ValueError, FileNotFoundError) as e:
            warnings.append(f"warning: skipping checkpoint of step {s}: {e}")
    return None, None, None, warnings

def load_training_state(tr: Trainer, g: dict, do: dict):
    "Restore a trainer from a `g_`/`do_` pair written by `save_checkpoint`."
    tr.generator.load_state_dict(g["generator"])
    tr.mpd.load_state_dict(do["mpd"]); tr.msd.load_state_dict(do["msd"])
    tr.optim_g.load_state_dict(do["optim_g"]); tr.optim_d.load_state_dict(do["optim_d"])
    for name in ("sched_g", "sched_d"):
        if name in do: getattr(tr, name).load_state_dict(do[name])
    for name in ("scaler_g", "scaler_d"):
        scaler = getattr(tr, name)
        if do.get(name) and scaler.is_enabled(): scaler.load_state_dict(do[name])
    tr.step, tr.epoch = int(do["steps"]), int(do["epoch"])
    data = do.get("data", {})
    same_split = (data.get("world_size"), data.get("batch_size")) == (tr.dist.world_size, tr.batch_size)
    tr.batch_in_epoch = int(data.get("batch_in_epoch", 0)) if same_split else 0
    best = do.get("best", {})
    tr.best_val = float(best.get("val_mel_l1", math.inf))
    tr.best_step = None if best.get("step", -1) < 0 else int(best["step"])
    if "rng" in do: _set_rng_state(do["rng"])

def init_from_checkpoint(tr: Trainer, path) -> str:
    "Load generator weights (and the discriminators of a `g_` file's sibling `do_`) into a fresh run; returns what was loaded."
    path = Path(path)
    ckpt = load_checkpoint(path)
    sd = ckpt.get("generator", ckpt)
    if not isinstance(sd, dict) or not any(k.startswith("conv_pre.") for k in sd):
        raise ValueError(f"{path}: no generator weights in this file")
    if not any(k.endswith("weight_g") for k in sd):
        raise ValueError(f"{path}: generator without weight normalisation (exported for inference); start from a g_ file")
    try: tr.generator.load_state_dict(sd)
    except RuntimeError:
        found = infer_generator_preset(sd)
        raise ValueError(f"{path}: holds a {found or 'differently shaped'} generator; this run's generator is "
                         f"{tr.cfg.generator_preset} (choose a matching --preset)") from None
    loaded = [f"generator from {path}"]
    sibling = path.with_name("do_" + path.name[2:]) if path.name.startswith("g_") else None
    if sibling is not None and sibling.is_file():
        do = load_checkpoint(sibling)
        try: tr.mpd.load_state_dict(do["mpd"]); tr.msd.load_state_dict(do["msd"])
        except (KeyError, RuntimeError):
            raise ValueError(f"{sibling}: its discriminators do not fit this run's discriminator config") from None
        loaded.append(f"discriminators from {sibling}")
    return "Initialised " + " and ".join(loaded) + " (fresh optimizers)"


# %% [markdown]
# ## Validation
#
# Every `val_every_steps` steps the generator vocodes the **whole** validation utterances (not segments), and the error is measured as the reference measures it: the L1 distance between the full-band loss mels of the real and the generated audio, averaged over the clips. This is the number to compare with the reference's "validation mel-spectrogram error" (the project's RUSLAN recipe reached 0.231). The first `num_val_samples` clips are also written to `RUN/samples/` as WAV, with an image of the real and generated mels, so that a listener can tell what the number cannot. Under DDP every process validates its share and the errors are summed across processes.

# %%
#| export
def _save_mel_image(path: Path, real: torch.Tensor, fake: torch.Tensor, title: str):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(8, 3.2))
    axes = fig.subplots(2, 1, sharex=True)
    for ax, mel, name in zip(axes, (real, fake), ("real", "generated")):
        ax.imshow(mel.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-11.5, vmax=2)
        ax.set_ylabel(name)
    axes[0].set_title(title, fontsize=9); axes[1].set_xlabel("frame")
    fig.tight_layout(); fig.savefig(path, dpi=80)

@torch.no_grad()
def validate(tr: Trainer, write_samples: bool = True) -> float:
    "Mean loss-mel L1 error of the generator on the whole validation utterances; writes samples to `RUN/samples/`."
    import soundfile as sf
    loader = make_dataloader(tr.val_set, tr.cfg, train=False, rank=tr.dist.rank, world_size=tr.dist.world_size)
    ids = [tr.val_set.ids[i] for i in loader.sampler]
    samples = tr.run_dir / "samples" if tr.run_dir is not None and write_samples and tr.dist.main else None
    total = torch.zeros(2, device=tr.device)
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False  # every utterance has its own length: no per-shape autotuning
    tr.generator.eval()
    try:
        for i, (mel, audio) in enumerate(loader):
            with tr.autocast(): y_hat = tr.generator(mel.to(tr.device)).float()[:, 0]
            y = audio.to(tr.device)
            real_mel = mel_spectrogram(y, tr.cfg.mel, for_loss=True)
            total += torch.stack([mel_loss(None, y_hat, tr.cfg.mel, real_mel=real_mel), torch.ones((), device=tr.device)])
            if samples is not None and i < tr.cfg.train.num_val_samples:
                samples.mkdir(parents=True, exist_ok=True)
                sr, uid = tr.cfg.mel.sampling_rate, ids[i]
                if not (samples / f"{uid}_real.wav").exists(): sf.write(samples / f"{uid}_real.wav", y[0].cpu().numpy(), sr, "PCM_16")
                stem = samples / f"step_{tr.step:08d}_{uid}"
                sf.write(stem.with_suffix(".wav"), y_hat[0].clamp(-1, 1).cpu().numpy(), sr, "PCM_16")
                _save_mel_image(stem.with_suffix(".png"), real_mel[0].cpu(),
                                mel_spectrogram(y_hat, tr.cfg.mel, for_loss=True)[0].cpu(), f"{uid}, step {tr.step}")
    finally:
        tr.generator.train()
        torch.backends.cudnn.benchmark = benchmark
    if tr.dist.world_size > 1: dist.all_reduce(total)
    return (total[0] / total[1].clamp(min=1)).item()


# %% [markdown]
# ## Metrics, plots and the log
#
# Each logging interval adds a row to `RUN/metrics.csv` with the interval means (one host synchronisation per interval), and validation adds `val_mel_l1` to the row of its step. The `health` column holds the monitor's status: `ok`, or the codes of its active warnings. The same numbers go to TensorBoard (`RUN/tensorboard/`) when TensorBoard is installed. When a run resumes, rows written after the checkpoint it resumes from (by the run that was killed) are dropped, so the file describes one history.

# %%
#| export
METRIC_COLUMNS = ("step", "epoch", "loss_g", "loss_d", "loss_adv", "loss_fm", "loss_mel", "val_mel_l1", "grad_norm_g",
                  "grad_norm_d", "real_score", "fake_score", "lr_g", "lr_d", "skipped", "seconds_per_step", "health")

class MetricsLog:
    "`RUN/metrics.csv` (and TensorBoard events if available), truncated to the steps up to `start_step` on resume."
    def __init__(self, run_dir, start_step: int = 0, resumed: bool = False):
        self.path = Path(run_dir) / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = read_metrics(self.path) if self.path.is_file() else []
        rows = [r for r in rows if resumed and int(r["step"]) <= start_step]
        with open(self.path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, METRIC_COLUMNS); w.writeheader(); w.writerows({k: r.get(k, "") for k in METRIC_COLUMNS} for r in rows)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=start_step if resumed else None)
        except Exception: self.tb = None  # TensorBoard is an optional extra

    def write(self, row: dict):
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, METRIC_COLUMNS).writerow({k: row.get(k, "") for k in METRIC_COLUMNS})
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("step", "epoch", "health") and isinstance(v, (int, float)) and v != "":
                    self.tb.add_scalar(k, v, row["step"])
            self.tb.flush()

    def close(self):
        if self.tb is not None: self.tb.close()

def read_metrics(path) -> list[dict]:
    "Rows of a `metrics.csv` as dictionaries of strings."
    with open(path, newline="", encoding="utf-8") as f: return list(csv.DictReader(f))


# %%
#| export
def plot_metrics(path, out=None):
    "Loss curves of a `metrics.csv` (discriminator, generator parts, validation mel error); saved to `out` if given."
    from matplotlib.figure import Figure
    rows = read_metrics(path)
    series = lambda k: ([int(r["step"]) for r in rows if r.get(k)], [float(r[k]) for r in rows if r.get(k)])
    fig = Figure(figsize=(9, 4.5))
    axes = fig.subplots(2, 2).ravel()
    panels = [("discriminator", ["loss_d"]), ("generator", ["loss_adv", "loss_fm"]), ("mel L1 (train)", ["loss_mel"]),
              ("mel L1 (validation)", ["val_mel_l1"])]
    for ax, (title, keys) in zip(axes, panels):
        for k in keys:
            x, y = series(k)
            ax.plot(x, y, marker="." if len(x) < 30 else None, label=k)
        ax.set_title(title, fontsize=9); ax.tick_params(labelsize=8)
        if len(keys) > 1: ax.legend(fontsize=8)
    axes[2].set_xlabel("step"); axes[3].set_xlabel("step")
    fig.tight_layout()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=80)
    return fig


# %% [markdown]
# ## Stopping cleanly
#
# A run stops for one of these reasons, and in every case except divergence it writes a checkpoint first:
#
# - `max_steps` reached, or all `epochs` done;
# - **the time budget** (`--time-budget SECONDS`, counted from the start of the command). Kaggle ends a session at a hard limit without warning, and whatever the last hour trained is lost if no checkpoint was written in time. Before each step the trainer checks whether one more step, a validation if one is due, and a checkpoint would still fit in the budget, with a safety margin, using the measured durations of each (the checkpoint's is estimated from the model size until the first one is written), and stops while they do.
# - **SIGTERM or SIGINT** (a platform shutting the container down, Ctrl-C, a notebook's interrupt button): the signal only sets a flag, the current step finishes, a checkpoint is written. A second Ctrl-C stops at once.
# - `--stop-on-collapse` and the health monitor reports a collapse;
# - `MAX_BAD_STEPS` non-finite steps in a row (no checkpoint: the newest one is the last good state).
#
# Under DDP the processes must agree on every step they take, so the stop flags are combined across them once per step (a single tiny all-reduce).

# %%
#| export
@contextmanager
def _stop_on_signals():
    "Yields a dict whose 'signal' key is set by SIGTERM/SIGINT; a second signal restores the default behaviour."
    flag = {"signal": None}
    if threading.current_thread() is not threading.main_thread(): yield flag; return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    def handler(signum, frame):
        flag["signal"] = signum
        signal.signal(signum, previous[signum])  # a second one acts at once
    for s in previous: signal.signal(s, handler)
    try: yield flag
    finally:
        for s, h in previous.items(): signal.signal(s, h)

class _Clock:
    "Measured durations of steps, validations and checkpoints, for the time budget."
    def __init__(self, tr: Trainer, budget: float | None):
        self.tr, self.budget = tr, budget
        n_params = sum(p.numel() for m in (tr.generator, tr.mpd, tr.msd) for p in m.parameters())
        self.step_s, self.val_s = None, 0.0
        self.save_s = 16 * n_params / 100e6 + 0.5  # weights + two Adam moments at ~100 MB/s, until measured

    def elapsed(self) -> float: return time.monotonic() - self.tr.started

    def out_of_time(self, validations: int) -> bool:
        "Whether another step, `validations` validations and a checkpoint (twice over, plus a margin) could overrun the budget."
        if self.budget is None: return False
        need = 2 * (self.step_s or 0.0) + validations * self.val_s + 2 * self.save_s + min(60.0, 0.02 * self.budget)
        return self.elapsed() + need >= self.budget

@contextmanager
def _timed(clock: _Clock, attr: str):
    "Record the duration of the block as `clock.<attr>`."
    t0 = time.monotonic()
    yield
    setattr(clock, attr, time.monotonic() - t0)

class _ResumeSampler(Sampler):
    "Skips the first `skip` indices of the wrapped sampler's first pass, so that a resumed run continues mid-epoch."
    def __init__(self, sampler, skip: int): self.sampler, self.skip = sampler, skip
    def set_epoch(self, epoch: int): self.sampler.set_epoch(epoch)
    def __len__(self): return len(self.sampler)
    def __iter__(self):
        skip, self.skip = self.skip, 0
        return itertools.islice(iter(self.sampler), skip, None)

def _train_loader(tr: Trainer) -> DataLoader:
    "The training loader, continuing at the saved data position; a resumed run draws fresh random windows."
    cfg = dataclasses.replace(tr.cfg, train=dataclasses.replace(tr.cfg.train, batch_size=tr.batch_size))
    base = make_dataloader(tr.train_set, cfg, train=True, rank=tr.dist.rank, world_size=tr.dist.world_size)
    if tr.step == 0: return base
    seed = int(np.random.SeedSequence([tr.cfg.train.seed, tr.step, tr.dist.rank]).generate_state(1)[0])
    tr.train_set.reseed(seed)
    return DataLoader(base.dataset, batch_size=base.batch_size, sampler=_ResumeSampler(base.sampler, tr.batch_in_epoch * base.batch_size),
                      drop_last=True, num_workers=base.num_workers, pin_memory=base.pin_memory,
                      persistent_workers=base.persistent_workers, worker_init_fn=base.worker_init_fn,
                      generator=torch.Generator().manual_seed(seed))

def _groups(loader, size: int):
    "Consecutive groups of `size` batches (an incomplete last group is dropped)."
    group = []
    for batch in loader:
        group.append(batch)
        if len(group) == size: yield group; group = []


# %% [markdown]
# ## The loop
#
# `fit` runs steps until one of the stop reasons above, epoch after epoch: at the start of an epoch the sampler is told its number (so the shuffle is reproducible and a resumed epoch replays the same order, minus the batches already consumed), at the end both learning rates decay by `lr_decay` (the reference's `ExponentialLR` with gamma 0.999, stepped once per epoch). Every `log_every_steps` the interval means go to `metrics.csv`, TensorBoard, the progress bar and the health monitor; every `val_every_steps` the generator is validated (and at step 0 of a new run, for a baseline); every `checkpoint_every_steps` (or `checkpoint_every_epochs` epochs) a checkpoint is written, and always at the end. Early in the run it reports how long a step, and therefore an epoch, takes.

# %%
#| export
def fit(tr: Trainer, max_steps: int | None = None, time_budget: float | None = None,
        stop_on_collapse: bool = False, resumed: bool = False, max_bad_steps: int = MAX_BAD_STEPS) -> str:
    "Train until `max_steps`, the configured epochs, the time budget, a signal, a collapse or divergence; returns the reason."
    from tqdm.auto import tqdm
    t, main = tr.cfg.train, tr.dist.main
    loader = _train_loader(tr)
    steps_per_epoch = len(loader.sampler) // (tr.batch_size * tr.accum)
    if steps_per_epoch == 0:
        raise ValueError(f"{tr.data_dir}: {len(loader.sampler)} training clips per process, fewer than one step's "
                         f"{tr.batch_size} x {tr.accum} accumulated batches")
    total = max_steps if max_steps is not None else t.epochs * steps_per_epoch
    metrics = MetricsLog(tr.run_dir, tr.step, resumed) if main else None
    clock = _Clock(tr, time_budget)
    sums, count, skipped, done, reason, warned = torch.zeros(len(STAT_NAMES), device=tr.device), 0, 0, 0, None, ()
    due = lambda every, step: bool(every) and step % every == 0
    row = {}

    def run_validation():
        with _timed(clock, "val_s"): val = validate(tr)
        row.update(step=tr.step, epoch=tr.epoch, val_mel_l1=round(val, 5))
        if val < tr.best_val:
            tr.best_val, tr.best_step = val, tr.step
            if main: atomic_save({**checkpoint_payloads(tr)[0], "val_mel_l1": val}, tr.ckpt_dir / "generator_best.pt")
        tr.log(f"step {tr.step}: validation mel L1 {val:.4f} (best {tr.best_val:.4f} at step {tr.best_step})")

    def checkpoint():
        with _timed(clock, "save_s"): save_checkpoint(tr)

    def flush_row():
        nonlocal row
        if row and main: metrics.write(row)
        row = {}

    bar = tqdm(total=total, initial=min(tr.step, total), desc="train", unit="step", dynamic_ncols=True,
               disable=not (main and tr.progress))
    try:
        with _stop_on_signals() as flag:
            if tr.step == 0 and total > 0: run_validation(); flush_row()
            while reason is None:
                if tr.step >= total: reason = "max_steps"; break
                if tr.epoch >= t.epochs: reason = "epochs"; break
                loader.sampler.set_epoch(tr.epoch)
                for group in _groups(loader, tr.accum):
                    t0 = time.monotonic()
                    out = train_step(tr, group)
                    tr.step += 1; done += 1; tr.batch_in_epoch += tr.accum
                    clock.step_s = time.monotonic() - t0
                    if out["skipped"]: skipped += 1
                    else: sums += out["stats"]; count += 1
                    tr.bad_steps = tr.bad_steps + 1 if out["bad"] else 0
                    if out["bad"]: tr.log(f"step {tr.step}: non-finite loss, step skipped ({tr.bad_steps} in a row)")
                    bar.update()
                    if done == min(max(2, t.log_every_steps), total - tr.step + done):
                        left = f"; the time budget allows about {int((time_budget - clock.elapsed()) / clock.step_s)} more" if time_budget else ""
                        tr.log(f"about {clock.step_s:.2f} s per step: an epoch ({steps_per_epoch} steps) takes about "
                               f"{clock.step_s * steps_per_epoch / 60:.1f} min{left}")
                    collapsed = False
                    if due(t.log_every_steps, tr.step) and (count or skipped):
                        means = dict(zip(STAT_NAMES, (sums / max(count, 1)).tolist()))  # one host sync per interval
                        warnings = tr.health.update(tr.step, loss_d=means["loss_d"], loss_g_adv=means["loss_adv"],
                                                    real_score=means["real_score"], fake_score=means["fake_score"],
                                                    grad_norm_g=means["grad_norm_g"], grad_norm_d=means["grad_norm_d"],
                                                    fake_audio=out["fake"], real_audio=out["real"])
                        if warnings and tuple(warnings) != warned:
                            for w in warnings: tr.log(f"HEALTH WARNING at step {tr.step}: {w}")
                        warned = tuple(warnings)
                        row.update(step=tr.step, epoch=tr.epoch, **{k: round(v, 5) for k, v in means.items()},
                                   lr_g=tr.optim_g.param_groups[0]["lr"], lr_d=tr.optim_d.param_groups[0]["lr"], skipped=skipped,
                                   seconds_per_step=round(clock.step_s, 4), health=tr.health.status)
                        bar.set_postfix(loss_d=f"{means['loss_d']:.2f}", loss_g=f"{means['loss_g']:.2f}",
                                        mel=f"{means['loss_mel']:.3f}", health=tr.health.status, refresh=False)
                        sums.zero_(); count = skipped = 0
                        collapsed = stop_on_collapse and tr.health.collapsed
                    validations = due(t.val_every_steps, tr.step) + due(t.val_every_steps, tr.step + 1)
                    # every process must take the same decision: combine the stop flags (one tiny all-reduce under DDP)
                    flags = [flag["signal"] or 0, tr.bad_steps >= max_bad_steps, clock.out_of_time(validations), collapsed]
                    if tr.dist.world_size > 1:
                        reduced = torch.tensor(flags, dtype=torch.float64, device=tr.device)
                        dist.all_reduce(reduced, op=dist.ReduceOp.MAX)
                        flags = [int(v) for v in reduced.tolist()]
                    if flags[1]:
                        raise TrainingDiverged(f"stopping: {max_bad_steps} consecutive steps had a non-finite loss (at step {tr.step}); "
                                               f"the newest checkpoint in {tr.ckpt_dir} is the last good state: lower the learning rate or check the data")
                    if due(t.val_every_steps, tr.step): run_validation()
                    flush_row()
                    if flags[0]: reason = f"signal {signal.Signals(int(flags[0])).name}"
                    elif flags[3]: reason = "collapse"
                    elif tr.step >= total: reason = "max_steps"
                    elif flags[2]: reason = "time_budget"
                    if reason is not None: break
                    if due(t.checkpoint_every_steps, tr.step): checkpoint()
                else:  # the epoch is complete
                    tr.sched_g.step(); tr.sched_d.step()
                    tr.epoch += 1; tr.batch_in_epoch = 0
                    if not t.checkpoint_every_steps and due(t.checkpoint_every_epochs, tr.epoch): checkpoint()
            checkpoint()
    finally:
        bar.close()
        if main:
            metrics.close()
            if metrics.path.is_file(): plot_metrics(metrics.path, tr.run_dir / "plots" / "losses.png")
    return reason


# %%
show_doc(fit)


# %% [markdown]
# ## Putting a run together
#
# `train` is what the command line calls: it builds the trainer, resumes from the newest intact checkpoint of `RUN/checkpoints` if there is one (saying so on the first line of its output) or else applies `init_from`, saves the run's config to `RUN/config.yaml`, and runs `fit`.

# %%
#| export
def train(cfg: Config, data_dir, run_dir, *, max_steps: int | None = None, time_budget: float | None = None,
          init_from=None, stop_on_collapse: bool = False, device: str = "auto", progress: bool = True) -> tuple[Trainer, str]:
    "Train (or resume) the run in `run_dir` on the prepared data in `data_dir`; returns `(trainer, stop reason)`."
    data_dir, run_dir = Path(data_dir), Path(run_dir)
    if not data_dir.is_dir(): raise NotADirectoryError(f"{data_dir}: prepared data folder not found (run `hifigan-ruslan prepare`)")
    tr = Trainer(cfg, data_dir, run_dir, device=device, progress=progress)
    step, g, do, warnings = find_resume_checkpoint(tr.ckpt_dir)
    if step is not None:
        load_training_state(tr, g, do)
        tr.log(f"Resuming from {step_path(tr.ckpt_dir, 'g', step)} (step {step})")
        if init_from is not None: tr.log(f"note: --init-from {init_from} ignored: the run already has checkpoints")
    elif init_from is not None: tr.log(init_from_checkpoint(tr, init_from))
    for w in warnings: tr.log(w)
    if tr.dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        tr.log(f"{cfg.preset} preset, generator {cfg.generator_preset}, {tr.precision} on {tr.device}"
               + (f" x {tr.dist.world_size} processes" if tr.dist.world_size > 1 else "")
               + f", batch {tr.batch_size} x {tr.accum} accumulation per process")
    return tr, fit(tr, max_steps, time_budget, stop_on_collapse, resumed=step is not None)


# %%
show_doc(train)

# %% [markdown]
# ## Tests on the bundled corpus
#
# The tests below train the `tiny` preset on the small corpus bundled with the package, prepared once into a temporary folder.

# %%
import subprocess, sys, re, shutil, warnings
from hifigan_ruslan.data import bundled_corpus, prepare_corpus

# %%
work = Path(tempfile.mkdtemp(prefix="hifigan_train_"))
prepared = work / "prepared"
prepare_corpus(bundled_corpus(), prepared, workers=1, progress=False)
print(len((prepared / "train.txt").read_text().splitlines()), "training clips,", len((prepared / "val.txt").read_text().splitlines()), "validation clips")

# %% [markdown]
# A short run learns: the validation mel error falls well below its value at step 0. Its files are all where they should be.

# %%
#| slow
tr, reason = train(apply_overrides(preset_config("tiny"), ["train.val_every_steps=15"]), prepared, work / "run", max_steps=30,
                   device="cpu", progress=False)
rows = read_metrics(work / "run" / "metrics.csv")
val = [(int(r["step"]), float(r["val_mel_l1"])) for r in rows if r["val_mel_l1"]]
print(reason, val)
assert reason == "max_steps" and tr.step == 30 and [s for s, _ in val] == [0, 15, 30]
assert val[-1][1] < 0.85 * val[0][1]  # a real learning signal
assert list_steps(work / "run" / "checkpoints") == [20, 30] and (work / "run" / "checkpoints" / "generator_best.pt").is_file()
assert {"step", "epoch", "loss_g", "loss_d", "loss_mel", "val_mel_l1", "grad_norm_g", "grad_norm_d", "health"} <= set(rows[0])
assert (work / "run" / "plots" / "losses.png").is_file() and len(list((work / "run" / "samples").glob("*.wav"))) >= 4
g = load_checkpoint(work / "run" / "checkpoints" / "g_00000030")
assert g["config"]["preset"] == "tiny" and g["steps"] == 30

# %% [markdown]
# **Transfer.** `init_from_checkpoint` starts a fresh run (step 0, new optimizers) from that run's weights, discriminators included; weights of another shape are refused with a message that says why.

# %%
#| slow
fresh = Trainer(preset_config("tiny"), device="cpu")
print(init_from_checkpoint(fresh, work / "run" / "checkpoints" / "g_00000030"))
assert torch.equal(fresh.generator.conv_pre.bias, tr.generator.conv_pre.bias) and torch.equal(fresh.msd.state_dict()["discriminators.1.conv_post.bias"], tr.msd.state_dict()["discriminators.1.conv_post.bias"])
assert fresh.step == 0 and not fresh.optim_g.state
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # loading into meta tensors is a no-op; only the shapes are checked
    try: init_from_checkpoint(Trainer(preset_config("v1"), device="meta"), work / "run" / "checkpoints" / "g_00000030")
    except ValueError as e: print(e)

# %% [markdown]
# The loss curves of that run (also saved as `RUN/plots/losses.png`). Thirty steps of the tiny model are only the very beginning: the mel error falls fast while the discriminators are still learning what real speech is.

# %%
#| slow
from IPython.display import Image

# %%
#| slow
Image(filename=str(work / "run" / "plots" / "losses.png"))


# %% [markdown]
# **Kill and resume.** A run started from the command line is killed with SIGKILL (no chance to clean up) after its second checkpoint; the same command again resumes from the newest checkpoint and says so first, and the step counter continues.

# %%
#| slow
def cli(*args, **kw):
    return [sys.executable, "-m", "hifigan_ruslan", "train", "--data", str(prepared), "--preset", "tiny", "--device", "cpu", *args]

run = work / "killed"
proc = subprocess.Popen(cli("--out", str(run), "--max-steps", "500", "--checkpoint-every", "2", "--val-every", "100"),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.monotonic() + 120
while len(list_steps(run / "checkpoints")) < 2 and time.monotonic() < deadline and proc.poll() is None: time.sleep(0.2)
proc.kill(); proc.wait()
newest = list_steps(run / "checkpoints")[-1]
res = subprocess.run(cli("--out", str(run), "--max-steps", str(newest + 2), "--checkpoint-every", "2", "--val-every", "100"),
                     capture_output=True, text=True, timeout=300)
print(res.stdout.splitlines()[0])
assert res.returncode == 0, res.stderr[-2000:]
assert res.stdout.splitlines()[0] == f"Resuming from {run}/checkpoints/g_{newest:08d} (step {newest})"
assert load_checkpoint(step_path(run / "checkpoints", "do", newest + 2))["steps"] == newest + 2
assert max(int(r["step"]) for r in read_metrics(run / "metrics.csv")) <= newest + 2

# %% [markdown]
# **A corrupt newest checkpoint** (here cut in half) is skipped with a warning, and the run resumes from the one before.

# %%
#| slow
steps = list_steps(run / "checkpoints")
bad = step_path(run / "checkpoints", "g", steps[-1])
bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
tr, reason = train(preset_config("tiny"), prepared, run, max_steps=steps[-1] + 1, device="cpu", progress=False)
log = (run / "train.log").read_text().splitlines()
assert tr.step == steps[-1] + 1 and any(f"skipping checkpoint of step {steps[-1]}" in l for l in log)
assert any(l == f"Resuming from {run}/checkpoints/g_{steps[-2]:08d} (step {steps[-2]})" for l in log)

# %% [markdown]
# **Time budget.** With a budget of a few seconds the run stops by itself, well inside the budget, and the last thing it did was write a checkpoint of the step it stopped at.

# %%
#| slow
tr, reason = train(preset_config("tiny"), prepared, work / "budget", time_budget=10, device="cpu", progress=False)
elapsed = time.monotonic() - tr.started
print(reason, tr.step, f"{elapsed:.1f} s")
saved = list_steps(work / "budget" / "checkpoints")
assert reason == "time_budget" and elapsed < 10 and saved and saved[-1] == tr.step, (reason, elapsed, tr.step, saved)

# %% [markdown]
# **Divergence.** A run whose every batch produces NaN stops after `max_bad_steps` skipped steps (here 3) with a clear message, and writes no checkpoint of the poisoned state.

# %%
tr = Trainer(preset_config("tiny"), prepared, work / "nan", device="cpu", progress=False)
class NaNAudio(torch.utils.data.Dataset):
    "The training clips with every sample replaced by NaN."
    def __init__(self, ds): self.ds = ds
    def __len__(self): return len(self.ds)
    def __getitem__(self, i): mel, audio = self.ds[i]; return mel, audio * float("nan")
    def reseed(self, seed): self.ds.reseed(seed)
tr.train_set = NaNAudio(tr.train_set)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # the schedule's epoch step comes before any optimizer step here
    try: fit(tr, max_steps=50, max_bad_steps=3); raise AssertionError("must stop")
    except TrainingDiverged as e: print(str(e)[:100], "...")
assert tr.step == 3 and list_steps(tr.ckpt_dir) == []

# %% [markdown]
# **Two processes.** `torchrun` starts two gloo processes on the CPU; each trains on half of every batch (the effective batch stays 4), and process 0 alone writes logs and checkpoints.

# %%
#| slow
import socket

# %%
#| slow
with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                      "--master-port", str(port), "-m", "hifigan_ruslan", "train", "--data", str(prepared), "--out", str(work / "ddp"),
                      "--preset", "tiny", "--device", "cpu", "--max-steps", "2", "--val-every", "2"],
                     capture_output=True, text=True, timeout=300)
assert res.returncode == 0, res.stderr[-3000:]
print("\n".join(l for l in res.stdout.splitlines() if "processes" in l or "validation" in l))
assert list_steps(work / "ddp" / "checkpoints") == [2] and "x 2 processes, batch 2 x 1" in res.stdout


# %% [markdown]
# ## Command line
#
# `hifigan-ruslan train --data PREPARED --out RUN` trains with the `recipe` preset (or `--preset`, or a `--config` file, plus `--set section.key=value` overrides); running the same command again resumes. Without `--preset` or `--config`, a run directory that already has a `config.yaml` keeps it. Exit codes: 0 when the run stopped as planned (steps, epochs, time budget), 1 when it diverged, 3 when `--stop-on-collapse` stopped it, 128 + the signal number when a signal did.

# %%
#| export
def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hifigan-ruslan train", description="Train (or resume) a HiFi-GAN run.")
    p.add_argument("--data", required=True, help="prepared data folder (from `hifigan-ruslan prepare`)")
    p.add_argument("--out", required=True, help="run folder: checkpoints/, samples/, plots/, metrics.csv; resumed if it has checkpoints")
    p.add_argument("--preset", default=None, help="recipe (default), exp1, exp2, exp3, tiny, or a generator preset v1/v2/v3")
    p.add_argument("--config", default=None, help="a YAML/JSON config file (instead of --preset)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps in all (default: the configured epochs)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS", help="stop with a checkpoint before this much time has passed")
    p.add_argument("--val-every", type=int, default=None, metavar="STEPS", help="validate every STEPS steps (train.val_every_steps)")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS", help="checkpoint every STEPS steps (train.checkpoint_every_steps)")
    p.add_argument("--init-from", default=None, metavar="CKPT", help="start a new run from these weights (g_ file; its do_ sibling too)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, e.g. train.lambda_mel=30 (repeatable)")
    p.add_argument("--stop-on-collapse", action="store_true", help="stop when the health monitor reports a collapse")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (1 is faster on a CPU shared with other jobs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p

def _set_threads(threads: int | None):
    if threads is None: return
    if threads < 1: raise ValueError(f"--threads {threads}: must be at least 1")
    torch.set_num_threads(threads)

def resolve_config(preset: str | None, config_file=None, overrides=(), run_dir=None) -> Config:
    "The run's config: a preset or a config file (or the run's saved `config.yaml`), with `key=value` overrides."
    if preset and config_file: raise ValueError("give --preset or --config, not both")
    saved = Path(run_dir) / "config.yaml" if run_dir is not None else None
    if config_file: cfg = load_config(config_file)
    elif preset: cfg = preset_config(preset)
    elif saved is not None and saved.is_file(): cfg = load_config(saved)
    else: cfg = preset_config("recipe")
    return apply_overrides(cfg, list(overrides))


# %%
#| export
def main_train(argv: list[str] | None = None) -> int:
    "`hifigan-ruslan train`: train or resume a run."
    args = _train_parser().parse_args(argv)
    _set_threads(args.threads)
    for name in ("max_steps", "val_every", "checkpoint_every"):
        v = getattr(args, name)
        if v is not None and v < 0: raise ValueError(f"--{name.replace('_', '-')} {v}: must be 0 or more")
    if args.time_budget is not None and args.time_budget <= 0: raise ValueError(f"--time-budget {args.time_budget}: must be positive")
    if args.init_from is not None and not Path(args.init_from).is_file(): raise FileNotFoundError(f"{args.init_from}: checkpoint not found")
    overrides = list(args.set)
    if args.val_every is not None: overrides.append(f"train.val_every_steps={args.val_every}")
    if args.checkpoint_every is not None: overrides.append(f"train.checkpoint_every_steps={args.checkpoint_every}")
    cfg = resolve_config(args.preset, args.config, overrides, args.out)
    resolve_precision(cfg.train.precision, "cpu")  # a bad value fails before anything starts
    try:
        tr, reason = train(cfg, args.data, args.out, max_steps=args.max_steps, time_budget=args.time_budget, init_from=args.init_from,
                           stop_on_collapse=args.stop_on_collapse, device=args.device, progress=not args.no_progress)
    except TrainingDiverged as e:
        print(f"hifigan-ruslan train: {e}", flush=True)
        return 1
    finally:
        if dist.is_initialized(): dist.destroy_process_group()
    if tr.dist.main:
        best = f", best validation mel L1 {tr.best_val:.4f} at step {tr.best_step} (generator_best.pt)" if tr.best_step is not None else ""
        print(f"Stopped at step {tr.step} ({reason.replace('_', ' ')}). Checkpoints: {tr.ckpt_dir}{best}; "
              f"metrics: {tr.run_dir / 'metrics.csv'}; plots: {tr.run_dir / 'plots'}; samples: {tr.run_dir / 'samples'}")
    if reason == "collapse": return 3
    if reason.startswith("signal"): return 128 + int(signal.Signals[reason.split()[1]])
    return 0


# %% [markdown]
# A user error is one line naming what is wrong:

# %%
for args in (["--data", str(work / "nowhere"), "--out", str(work / "x")], ["--data", str(prepared), "--out", str(work / "x"), "--preset", "v9"],
             ["--data", str(prepared), "--out", str(work / "x"), "--set", "train.lamda=1"]):
    try: main_train(args); raise AssertionError(args)
    except (ValueError, NotADirectoryError) as e: print(e)


# %% [markdown]
# ## The demo
#
# `hifigan-ruslan demo --out DIR` runs the whole pipeline on the corpus bundled with the package, in a few minutes on a laptop CPU: it prepares the 12 clips, trains the `tiny` preset (300 steps by default, `--steps`), resynthesises the validation clips with the best generator (audio to mel to audio), and writes WAVs and images that show how far a few minutes of training get. The tiny model will not sound like speech yet; the point is to see every stage work end to end before spending GPU hours.

# %%
#| export
def resynthesize(checkpoint, wavs, out_dir, device: str = "cpu") -> list[Path]:
    "Audio -> mel -> audio with the vocoder of `checkpoint` for each WAV; writes `OUT/ID.wav` and `OUT/ID.png` (mels)."
    import soundfile as sf
    from hifigan_ruslan.evaluation import mel_figure  # the inference side, imported only by the demo
    from hifigan_ruslan.inference import Vocoder, load_audio
    voc = Vocoder.from_checkpoint(checkpoint, device=device)
    out_dir = Path(out_dir); out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for wav in map(Path, wavs):
        y = load_audio(wav, voc.sampling_rate)
        y_hat = voc.resynthesize(y, voc.sampling_rate)
        sf.write(out_dir / wav.name, y_hat, voc.sampling_rate, "PCM_16")
        mel_figure(y, y_hat, f"{wav.stem}: real vs resynthesised", voc.config.mel).savefig(out_dir / f"{wav.stem}.png", dpi=80)
        written.append(out_dir / wav.name)
    return written

def main_demo(argv: list[str] | None = None) -> int:
    "`hifigan-ruslan demo`: prepare the bundled corpus, train the tiny preset briefly, resynthesise the validation clips."
    from hifigan_ruslan.data import bundled_corpus, prepare_corpus
    p = argparse.ArgumentParser(prog="hifigan-ruslan demo",
                                description="The whole pipeline on the small bundled corpus: prepare, train (tiny preset), resynthesise.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (1 is faster on a CPU shared with other jobs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    _set_threads(args.threads)
    if args.steps < 1: raise ValueError(f"--steps {args.steps}: must be at least 1")
    out = Path(args.out).expanduser()
    start = time.monotonic()
    cfg = preset_config("tiny")
    prepare_corpus(bundled_corpus(), out / "prepared", cfg=cfg, progress=not args.no_progress)
    tr, reason = train(cfg, out / "prepared", out / "run", max_steps=args.steps, device=args.device,
                       progress=not args.no_progress)
    val_wavs = [out / "prepared" / "wavs" / f"{uid}.wav" for uid in tr.val_set.ids]
    written = resynthesize(tr.ckpt_dir / "generator_best.pt", val_wavs, out / "resynth", device=args.device)
    print(f"Demo done in {time.monotonic() - start:.0f} s: {tr.step} steps, validation mel L1 {tr.best_val:.3f} (step {tr.best_step}).\n"
          f"  prepared corpus:   {out / 'prepared'}\n  loss curves:       {tr.run_dir / 'plots' / 'losses.png'}\n"
          f"  metrics:           {tr.run_dir / 'metrics.csv'}\n  samples per step:  {tr.run_dir / 'samples'}\n"
          f"  resynthesised:     {out / 'resynth'} ({len(written)} WAVs with mel images)\n"
          f"  best generator:    {tr.ckpt_dir / 'generator_best.pt'}")
    return 0


# %% [markdown]
# The demo, cut to two steps:

# %%
#| slow
assert main_demo(["--out", str(work / "demo"), "--steps", "2", "--no-progress"]) == 0
assert len(list((work / "demo" / "resynth").glob("*.wav"))) == len((work / "demo" / "prepared" / "val.txt").read_text().splitlines())

# %%
shutil.rmtree(work, ignore_errors=True)
