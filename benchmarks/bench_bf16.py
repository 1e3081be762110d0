"""bf16 on real speech: how far the bf16 path moves the pretrained universal V1 from its fp32 output, and how fast.

For each split of the generator (its first N steps compiled in fp32, the rest in bf16; N = 4 is the package's
`BF16_FP32_STEPS`), on every clip of the corpora given: the waveform SNR of bf16 against OpenVINO fp32, the
wide-band PESQ of both against the original recording, and the DistillMOS of both (the acceptance rule: SNR at least
40 dB, mean PESQ and mean MOS of bf16 within 0.05 of fp32's). Then the speed-up of each split over the eager
generator (weight norm removed) on 10 s of speech, as the median over rounds of the ratio measured side by side in
each round.

Corpora: by default the real voice bundled with the package (24 festvox-ru clips) and the fixture corpus
(`../shared/fixtures/mini_ruslan`, synthetic, when present); `--real` takes the 24 held-out clips of the whole
festvox-ru voice instead (fetched with `apt-get download festvox-ru` and unpacked with `dpkg-deb -x`, as
`bench_transfer.py --real` does, or an already prepared folder with `--prepared`).

    python benchmarks/bench_bf16.py                  # splits 0 2 3 4 5, bundled voice and fixture corpus
    python benchmarks/bench_bf16.py --real --splits 4
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
from hifigan_ruslan.clips import bundled_corpus, is_audio_name
from hifigan_ruslan.evaluation import distillmos
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


def mos(audio: np.ndarray, rate: int = 22050) -> float:
    "DistillMOS of `audio` (at `rate`), at 16 kHz."
    return distillmos(soxr.resample(audio, rate, 16000).astype(np.float32))


def clips(corpora: list[Path]) -> list[Path]:
    "Every audio file (WAV, FLAC, OGG) under the corpora that exist."
    return [path for root in corpora if root.is_dir() for path in sorted(root.rglob("*")) if is_audio_name(path.name)]


def festvox_held_out(prepared: Path | None, festvox: Path, out: Path) -> list[Path]:
    "The 24 held-out clips of festvox-ru (prepared here with `--val-size 24` unless `prepared` is given)."
    from bench_transfer import fetch_festvox
    from hifigan_ruslan.data import read_split
    from hifigan_ruslan.prepare import prepare_corpus
    if prepared is None:
        prepared = out / "prepared"
        prepare_corpus(fetch_festvox(festvox), prepared, val_size=24, seed=1234, progress=False)
    return [prepared / "wavs" / f"{uid}.wav" for uid, _ in read_split(prepared / "val.txt")]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--splits", type=int, nargs="+", default=[0, 2, 3, 4, 5], help="steps in fp32")
    p.add_argument("--corpus", type=Path, nargs="+", default=[bundled_corpus(), FIXTURE])
    p.add_argument("--real", action="store_true", help="the 24 held-out clips of the whole festvox-ru voice")
    p.add_argument("--prepared", type=Path, default=None, help="--real: festvox-ru prepared with --val-size 24")
    p.add_argument("--festvox", type=Path, default=Path("/tmp/festvox-ru"), help="--real: where it is unpacked")
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_bf16"))
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    if not native_bf16():
        sys.exit("this CPU has no native bf16 (AMX or AVX512-BF16): nothing to measure")
    generator, _ = generator_from_checkpoint(pretrained_path("universal"), None)
    generator = generator.remove_weight_norm().eval()
    wavs = festvox_held_out(args.prepared, args.festvox, args.out) if args.real else clips(args.corpus)
    source = "festvox-ru, held out" if args.real else ", ".join(str(c) for c in args.corpus if c.is_dir())
    originals = [load_audio(w, 22050) for w in wavs]
    mels = [chunked_mel(torch.from_numpy(a))[None].numpy() for a in originals]
    fp32 = OpenVINOGenerator.from_generator(generator, "fp32")
    references = [fp32(m)[0] for m in mels]
    pesq_fp32 = [pesq_wb(a, r) for a, r in zip(originals, references)]
    mos_fp32 = [mos(r) for r in references]
    print(f"{len(wavs)} clips ({sum(len(a) for a in originals) / 22050:.0f} s) from {source}; fp32: mean PESQ-wb "
          f"{np.mean(pesq_fp32):.3f}, DistillMOS {np.mean(mos_fp32):.3f} (recordings "
          f"{np.mean([mos(a) for a in originals]):.3f})")
    runners = {"eager": None}
    for split in args.splits:
        bf16 = OpenVINOGenerator.from_generator(generator, "bf16", fp32_steps=split)
        outs = [bf16(m)[0] for m in mels]
        snrs = [snr_db(o, r) for o, r in zip(outs, references)]
        gain = np.mean([pesq_wb(a, o) for a, o in zip(originals, outs)]) - np.mean(pesq_fp32)
        mos_gain = np.array([mos(o) for o in outs]) - np.array(mos_fp32)
        worst = wavs[int(np.argmin(snrs))].name
        print(f"fp32 steps {split}: SNR {min(snrs):5.1f} .. {max(snrs):5.1f} dB (median {np.median(snrs):5.1f}, "
              f"lowest {worst}); bf16 minus fp32: PESQ-wb {gain:+.3f}, DistillMOS {mos_gain.mean():+.3f} "
              f"(per clip {mos_gain.min():+.3f} .. {mos_gain.max():+.3f})", flush=True)
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
