# %% [markdown]
# # Training
#
# > The training loop, `fit`, one function that reads top to bottom like the reference `train.py`, with its logbook (clock, interval means, metrics, progress bar, health monitor); and `train`, the entry point of a run: resume or start, hold the run folder, fit.

# %%
#| default_exp training

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import dataclasses, math, signal
from contextlib import nullcontext
from pathlib import Path
import torch
import torch.distributed as dist
from fastcore.basics import patch
from hifigan_ruslan.config import (Config, apply_overrides, config_differences, config_from_dict,
                                   load_config, preset_config, save_config)
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.checkpoints import (checkpoint_dir, find_generator_file, find_resume_checkpoint,
                                        resumable_step)
from hifigan_ruslan.locations import check_output_folder
from hifigan_ruslan.health import HealthMonitor
from hifigan_ruslan.metrics import IntervalStats, MetricsLog, plot_metrics
from hifigan_ruslan.prepare import corpus_band_hz
from hifigan_ruslan.run_folder import RunLock
from hifigan_ruslan.stopping import Clock, SignalFlag, StopCheck, TrainingDiverged
from hifigan_ruslan.trainer import StepResult, Trainer, init_distributed, resolve_precision

# %%
from fastcore.test import test_close, test_eq, test_fail
from hifigan_ruslan.metrics import read_metrics


# %% [markdown]
# A training run is a loop over `Trainer.train_step` (see [The trainer](09_trainer.ipynb)), wrapped in what makes a long run on rented hardware survivable: checkpoints that a kill cannot corrupt and resume from them, a clock that stops the run before the platform does, validation, and a monitor that notices when the GAN has stopped learning. The trainer owns the run's state and its steps; this page owns the order in which they happen. `fit` is that order, one function; `Logbook` keeps what the loop counts and writes on the way; `train` is the entry point that the command line `hifigan-ruslan train` calls. The reasons a run stops, and how all processes agree on them, are in [Stopping a run](08b_stopping.ipynb).
#
# ## Batches, a step's worth at a time
#
# One optimizer step consumes `grad_accum_steps` batches (per process; see `per_process_batch`). An epoch that does not divide into whole steps drops its last incomplete group, as the loader drops its last incomplete batch.

# %%
#| export
def batch_groups(loader, size: int):
    "Consecutive groups of `size` batches of one pass over `loader` (an incomplete last group is dropped)."
    group = []
    for batch in loader:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []

def _due(every: int, step: int) -> bool:
    "Whether something done every `every` steps (0: never) is due at `step`."
    return every > 0 and step % every == 0


# %%
test_eq(list(batch_groups(range(7), 3)), [[0, 1, 2], [3, 4, 5]])
test_eq([_due(5, 10), _due(5, 11), _due(0, 10)], [True, False, False])

# %% [markdown]
# ## The logbook
#
# What the loop counts and writes along the way, and nothing it decides with, lives in a `Logbook` made afresh for each `fit`: the clock (for the time budget and the speed report), the running sums of the step statistics, the pending row of `metrics.csv` (and TensorBoard), the progress bar, and the health monitor (which the run's `config.health` configures). Process 0 alone writes files; every process keeps a clock and a monitor, since the stop decision is taken by all of them.
#
# The class body holds the logbook's two calls of every step. After every step, `record_step` counts its result: its statistics go into the interval's sums (a skipped step's do not), its finite-or-not verdict to the health monitor, which owns the count of non-finite steps in a row. Every `log_every_steps` steps, `write_interval` sends the interval's means (one host synchronisation) to the row of `metrics.csv`, to the progress bar and to the health monitor, which also sees the last batch's generated and real audio. The monitor's warnings are logged when they change, and its verdict (collapsed or not) is returned to the loop, which stops on it with `--stop-on-collapse`.

# %%
#| export
HEALTH_INPUTS = ("loss_d", "loss_adv", "real_score", "fake_score", "grad_norm_g", "grad_norm_d")

