# %% [markdown]
# # GPU check
#
# > A check of the training and inference paths on a GPU in under three minutes: steps per second, peak memory, first losses and skipped steps in fp32, fp16 and bf16, then the vocoder's real-time factor.

# %%
#| default_exp gpu_check

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import argparse, sys, time
from pathlib import Path
import numpy as np
import torch
from hifigan_ruslan.clips import bundled_corpus, is_audio_name
from hifigan_ruslan.config import apply_overrides, preset_config
from hifigan_ruslan.devices import resolve_device
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.inference import Vocoder, load_audio
from hifigan_ruslan.mel import mel_spectrogram
from hifigan_ruslan.trainer import Trainer

# %%
import ast, contextlib, io, math, re, subprocess, tempfile
from fastcore.test import test_eq, test_fail

# %% [markdown]
# A Kaggle session is hours of GPU time, and a precision that does not train on its GPUs (fp16 steps that the
# gradient scalers skip one after another, bf16 that the GPU only emulates) shows up only hours later in the
# losses. So a smoke run (`hifigan-ruslan kaggle push --smoke`) first runs this check on the T4s: the recipe's V1
# training step (batch 4 x 8192 samples, one batch per step) a few steps in fp32, in fp16 with the gradient
# scalers (the path of every Kaggle run on T4s) and in bf16 where the GPU computes it natively (compute
# capability 8+). For each it prints the steps per second, the peak GPU memory, the first step's losses, the steps
# the scalers skipped and their final scales. Then the `Vocoder` synthesizes 10 s of audio and its real-time factor
# is printed. Without a GPU it runs the same code on the tiny preset with a tiny workload, and says so.
#
# The check is part of the package so that the kernel runs it from the installed package, with the clips of its
# prepared slice of RUSLAN:
#
#     python -m hifigan_ruslan.gpu_check --wavs data/ruslan-22k/wavs   # segments of these clips (22,050 Hz)
#     python -m hifigan_ruslan.gpu_check --device cpu                  # the CPU workload, on the bundled voice
#
# `benchmarks/gpu_check.py` runs the same, from a source checkout.

# %% [markdown]
# ## Workloads
#
# On a GPU the workload is the recipe's training step; on a CPU it is the smallest step that still runs every
# path, because an fp16 backward pass there is about 100 times slower than fp32
# ([Trainer](09_trainer.ipynb)). bf16 is only measured where it is native: a T4 emulates it, slowly.

# %%
#| export
GPU_WORKLOAD = {"preset": "recipe", "batch": 4, "segment": 8192, "warmup": 2, "steps": 5}
CPU_WORKLOAD = {"preset": "tiny", "batch": 1, "segment": 1024, "warmup": 1, "steps": 2}  # slow fp16 backward


def precisions(device: torch.device) -> list[str]:
    "fp32, fp16 and, where the GPU computes it natively (or on the CPU), bf16."
    native_bf16 = device.type == "cpu" or torch.cuda.get_device_capability(device)[0] >= 8
    return ["fp32", "fp16"] + (["bf16"] if native_bf16 else [])


# %%
show_doc(precisions)

# %%
test_eq(precisions(torch.device("cpu")), ["fp32", "fp16", "bf16"])


# %% [markdown]
# ## A batch of real speech
#
# The losses of the first step and the steps the fp16 scalers skip depend on what the batch holds: noise gives
# losses that no training run sees. So the batch is made of segments of real clips, those of `--wavs` (the
# kernel's prepared slice of RUSLAN) or else the voice bundled with the package. A folder that does not exist, or
# holds no clip long enough, is the user's mistake, named in one line. `sync` waits for the GPU, so that a timer
# measures the work and not only its launch; `benchmarks/bench_training.py` uses both too.

# %%
#| export
def real_batch(batch: int, segment: int, cfg, wavs=None) -> tuple[torch.Tensor, torch.Tensor]:
    "Mel and audio of `batch` segments of real speech from `wavs` (default: the bundled voice)."
    folder = Path(wavs) if wavs else bundled_corpus() / "wav"
    if not folder.is_dir():
        raise UserError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    files = [p for p in sorted(folder.iterdir()) if is_audio_name(p.name)]
    clips = []
    for path in files[:64]:  # enough different clips for any batch; all of RUSLAN would take minutes to read
        audio = load_audio(path, cfg.mel.sampling_rate)
        if len(audio) >= segment:
            clips.append(audio[:segment])
    if not clips:
        raise UserError(f"{folder}: no audio file with {segment} samples or more")
    audio = torch.from_numpy(np.stack([clips[i % len(clips)] for i in range(batch)]))
    return mel_spectrogram(audio, cfg.mel), audio


