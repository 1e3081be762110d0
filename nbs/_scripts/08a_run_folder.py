# %% [markdown]
# # The run folder
#
# > What a run keeps in its folder however long it trains: the samples of the newest validations and of the best one, and a lock that lets one trainer at a time write there.

# %%
#| default_exp run_folder

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import fcntl, os, re
from pathlib import Path
from hifigan_ruslan.errors import UserError

# %%
import subprocess, sys, tempfile, textwrap, time
from fastcore.test import test_eq, test_fail

# %% [markdown]
# A run folder is what a user downloads after a run, and clients of Kaggle before 2.2.2 downloaded only the first 500 files of an output. So what a run writes must stay bounded however many steps it trains:
#
# - **checkpoints**: the newest `keep_last` pairs and the best step's, pruned after every save ([Checkpoints](05a_checkpoints.ipynb)), plus `generator_best.pt`;
# - **samples**: every validation writes a WAV and a mel figure of `num_val_samples` clips; only those of the newest `KEEP_SAMPLE_VALIDATIONS` validations and of the best step stay (below), plus each clip's real audio once;
# - **TensorBoard**: one events file per training process (`SummaryWriter` opens one file when it is created and appends to it until it is closed; the run opens one per `fit`), so a run resumed ten times has ten small files;
# - `metrics.csv`, `train.log`, `config.yaml`, `plots/losses.png` and the lock `.lock`: one each.
#
# ## Samples
#
# A sample's files are named after the step and the clip (`step_00001000_ID.wav` and `.png`), so that a folder listing sorts them by step. `prune_samples` keeps the newest validations and the steps in `keep` (the trainer keeps the best step's: the samples that go with `generator_best.pt`).

# %%
#| export
KEEP_SAMPLE_VALIDATIONS = 3  # validations whose samples stay in RUN/samples, besides the best one
_SAMPLE = re.compile(r"^step_(\d{8})_.+\.(?:wav|png)$")

def sample_stem(samples, step: int, uid: str) -> Path:
    "`samples/step_{step:08d}_{uid}`, the stem of the WAV and the mel figure of clip `uid` at step `step`."
    return Path(samples) / f"step_{step:08d}_{uid}"

def sample_steps(samples) -> list[int]:
    "The steps of which `samples` holds files, oldest first."
    folder = Path(samples)
    if not folder.is_dir():
        return []
    return sorted({int(m.group(1)) for f in folder.iterdir() if (m := _SAMPLE.match(f.name))})

def prune_samples(samples, keep_last: int = KEEP_SAMPLE_VALIDATIONS, keep=()) -> list[int]:
    "Delete the samples of all validations but the newest `keep_last` and the steps in `keep`; their steps."
    steps = sample_steps(samples)
    doomed = {s for s in steps[:-keep_last] if s not in keep} if keep_last > 0 else set()
    if not doomed:
        return []
    for f in Path(samples).iterdir():
        m = _SAMPLE.match(f.name)
        if m is not None and int(m.group(1)) in doomed:
            f.unlink(missing_ok=True)
    return sorted(doomed)


# %%
show_doc(prune_samples)

# %% [markdown]
# A run that validates 1,000 times, simulated: each validation writes the files of three clips under the names the trainer gives them, the validation error falls with noise (so the best step moves now and then), and the samples are pruned after each validation as the trainer does. What stays is the newest three validations, the best one and the real clips: 27 files instead of 6,003.

# %%
import random


# %%
def validate_samples(samples: Path, step: int, uids=("a", "b", "c")):
    "The files one validation writes (tiny stand-ins for the WAVs and the figures)."
    samples.mkdir(parents=True, exist_ok=True)
    for uid in uids:
        (samples / f"{uid}_real.wav").touch()
        for suffix in (".wav", ".png"):
            sample_stem(samples, step, uid).with_suffix(suffix).write_bytes(b"x")

with tempfile.TemporaryDirectory() as d:
    samples, rng = Path(d) / "samples", random.Random(0)
    best_val, best_step = float("inf"), None
    for step in range(0, 100_000, 100):
        validate_samples(samples, step)
        val = 1 / (1 + step) + rng.random() * 1e-4
        best_val, best_step = (val, step) if val < best_val else (best_val, best_step)
        prune_samples(samples, keep={best_step})
    print(f"best step {best_step}; files kept: {len(list(samples.iterdir()))}")
    test_eq(sample_steps(samples), sorted({best_step, 99_700, 99_800, 99_900}))
    test_eq(len(list(samples.iterdir())), 3 + 6 * 4)
    test_eq(prune_samples(samples, keep_last=1), [s for s in sorted({best_step, 99_700, 99_800}) if s != 99_900])
    test_eq(prune_samples(Path(d) / "none"), [])


# %% [markdown]
# ## One trainer per run folder
#
# Two trainers writing to one run folder (a second `train` started by mistake while the first still runs, in another terminal or a second Kaggle session on the same dataset) would overwrite each other's checkpoints and interleave their metrics. So a trainer takes an exclusive lock on `RUN/.lock` for the time it trains, and writes its process ID into the file so that the refusal can say who holds it. The lock belongs to the operating system, not to the file: when the process ends, however it ends (a `SIGKILL` included), the lock is gone and the next run resumes; a `.lock` file left behind means nothing by itself.
#
# A run refused or stopped before it wrote anything (a batch larger than the corpus, a Ctrl-C while the models are
# built) leaves no `.lock` behind, nor the run folder if the lock made it: a folder holding only a lock would look
# like a run.
#
# It is a POSIX record lock (`fcntl.lockf`) rather than a `flock`: data-loader workers are forked from the trainer, and a fork inherits `flock` locks but not record locks, so a killed trainer's workers (which live on for a few seconds) cannot keep its successor out. Under DDP only process 0 takes it.

# %%
#| export
class RunLock:
    "Inside a `with`: this process holds the lock on `RUN/.lock`; a `UserError` names the process that does."
    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / ".lock"
        self.fd = None

    def __enter__(self) -> RunLock:
        self.created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # EAGAIN or EACCES: another process holds it
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"{self.run_dir}: another training process (PID {holder}) is using this "
                            "run folder; wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, exc_type, *exc):
        refused = exc_type is not None and [p.name for p in self.run_dir.iterdir()] == [".lock"]
        if refused:  # stopped or refused before the run wrote anything: leave no trace
            self.path.unlink()
        os.close(self.fd)  # closing releases the lock
        self.fd = None
        if refused and self.created:
            self.run_dir.rmdir()


# %%
show_doc(RunLock)


# %% [markdown]
# Another process holds the lock: this one is refused with the holder's PID. Once the holder is killed with `SIGKILL` (no chance to clean up), the lock is free again, and taken it holds this process's PID.

# %%
def refused_run(run_dir):
    with RunLock(run_dir):
        raise UserError("batch too large")  # as a run refused before its first file

with tempfile.TemporaryDirectory() as d:
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import time
        from hifigan_ruslan.run_folder import RunLock
        with RunLock({d!r}):
            print("locked", flush=True)
            time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True)
    test_eq(holder.stdout.readline().strip(), "locked")
    test_fail(lambda: RunLock(d).__enter__(), contains=f"{d}: another training process (PID {holder.pid}) is using")
    holder.kill()
    holder.wait()
    with RunLock(d) as lock:
        test_eq(lock.path.read_text(), f"{os.getpid()}\n")
    with RunLock(d):  # released on leaving: taken again
        pass
    test_fail(lambda: refused_run(Path(d) / "new"), contains="batch too large")
    test_eq(sorted(os.listdir(d)), [".lock"])  # refused: the new run folder is gone, the lock of d remains