class Logbook:
    "The bookkeeping of one `fit`: clock, interval statistics, metrics row, progress bar, health monitor."
    def __init__(self, tr: Trainer, total_steps: int, steps_per_epoch: int, time_budget: float | None = None,
                 resumed: bool = False, progress: bool = True):
        from tqdm.auto import tqdm
        cfg, self.tr, self.steps_per_epoch = tr.cfg, tr, steps_per_epoch
        n_params = sum(p.numel() for m in tr.modules.values() for p in m.parameters())
        # a checkpoint's time is estimated from its size until measured: weights and 2 Adam moments
        self.clock = Clock(tr.started, time_budget, save_s=16 * n_params / 100e6 + 0.5)
        self.health = HealthMonitor(cfg.discriminator.num_subdiscriminators, cfg.health,
                                    cfg.mel.sampling_rate)
        self.interval, self.row, self.warned, self.skipped = IntervalStats(), {}, (), 0
        self.steps_run = 0
        self.speed_report_at = min(max(2, cfg.train.log_every_steps), total_steps - tr.step)
        writes = tr.dist.main and tr.run_dir is not None
        self.metrics = MetricsLog(tr.run_dir, tr.step, resumed, cfg.train.tensorboard) if writes else None
        self.bar = tqdm(total=total_steps, initial=min(tr.step, total_steps), desc="train", unit="step",
                        dynamic_ncols=True, disable=not (tr.dist.main and progress))

    def record_step(self, result: StepResult):
        "Count one step's result: interval statistics, the monitor's non-finite count, bar, speed report."
        tr = self.tr
        self.steps_run += 1
        if result.skipped:
            self.skipped += 1
        else:
            self.interval.add(result.stats)
        self.health.record_step(result.finite)
        if not result.finite:
            tr.log(f"step {tr.step}: non-finite loss, step skipped ({self.health.nonfinite_steps} in a row)")
        self.bar.update()
        if self.steps_run == self.speed_report_at:
            self._report_speed()

    def write_interval(self, result: StepResult) -> bool:
        "Write the interval's means and the health monitor's verdict; returns whether it reports a collapse."
        tr = self.tr
        means = self.interval.means()  # the one host synchronisation of the interval
        inputs = {k: means.get(k, math.nan) for k in HEALTH_INPUTS}
        warnings = tuple(self.health.update(tr.step, **inputs, fake_audio=result.fake,
                                            real_audio=result.real))
        if warnings != self.warned:
            for w in warnings:
                tr.log(f"HEALTH WARNING at step {tr.step}: {w}")
        self.warned = warnings
        self.row.update(step=tr.step, epoch=tr.epoch, **{k: round(v, 5) for k, v in means.items()},
                        lr_g=tr.optim_g.param_groups[0]["lr"], lr_d=tr.optim_d.param_groups[0]["lr"],
                        skipped=self.skipped, seconds_per_step=round(self.clock.step_s, 4),
                        health=self.health.status)
        shown = {k: means.get(k, math.nan) for k in ("loss_d", "loss_g", "loss_mel")}
        self.bar.set_postfix(loss_d=f"{shown['loss_d']:.2f}", loss_g=f"{shown['loss_g']:.2f}",
                             mel=f"{shown['loss_mel']:.3f}", health=self.health.status, refresh=False)
        self.skipped = 0
        return self.health.collapsed


# %% [markdown]
# Once the first steps are measured, the logbook says how long a step, an epoch and the rest of the time budget take.

# %%
#| export
@patch
def _report_speed(self: Logbook):
    "Log how long a step, an epoch and the rest of the time budget take."
    step_s, left = self.clock.step_s, ""
    if self.clock.budget:
        more = int((self.clock.budget - self.clock.elapsed()) / step_s)
        left = f"; the time budget allows about {more} more"
    self.tr.log(f"about {step_s:.2f} s per step: an epoch ({self.steps_per_epoch} steps) takes about "
                f"{step_s * self.steps_per_epoch / 60:.1f} min{left}")


# %% [markdown]
# A validation's error goes to the step's row and to the log (`record_validation`, once the loop has kept the best generator, which the line names). Checkpoints are timed (`timed_save`), because the time budget must leave room for the next one; so are validations, by the loop. `flush` writes the step's row, once per step at most; `close` draws the loss curves (`RUN/plots/losses.png`) whatever ended the run.

# %%
#| export
@patch
def record_validation(self: Logbook, val: float):
    "Add the validation error `val` to this step's row and log it with the best so far."
    tr = self.tr
    self.row.update(step=tr.step, epoch=tr.epoch, val_mel_l1=round(val, 5))
    tr.log(f"step {tr.step}: validation mel L1 {val:.4f} (best {tr.best_val:.4f} at step {tr.best_step})")

@patch
def timed_save(self: Logbook):
    "Write the trainer's checkpoint pair, timed."
    with self.clock.timing("save"):
        self.tr.save()

@patch
def flush(self: Logbook):
    "Write the pending `metrics.csv` row, if any (process 0)."
    if self.row and self.metrics is not None:
        self.metrics.write(self.row)
    self.row = {}

@patch
def close(self: Logbook):
    "Close the bar and the metrics; draw the loss curves."
    self.bar.close()
    if self.metrics is not None:
        self.metrics.close()
        plot_metrics(self.metrics.path, self.tr.run_dir / "plots" / "losses.png")


# %% [markdown]
# The logbook on its own, with a tiny trainer and made-up step results: two steps, one skipped, make an interval whose means are those of the step that counted; the row holds them with the learning rates and the health monitor's verdict.

# %%
import tempfile

