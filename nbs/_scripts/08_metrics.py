# %% [markdown]
# # Training metrics
#
# > What a run records: the interval means of its step statistics, `metrics.csv`, TensorBoard events and the loss curves.

# %%
#| default_exp metrics

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import csv, math, warnings
from pathlib import Path
import torch

# %%
import tempfile
from fastcore.test import test_eq, test_close


# %% [markdown]
# ## Interval means
#
# A training step returns its statistics as a dictionary of named 0-d tensors on the device (losses, gradient norms, scores). Reading each of them on the host every step would stop the GPU's queue every step, so `IntervalStats` adds them up on the device and `means` reads them all at once, with one host synchronisation per logging interval. The names travel with the values: there is no list of positions to keep in step with the order in which a step builds its numbers.

# %%
#| export
class IntervalStats:
    "Running sums of named step statistics on the device; `means` reads them with one host synchronisation."
    def __init__(self):
        self.names: tuple[str, ...] = ()
        self.sums: torch.Tensor | None = None
        self.count = 0

    def add(self, stats: dict[str, torch.Tensor]):
        "Add one step's statistics (the same names every step)."
        if self.sums is None:
            self.names = tuple(stats)
        elif tuple(stats) != self.names:
            raise ValueError(f"step statistics {tuple(stats)} differ from the interval's {self.names}")
        values = torch.stack([stats[k] for k in self.names])
        self.sums = values if self.sums is None else self.sums + values
        self.count += 1

    def means(self) -> dict[str, float]:
        "The means since the last reset, by name (NaN for every name when no step was added); then reset."
        values = (self.sums / self.count).tolist() if self.count else [math.nan] * len(self.names)
        if self.sums is not None:
            self.sums = torch.zeros_like(self.sums)
        self.count = 0
        return dict(zip(self.names, values))


# %%
meter = IntervalStats()
for v in (1.0, 2.0, 6.0):
    meter.add({"loss_d": torch.tensor(v), "loss_g": torch.tensor(2 * v)})
test_eq(meter.means(), {"loss_d": 3.0, "loss_g": 6.0})
test_eq(meter.count, 0)
test_eq([math.isnan(v) for v in meter.means().values()], [True, True])  # an interval whose steps were all skipped
meter.add({"loss_d": torch.tensor(1.0), "loss_g": torch.tensor(4.0)})
test_eq(meter.means(), {"loss_d": 1.0, "loss_g": 4.0})

# %% [markdown]
# ## `metrics.csv` and TensorBoard
#
# Each logging interval adds a row to `RUN/metrics.csv` with the interval means, and validation adds `val_mel_l1` to the row of its step. The `health` column holds the health monitor's status: `ok`, or the codes of its active warnings. The same numbers go to TensorBoard (`RUN/tensorboard/`) when TensorBoard is installed, unless `train.tensorboard` is off: the Kaggle kernel turns it off, because Kaggle's image also has TensorFlow, which TensorBoard's writer imports (seconds, about a gigabyte of host memory, and a page of log noise), while `metrics.csv` carries the same numbers. When a run resumes, rows written after the checkpoint it resumes from (by the run that was killed) are dropped, so the file describes one history.

# %%
#| export
METRIC_COLUMNS = ("step", "epoch", "loss_g", "loss_d", "loss_adv", "loss_fm", "loss_mel", "val_mel_l1",
                  "grad_norm_g", "grad_norm_d", "real_score", "fake_score", "lr_g", "lr_d", "skipped",
                  "seconds_per_step", "health")

def read_metrics(path) -> list[dict]:
    "Rows of a `metrics.csv` as dictionaries of strings."
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))

def _tensorboard_off(e: Exception):
    "Warn that TensorBoard is off and why; None, for the caller to return."
    reason = f"{type(e).__name__}: {str(e)[:100]}"
    warnings.warn(f"TensorBoard disabled ({reason}); metrics.csv is still written")

def _tensorboard(run_dir: Path, purge_step: int | None):
    "A TensorBoard writer, or None when TensorBoard (an optional extra) is missing or fails (with a warning)."
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    except Exception as e:  # an install that fails on import (a protobuf of another version) warns only
        return _tensorboard_off(e)
    try:
        return SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)
    except Exception as e:  # a broken install or an unwritable folder must not stop a training run
        return _tensorboard_off(e)


# %% [markdown]
# `MetricsLog` owns the file: a resumed run keeps the rows up to the step it resumes from and drops those a killed session wrote after its last checkpoint, so the curves never show the lost steps twice; TensorBoard's `purge_step` does the same for its events.

