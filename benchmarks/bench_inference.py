"""Inference speed: the `Vocoder`'s backends against a straightforward eager HiFi-GAN generator of the same preset.

The baseline is the reference implementation's inference: the project's `Generator` with weight norm removed, a
plain eager forward of the whole mel at once under `torch.no_grad()`. The candidates are the project's `Vocoder` on
eager PyTorch (`backend="torch"`: inference mode, chunked), on OpenVINO in fp32 (the CPU default) and in bf16 (only
where the CPU computes bf16 natively), and, when the `onnxruntime` package is installed, an ONNX Runtime session on
the package's ONNX export (not a backend of the package: shown for comparison). Same weights, same 10 s mel, one
process, run in turns: each of `--repeat` rounds runs every method once, and the speed-up is the median over the
rounds of the ratio within a round (robust to the machine's speed changing between rounds).

Prints, per preset: real-time factor (seconds of audio per second of compute, median), speed-up over the baseline, the
largest output difference from the baseline (and its SNR in dB), the start-up time (building the runner and
vocoding a 1 s mel in a fresh process, imports excluded) and the peak extra resident memory of one 10 s synthesis
in that process (peak resident memory during the synthesis minus the resident memory before it).

    python benchmarks/bench_inference.py                       # CPU, V1 V2 V3, 10 s of audio
    python benchmarks/bench_inference.py --device cuda         # GPU (eager and torch), when one is present
    python benchmarks/bench_inference.py --presets v3 --seconds 30 --repeat 5
"""
from __future__ import annotations
import argparse, importlib.util, json, resource, subprocess, sys, time
from pathlib import Path
import numpy as np
import torch

from hifigan_ruslan.config import preset_config
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.inference import Vocoder
from hifigan_ruslan.cpu_runtime import native_bf16
from hifigan_ruslan.export import onnx_model

REFERENCE_MEL = Path(__file__).resolve().parents[1] / "nbs" / "testdata" / "reference" / "mel_espeak_ru.npz"


def methods(device: str) -> list[str]:
    "The runners that exist for `device` on this machine."
    if device != "cpu":
        return ["eager", "torch"]
    found = ["eager", "torch", "openvino-fp32"]
    if native_bf16():
        found.append("openvino-bf16")
    if importlib.util.find_spec("onnxruntime") is not None:
        found.append("onnxruntime")
    return found