# %%
with tempfile.TemporaryDirectory() as d:
    book_trainer = Trainer(preset_config("tiny"), run_dir=d, device="cpu")
    book = Logbook(book_trainer, total_steps=10, steps_per_epoch=5, progress=False)
    audio = 0.1 * torch.randn(2, 1, 4096)
    stats = {k: torch.tensor(v) for k, v in dict(loss_d=4.0, loss_adv=1.0, real_score=0.7, fake_score=0.3,
                                                 grad_norm_g=2.0, grad_norm_d=3.0, loss_mel=1.5).items()}
    book.clock.step_s = 0.1
    book.record_step(StepResult(stats, skipped=False, finite=True, fake=audio, real=audio))
    book.record_step(StepResult(stats, skipped=True, finite=True, fake=audio, real=audio))
    book_trainer.step = 2
    assert not book.write_interval(StepResult(stats, False, True, audio, audio))
    print({k: book.row[k] for k in ("step", "loss_d", "loss_mel", "skipped", "lr_g", "health")})
    test_eq(book.row["loss_d"], 4.0)
    test_eq(book.row["skipped"], 1)
    test_eq(book.row["health"], "ok")  # still in the monitor's warm-up
    book.flush()
    book.close()
    test_eq([r["step"] for r in read_metrics(Path(d) / "metrics.csv")], ["2"])


# %% [markdown]
# ## The loop
#
# `fit` reads top to bottom like the reference `train.py`: a baseline validation at step 0 of a new run, then epoch after epoch, each step in the same stages:
#
# 1. **one step**: the discriminators, then the generator, on `grad_accum_steps` batches (`Trainer.train_step`, which also counts the step);
# 2. **record and log**: the logbook counts the result, and every `log_every_steps` writes the interval's means and the health monitor's verdict;
# 3. **one stop decision**, agreed by every process (`StopCheck.agreed`): a signal, divergence (which raises `TrainingDiverged`), a collapse with `--stop-on-collapse`, the step limit, or a time budget that another step, a due validation and a checkpoint might not fit into;
# 4. **validation** when due, and the **best generator**: an error below the best so far writes `generator_best.pt` (`Trainer.save_best`; timed with the validation, since the budget must leave room for both);
# 5. **a checkpoint** when due: every `checkpoint_every_steps` steps, and whenever `checkpoint_every_minutes` have passed since the last one; not when the run is stopping, since the last checkpoint follows anyway.
#
# At the **end of an epoch** the trainer decays both learning rates (`Trainer.end_epoch`: the reference's `ExponentialLR`, stepped once per epoch; the generator's only once it trains, after the discriminator warm-up); the run stops after its last epoch, and when checkpoints are counted in epochs (`checkpoint_every_steps` 0) one is written every `checkpoint_every_epochs`. The run ends with a checkpoint of the step it stopped at, whatever the reason, and the logbook draws the loss curves even when the run fails.

# %%
#| export
def epoch_steps(tr: Trainer, loader) -> int:
    "Optimizer steps in one epoch of `loader`; a `UserError` when the clips cannot fill one step."
    steps = len(loader.sampler) // (tr.batch_size * tr.accum)
    if steps == 0:
        raise UserError(f"{tr.data_dir}: {len(loader.sampler)} training clips per process, fewer than one "
                        f"step's {tr.batch_size} x {tr.accum} accumulated batches: lower "
                        "train.grad_accum_steps or train.batch_size (--set), or prepare more clips")
    return steps


# %% [markdown]
# The loop. Validation and the best generator are one small function inside it, used for the baseline and for
# every due validation; checkpoints are written in stage 5, at the end of an epoch, and when the run stops.

