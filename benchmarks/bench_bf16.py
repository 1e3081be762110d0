"""bf16 on real speech: how far the bf16 path moves the pretrained universal V1 from its fp32 output, and how fast.

For each split of the generator (its first N steps compiled in fp32, the rest in bf16; N = 4 is the package's
`BF16_FP32_STEPS`), on every clip of the bundled corpus and of the fixture corpus (`../shared/fixtures/mini_ruslan`,
when present): the waveform SNR of bf16 against OpenVINO fp32, and the wide-band PESQ of both against the original
recording (the acceptance rule: SNR at least 40 dB, mean PESQ of bf16 within 0.05 of fp32's). Then the speed-up of
each split over the eager generator (weight norm removed) on 10 s of speech, as the median over rounds of the ratio
measured side by side in each round.

    python benchmarks/bench_bf16.py                  # splits 0 2 3 4 5, both corpora
    python benchmarks/bench_bf16.py --splits 4 --corpus path/to/RUSLAN
"""
from __future__ import annotations
import argparse, sys, time
from pathlib import Path
import numpy as np
import soxr
import torch
from pesq import pesq

from hifigan_ruslan.checkpoints import generator_from_checkpoint
from hifigan_ruslan.inference import chunked_mel, load_audio
from hifigan_ruslan.clips import bundled_corpus
from hifigan_ruslan.pretrained import pretrained_path
from hifigan_ruslan.cpu_runtime import OpenVINOGenerator, native_bf16

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import snr_db, speech_mel  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "mini_ruslan"


def pesq_wb(reference: np.ndarray, degraded: np.ndarray, rate: int = 22050) -> float:
    "Wide-band PESQ of `degraded` against `reference` (both at `rate`), at 16 kHz."
    ref16, deg16 = (soxr.resample(x, rate, 16000) for x in (reference, degraded))
    n = min(len(ref16), len(deg16))
    return float(pesq(16000, ref16[:n], deg16[:n], "wb"))


def clips(corpora: list[Path]) -> list[Path]:
    "Every WAV file under the corpora that exist."
    return [wav for root in corpora if root.is_dir() for wav in sorted(root.rglob("*.wav"))]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--splits", type=int, nargs="+", default=[0, 2, 3, 4, 5], help="steps in fp32")
    p.add_argument("--corpus", type=Path, nargs="+", default=[bundled_corpus(), FIXTURE])
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    if not native_bf16():
        sys.exit("this CPU has no native bf16 (AMX or AVX512-BF16): nothing to measure")
    generator, _ = generator_from_checkpoint(pretrained_path("universal"), None)
    generator = generator.remove_weight_norm().eval()
    wavs = clips(args.corpus)
    originals = [load_audio(w, 22050) for w in wavs]
    mels = [chunked_mel(torch.from_numpy(a))[None].numpy() for a in originals]
    fp32 = OpenVINOGenerator.from_generator(generator, "fp32")
    references = [fp32(m)[0] for m in mels]
    pesq_fp32 = [pesq_wb(a, r) for a, r in zip(originals, references)]
    print(f"{len(wavs)} clips ({sum(len(a) for a in originals) / 22050:.0f} s) from "
          f"{', '.join(str(c) for c in args.corpus if c.is_dir())}; PESQ-wb of fp32: mean {np.mean(pesq_fp32):.3f}")
    runners = {"eager": None}
    for split in args.splits:
        bf16 = OpenVINOGenerator.from_generator(generator, "bf16", fp32_steps=split)
        outs = [bf16(m)[0] for m in mels]
        snrs = [snr_db(o, r) for o, r in zip(outs, references)]
        gain = np.mean([pesq_wb(a, o) for a, o in zip(originals, outs)]) - np.mean(pesq_fp32)
        worst = wavs[int(np.argmin(snrs))].name
        print(f"fp32 steps {split}: SNR {min(snrs):5.1f} .. {max(snrs):5.1f} dB (median {np.median(snrs):5.1f}, "
              f"lowest {worst}); PESQ-wb of bf16 minus fp32 {gain:+.3f}", flush=True)
        runners[f"bf16, {split} steps fp32"] = bf16
    runners["fp32"] = fp32
    mel = speech_mel(10.0)
    with torch.inference_mode():
        times = {name: [] for name in runners}
        for _ in range(args.rounds + 1):  # the first round warms up
            for name, run in runners.items():
                t0 = time.perf_counter()
                generator(mel) if run is None else run(mel.numpy())
                times[name].append(time.perf_counter() - t0)
    eager = np.array(times["eager"][1:])
    print(f"speed-up over eager PyTorch on 10 s of speech ({torch.get_num_threads()} threads, median of "
          f"{args.rounds} rounds):")
    for name in list(runners)[1:]:
        print(f"  {name}: {np.median(eager / np.array(times[name][1:])):.2f}x")


if __name__ == "__main__":
    main()