def sync(device: torch.device):
    "Wait for the GPU's queued work (nothing to wait for on a CPU)."
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# %%
show_doc(real_batch)

# %%
show_doc(sync)

# %%
tiny = preset_config("tiny")
mel, audio = real_batch(3, 1024, tiny)
test_eq((audio.shape, mel.shape), ((3, 1024), (3, tiny.mel.num_mels, 1024 // tiny.mel.hop_size)))
first_clips = sorted((bundled_corpus() / "wav").iterdir())[:3]
test_eq(audio.numpy(), np.stack([load_audio(f, tiny.mel.sampling_rate)[:1024] for f in first_clips]))
test_fail(lambda: real_batch(1, 1024, tiny, "/nonexistent"), exc=UserError,
          contains="/nonexistent: no such folder")
with tempfile.TemporaryDirectory() as d:
    test_fail(lambda: real_batch(1, 1024, tiny, d), exc=UserError,
              contains=f"{d}: no audio file with 1024 samples or more")
sync(torch.device("cpu"))


# %% [markdown]
# ## Training steps
#
# The first step's losses are read before the warm-up steps; the timed steps then read one value per step from the
# device, as the training loop does when it counts skipped steps. The line printed keeps one form, `  PRECISION
# N steps/s...; first losses {...}; K of M steps skipped`: the Kaggle session looks for it.

# %%
#| export
def check_training(workload: dict, precision: str, device: torch.device, wavs=None) -> Trainer:
    "Run the workload's training steps in `precision` and print what they measured."
    overrides = [f"train.batch_size={workload['batch']}", f"train.segment_size={workload['segment']}",
                 "train.grad_accum_steps=1", f"train.precision={precision}"]
    cfg = apply_overrides(preset_config(workload["preset"]), overrides)
    batch = real_batch(workload["batch"], workload["segment"], cfg, wavs)  # a bad --wavs: before the models
    torch.manual_seed(cfg.train.seed)
    tr = Trainer(cfg, device=device)
    if device.type == "cuda":
        batch = tuple(t.pin_memory() for t in batch)
        torch.cuda.reset_peak_memory_stats(device)
    first = tr.train_step([batch])
    losses = {k: round(first.stats[k].item(), 4) for k in ("loss_d", "loss_g", "loss_mel", "loss_fm")}
    skipped = int(first.skipped)
    for _ in range(workload["warmup"] - 1):
        skipped += tr.train_step([batch]).skipped
    sync(device)
    t0 = time.perf_counter()
    for _ in range(workload["steps"]):
        skipped += tr.train_step([batch]).skipped  # one host read per step, as the loop's counting does
    sync(device)
    seconds = (time.perf_counter() - t0) / workload["steps"]
    memory = ""
    if device.type == "cuda":
        memory = f", peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
    scales = ""
    if tr.scaler_g.is_enabled():
        scales = f", scales g {tr.scaler_g.get_scale():.0f} d {tr.scaler_d.get_scale():.0f}"
    print(f"  {tr.precision:<5} {1 / seconds:6.2f} steps/s{memory}; first losses {losses}; "
          f"{skipped} of {workload['warmup'] + workload['steps']} steps skipped{scales}")
    return tr


# %%
show_doc(check_training)

# %% [markdown]
# The CPU workload in fp32, on the bundled voice:

# %%
tr = check_training(CPU_WORKLOAD, "fp32", torch.device("cpu"))
test_eq((tr.precision, tr.cfg.train.batch_size, tr.cfg.train.segment_size), ("fp32", 1, 1024))


# %% [markdown]
# ## The vocoder
#
# The `Vocoder` gets a copy of the trained generator (it removes the weight norm of what it is given) and
# synthesizes the same mel a few times after a warm-up (kernels, autotuning, a compiled backend); the best round
# counts.

# %%
#| export
def check_vocoder(tr: Trainer, device: torch.device, seconds: float = 10.0, rounds: int = 3):
    "The real-time factor of the `Vocoder` (synthesis time / audio time) on `seconds` of audio."
    cfg = tr.cfg
    audio = torch.randn(1, int(seconds * cfg.mel.sampling_rate)) * 0.1
    mel = mel_spectrogram(audio, cfg.mel)
    generator = Generator(cfg.generator, cfg.mel.num_mels)  # a copy: the Vocoder removes the weight norm
    generator.load_state_dict(tr.generator.state_dict())
    vocoder = Vocoder(generator, cfg, device=device)
    vocoder.synthesize(mel)  # warm-up: kernels, autotuning, a compiled backend
    best = float("inf")
    for _ in range(rounds):
        sync(device)
        t0 = time.perf_counter()
        out = vocoder.synthesize(mel)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    print(f"  Vocoder ({vocoder.backend}, {vocoder.precision}, {cfg.generator_preset} generator): "
          f"{seconds:.0f} s of audio in {best:.3f} s, real-time factor {best / seconds:.4f}; "
          f"output {tuple(out.shape)}")


# %%
show_doc(check_vocoder)

# %%
check_vocoder(tr, torch.device("cpu"), seconds=1.0, rounds=1)
# the trainer's generator keeps its weight norm: the vocoder folded it in a copy
assert any(k.endswith(".weight_g") for k in tr.generator.state_dict())


# %% [markdown]
# ## The command
#
# `python -m hifigan_ruslan.gpu_check` (and `benchmarks/gpu_check.py`) runs the whole check. As with the
# [command line](14_cli.ipynb), a mistake the user can fix, such as a `--wavs` folder that does not exist, is one
# line on stderr, `gpu_check: error: ...`, and exit status 2; anything else is a bug and keeps its traceback.

# %%
#| export
def _check(device_name: str, wavs):
    "The whole check: training steps in each precision, then the vocoder."
    started = time.perf_counter()
    device = resolve_device(device_name)
    gpu = device.type == "cuda"
    workload = GPU_WORKLOAD if gpu else CPU_WORKLOAD
    if gpu:
        torch.backends.cudnn.benchmark = True  # as the trainer runs: one fixed training shape
        print(f"torch {torch.__version__}, {torch.cuda.get_device_name(device)} "
              f"(compute capability {'.'.join(map(str, torch.cuda.get_device_capability(device)))})")
    else:
        print(f"torch {torch.__version__}, no GPU: a tiny workload on the CPU, to show that the script runs "
              "(its speeds say nothing about a GPU)")
    print(f"training step: {workload['preset']} preset, batch {workload['batch']} x {workload['segment']} "
          f"samples, {workload['warmup']} warm-up + {workload['steps']} timed steps")
    trainers = [check_training(workload, precision, device, wavs) for precision in precisions(device)]
    check_vocoder(trainers[0], device)
    print(f"done in {time.perf_counter() - started:.0f} s")


def run_check(argv: list[str] | None = None) -> int:
    "Entry point of `python -m hifigan_ruslan.gpu_check`; returns the exit status."
    p = argparse.ArgumentParser(prog="gpu_check", description="A short check of the training and inference "
                                "paths on a GPU, in under three minutes.")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cuda, cuda:N or cpu")
    p.add_argument("--wavs", default=None, help="a folder of 22,050 Hz WAVs (default: the bundled corpus)")
    args = p.parse_args(argv)
    try:
        _check(args.device, args.wavs)
    except UserError as e:
        print(f"gpu_check: error: {e}", file=sys.stderr)
        return 2
    return 0


# %%
#| export
# A notebook's namespace is `__main__` too, but without `__file__`: only `python -m` runs the check here
if __name__ == "__main__" and "__file__" in globals():
    sys.exit(run_check())

# %%
show_doc(run_check)

# %% [markdown]
# The CPU workload on the bundled voice (given as `--wavs`, the way the kernel gives its clips):

# %%
printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    status = run_check(["--device", "cpu", "--wavs", str(bundled_corpus() / "wav")])
print(printed.getvalue(), end="")
test_eq(status, 0)
lines = printed.getvalue().splitlines()
test_eq(lines[1], "training step: tiny preset, batch 1 x 1024 samples, 1 warm-up + 2 timed steps")
test_eq([line.split()[0] for line in lines[2:5]], ["fp32", "fp16", "bf16"])
for line in lines[2:5]:
    found = re.fullmatch(r"  \w+ +[\d.]+ steps/s; first losses (\{.*\}); \d of 3 steps skipped(, scales .*)?",
                         line)
    assert found, line
    assert all(math.isfinite(v) for v in ast.literal_eval(found.group(1)).values()), line
assert re.search(r"fp32 +[\d.]+ steps/s; first losses", printed.getvalue())  # what the Kaggle session greps
assert lines[5].startswith("  Vocoder (") and "real-time factor" in lines[5], lines[5]
assert re.fullmatch(r"done in \d+ s", lines[6]), lines[6]

# %% [markdown]
# A `--wavs` folder that does not exist is one line and exit status 2:

# %%
done = subprocess.run([sys.executable, "-m", "hifigan_ruslan.gpu_check", "--wavs", "/nonexistent"],
                      capture_output=True, text=True)
print(done.stderr, end="")
test_eq((done.returncode, done.stderr), (2, "gpu_check: error: /nonexistent: no such folder\n"))