# %%
#| export
def fit(tr: Trainer, max_steps: int | None = None, time_budget: float | None = None,
        stop_on_collapse: bool = False, resumed: bool = False, progress: bool = True) -> str:
    "Train until `max_steps`, the epochs, time budget, a signal, collapse or divergence; returns the reason."
    t = tr.cfg.train
    loader = tr.train_loader()
    steps_per_epoch = epoch_steps(tr, loader)
    total_steps = max_steps if max_steps is not None else t.epochs * steps_per_epoch
    book = Logbook(tr, total_steps, steps_per_epoch, time_budget, resumed, progress)
    stop = StopCheck(max_steps=tr.step >= total_steps, epochs=tr.epoch >= t.epochs)

    def validate_and_keep_best():
        "Validate, keep a better generator (timed together: the budget must leave room for both), log."
        with book.clock.timing("val"):
            val = tr.validate()
            if val < tr.best_val:
                tr.save_best(val)  # generator_best.pt
        book.record_validation(val)

    try:
        with SignalFlag() as signals:
            if tr.step == 0 and stop.reason is None and t.val_every_steps > 0:
                validate_and_keep_best()  # the baseline
                book.flush()
                book.bar.reset()  # the estimated time left counts steps, not this validation
            while stop.reason is None:
                loader.sampler.set_epoch(tr.epoch)
                for batches in batch_groups(loader, tr.accum):
                    # 1. one step: the discriminators, then the generator
                    with book.clock.timing("step"):
                        result = tr.train_step(batches)
                    # 2. record, and log the interval's means and the health verdict when due
                    book.record_step(result)
                    collapsed = book.write_interval(result) if _due(t.log_every_steps, tr.step) else False
                    # 3. one stop decision, agreed by every process
                    validations = _due(t.val_every_steps, tr.step) + _due(t.val_every_steps, tr.step + 1)
                    stop = StopCheck(signum=signals.received, diverged=book.health.diverged,
                                     collapse=collapsed and stop_on_collapse,
                                     max_steps=tr.step >= total_steps,
                                     time_budget=book.clock.out_of_time(validations)).agreed(tr.device)
                    if stop.diverged:
                        raise TrainingDiverged(
                            f"stopping: {book.health.nonfinite_steps} consecutive steps had a non-finite "
                            f"loss (at step {tr.step}); the newest checkpoint in {tr.ckpt_dir} is the last "
                            "good state: lower the learning rate or check the data")
                    # 4. validation, and the best generator so far
                    if _due(t.val_every_steps, tr.step):
                        validate_and_keep_best()
                    book.flush()
                    if stop.reason is not None:
                        break
                    # 5. a checkpoint, by steps or by time
                    by_time = book.clock.due("save", every_minutes=t.checkpoint_every_minutes)
                    if _due(t.checkpoint_every_steps, tr.step) or by_time:
                        book.timed_save()
                if stop.reason is None:
                    # the end of an epoch: learning-rate decay, the last epoch, or the epoch's checkpoint
                    tr.end_epoch()
                    stop = StopCheck(epochs=tr.epoch >= t.epochs)
                    by_epoch = not t.checkpoint_every_steps and _due(t.checkpoint_every_epochs, tr.epoch)
                    if stop.reason is None and by_epoch:
                        book.timed_save()
            book.timed_save()  # the step the run stopped at
    finally:
        book.close()
    return stop.reason


# %%
show_doc(fit)


# %% [markdown]
# ## The loss band follows the corpus
#
# The generator's mel loss compares log-mels up to half the sampling rate, 11,025 Hz (`mel.fmax_loss` unset, as in
# the reference). A corpus recorded at a lower rate and resampled to 22,050 Hz holds nothing above its own Nyquist
# frequency: festvox-ru, recorded at 16 kHz, nothing above 8 kHz. Its top mel bands are then near the log floor in
# the recording, and the loss spends itself on making the generator reproduce that emptiness exactly: on that corpus
# the bands above 8 kHz carry most of the universal generator's mel error, and fine-tuning with the full band buys
# mel L1 with perceived quality (measured below: in 40 steps the mel L1 falls 9.2%, PESQ 0.011 and DistillMOS
# 0.053). So when `mel.fmax_loss` is unset,
# `train` limits the loss mel to the band the corpus's recordings hold ([`corpus_band_hz`](06b_prepare.ipynb#the-band-the-recordings-hold),
# from the prepared folder's report), records the limit in the run's `config.yaml` and logs one line saying so. A
# corpus recorded at 22,050 Hz or more, RUSLAN (44.1 kHz) among them, keeps the full band: nothing changes there,
# and the recipe's validation mel L1 of 0.231 stays comparable. `--set mel.fmax_loss=11025` asks for the full band
# on any corpus. The trainer validates with its own loss mel; the evaluation always measures the full band
# ([Evaluation](11_evaluation.ipynb)), so that runs on any corpus are scored alike.

# %%
#| export
def loss_band_for_corpus(cfg: Config, data_dir) -> tuple[Config, str | None]:
    "`cfg` with the loss mel limited to the band the corpus holds, when unset and narrower; the line to log."
    band = corpus_band_hz(data_dir)
    if cfg.mel.fmax_loss is not None or band is None or band >= cfg.mel.sampling_rate / 2:
        return cfg, None
    note = (f"loss mel up to {band:.0f} Hz (mel.fmax_loss): the corpus was recorded at {2 * band:.0f} Hz and "
            f"holds nothing above; --set mel.fmax_loss={cfg.mel.sampling_rate // 2} for the full band")
    # the preset keeps its name: the band is the corpus's, not a change of the recipe
    return dataclasses.replace(cfg, mel=dataclasses.replace(cfg.mel, fmax_loss=band)), note


# %%
show_doc(loss_band_for_corpus)

# %% [markdown]
# On two small prepared folders: the real voice bundled with the package (16 kHz recordings) gets an 8 kHz loss band;
# the synthetic test corpus (half at 44.1 kHz, half at 22,050 Hz) keeps the full band, and so does a run that sets
# the band itself.

# %%
from hifigan_ruslan.clips import bundled_corpus
from hifigan_ruslan.prepare import prepare_corpus
from hifigan_ruslan.testing import tiny_corpus

