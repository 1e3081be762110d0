"""Throughput of `hifigan-ruslan prepare` and of the training DataLoader.

    python benchmarks/bench_data.py [--corpus DIR] [--workers 1 2] [--repeat 3] [--loader-seconds 10]

Prepare: audio-seconds converted per wall-second (fresh output folder each time, so nothing is reused), with 1 and
more worker processes, as ratios against one worker. The target is the whole RUSLAN (31 h) in under 10 minutes on
Kaggle's 4 vCPUs: more than 200 audio-seconds per second per core (46.5 per second in total would do, but the
per-core figure leaves room for a slower disk). A small corpus mostly measures the per-run overhead (finding the
corpus, starting worker processes), so the script also replicates the corpus to `--min-audio-seconds` of audio.

DataLoader: training segments per second (recipe preset: 8,192-sample windows and their mels) with 0 and more
worker processes. Training on one H200-class GPU consumes roughly 4 segments per step at 10-20 steps/s, so the
loader must deliver a few dozen segments per second.
"""
from __future__ import annotations
import argparse, shutil, sys, tempfile, time
from pathlib import Path

import soundfile as sf

from hifigan_ruslan.config import preset_config
from hifigan_ruslan.clips import METADATA_NAME, read_metadata
from hifigan_ruslan.data import VocoderDataset, make_dataloader
from hifigan_ruslan.prepare import find_corpus, prepare_corpus
from hifigan_ruslan.testing import tiny_corpus

FIXTURE = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "mini_ruslan"


def replicate(corpus: Path, dst: Path, min_seconds: float) -> tuple[Path, float]:
    "A copy of `corpus` with its clips repeated under new IDs until it holds `min_seconds` of audio."
    metadata, wav_dir = find_corpus(corpus)
    entries, _ = read_metadata(metadata)
    wavs = {p.stem: p for p in wav_dir.glob("*.wav")}
    seconds = {e.id: sf.info(wavs[e.id]).duration for e in entries if e.id in wavs}
    (dst / "RUSLAN").mkdir(parents=True)
    lines, total, n = [], 0.0, 0
    while total < min_seconds or n < len(seconds):
        for uid, dur in seconds.items():
            new = f"{n:06d}_RUSLAN"
            shutil.copyfile(wavs[uid], dst / "RUSLAN" / f"{new}.wav")
            lines.append(f"{new}|{next(e.text for e in entries if e.id == uid)}")
            total, n = total + dur, n + 1
    (dst / METADATA_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dst, total


def bench_prepare(corpus: Path, workers: int, repeat: int, tmp: Path) -> tuple[float, float]:
    "Best (audio-seconds per wall-second, seconds of audio) over `repeat` fresh runs."
    best, audio = 0.0, 0.0
    for i in range(repeat):
        out = tmp / f"prep_w{workers}_{i}"
        t0 = time.perf_counter()
        report = prepare_corpus(corpus, out, workers=workers, progress=False)
        wall = time.perf_counter() - t0
        audio = report["seconds_kept"]
        best = max(best, audio / wall)
        shutil.rmtree(out)
    return best, audio


def bench_loader(prepared: Path, workers: int, seconds: float) -> float:
    "Training segments per second from `make_dataloader` (after the first batch, which starts the workers)."
    cfg = preset_config("recipe")
    cfg.train.num_workers = workers
    loader = make_dataloader(VocoderDataset(prepared, "train", cfg), cfg)
    it, n = iter(loader), 0
    next(it)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        try:
            _, audio = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        n += audio.shape[0]
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=None,
                   help="a RUSLAN-shaped corpus (default: shared/fixtures/mini_ruslan if present, else the "
                        "synthetic test corpus)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--min-audio-seconds", type=float, default=300.0,
                   help="replicate the corpus up to this much audio")
    p.add_argument("--loader-seconds", type=float, default=8.0)
    args = p.parse_args(argv)
    corpus = args.corpus or (FIXTURE if FIXTURE.is_dir() else tiny_corpus())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpora = [replicate(corpus, tmp / "fixture", 0),
                   replicate(corpus, tmp / "replicated", args.min_audio_seconds)]
        print(f"corpus: {corpus}")
        for (path, total), label in zip(corpora, ["as is", "replicated"]):
            print(f"prepare on the corpus {label} ({total:.0f} s of audio), audio-seconds per wall-second, "
                  f"best of {args.repeat} fresh runs:")
            base = None
            for w in args.workers:
                rate, _ = bench_prepare(path, w, args.repeat, tmp)
                base = base or rate
                print(f"  workers={w}: {rate:7.0f} audio-s/s ({rate / w:5.0f} per worker), "
                      f"x{rate / base:.2f} vs 1 worker -> 31 h of RUSLAN in {31 * 3600 / rate / 60:.1f} min")
        big = corpora[1][0]
        prepared = tmp / "prepared"
        prepare_corpus(big, prepared, progress=False)
        print(f"DataLoader (recipe preset, 8,192-sample segments + mels, {args.loader_seconds:.0f} s each):")
        base = None
        for w in [0, *args.workers]:
            rate = bench_loader(prepared, w, args.loader_seconds)
            base = base or rate
            print(f"  num_workers={w}: {rate:8.1f} segments/s  x{rate / base:.2f} vs in-process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
