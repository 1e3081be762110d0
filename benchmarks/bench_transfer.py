"""Transfer from the pretrained universal vocoder: short V1 runs side by side, on a real voice or the fixture corpus.

Real voice (`--real`): festvox-ru, the Russian Festival voice of Debian (section main; one male speaker, 620 read
sentences, 99.5 minutes, 16 kHz). Nothing is installed: the script fetches and unpacks the package itself,

    apt-get download festvox-ru && dpkg-deb -x festvox-ru_*.deb DIR

into `--festvox DIR` (default /tmp/festvox-ru) unless DIR already holds it, and `prepare` finds the Festival layout
in it. The held-out set is fixed: `prepare --val-size 24 --seed 1234` (24 clips, 233 s, chosen by a hash of their
IDs). Each row fine-tunes V1 from the universal generator on the other 596 clips for a CPU budget (60 steps of
2 x 8,192 samples by default, one thread), saving the generator every `--val-every` steps; every saved generator is
then scored on the held-out clips as `hifigan-ruslan evaluate` scores them (resynthesis through `Vocoder`; the
evaluation's full-band mel L1, wide-band PESQ and DistillMOS of `hifigan_ruslan.evaluation.clip_metrics`). Rows:

- `finetune`: the `finetune` preset;
- `finetune, no warm-up`: the same without the discriminator warm-up;
- `recipe from universal`: the from-scratch recipe started from the universal generator;
- `finetune, full-band loss`: the `finetune` preset with its loss mel up to 11,025 Hz, as before the loss band
  followed the corpus (festvox-ru holds nothing above 8 kHz; `train` now stops its loss there).

The rule for the `finetune` defaults: the mel L1 never more than 1% above its step-0 value and below it at the end;
PESQ above its step-0 value at the end; the mean DistillMOS at most 0.05 below its step-0 value at the end.

Fixture corpus (default): the 24 synthetic clips of `../shared/fixtures/mini_ruslan` (4 held out), the trainer's own
validation mel L1 only, with the fourth row `recipe from scratch`; rule: never 2% above step 0, below it at the end.

    python benchmarks/bench_transfer.py --real --plot nbs/assets/transfer_real.png --json nbs/assets/transfer_real.json
    python benchmarks/bench_transfer.py --real --replot nbs/assets/transfer_real.json    # the table again
    python benchmarks/bench_transfer.py --real --runs finetune "recipe from universal" --json a.json &  # 2 cores:
    python benchmarks/bench_transfer.py --real --runs "finetune, no warm-up" "finetune, full-band loss" --json b.json
    python benchmarks/bench_transfer.py --real --replot a.json b.json --plot nbs/assets/transfer_real.png
    python benchmarks/bench_transfer.py --steps 48 --val-every 8 --plot nbs/assets/transfer.png   # fixture corpus
"""
from __future__ import annotations
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch
from hifigan_ruslan.config import preset_config, apply_overrides
from hifigan_ruslan.metrics import read_metrics
from hifigan_ruslan.prepare import prepare_corpus
from hifigan_ruslan.training import train

RUNS = {  # name: (preset, init_from, extra overrides)
    "finetune": ("finetune", "universal", []),
    "finetune, no warm-up": ("finetune", "universal", ["train.d_warmup_steps=0"]),
    "recipe from universal": ("recipe", "universal", []),
    "recipe from scratch": ("recipe", None, []),
    "finetune, full-band loss": ("finetune", "universal", ["mel.fmax_loss=11025"]),
}
REAL_RUNS = ["finetune", "finetune, no warm-up", "recipe from universal", "finetune, full-band loss"]
VOICE = "usr/share/festival/voices/russian/msu_ru_nsh_clunits"