# %%
band_work = Path(tempfile.mkdtemp(prefix="hifigan_band_"))
prepare_corpus(bundled_corpus(), band_work / "real", workers=1, progress=False)
prepare_corpus(tiny_corpus(), band_work / "synthetic", workers=1, progress=False)
real_cfg, note = loss_band_for_corpus(preset_config("finetune"), band_work / "real")
print(note)
test_eq((real_cfg.mel.fmax_loss, real_cfg.preset), (8000.0, "finetune"))
test_eq(loss_band_for_corpus(preset_config("finetune"), band_work / "synthetic"), (preset_config("finetune"), None))
full = apply_overrides(preset_config("finetune"), ["mel.fmax_loss=11025"])
test_eq(loss_band_for_corpus(full, band_work / "real")[0].mel.fmax_loss, 11025.0)

# %% [markdown]
# ## Starting a run
#
# `train` is the entry point. It checks its inputs, joins the process group when `torchrun` started it, seeds the global random number generator (so that every process builds the same initial weights), lets cuDNN pick its fastest kernels for the fixed training shapes, and builds the trainer. Then it restores a state:
#
# 1. the newest intact checkpoint of `RUN/checkpoints`, if there is one: running the same command again resumes (its first line says so);
# 2. else `resume_from`: a run folder, a checkpoint folder, or a `g_`/`do_` file, of this project or of the official HiFi-GAN code, continuing its step count in `RUN`;
# 3. else `init_from`: the weights of an existing checkpoint in a new run (step 0, fresh optimizers).
#
# Once the trainer is built and the clips are known to fill a step, and the state is restored, the run really starts: only then does it save its config to `RUN/config.yaml` (which a later `train` without `--preset` takes, so a refused run must not leave one: `--set train.batch_size=100000` refused, the same command without it must train with the preset's batch; a run refused before it wrote anything leaves no folder either, see [`RunLock`](08a_run_folder.ipynb#one-trainer-per-run-folder)). Then it runs `fit`, all the while holding the run folder's lock (`RunLock`: a second `train` on the same folder is refused with one line naming the process that holds it). A run that diverges raises `TrainingDiverged`; anything a user can fix raises `UserError`, a checkpoint that does not fit on the disk among them (`OutOfSpace`, which names the checkpoint to resume from). A process group that `train` joined, it leaves, whatever happens.

# %% [markdown]
# A resumed run takes some values from its checkpoint whatever its config says: the shapes of the networks, and the
# optimizers' settings (the learning rates, betas, weight decay and the decay of the schedule are restored with the
# optimizers' state). A config that changes any of them, say `--preset recipe` given to a run of the `tiny` preset,
# is refused before any model is built, in one line that names the differences (rather than a long traceback of
# mismatched tensor sizes, or settings silently ignored). The run folder's `config.yaml` is compared first; the
# checkpoint's own config once it is loaded (which covers `--resume-from` as well).

# %%
#| export
RESUME_FIXED = ("mel", "generator", "discriminator", "train.lr_g", "train.lr_d", "train.betas",
                "train.weight_decay", "train.lr_decay")

def check_resume_config(saved: Config, asked: Config, where) -> None:
    "A `UserError` naming the values in `RESUME_FIXED` that `asked` changes from a run's `saved` config."
    changed = config_differences(saved, asked, under=RESUME_FIXED)
    if changed:
        shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise UserError(f"{where}: this run was trained with other values: {shown}; resume it with its "
                        "own config (the --preset/--config it started with, or neither) or train into a new "
                        "--out")

def _check_saved_config(cfg: Config, run_dir: Path) -> None:
    "Compare `cfg` with the `config.yaml` of `run_dir` when the run has checkpoints to resume from."
    saved = run_dir / "config.yaml"
    if resumable_step(checkpoint_dir(run_dir)) is not None and saved.is_file():
        check_resume_config(load_config(saved), cfg, saved)


# %%
show_doc(check_resume_config)

# %%
check_resume_config(preset_config("tiny"), apply_overrides(preset_config("tiny"), ["train.epochs=9"]), "x")
test_fail(lambda: check_resume_config(preset_config("tiny"), preset_config("recipe"), "run/config.yaml"),
          contains="run/config.yaml: this run was trained with other values: generator.resblock 2 -> 1, ")


