# %% [markdown]
# # Stopping a run
#
# > Why a training run stops, decided by name and agreed by all processes: a signal, divergence, a collapse, the step limit, the time budget, the end of the epochs.

# %%
#| default_exp stopping

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import dataclasses, signal, threading, time
from contextlib import contextmanager

# %%
import os
from fastcore.test import test_eq


# %% [markdown]
# ## Stopping cleanly
#
# A run stops for one of these reasons, and in every case except divergence it writes a checkpoint first:
#
# - `max_steps` reached, or all `epochs` done;
# - **the time budget** (`--time-budget SECONDS`, counted from the start of the run). Kaggle ends a session at a hard limit without warning, and whatever the last hour trained is lost if no checkpoint was written in time. After each step the trainer checks whether one more step, a validation if one is due, and a checkpoint would still fit in the budget, with a safety margin, using the measured durations of each (the checkpoint's is estimated from the model size until the first one is written), and stops while they do.
# - **SIGTERM or SIGINT** (a platform shutting the container down, Ctrl-C, a notebook's interrupt button): the signal only sets a flag, the current step finishes, a checkpoint is written. A second Ctrl-C stops at once.
# - `--stop-on-collapse` and the health monitor reports a collapse;
# - **divergence**: the health monitor counted `max_nonfinite_steps` non-finite steps in a row (no checkpoint: the newest one is the last good state). `train` raises `TrainingDiverged`.
#
# `StopCheck` holds these reasons by name, one field each. Under DDP the processes must agree on every step they take, so after each step the check is combined across them once (`agreed`: a single all-reduce of a few numbers), and `reason` names the one that applies.

# %%
#| export
class TrainingDiverged(RuntimeError):
    "Raised when the health monitor reports too many consecutive steps with a non-finite loss or gradient."

@dataclasses.dataclass
class StopCheck:
    "The reasons a run may stop after a step; `reason` is the one that applies, None to go on."
    signum: int = 0             # the SIGTERM/SIGINT received, 0 for none
    diverged: bool = False      # the health monitor's verdict: too many non-finite steps in a row
    collapse: bool = False      # with --stop-on-collapse: the health monitor reports a collapse
    max_steps: bool = False
    time_budget: bool = False   # another step, a due validation and a checkpoint might not fit
    epochs: bool = False        # all configured epochs done

    def agreed(self, device) -> StopCheck:
        "All processes' decision: each reason holds if it holds in any of them (one all-reduce under DDP)."
        import torch  # here: the command line imports this module before it knows it needs PyTorch
        import torch.distributed as dist
        if not dist.is_initialized():
            return self
        names = [f.name for f in dataclasses.fields(self)]
        flags = torch.tensor([float(getattr(self, n)) for n in names], dtype=torch.float64, device=device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return StopCheck(**{n: type(getattr(self, n))(v) for n, v in zip(names, flags.tolist())})

    @property
    def reason(self) -> str | None:
        "By priority: `signal SIGTERM`, `diverged`, `collapse`, `max_steps`, `time_budget`, `epochs` or None."
        if self.signum:
            return f"signal {signal.Signals(self.signum).name}"
        reasons = ("diverged", "collapse", "max_steps", "time_budget", "epochs")
        return next((name for name in reasons if getattr(self, name)), None)


# %%
show_doc(StopCheck)

# %%
show_doc(StopCheck.agreed)

# %%
test_eq(StopCheck().reason, None)
test_eq(StopCheck(max_steps=True, time_budget=True).reason, "max_steps")
test_eq(StopCheck(signum=int(signal.SIGTERM), collapse=True).reason, "signal SIGTERM")
test_eq(StopCheck(epochs=True).agreed("cpu"), StopCheck(epochs=True))  # one process: nothing to combine


# %%
#| export
class SignalFlag:
    "Inside a `with`: SIGTERM and SIGINT only set `received` (their number); a second signal acts as usual."
    def __init__(self):
        self.received, self.previous = 0, {}

    def __enter__(self) -> SignalFlag:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            self.previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
            for s in self.previous:
                signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signum
        signal.signal(signum, self.previous[signum])  # a second one acts at once

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


# %%
show_doc(SignalFlag)

# %%
with SignalFlag() as flag:
    os.kill(os.getpid(), signal.SIGINT)  # delivered to the handler, not as KeyboardInterrupt
    time.sleep(0.01)
test_eq(flag.received, signal.SIGINT)


# %% [markdown]
# ## A stop is a stop, for every command
#
# `SignalFlag` lets a training loop finish its step and write a checkpoint. Everywhere else (loading a model,
# preparing a corpus, resynthesising clips, between the stages of the demo) there is no step to finish, so the
# command line holds the signals with `stop_signals` from its first line to its last: SIGINT and SIGTERM raise
# `Stopped`, which unwinds the command wherever it is, and `main` prints one line and exits with 128 + the signal's
# number (130 for Ctrl-C, 143 for SIGTERM), with no traceback. Inside `SignalFlag` the same signal only sets the
# flag; the flag's first signal gives the handler back, so a second one raises `Stopped` at once. A multi-stage
# command whose training stage stopped on a signal (its reason `signal SIGTERM`) calls `stop_on_signal_reason`,
# which raises `Stopped` too: no later stage starts.
#
# `Stopped` is a `KeyboardInterrupt`, so what already handles Ctrl-C handles a SIGTERM the same way (PyTorch's data
# loader workers end without a word on one).

# %%
#| export
class Stopped(KeyboardInterrupt):
    "SIGINT or SIGTERM ended a command where it was; `signum` says which, `reason` as `StopCheck` names it."
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def reason(self) -> str: return f"signal {signal.Signals(self.signum).name}"

def _raise_stopped(signum, frame):
    raise Stopped(signum)

@contextmanager
def stop_signals():
    "Inside: SIGINT and SIGTERM raise `Stopped` in the main thread (outside a `SignalFlag`)."
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set there
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for s in previous:
        signal.signal(s, _raise_stopped)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

def stop_on_signal_reason(reason: str | None) -> None:
    "Raise `Stopped` when a stage's stop `reason` is a signal (`signal SIGTERM`): no later stage starts."
    if reason is not None and reason.startswith("signal "):
        raise Stopped(signal.Signals[reason.split()[1]])


# %%
show_doc(Stopped)

# %%
show_doc(stop_signals)

# %% [markdown]
# A SIGTERM inside `stop_signals` is a `Stopped` at once; inside a `SignalFlag` within it, the first one only sets
# the flag and the second one raises. A stage that stopped on a signal stops the stages after it.

# %%
from fastcore.test import test_fail

# %%
before = signal.getsignal(signal.SIGTERM)
with stop_signals():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
        raise AssertionError("SIGTERM did not stop")
    except Stopped as e:
        test_eq((e.signum, e.reason, isinstance(e, KeyboardInterrupt)), (signal.SIGTERM, "signal SIGTERM", True))
    with SignalFlag() as flag:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        test_eq(flag.received, signal.SIGINT)
        test_fail(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(1)), exc=Stopped)