def cpu_model() -> str:
    "The CPU's model name, as /proc/cpuinfo gives it (else the platform's)."
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fetch_festvox(folder: Path) -> Path:
    "The unpacked festvox-ru package in `folder`, downloaded with apt-get and unpacked with dpkg-deb if absent."
    if (folder / VOICE / "etc" / "txt.done.data").is_file():
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)  # apt-get downloads as its own user (_apt), which must be able to write here
        print(f"fetching festvox-ru (about 180 MB) into {folder} ...", flush=True)
        subprocess.run(["apt-get", "download", "festvox-ru"], cwd=tmp, check=True)
        deb = next(Path(tmp).glob("festvox-ru_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(folder)], check=True)
    return folder


# --- the fixture corpus: the trainer's own validation mel L1 -------------------------------------------------

def curve(run_dir: Path) -> list[tuple[int, float]]:
    "`(step, validation mel L1)` of every validation in a run's metrics.csv."
    rows = read_metrics(run_dir / "metrics.csv")
    return [(int(r["step"]), float(r["val_mel_l1"])) for r in rows if r.get("val_mel_l1")]


def holds_rule(points: list[tuple[int, float]], rise: float = 0.02) -> bool:
    "Never more than `rise` above the step-0 value, and below it at the end."
    start = points[0][1]
    return max(v for _, v in points) <= start * (1 + rise) and points[-1][1] < start


def common_overrides(args) -> list[str]:
    return [f"train.batch_size={args.batch}", "train.grad_accum_steps=1", f"train.segment_size={args.segment}",
            "train.num_workers=0", "train.num_val_samples=0", f"train.log_every_steps={args.val_every}"]


def run_fixture(args) -> dict[str, list[tuple[int, float]]]:
    out = Path(args.out)
    prepared = out / "prepared"
    prepare_corpus(args.corpus, prepared, val_size=args.val_clips, progress=False)
    common = common_overrides(args) + [f"train.val_every_steps={args.val_every}",
                                       "train.checkpoint_every_steps=100000"]
    curves = {}
    for name in args.runs or list(RUNS):
        preset, init_from, extra = RUNS[name]
        cfg = apply_overrides(preset_config(preset), common + extra)
        run_dir = out / name.replace(" ", "_").replace(",", "")
        started = time.monotonic()
        torch.manual_seed(0)
        train(cfg, prepared, run_dir, max_steps=args.steps, init_from=init_from, device="cpu", progress=False)
        curves[name] = curve(run_dir)
        print(f"{name}: {time.monotonic() - started:.0f} s", flush=True)
    return curves


def report_fixture(curves: dict, plot: str | None):
    steps = [s for s, _ in next(iter(curves.values()))]
    print("\nvalidation mel L1 by step")
    print("| run | " + " | ".join(map(str, steps)) + " | rule |")
    print("|---" * (len(steps) + 2) + "|")
    for name, points in curves.items():
        verdict = "holds" if holds_rule(points) else "broken"
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for _, v in points) + f" | {verdict} |")
    if plot:
        from matplotlib.figure import Figure
        fig = Figure(figsize=(8, 3.2), layout="constrained")
        pretrained, scratch = fig.subplots(1, 2)
        for name, points in curves.items():
            ax = scratch if points[0][1] > 1 else pretrained  # from scratch starts ten times higher
            ax.plot(*zip(*points), marker="o", ms=3, label=name)
        start = min(points[0][1] for points in curves.values())
        pretrained.axhline(start * 1.02, color="grey", ls=":", lw=1, label="step 0 + 2%")
        pretrained.set(xlabel="step", ylabel="validation mel L1", title="from the universal generator")
        scratch.set(xlabel="step", title="from random weights")
        for ax in (pretrained, scratch):
            ax.legend(fontsize=8)
        fig.savefig(plot, dpi=80)
        print(f"plot: {plot}")


# --- the real voice: mel L1, PESQ and DistillMOS of every saved generator --------------------------------------

METRICS = ("pesq", "mos")


def held_out(prepared: Path) -> list[tuple[str, np.ndarray]]:
    "`(ID, audio at 22,050 Hz)` of the prepared folder's validation clips."
    from hifigan_ruslan.data import read_split
    from hifigan_ruslan.inference import load_audio
    return [(uid, load_audio(prepared / "wavs" / f"{uid}.wav")) for uid, _ in read_split(prepared / "val.txt")]