def speech_mel(seconds: float) -> torch.Tensor:
    "A log-mel `[1, 80, T]` of `seconds` of speech: the reference clip repeated (random values if it is absent)."
    frames = round(seconds * 22050 / 256)
    if REFERENCE_MEL.is_file():
        mel = torch.from_numpy(np.load(REFERENCE_MEL)["mel"])
        return mel.repeat(1, frames // mel.shape[1] + 1)[None, :, :frames].contiguous()
    return torch.randn(1, 80, frames, generator=torch.Generator().manual_seed(0)) - 5


def onnxruntime_runner(generator: Generator):
    "An ONNX Runtime session on the package's ONNX export, as a callable mel -> audio `[B, N]`."
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.log_severity_level = 3
    session = ort.InferenceSession(onnx_model(generator.remove_weight_norm()), opts,
                                   providers=["CPUExecutionProvider"])

    def run(mel):
        return torch.from_numpy(session.run(None, {"mel": mel.numpy()})[0][:, 0])
    return run


def build(method: str, preset: str, device: str):
    "A callable mel -> audio `[B, N]` for `method`, all with the same weights (seed 0)."
    torch.manual_seed(0)
    generator = Generator.from_preset(preset).eval()
    if method == "eager":
        generator.remove_weight_norm().to(device)

        def run(mel):
            with torch.no_grad():
                return generator(mel.to(device))[:, 0].cpu()
        return run
    if method == "onnxruntime":
        return onnxruntime_runner(generator)
    backend, _, precision = method.partition("-")
    return Vocoder(generator, preset_config(preset), device, backend=backend, precision=precision or "fp32")


def sync(device: str):
    "Wait for the GPU's queued work, so that a timing measures it."
    if device == "cuda":
        torch.cuda.synchronize()


def snr_db(signal: torch.Tensor, reference: torch.Tensor) -> float:
    "Signal-to-noise ratio of `signal` against `reference`, in dB."
    noise = float(((signal - reference) ** 2).sum())
    return 10 * np.log10(float((reference ** 2).sum()) / max(noise, 1e-30))


def time_presets(preset: str, device: str, mel: torch.Tensor, repeat: int) -> dict:
    """Wall times per method, measured in turns (a round runs every method once), the median over rounds of each
    method's speed-up over the baseline in the same round, and each method's difference from the baseline."""
    runners = {m: build(m, preset, device) for m in methods(device)}
    outputs = {m: run(mel) for m, run in runners.items()}  # warm-up, and the outputs to compare
    times = {m: [] for m in runners}
    for _ in range(repeat):
        for m, run in runners.items():
            sync(device)
            t0 = time.perf_counter()
            run(mel)
            sync(device)
            times[m].append(time.perf_counter() - t0)
    eager = np.array(times["eager"])
    speed_up = {m: float(np.median(eager / np.array(t))) for m, t in times.items()}
    diff = {m: float((outputs[m] - outputs["eager"]).abs().max()) for m in runners}
    snr = {m: snr_db(outputs[m], outputs["eager"]) for m in runners}
    return {"time": {m: float(np.median(t)) for m, t in times.items()}, "speed_up": speed_up, "diff": diff,
            "snr": snr}


def process_memory_mb(field: str) -> float:
    "`VmRSS` (current) or `VmHWM` (peak) resident memory of this process in MB (Linux; ru_maxrss elsewhere)."
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def startup_and_memory(method: str, preset: str, device: str, seconds: float) -> tuple[float, float]:
    """In a fresh process: seconds to build the runner and vocode a 1 s mel (imports excluded), and the peak extra
    memory of one synthesis of `seconds`: resident (CPU) or allocated by torch (GPU), in MB.
    (Not ru_maxrss: Linux carries the parent's peak across exec, which would hide the child's.)"""
    code = f"""
import time, torch, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from bench_inference import build, speech_mel, process_memory_mb
mel, short = speech_mel({seconds}), speech_mel(1.0)
t0 = time.perf_counter()
run = build({method!r}, {preset!r}, {device!r})
run(short)
startup = time.perf_counter() - t0
cuda = {device!r} == "cuda"
if cuda:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() / 2**20
else:
    base = process_memory_mb("VmRSS")
run(mel)
peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else process_memory_mb("VmHWM")
print(startup, peak - base)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        return float("nan"), float("nan")
    startup, memory = res.stdout.strip().splitlines()[-1].split()
    return float(startup), float(memory)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["v1", "v2", "v3"])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--device", nargs="+", default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    p.add_argument("--no-subprocess", action="store_true", help="skip the start-up and memory subprocesses")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    args = p.parse_args(argv)
    mel = speech_mel(args.seconds)
    audio_seconds = mel.shape[-1] * 256 / 22050
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {audio_seconds:.1f} s of audio per run, "
          f"median of {args.repeat} rounds; native bf16: {native_bf16()}")
    results = {}
    for device in args.device:
        for preset in args.presets:
            r = time_presets(preset, device, mel, args.repeat)
            if not args.no_subprocess:
                r["startup"], r["memory"] = {}, {}
                for m in r["time"]:
                    r["startup"][m], r["memory"][m] = startup_and_memory(m, preset, device, args.seconds)
            results[f"{device} {preset}"] = r
            for m in r["time"]:
                extra = f"start {r['startup'][m]:5.1f} s {r['memory'][m]:6.0f} MB" if "memory" in r else ""
                rtf, speed_up = audio_seconds / r["time"][m], r["speed_up"][m]
                snr = f"{r['snr'][m]:4.0f} dB" if r["diff"][m] > 0 else "   exact"
                print(f"{device:>4} {preset}  {m:<14} RTF {rtf:6.1f}x real time   speed-up {speed_up:5.2f}x   "
                      f"max |diff| {r['diff'][m]:.1e} {snr}   {extra}", flush=True)
    print("\nspeed-up over the eager baseline:")
    for key, r in results.items():
        ratios = ", ".join(f"{m} {x:.2f}x" for m, x in r["speed_up"].items() if m != "eager")
        print(f"  {key}: {ratios}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
