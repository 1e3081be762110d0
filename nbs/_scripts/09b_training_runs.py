# %% [markdown]
# # Training runs end to end
#
# > Whole training runs in their own processes and on hostile ground: killed and resumed, a corrupt checkpoint, a time budget, divergence, fp16 with an overflow, a bounded run folder, a locked one, a full disk, two processes.

# %% [markdown]
# [Training](09a_training.ipynb) describes the loop; this page checks, with real runs of the `tiny` preset on the synthetic test corpus, that it keeps its promises when things go wrong. Most runs take seconds; they are marked `slow` and run with `nbdev_test --flags slow` (as CI does).

# %%
import os, shutil, socket, subprocess, sys, tempfile, textwrap, time, warnings
from pathlib import Path
import torch
from fastcore.test import test_close, test_eq, test_fail
from hifigan_ruslan.checkpoints import list_steps, load_checkpoint, step_path
from hifigan_ruslan.config import apply_overrides, preset_config
from hifigan_ruslan.metrics import read_metrics
from hifigan_ruslan.prepare import prepare_corpus
from hifigan_ruslan.testing import tiny_corpus
from hifigan_ruslan.trainer import Trainer
from hifigan_ruslan.training import fit, train, train_summary

# %%
work = Path(tempfile.mkdtemp(prefix="hifigan_runs_"))
prepared = work / "prepared"
prepare_corpus(tiny_corpus(), prepared, workers=1, progress=False)

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
last_row = max(int(r["step"]) for r in read_metrics(killed / "metrics.csv"))
assert last_row <= newest + 2, (last_row, newest)

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
assert any(f"skipping checkpoint of step {steps[-1]}" in line for line in log)
assert f"Resuming from {killed}/checkpoints/g_{steps[-2]:08d} (step {steps[-2]})" in log, log

# %% [markdown]
# **Time budget.** With a budget of twenty seconds the run stops by itself, well inside the budget, and the last thing it did was write a checkpoint of the step it stopped at.

# %%
#| slow
tr, reason = train(preset_config("tiny"), prepared, work / "budget", time_budget=20, device="cpu", progress=False)
elapsed = time.monotonic() - tr.started
print(reason, tr.step, f"{elapsed:.1f} s")
test_eq(reason, "time_budget")
assert elapsed < 20, elapsed
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

tr = Trainer(apply_overrides(preset_config("tiny"), ["health.max_nonfinite_steps=3"]), prepared, work / "nan",
             device="cpu")
tr.train_set = NaNAudio(tr.train_set)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # the schedule's epoch step comes before any optimizer step here
    test_fail(lambda: fit(tr, max_steps=50, progress=False), contains="3 consecutive steps had a non-finite loss")
test_eq(tr.step, 3)
test_eq(list_steps(tr.ckpt_dir), [])  # no checkpoint of the poisoned state

# %% [markdown]
# **fp16 with the gradient scaler**, the path of every Kaggle run, on the CPU (batches of one 1,024-sample segment: fp16 backward passes are slow there). The scalers start at the scale a fresh run reaches after its first overflows (512; a fresh scaler's 65,536 costs the generator its first seven steps here, see [The trainer](09_trainer.ipynb)). At step 10 an overflow is injected (a gradient hook returns `inf` while the trainer's `step` is 10: a step counts from its start): the step is skipped and the scale halved, but it is not a non-finite step for the health monitor (set to stop after 3 of them), and the run goes on to its last step. It learns as much as the same run in fp32. The scaler's state is in the checkpoint, and a resumed run restores it.

# %%
#| slow
small_fp = ["train.batch_size=1", "train.segment_size=1024", "train.val_every_steps=12",
            "train.checkpoint_every_steps=12", "train.num_val_samples=0", "health.max_nonfinite_steps=3"]
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
    tr = Trainer(cfg, prepared, work / precision, device="cpu")
    if precision == "fp16":
        for scaler in (tr.scaler_g, tr.scaler_d):
            scaler.load_state_dict({**scaler.state_dict(), "scale": 512.0})
        tr.generator.conv_pre.bias.register_hook(overflow_at(tr, 10))
    reason = fit(tr, max_steps=12, progress=False)
    val = [float(r["val_mel_l1"]) for r in read_metrics(work / precision / "metrics.csv") if r["val_mel_l1"]]
    drops[precision] = val[-1] / val[0]
    skipped = sum(int(r["skipped"]) for r in read_metrics(work / precision / "metrics.csv") if r["skipped"])
    print(precision, reason, f"validation {val[0]:.3f} -> {val[-1]:.3f}; {skipped} steps skipped")
test_eq(reason, "max_steps")  # not diverged, although the monitor stops after 3 non-finite steps in a row
test_eq(tr.step, 12)
assert skipped >= 1, skipped  # the injected overflow (measured: and one more at 512)
test_eq(len(injected), 1)
assert tr.scaler_g.get_scale() <= injected[0] / 2, (tr.scaler_g.get_scale(), injected)  # halved there
assert "non-finite" not in (work / "fp16" / "train.log").read_text()
assert drops["fp32"] < 0.985 and drops["fp16"] < 0.985, drops  # both learn; measured: 0.955 and 0.944
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
assert len(files) <= bound, len(files)  # pairs, generator_best.pt, samples, 6 one-off files (measured: 27 of 33)
test_eq(len(list((bounded / "tensorboard").iterdir())), 1)
assert other_bytes < 0.2 * ckpt_bytes, other_bytes  # the checkpoints are what takes space (measured: 0.012)

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
test_eq(reason, "max_steps")
test_eq(tr.step, 14)
test_eq(len(list((bounded / "tensorboard").iterdir())), 2)
assert len(run_files(bounded)) <= bound + 1, len(run_files(bounded))

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

budget_step = list_steps(work / "budget" / "checkpoints")[-1]  # a pair of the tiny preset
pair = sum(step_path(work / "budget" / "checkpoints", p, budget_step).stat().st_size for p in ("g", "do"))
full = work / "full"
no_val = apply_overrides(preset_config("tiny"), ["train.val_every_steps=0", "train.checkpoint_every_steps=2"])
with patch("hifigan_ruslan.checkpoints.free_bytes", SmallDisk(full, int(2.5 * pair) + SPACE_MARGIN)):
    test_fail(lambda: train(no_val, prepared, full, max_steps=8, device="cpu", progress=False),
              contains=f"{full}/checkpoints/do_00000006: no space left on device: the checkpoint needs about")
    test_fail(lambda: train(no_val, prepared, full, max_steps=8, device="cpu", progress=False),
              contains=f"then the same command resumes from {full}/checkpoints/g_00000004")
test_eq(list_steps(full / "checkpoints"), [2, 4])
test_eq(list_steps(full / "checkpoints", "do"), [2, 4])
test_eq([f.name for f in run_files(full) if ".partial" in f.name], [])
tr, reason = train(no_val, prepared, full, max_steps=8, device="cpu", progress=False)
test_eq(reason, "max_steps")
test_eq(list_steps(full / "checkpoints"), [4, 6, 8])

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
assert "x 2 processes, batch 2 x 1" in res.stdout, res.stdout

# %%
shutil.rmtree(work, ignore_errors=True)