def score(generator_file, clips, recording_mos: dict | None = None) -> dict:
    "Mean and per-clip mel L1 / PESQ / MOS of a generator on the clips, as `evaluate` computes them."
    from hifigan_ruslan.evaluation import clip_metrics, distillmos
    from hifigan_ruslan.inference import Vocoder
    import soxr
    vocoder = Vocoder.from_checkpoint(generator_file, device="cpu")
    rows = []
    for uid, reference in clips:
        generated = vocoder.resynthesize(reference, vocoder.sampling_rate)
        if recording_mos is None or uid not in recording_mos:  # the recordings' own MOS, once
            rows.append(clip_metrics(reference, generated, vocoder.mel_config, metrics=METRICS))
        else:
            row = clip_metrics(reference, generated, vocoder.mel_config, metrics=("pesq",))
            n = min(len(reference), len(generated))
            row["mos"] = distillmos(soxr.resample(generated[:n], vocoder.sampling_rate, 16000).astype(np.float32))
            row["mos_recording"] = recording_mos[uid]
            rows.append(row)
    keys = ("mel_l1", "pesq", "mos", "mos_recording")
    return {**{k: float(np.nanmean([r[k] for r in rows])) for k in keys},
            "clips": {k: [round(float(r[k]), 4) for r in rows] for k in keys}}


def same_weights(a, b) -> bool:
    "Whether two generator files hold identical weights (a generator frozen by the warm-up)."
    from hifigan_ruslan.checkpoints import generator_from_checkpoint
    sa, sb = (generator_from_checkpoint(p)[0].state_dict() for p in (a, b))
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def real_rule(points: list[dict], rise: float = 0.01, mos_drop: float = 0.05) -> dict:
    "The rule for the `finetune` defaults on `[{step, mel_l1, pesq, mos}, ...]`: each part, its margin, the verdict."
    first, last = points[0], points[-1]
    peak = max(p["mel_l1"] for p in points)
    parts = {"mel never 1% above": peak <= first["mel_l1"] * (1 + rise), "mel ends below": last["mel_l1"] < first["mel_l1"],
             "PESQ ends above": last["pesq"] > first["pesq"], "MOS drop <= 0.05": last["mos"] >= first["mos"] - mos_drop}
    margins = {"mel peak %": 100 * (peak / first["mel_l1"] - 1), "mel end %": 100 * (last["mel_l1"] / first["mel_l1"] - 1),
               "PESQ end": last["pesq"] - first["pesq"], "MOS end": last["mos"] - first["mos"]}
    return {"holds": all(parts.values()), "parts": parts, "margins": margins}


