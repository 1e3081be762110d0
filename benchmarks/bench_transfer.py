"""Transfer from the pretrained universal vocoder: validation mel L1 curves of short V1 runs, side by side.

Every run trains V1 for the same small budget on the same prepared corpus (the fixture corpus by default), with
batch and segment reduced so that it fits minutes on a CPU, and validates at the same steps:

- `finetune`: the `finetune` preset (small generator step, discriminator warm-up) from the universal generator;
- `finetune, no warm-up`: the same without the warm-up, to show what the warm-up adds;
- `recipe from universal`: the from-scratch recipe started from the universal generator;
- `recipe from scratch`: the recipe from random weights.

The rule for the transfer defaults: their validation mel L1 never rises more than 2% above its step-0 value and
ends below it. The script prints the curves as a table, checks the rule, and writes the curves (JSON) and a plot.

    python benchmarks/bench_transfer.py                       # ../shared/fixtures/mini_ruslan, 48 steps
    python benchmarks/bench_transfer.py --steps 80 --val-every 10 --corpus DIR --plot nbs/assets/transfer.png
"""
from __future__ import annotations
import argparse, json, time
from pathlib import Path
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
}


def curve(run_dir: Path) -> list[tuple[int, float]]:
    "`(step, validation mel L1)` of every validation in a run's metrics.csv."
    rows = read_metrics(run_dir / "metrics.csv")
    return [(int(r["step"]), float(r["val_mel_l1"])) for r in rows if r.get("val_mel_l1")]


def holds_rule(points: list[tuple[int, float]], rise: float = 0.02) -> bool:
    "Never more than `rise` above the step-0 value, and below it at the end."
    start = points[0][1]
    return max(v for _, v in points) <= start * (1 + rise) and points[-1][1] < start


def run_all(args) -> dict[str, list[tuple[int, float]]]:
    out = Path(args.out)
    prepared = out / "prepared"
    prepare_corpus(args.corpus, prepared, val_size=args.val_clips, progress=False)
    common = [f"train.batch_size={args.batch}", "train.grad_accum_steps=1", f"train.segment_size={args.segment}",
              "train.num_workers=0", "train.num_val_samples=0", f"train.val_every_steps={args.val_every}",
              "train.checkpoint_every_steps=100000", f"train.log_every_steps={args.val_every}"]
    curves = {}
    for name in args.runs:
        preset, init_from, extra = RUNS[name]
        cfg = apply_overrides(preset_config(preset), common + extra)
        run_dir = out / name.replace(" ", "_").replace(",", "")
        started = time.monotonic()
        torch.manual_seed(0)
        train(cfg, prepared, run_dir, max_steps=args.steps, init_from=init_from, device="cpu", progress=False)
        curves[name] = curve(run_dir)
        print(f"{name}: {time.monotonic() - started:.0f} s", flush=True)
    return curves


def points_start(curves: dict) -> float:
    "The step-0 value of the runs that start from the pretrained generator."
    return min(points[0][1] for points in curves.values())


def report(curves: dict, plot: str | None):
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
        pretrained.axhline(points_start(curves) * 1.02, color="grey", ls=":", lw=1, label="step 0 + 2%")
        pretrained.set(xlabel="step", ylabel="validation mel L1", title="from the universal generator")
        scratch.set(xlabel="step", title="from random weights")
        for ax in (pretrained, scratch):
            ax.legend(fontsize=8)
        fig.savefig(plot, dpi=80)
        print(f"plot: {plot}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared/fixtures/mini_ruslan"))
    p.add_argument("--out", default="/tmp/bench_transfer")
    p.add_argument("--steps", type=int, default=48)
    p.add_argument("--val-every", type=int, default=8)
    p.add_argument("--val-clips", type=int, default=4)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--segment", type=int, default=8192)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--plot", default=None, help="write the curves as a PNG here")
    p.add_argument("--json", default=None, help="write the curves as JSON here")
    p.add_argument("--replot", default=None, metavar="JSON", help="only report the curves of an earlier run")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    curves = json.loads(Path(args.replot).read_text()) if args.replot else run_all(args)
    report(curves, args.plot)
    if args.json:
        Path(args.json).write_text(json.dumps(curves, indent=1))


if __name__ == "__main__":
    main()
