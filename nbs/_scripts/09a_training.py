# %% [markdown]
# # Training
#
# > The HiFi-GAN training loop: the `Trainer`'s steps run epoch after epoch, with logs, validation, checkpoints that survive a kill, resume, a time budget, a clean stop on a signal, and the health monitor; `train` is the entry point of a run.

# %%
#| default_exp training

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import dataclasses, itertools, math, signal, time
from contextlib import nullcontext
from pathlib import Path
import numpy as np
import torch
import torch.distributed as dist
from fastcore.basics import patch
from torch.utils.data import DataLoader, Sampler
from hifigan_ruslan.config import Config, UserError, apply_overrides, load_config, preset_config, save_config
from hifigan_ruslan.checkpoints import find_generator_file, find_resume_checkpoint
from hifigan_ruslan.data import make_dataloader
from hifigan_ruslan.metrics import IntervalStats, MetricsLog, plot_metrics, read_metrics
from hifigan_ruslan.run_folder import RunLock, prune_samples
from hifigan_ruslan.stopping import Clock, SignalFlag, StopCheck, TrainingDiverged
from hifigan_ruslan.trainer import PRECISIONS, DistInfo, Trainer, init_distributed, resolve_precision

# %%
from fastcore.test import test_close, test_eq, test_fail


# %% [markdown]
# A training run is a loop over `Trainer.train_step` (see [The trainer](09_trainer.ipynb)), wrapped in the things that make a long run on rented hardware survivable: checkpoints that a kill cannot corrupt, resume from them, a clock that stops the run before the platform does, validation, and a monitor that notices when the GAN has stopped learning. The sections below build the pieces in order; `Trainer.fit` puts them together and `train` is the entry point that the command line `hifigan-ruslan train` calls. The reasons a run stops, and how all processes agree on them, are in [Stopping a run](08b_stopping.ipynb).

# %% [markdown]
# ## Data, epoch after epoch
#
# At the start of each epoch the sampler is told its number, so the shuffle is reproducible and a resumed epoch replays the same order, minus the batches already consumed (`batch_in_epoch` of the checkpoint); a resumed run draws fresh random windows from its clips. At the end of an epoch both learning rates decay by `lr_decay` (the reference's `ExponentialLR`, stepped once per epoch), and if checkpoints are written per epoch (`checkpoint_every_steps` 0), one is written every `checkpoint_every_epochs`.

# %%
#| export
def _due(every: int, step: int) -> bool:
    "Whether something done every `every` steps (0: never) is due at `step`."
    return every > 0 and step % every == 0

