"""A short check of the training and inference paths on a GPU, in under three minutes.

The recipe's V1 training step (batch 4 x 8192 samples, one batch per step) runs a few steps in fp32, in fp16
with the gradient scalers (the path of every Kaggle run on T4s) and in bf16 where the GPU computes it natively
(compute capability 8+); for each it prints the steps per second, the peak GPU memory, the first step's losses,
the steps the scalers skipped and their final scales. Then the `Vocoder` synthesizes 10 s of audio and its
real-time factor is printed. Without a GPU it runs the same code on the tiny preset with a tiny workload,
and says so.

    python benchmarks/gpu_check.py                # CUDA if there is a GPU, else the CPU workload
    python benchmarks/gpu_check.py --device cpu
    python benchmarks/gpu_check.py --wavs data/ruslan-22k/wavs   # segments of these clips (22,050 Hz)

The Kaggle kernel's smoke run (`hifigan-ruslan kaggle push --smoke`) runs it on the T4s with `--wavs` pointing at
its prepared slice of RUSLAN, and puts what it prints into the run's RESULTS.md.
"""
from __future__ import annotations
import argparse, time
import torch
from hifigan_ruslan.config import apply_overrides, preset_config
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.inference import Vocoder
from hifigan_ruslan.mel import mel_spectrogram
from hifigan_ruslan.config import resolve_device
from hifigan_ruslan.trainer import Trainer
from bench_training import real_batch, sync

GPU_WORKLOAD = {"preset": "recipe", "batch": 4, "segment": 8192, "warmup": 2, "steps": 5}
CPU_WORKLOAD = {"preset": "tiny", "batch": 1, "segment": 1024, "warmup": 1, "steps": 2}  # slow fp16 backward


def precisions(device: torch.device) -> list[str]:
    "fp32, fp16 and, where the GPU computes it natively (or on the CPU), bf16."
    native_bf16 = device.type == "cpu" or torch.cuda.get_device_capability(device)[0] >= 8
    return ["fp32", "fp16"] + (["bf16"] if native_bf16 else [])


def check_training(workload: dict, precision: str, device: torch.device, wavs=None) -> Trainer:
    "Run the workload's training steps in `precision` and print what they measured."
    overrides = [f"train.batch_size={workload['batch']}", f"train.segment_size={workload['segment']}",
                 "train.grad_accum_steps=1", f"train.precision={precision}"]
    cfg = apply_overrides(preset_config(workload["preset"]), overrides)
    torch.manual_seed(cfg.train.seed)
    tr = Trainer(cfg, device=device)
    batch = real_batch(workload["batch"], workload["segment"], cfg, wavs)
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


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cuda, cuda:N or cpu")
    p.add_argument("--wavs", default=None, help="a folder of 22,050 Hz WAVs (default: the bundled corpus)")
    args = p.parse_args()
    started = time.perf_counter()
    device = resolve_device(args.device)
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
    trainers = [check_training(workload, precision, device, args.wavs) for precision in precisions(device)]
    check_vocoder(trainers[0], device)
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