test_eq(signal.getsignal(signal.SIGTERM), before)  # given back on leaving
test_fail(lambda: stop_on_signal_reason("signal SIGINT"), exc=Stopped, contains="SIGINT")
stop_on_signal_reason("max_steps")


# %% [markdown]
# ## The clock
#
# The loop times its steps, validations and checkpoints with a `Clock`, which answers two questions: would another step, a due validation and a checkpoint still fit in the time budget (with a margin; the checkpoint's duration is estimated from the model's size until one has been written), and has enough time passed since something was last done (a checkpoint every `checkpoint_every_minutes`)?

# %%
#| export
class Clock:
    "Measured durations of steps, validations and checkpoints, against an optional time budget."
    def __init__(self, started: float, budget: float | None, save_s: float):
        self.started, self.budget = started, budget
        # the checkpoint's is estimated until measured
        self.step_s, self.val_s, self.save_s = None, 0.0, save_s
        self.created, self.finished = time.monotonic(), {}  # what -> when it last finished

    def elapsed(self) -> float: return time.monotonic() - self.started

    def out_of_time(self, validations: int) -> bool:
        "Whether another step, `validations` validations and a checkpoint (twice, plus a margin) may overrun."
        if self.budget is None:
            return False
        margin = min(60.0, 0.02 * self.budget)
        need = 2 * (self.step_s or 0.0) + validations * self.val_s + 2 * self.save_s + margin
        return self.elapsed() + need >= self.budget

    @contextmanager
    def timing(self, what: str):
        "Record the duration of the block as `<what>_s`, and when it finished."
        t0 = time.monotonic()
        yield
        self.finished[what] = time.monotonic()
        setattr(self, f"{what}_s", self.finished[what] - t0)

    def due(self, what: str, every_minutes: float) -> bool:
        "Whether `every_minutes` (0: never) have passed since `what` last finished (or the clock started)."
        since = time.monotonic() - self.finished.get(what, self.created)
        return every_minutes > 0 and since >= 60 * every_minutes


# %%
# 97 s gone of 100: two checkpoints of 1 s and the margin (2% of the budget) no longer fit; at the start they do
assert Clock(time.monotonic() - 97, budget=100, save_s=1.0).out_of_time(0)
assert not Clock(time.monotonic() - 95, budget=100, save_s=1.0).out_of_time(0)
assert not Clock(time.monotonic() - 1e6, budget=None, save_s=1.0).out_of_time(9)  # no budget
clock = Clock(time.monotonic(), budget=None, save_s=1.0)
time.sleep(0.07)  # 1e-3 minutes (60 ms) have passed since the clock started, 30 minutes have not
test_eq([clock.due("save", every_minutes=m) for m in (0, 1e-3, 30)], [False, True, False])
with clock.timing("save"):
    pass
assert not clock.due("save", every_minutes=1e-3)  # just saved: 60 ms must pass
time.sleep(0.07)
assert clock.due("save", every_minutes=1e-3)