# %%
#| export
def _check_inputs(data_dir: Path, run_dir: Path, max_steps, time_budget, init_from, resume_from):
    check_output_folder(run_dir, "run folder")
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
        if "config" in point.g:
            saved = config_from_dict(point.g["config"], f"{point.path}: config")
            check_resume_config(saved, tr.cfg, point.path)
        try:
            tr.load(point.g, point.do)
        except RuntimeError as e:  # an official checkpoint of another shape: it has no config to compare
            detail = next((line.strip() for line in str(e).splitlines()[1:] if line.strip()), str(e)[:120])
            raise UserError(f"{point.path}: its weights do not fit this run's config "
                            f"({tr.cfg.generator_preset} generator): {detail}") from None
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
    _check_inputs(data_dir, run_dir, max_steps, time_budget, init_from, resume_from)
    cfg, band_note = loss_band_for_corpus(cfg, data_dir)  # before the comparison: the saved config has the band
    _check_saved_config(cfg, run_dir)
    resolve_precision(cfg.train.precision, "cpu")  # a bad value fails before anything starts
    own_group = not dist.is_initialized()
    info, dev = init_distributed(device)
    try:
        torch.manual_seed(cfg.train.seed)  # identical initial weights in every process
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True  # training segments have one fixed shape
        with RunLock(run_dir) if info.main else nullcontext():  # one trainer per run folder
            tr = Trainer(cfg, data_dir, run_dir, device=dev, dist_info=info, mel_dir=mel_dir)
            epoch_steps(tr, tr.train_loader())  # a batch the clips cannot fill: refused before any file
            resumed = _restore(tr, init_from, resume_from)
            if info.main:  # the run really starts: its config is what a rerun without --preset will take
                save_config(cfg, run_dir / "config.yaml")
            tr.log(_describe(tr))
            if band_note:
                tr.log(band_note)
            return tr, fit(tr, max_steps, time_budget, stop_on_collapse, resumed=resumed, progress=progress)
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
test_eq(stop_exit_code("signal SIGTERM"), 143)
test_eq(stop_exit_code("signal SIGINT"), 130)
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
# ### Measured on a real voice
#
# What the transfer must keep is what a listener hears, so it is measured on a real Russian voice with three numbers: the evaluation's mel L1 (full band), wide-band PESQ against the recording, and DistillMOS, the predicted listener rating ([Evaluation](11_evaluation.ipynb)). The rule for the `finetune` defaults: the mel L1 never more than 1% above its step-0 value and below it at the end, PESQ above its step-0 value at the end, and the mean MOS at most 0.05 below its step-0 value at the end. `benchmarks/bench_transfer.py --real` fetches festvox-ru (Debian's Russian Festival voice: one male speaker, 620 read sentences, 16 kHz; `apt-get download festvox-ru`), holds out a fixed 24 clips (233 s; `prepare --val-size 24 --seed 1234`), fine-tunes V1 from the universal generator on the other 596 for a CPU budget, and scores the generator every 10 steps on the held-out clips:
#
# ![mel L1, PESQ and DistillMOS of four short V1 runs on festvox-ru](assets/transfer_real.png)
#
# | run | step 0 | 10 | 20 | 30 | 40 | change per clip, step 0 to 40: PESQ / MOS | rule |
# |---|---|---|---|---|---|---|---|
# | `finetune` | 0.2983 / 2.534 / 3.912 | 0.2983 / 2.534 / 3.912 | 0.2983 / 2.534 / 3.912 | 0.2874 / 2.522 / 3.884 | **0.2853 / 2.568 / 3.886** | +0.033 ± 0.013 / -0.026 ± 0.012 | **holds**: mel -4.4%, PESQ +0.033, MOS -0.026 |
# | `finetune` without the warm-up | 0.2983 / 2.534 / 3.912 | 0.2877 / 2.518 / 3.790 | 0.2841 / 2.545 / 3.841 | 0.2823 / 2.576 / 3.831 | 0.2809 / 2.639 / 3.815 | +0.105 ± 0.012 / -0.097 ± 0.018 | broken: MOS -0.097 |
# | `recipe` from universal | 0.2983 / 2.534 / 3.912 | 0.3745 / 2.444 / 3.741 | 0.3168 / 2.557 / 3.671 | 0.3422 / 2.353 / 3.735 | 0.3117 / 2.293 / 3.890 | -0.241 ± 0.041 / -0.022 ± 0.033 | broken: mel +25.6% at step 10, +4.5% at the end; PESQ -0.241 |
# | `finetune`, full-band loss | 0.2983 / 2.534 / 3.912 | 0.2983 / 2.534 / 3.912 | 0.2983 / 2.534 / 3.912 | 0.2788 / 2.510 / 3.862 | 0.2708 / 2.523 / 3.859 | -0.011 ± 0.015 / -0.053 ± 0.011 | broken: PESQ -0.011, MOS -0.053 |
#
# Cells: mel L1 / PESQ-wb / DistillMOS on the 24 held-out clips (the recordings' own MOS: 3.988); the change per clip is the mean of the 24 paired differences ± its standard error. Budget: 40 steps of two 8,192-sample windows, 5 to 9 minutes of training per row on one thread of an Intel Xeon (2 cores, two rows at a time), plus about 15 minutes of scoring; the curves and every per-clip number are in `nbs/assets/transfer_real.json`.
#
# Zero-shot, the universal vocoder is already close to the recordings by DistillMOS (3.912 against 3.988 on the 24 held-out clips; PESQ-wb 2.534, mel L1 0.2983): what fine-tuning has to win is the detail that PESQ and mel L1 see, without losing the MOS.
#
# The `finetune` defaults hold the rule. For the first 20 steps only the discriminators train, so nothing moves; then the mel L1 falls 4.4% by step 40, PESQ ends 0.033 higher and the MOS 0.026 lower, inside the 0.05 the rule allows. Without the warm-up the generator follows the first gradients of discriminators that know nothing yet: mel L1 and PESQ gain more (-5.8%, +0.105), but the MOS falls 0.12 at the first validation and ends 0.097 below, a loss that a listener would hear and that the two other numbers do not see. The recipe from the same start jumps 26% up in mel L1 at its first validation, ends 4.5% above where it began, and loses 0.24 of PESQ. The last row is how `finetune` trained before the loss band followed the corpus: the full-band loss lowers the mel L1 the most (-9.2%), but PESQ and the MOS both end lower; that is the measurement behind [the loss band](#the-loss-band-follows-the-corpus). Lowering the generator's learning rate instead (2e-6, full band, the same 40 steps) was measured too: mel L1 -3.8%, PESQ -0.003, MOS -0.025, which still breaks the PESQ part. So the preset's learning rates (1e-5 and 1e-4) and its 20 warm-up steps stay, and the loss band is what changed.
#
# Forty steps are the first moves of a fine-tune, not its end: they show which settings keep the quality a run starts with, and the per-clip standard errors show how much of each change is noise.
#
# **On the synthetic fixture corpus** (24 espeak-ng clips, 4 for validation; the trainer's own validation mel L1, 48 steps of one 8,192-sample clip, every 8 steps; `benchmarks/bench_transfer.py` without `--real`), measured before the loss band followed the corpus; that corpus is recorded at 44.1 kHz, so nothing changes for it:
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
# These are short CPU runs: how many T4-hours the transfer saves on the full RUSLAN is still to be measured on Kaggle (`hifigan-ruslan kaggle push --init-from universal`).