# %%
#| export
class MetricsLog:
    "`RUN/metrics.csv` (and TensorBoard events where wanted and installed), cut after `start_step` on resume."
    def __init__(self, run_dir, start_step: int = 0, resumed: bool = False, tensorboard: bool = True):
        run_dir = Path(run_dir)
        self.path = run_dir / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = read_metrics(self.path) if self.path.is_file() else []
        kept = [r for r in rows if resumed and int(r["step"]) <= start_step]
        with open(self.path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, METRIC_COLUMNS)
            writer.writeheader()
            writer.writerows({k: r.get(k, "") for k in METRIC_COLUMNS} for r in kept)
        self.tb = _tensorboard(run_dir, start_step if resumed else None) if tensorboard else None

    def write(self, row: dict):
        "Append one row (missing columns stay empty) and its numbers to TensorBoard."
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, METRIC_COLUMNS).writerow({k: row.get(k, "") for k in METRIC_COLUMNS})
        if self.tb is None:
            return
        try:
            for k, v in row.items():
                if k not in ("step", "epoch", "health") and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, row["step"])
            self.tb.flush()
        except Exception as e:  # a full disk or a broken writer: warn once, keep training and metrics.csv
            self.tb = _tensorboard_off(e)

    def close(self):
        if self.tb is not None:
            try:
                self.tb.close()
            except Exception as e:
                _tensorboard_off(e)


# %%
with tempfile.TemporaryDirectory() as d:
    log = MetricsLog(d)
    for step in (10, 20, 30):
        log.write({"step": step, "epoch": 0, "loss_d": step / 10, "health": "ok"})
    log.close()
    test_eq([r["step"] for r in read_metrics(Path(d) / "metrics.csv")], ["10", "20", "30"])
    MetricsLog(d, start_step=20, resumed=True).close()  # resumed from step 20: the later rows go
    rows = read_metrics(Path(d) / "metrics.csv")
    test_eq([(r["step"], r["loss_d"], r["val_mel_l1"]) for r in rows], [("10", "1.0", ""), ("20", "2.0", "")])
    MetricsLog(d).close()  # a new run starts a new file
    test_eq(read_metrics(Path(d) / "metrics.csv"), [])
with tempfile.TemporaryDirectory() as d:  # train.tensorboard off: metrics.csv only
    quiet = MetricsLog(d, tensorboard=False)
    quiet.write({"step": 1, "loss_d": 0.5})
    quiet.close()
    test_eq((quiet.tb, sorted(p.name for p in Path(d).iterdir())), (None, ["metrics.csv"]))

# %% [markdown]
# TensorBoard is a convenience: whatever fails in it (an install that breaks on import, a writer that fails later, say on a full disk) is a warning, and `metrics.csv` goes on:

# %%
import sys, types, warnings
from unittest import mock


# %%
class BrokenModule(types.ModuleType):
    def __getattr__(self, name):
        raise TypeError("Descriptors cannot be created directly")  # what a protobuf mismatch raises

class FailingWriter:
    def add_scalar(self, *args):
        raise OSError(28, "No space left on device")

with tempfile.TemporaryDirectory() as d, warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with mock.patch.dict(sys.modules, {"torch.utils.tensorboard": BrokenModule("torch.utils.tensorboard")}):
        test_eq(MetricsLog(d).tb, None)
    log = MetricsLog(d)
    log.tb = FailingWriter()
    log.write({"step": 10, "loss_d": 1.0})
    log.write({"step": 20, "loss_d": 2.0})
    log.close()
    print("\n".join(str(w.message) for w in caught))
    test_eq([str(w.message).split(")")[0] for w in caught],
            ["TensorBoard disabled (TypeError: Descriptors cannot be created directly",
             "TensorBoard disabled (OSError: [Errno 28] No space left on device"])
    test_eq([r["step"] for r in read_metrics(Path(d) / "metrics.csv")], ["10", "20"])


# %% [markdown]
# ## Loss curves
#
# `plot_metrics` draws the four numbers to watch: the discriminator loss, the generator's adversarial and feature-matching losses, and the mel error on training segments and on the validation utterances. The trainer saves it as `RUN/plots/losses.png` when a run stops.

# %%
#| export
def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    "Steps and values of the rows where `key` has a value."
    kept = [r for r in rows if r.get(key)]
    return [int(r["step"]) for r in kept], [float(r[key]) for r in kept]

def plot_metrics(path, out=None):
    "Loss curves of a `metrics.csv` (discriminator, generator parts, mel errors); saved to `out` if given."
    from matplotlib.figure import Figure
    rows = read_metrics(path)
    fig = Figure(figsize=(9, 4.5))
    axes = fig.subplots(2, 2).ravel()
    panels = [("discriminator", ["loss_d"]), ("generator", ["loss_adv", "loss_fm"]),
              ("mel L1 (train)", ["loss_mel"]), ("mel L1 (validation)", ["val_mel_l1"])]
    for ax, (title, keys) in zip(axes, panels):
        for k in keys:
            x, y = _series(rows, k)
            ax.plot(x, y, marker="." if len(x) < 30 else None, label=k)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    for ax in axes[2:]:
        ax.set_xlabel("step")
    fig.tight_layout()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=80)
    return fig


# %%
with tempfile.TemporaryDirectory() as d:
    log = MetricsLog(d)
    for step in range(0, 50, 10):
        log.write({"step": step, "loss_d": 4 - step / 20, "loss_mel": 1 - step / 100, "val_mel_l1": 1.1 - step / 90})
    log.close()
    fig = plot_metrics(Path(d) / "metrics.csv", Path(d) / "plots" / "losses.png")
    assert (Path(d) / "plots" / "losses.png").is_file()
    test_close(fig.axes[3].lines[0].get_ydata()[-1], 1.1 - 40 / 90, eps=1e-6)
