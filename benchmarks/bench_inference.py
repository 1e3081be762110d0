"""Inference speed: `Vocoder` against a straightforward eager HiFi-GAN generator of the same preset.

The baseline has the structure of the reference implementation's inference: weight norm in place, plain eager
forward of the whole mel at once, under `torch.no_grad()`. The candidates are the project's `Vocoder` with its
default backend (ONNX Runtime on CPU when installed) and with `backend="torch"` (weight norm folded, inference mode,
chunked). Same weights, same 10 s mel, one process, run in turns; the best of `--repeat` runs counts.

Prints, per preset: real-time factor (seconds of audio per second of compute), speed-up over the baseline, the
largest output difference from the baseline, and the peak extra resident memory of one synthesis, measured in a
fresh subprocess (peak resident memory during the synthesis minus the resident memory before it, model built).

    python benchmarks/bench_inference.py                       # CPU, V1 V2 V3, 10 s of audio
    python benchmarks/bench_inference.py --device cuda         # GPU as well, when one is present
    python benchmarks/bench_inference.py --presets v3 --seconds 30 --repeat 5
"""
from __future__ import annotations
import argparse, json, resource, subprocess, sys, time
from pathlib import Path
import numpy as np
import torch

from hifigan_ruslan.config import preset_config
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.inference import Vocoder

REFERENCE_MEL = Path(__file__).resolve().parents[1] / "nbs" / "testdata" / "reference" / "mel_espeak_ru.npz"
METHODS = ("eager", "vocoder", "vocoder-torch")


def speech_mel(seconds: float) -> torch.Tensor:
    "A log-mel `[1, 80, T]` of `seconds` of speech: the reference clip repeated (random values if it is absent)."
    frames = round(seconds * 22050 / 256)
    if REFERENCE_MEL.is_file():
        mel = torch.from_numpy(np.load(REFERENCE_MEL)["mel"])
        return mel.repeat(1, frames // mel.shape[1] + 1)[None, :, :frames].contiguous()
    return torch.randn(1, 80, frames, generator=torch.Generator().manual_seed(0)) - 5


def build(method: str, preset: str, device: str):
    "A callable mel -> audio `[B, N]` for `method`, all with the same weights (seed 0)."
    torch.manual_seed(0)
    generator = Generator.from_preset(preset).eval()
    if method == "eager":
        generator.to(device)
        def run(mel):
            with torch.no_grad():
                return generator(mel.to(device))[:, 0].cpu()
        return run
    backend = "auto" if method == "vocoder" else "torch"
    vocoder = Vocoder(generator, preset_config(preset), device, backend=backend)
    vocoder(torch.zeros(1, 80, 8) - 5)  # one-time setup (ONNX export and session) outside the measurement
    return vocoder


def sync(device: str):
    "Wait for the GPU's queued work, so that a timing measures it."
    if device == "cuda":
        torch.cuda.synchronize()


def time_presets(preset: str, device: str, mel: torch.Tensor, repeat: int) -> dict:
    "Best wall time per method, measured in turns, and each method's max |difference| from the baseline."
    runners = {m: build(m, preset, device) for m in METHODS}
    outputs = {m: run(mel) for m, run in runners.items()}  # warm-up, and the outputs to compare
    best = {m: float("inf") for m in METHODS}
    for _ in range(repeat):
        for m, run in runners.items():
            sync(device)
            t0 = time.perf_counter()
            run(mel)
            sync(device)
            best[m] = min(best[m], time.perf_counter() - t0)
    diff = {m: float((outputs[m] - outputs["eager"]).abs().max()) for m in METHODS}
    backends = {m: getattr(r, "backend", "torch") for m, r in runners.items()}
    return {"time": best, "diff": diff, "backend": backends}


def process_memory_mb(field: str) -> float:
    "`VmRSS` (current) or `VmHWM` (peak) resident memory of this process in MB (Linux; ru_maxrss elsewhere)."
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_mb(method: str, preset: str, device: str, seconds: float) -> float:
    """Peak extra memory of one synthesis in a fresh process: resident (CPU) or allocated by torch (GPU), in MB.
    (Not ru_maxrss: Linux carries the parent's peak across exec, which would hide the child's.)"""
    code = f"""
import torch, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from bench_inference import build, speech_mel, process_memory_mb
mel = speech_mel({seconds})
run = build({method!r}, {preset!r}, {device!r})
cuda = {device!r} == "cuda"
if cuda:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() / 2**20
else:
    base = process_memory_mb("VmRSS")
run(mel)
peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else process_memory_mb("VmHWM")
print(peak - base)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        return float("nan")
    return float(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["v1", "v2", "v3"])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", nargs="+", default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    p.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    args = p.parse_args(argv)
    mel = speech_mel(args.seconds)
    audio_seconds = mel.shape[-1] * 256 / 22050
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {audio_seconds:.1f} s of audio per run, "
          f"best of {args.repeat}")
    results = {}
    for device in args.device:
        for preset in args.presets:
            r = time_presets(preset, device, mel, args.repeat)
            if not args.no_memory:
                r["memory"] = {m: peak_memory_mb(m, preset, device, args.seconds) for m in METHODS}
            results[(device, preset)] = r
            base = r["time"]["eager"]
            for m in METHODS:
                mem = f"{r['memory'][m]:8.0f} MB" if "memory" in r else ""
                label = f"{m} ({r['backend'][m]})" if m != "eager" else "eager baseline"
                rtf, speed_up = audio_seconds / r["time"][m], base / r["time"][m]
                print(f"{device:>4} {preset}  {label:<28} RTF {rtf:7.1f}x real time   "
                      f"speed-up {speed_up:5.2f}x   max |diff| {r['diff'][m]:.1e}  {mem}", flush=True)
    speed_ups = [f"{d} {p} {r['time']['eager'] / r['time']['vocoder']:.2f}x" for (d, p), r in results.items()]
    print("\nspeed-up of the Vocoder default over the eager baseline: " + ", ".join(speed_ups))
    return results


if __name__ == "__main__":
    main()