# %% [markdown]
# ## Tests on the synthetic corpus
#
# The tests below train the `tiny` preset on the synthetic test corpus (`testing.tiny_corpus`), prepared once into a temporary folder. Runs that are killed, resumed, run out of time or disk, diverge, or run in two processes are on a page of their own: [Training runs end to end](09b_training_runs.ipynb).

# %%
import itertools, os, shutil, stat, warnings
from hifigan_ruslan.checkpoints import atomic_save, list_steps, load_checkpoint, step_path
from hifigan_ruslan.config import config_from_dict
from hifigan_ruslan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from hifigan_ruslan.generator import Generator

# %%
work = Path(tempfile.mkdtemp(prefix="hifigan_train_"))
prepared = work / "prepared"
prepare_corpus(tiny_corpus(), prepared, workers=1, progress=False)
test_fail(lambda: train(preset_config("tiny"), work / "nowhere", work / "x"), contains="nowhere: prepared data folder")
test_fail(lambda: train(preset_config("tiny"), prepared, work / "x", max_steps=-1), contains="must be 0 or more")
test_fail(lambda: train(preset_config("tiny"), prepared, work / "x", time_budget=0), contains="must be a positive")
test_fail(lambda: train(preset_config("tiny"), prepared, work / "x", resume_from=work / "no"), contains="no: checkpoint")
test_fail(lambda: train(preset_config("tiny"), prepared, prepared / "train.txt"),
          contains="train.txt: is a file; the run folder must be a folder")

# %% [markdown]
# A run refused once its trainer is built, here for a batch larger than the corpus, leaves nothing behind (no
# `config.yaml` that a rerun without `--preset` would take, no folder holding a lock), so the same run without the
# mistake starts with the preset's own batch:

# %%
huge = apply_overrides(preset_config("tiny"), ["train.batch_size=100000"])
test_fail(lambda: train(huge, prepared, work / "huge", max_steps=1, progress=False),
          contains="fewer than batch_size 100000")
test_eq((work / "huge").exists(), False)
test_eq(resolve_config(None, None, (), work / "huge").train.batch_size, preset_config("recipe").train.batch_size)

# %% [markdown]
# The progress bar's estimate of the time left counts steps only. Here the opening validation is slowed to 10 s on
# purpose; after the first of 10 steps the bar estimates the nine left at their own pace (well under a second each
# here), where counting the validation as a step would have said about 90 s.

# %%
import io, re, time
import tqdm.auto, tqdm.std
from contextlib import redirect_stderr

# %%
#| slow
validate_as_usual, any_bar = Trainer.validate, tqdm.auto.tqdm

def validate_slowly(self, *args, **kwargs):
    time.sleep(10)
    return validate_as_usual(self, *args, **kwargs)

# the text bar a terminal shows (in Jupyter, tqdm.auto draws a widget)
Trainer.validate, tqdm.auto.tqdm, bar = validate_slowly, tqdm.std.tqdm, io.StringIO()
try:
    with redirect_stderr(bar):
        train(preset_config("tiny"), prepared, work / "eta", max_steps=10, device="cpu")
finally:
    Trainer.validate, tqdm.auto.tqdm = validate_as_usual, any_bar