def paired(points: list[dict], key: str) -> tuple[float, float]:
    "Mean per-clip change of `key` from step 0 to the end, and its standard error."
    d = np.array(points[-1]["clips"][key]) - np.array(points[0]["clips"][key])
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def run_real(args) -> dict:
    from hifigan_ruslan.checkpoints import step_path
    from hifigan_ruslan.pretrained import pretrained_path
    out = Path(args.out)
    prepared = Path(args.prepared) if args.prepared else out / "prepared"
    if not args.prepared:
        corpus = Path(args.corpus) if args.corpus else fetch_festvox(Path(args.festvox))
        prepare_corpus(corpus, prepared, val_size=24, seed=1234, progress=False)
    clips = held_out(prepared)
    seconds = sum(len(a) for _, a in clips) / 22050
    print(f"held out: {len(clips)} clips, {seconds:.1f} s; CPU: {cpu_model()}, {torch.get_num_threads()} thread(s)")
    started = time.monotonic()
    start = score(pretrained_path("universal"), clips)
    recording_mos = dict(zip([u for u, _ in clips], start["clips"]["mos_recording"]))
    score_s = time.monotonic() - started
    print(f"step 0 (universal): mel L1 {start['mel_l1']:.4f}, PESQ {start['pesq']:.3f}, MOS {start['mos']:.3f} "
          f"(recordings {start['mos_recording']:.3f}); scored in {score_s:.0f} s", flush=True)
    result = {"clips": [u for u, _ in clips], "seconds": seconds, "cpu": cpu_model(), "threads": torch.get_num_threads(),
              "steps": args.steps, "batch": args.batch, "segment": args.segment, "val_every": args.val_every, "runs": {}}
    common = common_overrides(args) + ["train.val_every_steps=0", f"train.checkpoint_every_steps={args.val_every}",
                                       "train.keep_last=0"]
    for name in args.runs or REAL_RUNS:
        preset, init_from, extra = RUNS[name]
        cfg = apply_overrides(preset_config(preset), common + extra + list(args.set))
        run_dir = out / name.replace(" ", "_").replace(",", "")
        t0 = time.monotonic()
        tr, _ = train(cfg, prepared, run_dir, max_steps=args.steps, init_from=init_from, device="cpu", progress=False)
        train_s = time.monotonic() - t0
        for optimizer_file in tr.ckpt_dir.glob("do_*"):  # 0.9 GB each, and only the generators are scored
            optimizer_file.unlink()
        points, previous = [{"step": 0, **start}], pretrained_path("universal")
        for step in range(args.val_every, args.steps + 1, args.val_every):
            g = step_path(tr.ckpt_dir, "g", step)
            if step <= tr.warmup_steps and same_weights(g, previous):  # frozen by the warm-up: step 0's numbers
                points.append({**points[-1], "step": step, "frozen": True})
            else:
                points.append({"step": step, **score(g, clips, recording_mos)})
            p = points[-1]
            print(f"  {name} step {step}: mel L1 {p['mel_l1']:.4f}, PESQ {p['pesq']:.3f}, MOS {p['mos']:.3f}"
                  + (" (generator frozen)" if p.get("frozen") else ""), flush=True)
            previous = g
        total_s = time.monotonic() - t0
        band = tr.cfg.mel.fmax_loss
        result["runs"][name] = {"points": points, "train_s": round(train_s), "total_s": round(total_s),
                                "loss_band_hz": band, "overrides": extra + list(args.set)}
        print(f"{name}: {train_s:.0f} s training + {total_s - train_s:.0f} s scoring; loss band "
              f"{band or cfg.mel.sampling_rate / 2:.0f} Hz", flush=True)
        if args.json:  # written after every row, so that a long run loses nothing
            Path(args.json).write_text(json.dumps(result, indent=1))
    return result


def report_real(result: dict, plot: str | None):
    runs = result["runs"]
    print(f"\nfestvox-ru, {len(result['clips'])} held-out clips ({result['seconds']:.0f} s); V1 from universal, "
          f"{result['steps']} steps of {result['batch']} x {result['segment']} samples on {result['threads']} "
          f"thread(s) of {result['cpu']}; each row {min(r['train_s'] for r in runs.values()) / 60:.0f}-"
          f"{max(r['train_s'] for r in runs.values()) / 60:.0f} min of training")
    steps = [p["step"] for p in next(iter(runs.values()))["points"]]
    print("\n| run | " + " | ".join(f"step {s}" for s in steps) + " | PESQ per clip | MOS per clip | rule |")
    print("|---" * (len(steps) + 4) + "|")
    for name, run in runs.items():
        pts = run["points"]
        cells = [f"{p['mel_l1']:.4f} / {p['pesq']:.3f} / {p['mos']:.3f}" for p in pts]
        (dp, sp), (dm, sm) = paired(pts, "pesq"), paired(pts, "mos")
        verdict = real_rule(pts)
        m = verdict["margins"]
        print(f"| {name} | " + " | ".join(cells) + f" | {dp:+.3f} ± {sp:.3f} | {dm:+.3f} ± {sm:.3f} | "
              f"{'holds' if verdict['holds'] else 'broken'}: mel peak {m['mel peak %']:+.1f}%, end "
              f"{m['mel end %']:+.1f}%, PESQ {m['PESQ end']:+.3f}, MOS {m['MOS end']:+.3f} |")
    print(f"\n(cells: mel L1 / PESQ-wb / DistillMOS; recordings' MOS "
          f"{next(iter(runs.values()))['points'][0]['mos_recording']:.3f}; per clip: mean change step 0 -> end "
          "± its standard error)")
    if plot:
        from matplotlib.figure import Figure
        fig = Figure(figsize=(10, 3.2), layout="constrained")
        axes = fig.subplots(1, 3)
        for name, run in runs.items():
            pts = run["points"]
            for ax, key in zip(axes, ("mel_l1", "pesq", "mos")):
                ax.plot([p["step"] for p in pts], [p[key] for p in pts], marker="o", ms=3, label=name)
        first = next(iter(runs.values()))["points"][0]
        axes[0].axhline(first["mel_l1"] * 1.01, color="grey", ls=":", lw=1, label="step 0 + 1%")
        axes[1].axhline(first["pesq"], color="grey", ls=":", lw=1, label="step 0")
        axes[2].axhline(first["mos"] - 0.05, color="grey", ls=":", lw=1, label="step 0 - 0.05")
        axes[2].axhline(first["mos_recording"], color="black", ls="--", lw=1, label="recordings")
        for ax, title in zip(axes, ("mel L1 (lower is better)", "PESQ-wb (higher)", "DistillMOS (higher)")):
            ax.set(xlabel="step", title=title)
            ax.legend(fontsize=7)
        fig.savefig(plot, dpi=80)
        print(f"plot: {plot}")