class _ResumeSampler(Sampler):
    "Skips the first `skip` indices of the wrapped sampler's first pass: a resumed run continues mid-epoch."
    def __init__(self, sampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def set_epoch(self, epoch: int): self.sampler.set_epoch(epoch)

    def __len__(self): return len(self.sampler)

    def __iter__(self):
        skip, self.skip = self.skip, 0
        return itertools.islice(iter(self.sampler), skip, None)

def _groups(loader, size: int):
    "Consecutive groups of `size` batches (an incomplete last group is dropped)."
    group = []
    for batch in loader:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []


# %%
#| export
@patch
def train_loader(self: Trainer) -> DataLoader:
    "The training loader of this process, continuing at the saved data position."
    cfg = dataclasses.replace(self.cfg, train=dataclasses.replace(self.cfg.train, batch_size=self.batch_size))
    base = make_dataloader(self.train_set, cfg, train=True, rank=self.dist.rank,
                           world_size=self.dist.world_size)
    if self.step == 0:
        return base
    seed = int(np.random.SeedSequence([self.cfg.train.seed, self.step, self.dist.rank]).generate_state(1)[0])
    self.train_set.reseed(seed)
    return DataLoader(base.dataset, batch_size=base.batch_size,
                      sampler=_ResumeSampler(base.sampler, self.batch_in_epoch * base.batch_size),
                      drop_last=True, num_workers=base.num_workers, pin_memory=base.pin_memory,
                      persistent_workers=base.persistent_workers, worker_init_fn=base.worker_init_fn,
                      generator=torch.Generator().manual_seed(seed))

@patch
def batch_groups(self: Trainer, loader):
    "Groups of `accum` batches, epoch after epoch until the configured epochs are done."
    t = self.cfg.train
    while self.epoch < t.epochs:
        loader.sampler.set_epoch(self.epoch)
        yield from _groups(loader, self.accum)
        if self.step > self.warmup_steps:  # the generator's learning rate decays once it trains
            self.sched_g.step()
        self.sched_d.step()
        self.epoch += 1
        self.batch_in_epoch = 0
        if not t.checkpoint_every_steps and _due(t.checkpoint_every_epochs, self.epoch):
            self.timed_save()


# %% [markdown]
# ## Logs, validation and checkpoints during the loop
#
# Every `log_every_steps` the interval means of the step statistics (`IntervalStats`: one host synchronisation per interval) go to `metrics.csv`, TensorBoard, the progress bar and the health monitor, which also sees the last batch's generated and real audio. Its warnings are printed when they change; with `--stop-on-collapse` a collapse stops the run. Every `val_every_steps` the generator is validated, and at step 0 of a new run too, for a baseline (`val_every_steps` 0: never); an improvement writes `generator_best.pt`, and the samples of all but the newest validations and the best are deleted (see [The run folder](08a_run_folder.ipynb)). Each step's non-finite verdict goes to the health monitor, which owns the count.

# %%
#| export
_HEALTH_INPUTS = {"loss_d": "loss_d", "loss_g_adv": "loss_adv", "real_score": "real_score",
                  "fake_score": "fake_score", "grad_norm_g": "grad_norm_g", "grad_norm_d": "grad_norm_d"}

@patch
def record_step(self: Trainer, result):
    "Count one step's result: statistics of the interval, the health monitor's non-finite count, the bar."
    if result.skipped:
        self.skipped_in_interval += 1
    else:
        self.interval.add(result.stats)
    self.health.record_step(result.finite)
    if not result.finite:
        self.log(f"step {self.step}: non-finite loss, step skipped ({self.health.nonfinite_steps} in a row)")
    self.bar.update()

@patch
def log_interval(self: Trainer, result) -> bool:
    "Write the interval's means and the health monitor's verdict; returns whether it reports a collapse."
    means = self.interval.means()  # the one host synchronisation of the interval
    inputs = {arg: means.get(stat, math.nan) for arg, stat in _HEALTH_INPUTS.items()}
    warnings = tuple(self.health.update(self.step, **inputs, fake_audio=result.fake, real_audio=result.real))
    if warnings != self.warned:
        for w in warnings:
            self.log(f"HEALTH WARNING at step {self.step}: {w}")
    self.warned = warnings
    self.row.update(step=self.step, epoch=self.epoch, **{k: round(v, 5) for k, v in means.items()},
                    lr_g=self.optim_g.param_groups[0]["lr"], lr_d=self.optim_d.param_groups[0]["lr"],
                    skipped=self.skipped_in_interval, seconds_per_step=round(self.clock.step_s, 4),
                    health=self.health.status)
    shown = {k: means.get(k, math.nan) for k in ("loss_d", "loss_g", "loss_mel")}
    self.bar.set_postfix(loss_d=f"{shown['loss_d']:.2f}", loss_g=f"{shown['loss_g']:.2f}",
                         mel=f"{shown['loss_mel']:.3f}", health=self.health.status, refresh=False)
    self.skipped_in_interval = 0
    return self.health.collapsed


# %%
#| export
@patch
def validate_and_record(self: Trainer):
    "Validate, add the error to the row of this step, keep the best generator, log the result."
    with self.clock.timing("val"):
        val = self.validate()
    self.row.update(step=self.step, epoch=self.epoch, val_mel_l1=round(val, 5))
    if val < self.best_val:
        self.save_best(val)
    if self.dist.main and self.run_dir is not None:
        prune_samples(self.run_dir / "samples", keep={self.best_step})  # the newest validations and the best
    self.log(f"step {self.step}: validation mel L1 {val:.4f} "
             f"(best {self.best_val:.4f} at step {self.best_step})")

@patch
def flush_row(self: Trainer):
    "Write the pending `metrics.csv` row, if any (process 0)."
    if self.row and self.metrics is not None:
        self.metrics.write(self.row)
    self.row = {}

@patch
def timed_save(self: Trainer):
    "`save`, measured for the time budget."
    with self.clock.timing("save"):
        self.save()

@patch
def report_speed(self: Trainer, steps_per_epoch: int):
    "Log how long a step, an epoch and the rest of the time budget take, once the first steps are measured."
    left = ""
    if self.clock.budget:
        more = int((self.clock.budget - self.clock.elapsed()) / self.clock.step_s)
        left = f"; the time budget allows about {more} more"
    minutes = self.clock.step_s * steps_per_epoch / 60
    self.log(f"about {self.clock.step_s:.2f} s per step: an epoch ({steps_per_epoch} steps) takes about "
             f"{minutes:.1f} min{left}")


# %% [markdown]
# ## The loop
#
# `run_step` is one turn of the loop: train, count, log when due, decide whether to stop (one `StopCheck`, agreed by all processes), validate when due, and checkpoint when due unless the run is stopping anyway (it then writes its final checkpoint). `fit` sets up the interval's statistics, the metrics file, the clock and the progress bar, takes the baseline validation, runs steps until a reason to stop, and writes the last checkpoint; the metrics and the loss curves (`RUN/plots/losses.png`) are closed and drawn whatever happens.

# %%
#| export
@patch
def run_step(self: Trainer, group: list, signals: SignalFlag) -> StopCheck:
    "Train one step and do what is due after it; returns the agreed stop decision."
    t = self.cfg.train
    with self.clock.timing("step"):
        result = self.train_step(group)
    self.step += 1
    self.batch_in_epoch += self.accum
    self.steps_run += 1
    self.record_step(result)
    if self.steps_run == self.speed_report_at:
        self.report_speed(self.steps_per_epoch)
    collapsed = self.log_interval(result) if _due(t.log_every_steps, self.step) else False
    validations = _due(t.val_every_steps, self.step) + _due(t.val_every_steps, self.step + 1)
    stop = StopCheck(signum=signals.received, diverged=self.health.diverged,
                     collapse=collapsed and self.stop_on_collapse, max_steps=self.step >= self.total_steps,
                     time_budget=self.clock.out_of_time(validations)).agreed(self.device)
    if stop.diverged:
        raise TrainingDiverged(f"stopping: {self.health.nonfinite_steps} consecutive steps had a non-finite "
                               f"loss (at step {self.step}); the newest checkpoint in {self.ckpt_dir} is the "
                               "last good state: lower the learning rate or check the data")
    if _due(t.val_every_steps, self.step):
        self.validate_and_record()
    self.flush_row()
    if stop.reason is None and _due(t.checkpoint_every_steps, self.step):
        self.timed_save()
    return stop


# %%
#| export
@patch
def _start_fit(self: Trainer, loader, max_steps: int | None, time_budget: float | None, resumed: bool):
    "The loop's bookkeeping: planned steps, clock, interval statistics, metrics file and progress bar."
    from tqdm.auto import tqdm
    t = self.cfg.train
    self.steps_per_epoch = len(loader.sampler) // (self.batch_size * self.accum)
    if self.steps_per_epoch == 0:
        raise UserError(f"{self.data_dir}: {len(loader.sampler)} training clips per process, fewer than one "
                        f"step's {self.batch_size} x {self.accum} accumulated batches")
    self.total_steps = max_steps if max_steps is not None else t.epochs * self.steps_per_epoch
    n_params = sum(p.numel() for m in self.modules.values() for p in m.parameters())
    # weights, 2 Adam moments
    self.clock = Clock(self.started, time_budget, save_s=16 * n_params / 100e6 + 0.5)
    self.interval, self.row, self.warned = IntervalStats(), {}, ()
    self.skipped_in_interval, self.steps_run = 0, 0
    self.speed_report_at = min(max(2, t.log_every_steps), self.total_steps - self.step)
    self.metrics = MetricsLog(self.run_dir, self.step, resumed) if self.dist.main else None
    self.bar = tqdm(total=self.total_steps, initial=min(self.step, self.total_steps), desc="train",
                    unit="step", dynamic_ncols=True, disable=not (self.dist.main and self.progress))

@patch
def _end_fit(self: Trainer):
    self.bar.close()
    if self.metrics is not None:
        self.metrics.close()
        plot_metrics(self.metrics.path, self.run_dir / "plots" / "losses.png")

@patch
def fit(self: Trainer, max_steps: int | None = None, time_budget: float | None = None,
        stop_on_collapse: bool = False, resumed: bool = False) -> str:
    "Train until `max_steps`, the epochs, time budget, a signal, collapse or divergence; returns the reason."
    loader = self.train_loader()
    self._start_fit(loader, max_steps, time_budget, resumed)
    self.stop_on_collapse = stop_on_collapse
    stop = StopCheck(max_steps=self.step >= self.total_steps, epochs=self.epoch >= self.cfg.train.epochs)
    try:
        with SignalFlag() as signals:
            if self.step == 0 and stop.reason is None and self.cfg.train.val_every_steps > 0:
                self.validate_and_record()  # the baseline
                self.flush_row()
            groups = self.batch_groups(loader)
            while stop.reason is None:
                group = next(groups, None)
                stop = StopCheck(epochs=True) if group is None else self.run_step(group, signals)
            self.timed_save()
    finally:
        self._end_fit()
    return stop.reason


# %%
show_doc(Trainer.fit)


# %% [markdown]
# ## Starting a run
#
# `train` is the entry point. It checks its inputs, joins the process group when `torchrun` started it, seeds the global random number generator (so that every process builds the same initial weights), lets cuDNN pick its fastest kernels for the fixed training shapes, and builds the trainer. Then it restores a state:
#
# 1. the newest intact checkpoint of `RUN/checkpoints`, if there is one: running the same command again resumes (its first line says so);
# 2. else `resume_from`: a run folder, a checkpoint folder, or a `g_`/`do_` file, of this project or of the official HiFi-GAN code, continuing its step count in `RUN`;
# 3. else `init_from`: the weights of an existing checkpoint in a new run (step 0, fresh optimizers).
#
# It saves the run's config to `RUN/config.yaml` and runs `fit`, all the while holding the run folder's lock (`RunLock`: a second `train` on the same folder is refused with one line naming the process that holds it). A run that diverges raises `TrainingDiverged`; anything a user can fix raises `UserError`, a checkpoint that does not fit on the disk among them (`OutOfSpace`, which names the checkpoint to resume from).

# %%
#| export
def _check_inputs(data_dir: Path, max_steps, time_budget, init_from, resume_from):
    if not data_dir.is_dir():
        raise UserError(f"{data_dir}: prepared data folder not found (run `hifigan-ruslan prepare`)")
    if max_steps is not None and max_steps < 0:
        raise UserError(f"max steps {max_steps}: must be 0 or more")
    if time_budget is not None and not time_budget > 0:
        raise UserError(f"time budget {time_budget}: must be a positive number of seconds")
    if init_from is not None:
        # a file, a run folder or a pretrained name; a one-line error otherwise
        find_generator_file(init_from)
    if resume_from is not None and not Path(resume_from).exists():
        raise UserError(f"{resume_from}: checkpoint not found (--resume-from)")

def _restore(tr: Trainer, init_from, resume_from) -> bool:
    "Resume the run's own checkpoints, else `resume_from`, else apply `init_from`; whether it resumed."
    point, warnings = find_resume_checkpoint(tr.ckpt_dir)  # the run's own checkpoints come first
    ignored = [f"--resume-from {resume_from}"] if point is not None and resume_from is not None else []
    if point is None and resume_from is not None:
        point, more = find_resume_checkpoint(resume_from)
        warnings += more
        if point is None:
            raise UserError(f"{resume_from}: no complete g_/do_ checkpoint pair to resume from")
    if point is not None and init_from is not None:
        ignored.append(f"--init-from {init_from}")
    if point is not None:
        tr.load(point.g, point.do)
        tr.log(f"Resuming from {point.path} (step {point.step})")
        for note in ignored:
            tr.log(f"note: {note} ignored: resuming instead")
    elif init_from is not None:
        tr.log(tr.init_from(init_from))
    for w in warnings:
        tr.log(w)
    return point is not None


# %%
#| export
def _describe(tr: Trainer) -> str:
    processes = f" x {tr.dist.world_size} processes" if tr.dist.world_size > 1 else ""
    return (f"{tr.cfg.preset} preset, generator {tr.cfg.generator_preset}, {tr.precision} on {tr.device}"
            f"{processes}, batch {tr.batch_size} x {tr.accum} accumulation per process")

def train(cfg: Config, data_dir, run_dir, *, max_steps: int | None = None, time_budget: float | None = None,
          init_from=None, resume_from=None, stop_on_collapse: bool = False, device: str = "auto",
          progress: bool = True, mel_dir=None) -> tuple[Trainer, str]:
    "Train (or resume) the run in `run_dir` on the prepared `data_dir`; returns `(trainer, stop reason)`."
    data_dir, run_dir = Path(data_dir), Path(run_dir)
    _check_inputs(data_dir, max_steps, time_budget, init_from, resume_from)
    resolve_precision(cfg.train.precision, "cpu")  # a bad value fails before anything starts
    own_group = not dist.is_initialized()
    info, dev = init_distributed(device)
    try:
        torch.manual_seed(cfg.train.seed)  # identical initial weights in every process
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True  # training segments have one fixed shape
        with RunLock(run_dir) if info.main else nullcontext():  # one trainer per run folder
            tr = Trainer(cfg, data_dir, run_dir, device=dev, progress=progress, dist_info=info,
                         mel_dir=mel_dir)
            resumed = _restore(tr, init_from, resume_from)
            if info.main:
                save_config(cfg, run_dir / "config.yaml")
            tr.log(_describe(tr))
            return tr, tr.fit(max_steps, time_budget, stop_on_collapse, resumed=resumed)
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()


# %%
show_doc(train)


# %% [markdown]
# What the command line needs around `train`: the config of a run (`resolve_config`: a preset, a config file, or the run's own saved `config.yaml`, with `section.key=value` overrides), the line it prints when a run stops, and its exit code: 0 when the run stopped as planned (steps, epochs, time budget), 3 when `--stop-on-collapse` stopped it, 128 + the signal number when a signal did (a diverged run exits with 1).

# %%
#| export
def resolve_config(preset: str | None = None, config_file=None, overrides=(), run_dir=None) -> Config:
    "The run's config: a preset or config file (or the run's saved `config.yaml`) with `key=value` overrides."
    if preset and config_file:
        raise UserError("give a preset or a config file, not both")
    saved = Path(run_dir) / "config.yaml" if run_dir is not None else None
    try:
        if config_file:
            cfg = load_config(config_file)
        elif preset:
            cfg = preset_config(preset)
        elif saved is not None and saved.is_file():
            cfg = load_config(saved)
        else:
            cfg = preset_config("recipe")
        return apply_overrides(cfg, list(overrides))
    # the config module's one-line messages about what the user gave
    except (ValueError, FileNotFoundError) as e:
        raise e if isinstance(e, UserError) else UserError(str(e)) from None

def train_summary(trainer: Trainer, reason: str) -> str:
    "The line printed when a run stops: where it stopped, why, and where its files are."
    tr = trainer
    best = ""
    if tr.best_step is not None:
        best = f", best validation mel L1 {tr.best_val:.4f} at step {tr.best_step} (generator_best.pt)"
    return (f"Stopped at step {tr.step} ({reason.replace('_', ' ')}). Checkpoints: {tr.ckpt_dir}{best}; "
            f"metrics: {tr.run_dir / 'metrics.csv'}; plots: {tr.run_dir / 'plots'}; "
            f"samples: {tr.run_dir / 'samples'}")

def stop_exit_code(reason: str) -> int:
    "0 for a planned stop, 3 for a collapse, 128 + the signal number for a signal."
    if reason == "collapse":
        return 3
    if reason.startswith("signal "):
        return 128 + int(signal.Signals[reason.split()[1]])
    return 0


# %%
test_eq([stop_exit_code(r) for r in ("max_steps", "epochs", "time_budget", "collapse")], [0, 0, 0, 3])
test_eq((stop_exit_code("signal SIGTERM"), stop_exit_code("signal SIGINT")), (143, 130))
test_fail(lambda: resolve_config("v9"), contains="v9")
test_fail(lambda: resolve_config(overrides=["train.lamda=1"]), contains="lamda")
test_fail(lambda: resolve_config("tiny", "x.yaml"), contains="not both")
test_eq(resolve_config("tiny", overrides=["train.lambda_mel=30"]).train.lambda_mel, 30)

# %% [markdown]
# ## Start from the pretrained vocoder
#
# Training from scratch costs many GPU-hours before a vocoder sounds like speech (the recipe's RUSLAN run: 50 epochs, about 9 hours on a T4, for a validation mel L1 of 0.231). The official universal V1 generator ([Pretrained vocoders](05_pretrained.ipynb)), trained on VCTK, LibriTTS and LJSpeech (English voices only), already resynthesises Russian speech at a mel L1 near 0.27-0.30 without any training. `train --init-from universal` starts from it; what matters is that the transfer **keeps** that quality while it adapts to the new voice.
#
# With the from-scratch recipe it does not. Its generator learning rate (2e-4) is meant for random weights, and its discriminators start from nothing: their first gradients are noise, and a generator that follows them loses much of what it knew. The `finetune` preset changes three things: the generator learns at 1e-5 and the discriminators at 1e-4 (they have everything to learn), and for the first 20 steps only the discriminators train (`train.d_warmup_steps`; skipped when `--init-from` brings the discriminators along in a `do_` file).
#
# Measured with `benchmarks/bench_transfer.py` on the fixture corpus of 24 Russian clips (20 for training, 4 for validation), V1 on a CPU, 48 steps of one 8,192-sample clip, validating every 8 steps:
#
# ![Validation mel L1 of four short V1 runs](assets/transfer.png)
#
# | run | step 0 | 8 | 16 | 24 | 32 | 40 | 48 |
# |---|---|---|---|---|---|---|---|
# | `finetune` from universal | 0.2725 | 0.2725 | 0.2725 | 0.2666 | 0.2609 | 0.2512 | **0.2490** |
# | `finetune` without the warm-up | 0.2725 | 0.2625 | 0.2591 | 0.2502 | 0.2539 | 0.2520 | 0.2505 |
# | `recipe` from universal | 0.2725 | 0.3910 | 0.2878 | 0.2788 | 0.2989 | 0.3032 | 0.3454 |
# | `recipe` from scratch | 3.2335 | 2.9972 | 3.0566 | 2.8143 | 2.7799 | 2.6263 | 2.6946 |
#
# The `finetune` defaults never rise above the step-0 value (the rule: never more than 2% above it) and end 8.6% below it. Without the warm-up the first steps gain faster but then wander back up and end higher (0.2505); the recipe from the same start is 43% worse at its first validation and 27% worse at the end; from scratch, 48 steps leave a mel L1 ten times higher. These are short CPU runs: how many T4-hours the transfer saves on the full corpus is still to be measured on Kaggle (`hifigan-ruslan kaggle push --init-from universal`).

# %% [markdown]
# ## Tests on the bundled corpus
#
# The tests below train the `tiny` preset on the small corpus bundled with the package, prepared once into a temporary folder.

# %%
import itertools, os, shutil, socket, stat, subprocess, sys, tempfile, textwrap, warnings
from hifigan_ruslan.checkpoints import atomic_save, list_steps, load_checkpoint, step_path
from hifigan_ruslan.config import config_from_dict
from hifigan_ruslan.prepare import bundled_corpus, prepare_corpus
from hifigan_ruslan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.health import HealthConfig, HealthMonitor

# %%
work = Path(tempfile.mkdtemp(prefix="hifigan_train_"))
prepared = work / "prepared"
prepare_corpus(bundled_corpus(), prepared, workers=1, progress=False)
test_fail(lambda: train(preset_config("tiny"), work / "nowhere", work / "x"), contains="nowhere: prepared data folder")
test_fail(lambda: train(preset_config("tiny"), prepared, work / "x", max_steps=-1), contains="must be 0 or more")
test_fail(lambda: train(preset_config("tiny"), prepared, work / "x", time_budget=0), contains="must be a positive")
test_fail(lambda: train(preset_config("tiny"), prepared, work / "x", resume_from=work / "no"), contains="no: checkpoint")

# %% [markdown]
# A short run learns: the validation mel error falls well below its value at step 0. Its files are all where they should be, with the permissions of any new file.

# %%
#| slow
tr, reason = train(apply_overrides(preset_config("tiny"), ["train.val_every_steps=15"]), prepared, work / "run",
                   max_steps=30, device="cpu", progress=False)
rows = read_metrics(work / "run" / "metrics.csv")
val = [(int(r["step"]), float(r["val_mel_l1"])) for r in rows if r["val_mel_l1"]]
print(reason, val)
print(train_summary(tr, reason).replace(str(work), "WORK"))
test_eq((reason, tr.step, [s for s, _ in val]), ("max_steps", 30, [0, 15, 30]))
test_eq(val[-1][1] < 0.85 * val[0][1], True)  # a real learning signal (measured: about 0.6 x)
test_eq(list_steps(work / "run" / "checkpoints"), [20, 30])
test_eq((work / "run" / "checkpoints" / "generator_best.pt").is_file(), True)
test_eq({"step", "epoch", "loss_g", "loss_d", "loss_mel", "val_mel_l1", "grad_norm_g", "health"} <= set(rows[0]), True)
test_eq((work / "run" / "plots" / "losses.png").is_file(), True)
sample_clips = min(tr.cfg.train.num_val_samples, len(tr.val_set))
test_eq(len(list((work / "run" / "samples").glob("step_*.png"))), 3 * sample_clips)  # a figure per clip and validation
g = load_checkpoint(work / "run" / "checkpoints" / "g_00000030")
test_eq((config_from_dict(g["config"]).generator_preset, g["steps"]), ("tiny", 30))
umask = os.umask(0o022)
os.umask(umask)
test_eq(stat.S_IMODE(step_path(work / "run" / "checkpoints", "do", 30).stat().st_mode), 0o666 & ~umask)

# %% [markdown]
# **The official HiFi-GAN code can resume from these files.** Its `train.py` builds its optimizers as below and loads `optim_g` and `optim_d` from the `do_` file; one step with them runs (a state in the wrong parameter order fails here: the moment tensors would not fit the parameters).

# %%
#| slow
do = load_checkpoint(step_path(work / "run" / "checkpoints", "do", 30))
tiny = preset_config("tiny")
generator, mpd, msd = Generator(tiny.generator), MultiPeriodDiscriminator(tiny.discriminator), MultiScaleDiscriminator(tiny.discriminator)
mpd.load_state_dict(do["mpd"])
msd.load_state_dict(do["msd"])
official_g = torch.optim.AdamW(generator.parameters(), 2e-4, betas=(0.8, 0.99))
official_d = torch.optim.AdamW(itertools.chain(msd.parameters(), mpd.parameters()), 2e-4, betas=(0.8, 0.99))
official_g.load_state_dict(do["optim_g"])
official_d.load_state_dict(do["optim_d"])
official_params = [*msd.parameters(), *mpd.parameters()]
test_eq([tuple(official_d.state[p]["exp_avg"].shape) for p in official_params], [tuple(p.shape) for p in official_params])
for p in itertools.chain(generator.parameters(), official_params):
    p.grad = torch.ones_like(p)
official_g.step()
official_d.step()
test_eq(int(official_d.state[official_params[0]]["step"]), 31)  # 30 steps here, one there

# %% [markdown]
# **And this project resumes from the official files.** A pair with only the official keys, written by official-style optimizers after one step, resumes with `resume_from` (here a folder; a `g_` or `do_` file works too) and continues its step count.

# %%
#| slow
official_dir = work / "official"
torch.manual_seed(0)
generator, mpd, msd = Generator(tiny.generator), MultiPeriodDiscriminator(tiny.discriminator), MultiScaleDiscriminator(tiny.discriminator)
optim_g = torch.optim.AdamW(generator.parameters(), 2e-4, betas=(0.8, 0.99))
optim_d = torch.optim.AdamW(itertools.chain(msd.parameters(), mpd.parameters()), 2e-4, betas=(0.8, 0.99))
for p in itertools.chain(generator.parameters(), msd.parameters(), mpd.parameters()):
    p.grad = torch.ones_like(p)
optim_g.step()
optim_d.step()
atomic_save({"generator": generator.state_dict()}, step_path(official_dir, "g", 7))
atomic_save({"mpd": mpd.state_dict(), "msd": msd.state_dict(), "optim_g": optim_g.state_dict(),
             "optim_d": optim_d.state_dict(), "steps": 7, "epoch": 0}, step_path(official_dir, "do", 7))
tr, reason = train(tiny, prepared, work / "from_official", resume_from=official_dir, max_steps=9, device="cpu",
                   progress=False)
log = (work / "from_official" / "train.log").read_text().splitlines()
test_eq(log[0], f"Resuming from {official_dir}/g_00000007 (step 7)")
test_eq((tr.step, list_steps(work / "from_official" / "checkpoints")), (9, [9]))
test_eq(int(tr.optim_d.state[next(tr.msd.parameters())]["step"]), 3)  # 1 official step, then 2 here

# %% [markdown]
# **Transfer.** `init_from` starts a fresh run (step 0, new optimizers) from that run's weights, discriminators included; weights of another shape are refused with a message that says why.

# %%
#| slow
fresh = Trainer(preset_config("tiny"), device="cpu")
source = Trainer(preset_config("tiny"), device="cpu")
source.load(load_checkpoint(work / "run" / "checkpoints" / "g_00000030"), do)
print(fresh.init_from(work / "run" / "checkpoints" / "g_00000030").replace(str(work), "WORK"))
test_eq(torch.equal(fresh.generator.conv_pre.bias, source.generator.conv_pre.bias), True)
msd_bias = "discriminators.1.conv_post.bias"
test_eq(torch.equal(fresh.msd.state_dict()[msd_bias], source.msd.state_dict()[msd_bias]), True)
test_eq((fresh.step, len(fresh.optim_g.state)), (0, 0))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # loading into meta tensors is a no-op; only the shapes are checked
    v1 = Trainer(preset_config("v1"), device="meta")
    test_fail(lambda: v1.init_from(work / "run" / "checkpoints" / "g_00000030"), contains="holds a tiny generator")

# %% [markdown]
# The loss curves of that run (also saved as `RUN/plots/losses.png`). Thirty steps of the tiny model are only the very beginning: the mel error falls fast while the discriminators are still learning what real speech is.

# %%
#| slow
from IPython.display import Image

# %%
#| slow
Image(filename=str(work / "run" / "plots" / "losses.png"))

# %% [markdown]
# **No validation.** With `val_every_steps` 0 the run never validates, not even at step 0: no validation error, no samples, no best generator.

# %%
#| slow
tr, reason = train(apply_overrides(preset_config("tiny"), ["train.val_every_steps=0"]), prepared, work / "noval",
                   max_steps=2, device="cpu", progress=False)
test_eq([r["val_mel_l1"] for r in read_metrics(work / "noval" / "metrics.csv")], [])
test_eq(((work / "noval" / "samples").exists(), (work / "noval" / "checkpoints" / "generator_best.pt").exists()),
        (False, False))

# %% [markdown]
# **Kill and resume.** A run in another process is killed with SIGKILL (no chance to clean up) after its second checkpoint; the same run started again resumes from the newest checkpoint and says so first, and the step counter continues.

# %%
#| slow
runner = work / "run_train.py"
runner.write_text(textwrap.dedent("""\
    import sys
    from hifigan_ruslan.config import apply_overrides, preset_config
    from hifigan_ruslan.training import train, train_summary
    data, out, max_steps, *overrides = sys.argv[1:]
    tr, reason = train(apply_overrides(preset_config("tiny"), overrides), data, out, max_steps=int(max_steps),
                       device="cpu", progress=False)
    if tr.dist.main:
        print(train_summary(tr, reason))
    """))

def run_training(out, max_steps, *overrides, launcher=()):
    "The command that trains the tiny preset in its own process(es)."
    return [sys.executable, *launcher, str(runner), str(prepared), str(out), str(max_steps), *overrides]

every_2 = ("train.checkpoint_every_steps=2", "train.val_every_steps=100")
killed = work / "killed"
proc = subprocess.Popen(run_training(killed, 500, *every_2), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.monotonic() + 120
while len(list_steps(killed / "checkpoints")) < 2 and time.monotonic() < deadline and proc.poll() is None:
    time.sleep(0.2)
proc.kill()
proc.wait()
newest = list_steps(killed / "checkpoints")[-1]
res = subprocess.run(run_training(killed, newest + 2, *every_2), capture_output=True, text=True, timeout=300)
test_eq(res.returncode, 0)
test_eq(res.stdout.splitlines()[0], f"Resuming from {killed}/checkpoints/g_{newest:08d} (step {newest})")
test_eq(load_checkpoint(step_path(killed / "checkpoints", "do", newest + 2))["steps"], newest + 2)
test_eq(max(int(r["step"]) for r in read_metrics(killed / "metrics.csv")) <= newest + 2, True)

# %% [markdown]
# **A corrupt newest checkpoint** (here cut in half) is skipped with a warning, and the run resumes from the one before.

# %%
#| slow
steps = list_steps(killed / "checkpoints")
bad = step_path(killed / "checkpoints", "g", steps[-1])
bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
tr, reason = train(preset_config("tiny"), prepared, killed, max_steps=steps[-1] + 1, device="cpu", progress=False)
log = (killed / "train.log").read_text().splitlines()
test_eq(tr.step, steps[-1] + 1)
test_eq(any(f"skipping checkpoint of step {steps[-1]}" in line for line in log), True)
test_eq(f"Resuming from {killed}/checkpoints/g_{steps[-2]:08d} (step {steps[-2]})" in log, True)

# %% [markdown]
# **Time budget.** With a budget of twenty seconds the run stops by itself, well inside the budget, and the last thing it did was write a checkpoint of the step it stopped at.

# %%
#| slow
tr, reason = train(preset_config("tiny"), prepared, work / "budget", time_budget=20, device="cpu", progress=False)
elapsed = time.monotonic() - tr.started
print(reason, tr.step, f"{elapsed:.1f} s")
test_eq((reason, elapsed < 20), ("time_budget", True))
test_eq(list_steps(work / "budget" / "checkpoints")[-1:], [tr.step])


# %% [markdown]
# **Divergence.** A run whose every batch produces NaN stops after `max_nonfinite_steps` skipped steps (here 3) with a clear message, and writes no checkpoint of the poisoned state.

# %%
class NaNAudio(torch.utils.data.Dataset):
    "The training clips with every sample replaced by NaN."
    def __init__(self, ds): self.ds = ds
    def __len__(self): return len(self.ds)
    def __getitem__(self, i):
        mel, audio = self.ds[i]
        return mel, audio * float("nan")
    def reseed(self, seed): self.ds.reseed(seed)

tr = Trainer(preset_config("tiny"), prepared, work / "nan", device="cpu", progress=False)
tr.train_set = NaNAudio(tr.train_set)
tr.health = HealthMonitor(tr.cfg.discriminator.num_subdiscriminators, HealthConfig(max_nonfinite_steps=3))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # the schedule's epoch step comes before any optimizer step here
    test_fail(lambda: tr.fit(max_steps=50), contains="3 consecutive steps had a non-finite loss")
test_eq((tr.step, list_steps(tr.ckpt_dir)), (3, []))

# %% [markdown]
# **fp16 with the gradient scaler**, the path of every Kaggle run, on the CPU (batches of one 1,024-sample segment: fp16 backward passes are slow there). The scalers start at the scale a fresh run reaches after its first overflows (512; a fresh scaler's 65,536 costs the generator its first seven steps here, see [The trainer](09_trainer.ipynb)). At step 9 an overflow is injected (a gradient hook returns `inf`): the step is skipped and the scale halved, but it is not a non-finite step for the health monitor (set to stop after 3 of them), and the run goes on to its last step. It learns as much as the same run in fp32. The scaler's state is in the checkpoint, and a resumed run restores it.

# %%
#| slow
small_fp = ["train.batch_size=1", "train.segment_size=1024", "train.val_every_steps=12",
            "train.checkpoint_every_steps=12", "train.num_val_samples=0"]
injected = []

def overflow_at(tr: Trainer, step: int):
    "A gradient hook that turns the gradient of step `step` into inf and records the scale it overflowed."
    def hook(grad: torch.Tensor) -> torch.Tensor:
        if tr.step != step:
            return grad
        injected.append(tr.scaler_g.get_scale())
        return torch.full_like(grad, float("inf"))
    return hook

drops = {}
for precision in ("fp32", "fp16"):
    torch.manual_seed(0)
    cfg = apply_overrides(preset_config("tiny"), [*small_fp, f"train.precision={precision}"])
    tr = Trainer(cfg, prepared, work / precision, device="cpu", progress=False)
    tr.health = HealthMonitor(tr.cfg.discriminator.num_subdiscriminators, HealthConfig(max_nonfinite_steps=3))
    if precision == "fp16":
        for scaler in (tr.scaler_g, tr.scaler_d):
            scaler.load_state_dict({**scaler.state_dict(), "scale": 512.0})
        tr.generator.conv_pre.bias.register_hook(overflow_at(tr, 9))
    reason = tr.fit(max_steps=12)
    val = [float(r["val_mel_l1"]) for r in read_metrics(work / precision / "metrics.csv") if r["val_mel_l1"]]
    drops[precision] = val[-1] / val[0]
    skipped = sum(int(r["skipped"]) for r in read_metrics(work / precision / "metrics.csv") if r["skipped"])
    print(precision, reason, f"validation {val[0]:.3f} -> {val[-1]:.3f}; {skipped} steps skipped")
test_eq((reason, tr.step, tr.health.nonfinite_steps), ("max_steps", 12, 0))
test_eq((skipped >= 1, len(injected)), (True, 1))  # the injected overflow (measured: and one more at 512)
test_eq(tr.scaler_g.get_scale() <= injected[0] / 2, True)  # halved at the injected overflow
test_eq("non-finite" in (work / "fp16" / "train.log").read_text(), False)
test_eq((drops["fp32"] < 0.985, drops["fp16"] < 0.985), (True, True))  # measured: 0.955 and 0.944
test_close(drops["fp16"], drops["fp32"], eps=0.04)  # measured: 0.011 apart
do = load_checkpoint(step_path(work / "fp16" / "checkpoints", "do", 12))
test_eq(do["scaler_g"]["scale"], tr.scaler_g.get_scale())
resumed = Trainer(cfg, device="cpu")
resumed.load(load_checkpoint(step_path(work / "fp16" / "checkpoints", "g", 12)), do)
scales = [(t.scaler_g.get_scale(), t.scaler_d.get_scale()) for t in (resumed, tr)]
test_eq(scales[0], scales[1])

# %% [markdown]
# **A bounded run folder.** A run that validates at every step keeps the samples of its newest three validations and of its best one, the checkpoints that `keep_last` allows, and one TensorBoard file per training process; resumed, it adds one more events file and nothing else grows. (How it stays bounded over 1,000 validations is simulated in [The run folder](08a_run_folder.ipynb).)

# %%
#| slow
from hifigan_ruslan.run_folder import KEEP_SAMPLE_VALIDATIONS, sample_steps


# %%
#| slow
def run_files(run: Path) -> list[Path]:
    return [f for f in run.rglob("*") if f.is_file()]

every_step = ["train.val_every_steps=1", "train.checkpoint_every_steps=2"]
bounded = work / "bounded"
tr, reason = train(apply_overrides(preset_config("tiny"), every_step), prepared, bounded, max_steps=12,
                   device="cpu", progress=False)
clips = min(tr.cfg.train.num_val_samples, len(tr.val_set))
newest = list(range(12 - KEEP_SAMPLE_VALIDATIONS + 1, 13))
test_eq(sample_steps(bounded / "samples"), sorted({tr.best_step, *newest}))
files = run_files(bounded)
ckpt_bytes = sum(f.stat().st_size for f in files if f.parent.name == "checkpoints")
other_bytes = sum(f.stat().st_size for f in files if f.parent.name != "checkpoints")
print(f"{len(files)} files: {ckpt_bytes / 1e6:.1f} MB of checkpoints, {other_bytes / 1e6:.2f} MB of the rest")
bound = 2 * (tr.cfg.train.keep_last + 1) + 1 + clips * (1 + 2 * (KEEP_SAMPLE_VALIDATIONS + 1)) + 6
test_eq(len(files) <= bound, True)  # pairs, generator_best.pt, samples, 6 one-off files (measured: 27 of 33)
test_eq(len(list((bounded / "tensorboard").iterdir())), 1)
test_eq(other_bytes < 0.2 * ckpt_bytes, True)  # the checkpoints are what takes space (measured: 0.012)

# %% [markdown]
# **One trainer per run folder.** While another process holds the run folder's lock, `train` is refused with one line that names the folder and the holder's PID; once that process is killed (`SIGKILL`), the same command resumes the run.

# %%
#| slow
holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
    import time
    from hifigan_ruslan.run_folder import RunLock
    with RunLock({str(bounded)!r}):
        print("locked", flush=True)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
test_eq(holder.stdout.readline().strip(), "locked")
test_fail(lambda: train(tr.cfg, prepared, bounded, max_steps=14, device="cpu", progress=False),
          contains=f"{bounded}: another training process (PID {holder.pid}) is using this run folder")
holder.kill()
holder.wait()
tr, reason = train(tr.cfg, prepared, bounded, max_steps=14, device="cpu", progress=False)
test_eq((reason, tr.step, len(list((bounded / "tensorboard").iterdir()))), ("max_steps", 14, 2))
test_eq(len(run_files(bounded)) <= bound + 1, True)

# %% [markdown]
# **A full disk.** The disk below (a patched free-space probe) has room for two and a half checkpoint pairs of the tiny preset. The third checkpoint does not fit and nothing that `keep_last` allows can be pruned to make room, so the run stops with one line naming the file, the space and the checkpoint to resume from; the earlier pairs are intact and no temporary file stays behind. Once there is room, the same command resumes.

# %%
#| slow
from unittest.mock import patch
from hifigan_ruslan.checkpoints import SPACE_MARGIN, OutOfSpace


# %%
#| slow
class SmallDisk:
    "A free-space probe: `capacity` bytes minus the files in the run folder."
    def __init__(self, run: Path, capacity: int): self.run, self.capacity = run, capacity
    def __call__(self, folder) -> int: return self.capacity - sum(f.stat().st_size for f in run_files(self.run))

pair = sum(step_path(work / "run" / "checkpoints", p, 30).stat().st_size for p in ("g", "do"))
full = work / "full"
no_val = apply_overrides(preset_config("tiny"), ["train.val_every_steps=0", "train.checkpoint_every_steps=2"])
with patch("hifigan_ruslan.checkpoints.free_bytes", SmallDisk(full, int(2.5 * pair) + SPACE_MARGIN)):
    test_fail(lambda: train(no_val, prepared, full, max_steps=8, device="cpu", progress=False),
              contains=f"{full}/checkpoints/do_00000006: no space left on device: the checkpoint needs about")
    test_fail(lambda: train(no_val, prepared, full, max_steps=8, device="cpu", progress=False),
              contains=f"then the same command resumes from {full}/checkpoints/g_00000004")
test_eq((list_steps(full / "checkpoints"), list_steps(full / "checkpoints", "do")), ([2, 4], [2, 4]))
test_eq([f.name for f in run_files(full) if f.name.endswith(".tmp")], [])
tr, reason = train(no_val, prepared, full, max_steps=8, device="cpu", progress=False)
test_eq((reason, list_steps(full / "checkpoints")), ("max_steps", [4, 6, 8]))

# %% [markdown]
# **Two processes.** `torchrun` starts two gloo processes on the CPU; each trains on half of every batch (the effective batch stays 4), and process 0 alone writes logs and checkpoints.

# %%
#| slow
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
launcher = ("-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
            "--master-port", str(port))
res = subprocess.run(run_training(work / "ddp", 2, "train.val_every_steps=2", launcher=launcher),
                     capture_output=True, text=True, timeout=300)
test_eq(res.returncode, 0)
print("\n".join(line for line in res.stdout.splitlines() if "processes" in line or "validation" in line))
test_eq(list_steps(work / "ddp" / "checkpoints"), [2])
test_eq("x 2 processes, batch 2 x 1" in res.stdout, True)

# %%
shutil.rmtree(work, ignore_errors=True)