first = re.search(r" 1/10 \[[0-9:]+<(\d+):(\d+)", bar.getvalue())
left = 60 * int(first[1]) + int(first[2])
print(f"after step 1 of 10: {left} s left")
assert left < 45, left  # nine steps; nine validations' time would be 90 s

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
test_eq(reason, "max_steps")
test_eq(tr.step, 30)
test_eq([s for s, _ in val], [0, 15, 30])
assert val[-1][1] < 0.85 * val[0][1], val[-1][1]  # a real learning signal (measured: about 0.6 x)
test_eq(list_steps(work / "run" / "checkpoints"), [20, 30])
assert (work / "run" / "checkpoints" / "generator_best.pt").is_file()
assert {"step", "epoch", "loss_g", "loss_d", "loss_mel", "val_mel_l1", "grad_norm_g", "health"} <= set(rows[0])
assert (work / "run" / "plots" / "losses.png").is_file()
sample_clips = min(tr.cfg.train.num_val_samples, len(tr.val_set))
test_eq(len(list((work / "run" / "samples").glob("step_*.png"))), 3 * sample_clips)  # a figure per clip and validation
g = load_checkpoint(work / "run" / "checkpoints" / "g_00000030")
test_eq(config_from_dict(g["config"]).generator_preset, "tiny")
test_eq(g["steps"], 30)
umask = os.umask(0o022)
os.umask(umask)
test_eq(stat.S_IMODE(step_path(work / "run" / "checkpoints", "do", 30).stat().st_mode), 0o666 & ~umask)

# %% [markdown]
# A run on a corpus recorded below 22,050 Hz records the narrower loss band in its `config.yaml`; running the same command again compares that with the same band and resumes (the band is applied before the comparison), and asking for another band on resume is refused with the difference named:

# %%
#| slow
train(preset_config("tiny"), band_work / "real", work / "band_run", max_steps=1, device="cpu", progress=False)
tr_band, _ = train(preset_config("tiny"), band_work / "real", work / "band_run", max_steps=2, device="cpu",
                   progress=False)
test_eq((tr_band.step, tr_band.cfg.mel.fmax_loss), (2, 8000.0))
full_tiny = apply_overrides(preset_config("tiny"), ["mel.fmax_loss=11025"])
test_fail(lambda: train(full_tiny, band_work / "real", work / "band_run", max_steps=3, progress=False),
          exc=UserError, contains="mel.fmax_loss 8000.0 -> 11025.0")

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
test_eq(tr.step, 9)
test_eq(list_steps(work / "from_official" / "checkpoints"), [9])
test_eq(int(tr.optim_d.state[next(tr.msd.parameters())]["step"]), 3)  # 1 official step, then 2 here

# %% [markdown]
# **Transfer.** `init_from` starts a fresh run (step 0, new optimizers) from that run's weights, discriminators included; weights of another shape are refused with a message that says why.

# %%
#| slow
fresh = Trainer(preset_config("tiny"), device="cpu")
source = Trainer(preset_config("tiny"), device="cpu")
source.load(load_checkpoint(work / "run" / "checkpoints" / "g_00000030"), do)
print(fresh.init_from(work / "run" / "checkpoints" / "g_00000030").replace(str(work), "WORK"))
assert torch.equal(fresh.generator.conv_pre.bias, source.generator.conv_pre.bias)
msd_bias = "discriminators.1.conv_post.bias"
assert torch.equal(fresh.msd.state_dict()[msd_bias], source.msd.state_dict()[msd_bias])
test_eq(fresh.step, 0)
test_eq(len(fresh.optim_g.state), 0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # loading into meta tensors is a no-op; only the shapes are checked
    v1 = Trainer(preset_config("v1"), device="meta")
    test_fail(lambda: v1.init_from(work / "run" / "checkpoints" / "g_00000030"), contains="holds a tiny generator")

# %% [markdown]
# **Resuming with another config.** The run above, resumed with the recipe's config, is refused in one line naming
# what differs, before anything is loaded or written; so is its checkpoint given to `--resume-from` of a new run:

# %%
#| slow
before = {f.name: f.stat().st_mtime_ns for f in (work / "run").rglob("*") if f.is_file()}
test_fail(lambda: train(preset_config("recipe"), prepared, work / "run", max_steps=31, device="cpu",
                        progress=False),
          exc=UserError, contains="run/config.yaml: this run was trained with other values: generator.")
test_eq({f.name: f.stat().st_mtime_ns for f in (work / "run").rglob("*") if f.is_file()}, before)
test_fail(lambda: train(preset_config("v2"), prepared, work / "other", resume_from=work / "run", device="cpu",
                        progress=False), contains="g_00000030: this run was trained with other values")

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
assert not (work / "noval" / "samples").exists()
assert not (work / "noval" / "checkpoints" / "generator_best.pt").exists()

# %%
shutil.rmtree(work, ignore_errors=True)