def joined(results: list) -> dict:
    "Several `--real` results (rows run in parallel processes, one thread each) as one, the rows in the order of `RUNS`."
    if len(results) == 1:
        return results[0]
    first = results[0]
    for other in results[1:]:
        if other["clips"] != first["clips"] or other["steps"] != first["steps"]:
            raise SystemExit("--replot: the files hold runs on different clips or budgets")
    runs = {name: run for r in results for name, run in r["runs"].items()}
    return {**first, "runs": {name: runs[name] for name in sorted(runs, key=list(RUNS).index)}}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--real", action="store_true", help="festvox-ru, scored with mel L1, PESQ and DistillMOS")
    p.add_argument("--festvox", default="/tmp/festvox-ru", help="where festvox-ru is (or is to be) unpacked")
    p.add_argument("--prepared", default=None, help="--real: an already prepared festvox-ru (--val-size 24)")
    p.add_argument("--corpus", default=None, help="the corpus (default: festvox-ru with --real, else the fixture)")
    p.add_argument("--out", default="/tmp/bench_transfer")
    p.add_argument("--steps", type=int, default=None, help="default: 60 with --real, else 48")
    p.add_argument("--val-every", type=int, default=None, help="default: 10 with --real, else 8")
    p.add_argument("--val-clips", type=int, default=4, help="fixture corpus: held-out clips")
    p.add_argument("--batch", type=int, default=None, help="default: 2 with --real, else 1")
    p.add_argument("--segment", type=int, default=8192)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", nargs="+", default=None, choices=list(RUNS))
    p.add_argument("--set", nargs="*", default=[], help="overrides added to every row (section.key=value)")
    p.add_argument("--plot", default=None, help="write the curves as a PNG here")
    p.add_argument("--json", default=None, help="write the curves as JSON here")
    p.add_argument("--replot", nargs="+", default=None, metavar="JSON",
                   help="only report the curves of earlier runs (rows of several --real files are joined)")
    args = p.parse_args()
    real = args.real
    args.steps = args.steps or (60 if real else 48)
    args.val_every = args.val_every or (10 if real else 8)
    args.batch = args.batch or (2 if real else 1)
    if not real and args.corpus is None:
        args.corpus = str(Path(__file__).resolve().parents[2] / "shared/fixtures/mini_ruslan")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if args.replot:
        results = joined([json.loads(Path(f).read_text()) for f in args.replot])
    else:
        results = run_real(args) if real else run_fixture(args)
    (report_real if real else report_fixture)(results, args.plot)
    if args.json and (not args.replot or len(args.replot) > 1):  # a joined file is written, too
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
