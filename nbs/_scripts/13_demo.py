# %% [markdown]
# # Demo
#
# > `hifigan-ruslan demo`: every stage on the bundled real voice in minutes, then the real thing: the pretrained vocoder before and after a short fine-tune, scored by mel L1, PESQ and DistillMOS.

# %%
#| default_exp demo

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import time
from functools import partial
from pathlib import Path
from hifigan_ruslan.config import apply_overrides, preset_config
from hifigan_ruslan.devices import resolve_device
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.locations import check_output_folder
from hifigan_ruslan.clips import bundled_corpus
from hifigan_ruslan.prepare import prepare_corpus
from hifigan_ruslan.stopping import Stopped, stop_on_signal_reason
from hifigan_ruslan.training import train


# %% [markdown]
# The demo answers two questions a new user has, on a CPU and without downloading anything:
#
# 1. **Does every stage work here?** It prepares the real voice bundled with the package (24 read sentences of festvox-ru, a male Russian voice, 159 s; see [Clips and metadata](06_clips.ipynb#the-bundled-real-voice)), trains the `tiny` preset for a few hundred steps on its 20 training clips, and resynthesises the 4 validation clips (audio to mel to audio) through the `Vocoder`. A tiny model trained for minutes does not sound like speech; the point is to see preparation, training, checkpoints, validation and inference run end to end before spending GPU hours.
# 2. **What does a real vocoder sound like, and what does fine-tuning do to it?** It resynthesises the same validation clips with the official universal V1 generator (see [Pretrained vocoders](05_pretrained.ipynb)), fine-tunes it on the 20 training clips for a short budget with the `finetune` preset, and resynthesises them again. The mel L1, PESQ and DistillMOS (the perceptual score, next to the recordings' own) of both are printed side by side, and the WAVs and mel images are written for listening and looking.
#
# Without the `pretrained` extra the second part says how to install it and the first part still runs; without the `dev` extra (which carries the metrics) only the mel L1 is printed.

# %% [markdown]
# Both parts write their resynthesised clips the same way: one WAV and one mel figure per clip, and the metrics of each clip against the original recording.

# %%
#| export
def resynthesize_clips(vocoder, wavs: list[Path], out_dir: Path) -> list[dict]:
    "Audio -> mel -> audio for each WAV: `OUT/ID.wav`, its mel figure `OUT/ID.png`, and its metrics."
    import soundfile as sf
    from hifigan_ruslan.evaluation import clip_metrics, optional_metrics
    from hifigan_ruslan.inference import load_audio
    from hifigan_ruslan.mel import mel_figure
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = tuple(m for m in ("pesq", "mos") if m in optional_metrics()[0])  # with the dev extras
    rows = []
    for wav in wavs:
        reference = load_audio(wav, vocoder.sampling_rate)
        generated = vocoder.resynthesize(reference, vocoder.sampling_rate)
        sf.write(out_dir / wav.name, generated, vocoder.sampling_rate, "PCM_16")
        figure = mel_figure(reference, generated, f"{wav.stem}: real vs resynthesised", vocoder.config.mel)
        figure.savefig(out_dir / f"{wav.stem}.png", dpi=80)
        rows.append(clip_metrics(reference, generated, vocoder.config.mel, metrics=metrics))
    return rows

SCORES = (("mos", "MOS", "{:.2f}"), ("pesq", "PESQ", "{:.2f}"), ("mel_l1", "mel L1", "{:.3f}"))

def compare_scores(before: list[dict], after: list[dict] | None = None) -> str:
    "Mean MOS, PESQ and mel L1 of resynthesised clips (those measured), and how a second set changed them."
    from hifigan_ruslan.evaluation import mean_row
    means = [mean_row(rows) for rows in (before, after) if rows is not None]
    recordings = f" (recordings {means[0]['mos_recording']:.2f})" if "mos_recording" in means[0] else ""
    parts = [f"{name} " + " -> ".join(fmt.format(m[key]) for m in means) + (recordings if key == "mos" else "")
             for key, name, fmt in SCORES if key in means[0]]
    return ", ".join(parts)


# %%
show_doc(compare_scores)

# %%
before = [{"mel_l1": 0.31, "pesq": 2.4, "mos": 3.8, "mos_recording": 3.9}, {"mel_l1": 0.29, "pesq": 2.6, "mos": 4.0,
                                                                          "mos_recording": 4.1}]
after = [{**row, "mel_l1": row["mel_l1"] - 0.01, "pesq": row["pesq"] + 0.1} for row in before]
print(compare_scores(before, after))
test_eq(compare_scores(before, after),
        "MOS 3.90 -> 3.90 (recordings 4.00), PESQ 2.50 -> 2.60, mel L1 0.300 -> 0.290")
test_eq(compare_scores([{"mel_l1": 0.3}]), "mel L1 0.300")  # without the dev extras' metrics


# %% [markdown]
# The fine-tune runs V1 with one clip of 8,192 samples per step, small enough for a CPU; the discriminator warm-up is cut in proportion to the short budget, and the loss mel stops at 8 kHz, the band of the voice's 16 kHz recordings ([Training](09a_training.ipynb#the-loss-band-follows-the-corpus)). A few dozen steps cannot teach the vocoder a new voice, but they show the direction on clips it has never trained on.

# %%
#| export
def finetune_config(steps: int):
    "The `finetune` preset cut to a CPU budget of `steps` steps (one 8,192-sample clip per step)."
    cfg = preset_config("finetune")
    warmup = min(cfg.train.d_warmup_steps, steps // 3)
    overrides = ["train.batch_size=1", "train.grad_accum_steps=1", "train.num_workers=0",
                 f"train.d_warmup_steps={warmup}", f"train.val_every_steps={steps}",
                 f"train.checkpoint_every_steps={steps}", "train.num_val_samples=0"]
    return apply_overrides(cfg, overrides)

def _steps_done(first: int, last: int, run_dir: Path) -> str:
    "How many steps a run holds and how many of them this call trained: true on a rerun too."
    steps = f"{last} step{'s' * (last != 1)}"
    if first == 0:
        return steps
    now = "none" if last == first else f"{last - first}"
    return f"{steps} ({now} trained now: {run_dir} held step {first})"

def _drop_discriminators(ckpt_dir: Path) -> str:
    "Delete the `do_` files of a finished fine-tune (nothing uses them); what was freed."
    files = list(ckpt_dir.glob("do_*"))
    size = sum(f.stat().st_size for f in files)
    for f in files:
        f.unlink()
    return f"its discriminators' state ({size / 1e6:.0f} MB) deleted: nothing uses it" if files else ""

def pretrained_part(prepared: Path, wavs: list[Path], out: Path, steps: int, device: str, progress: bool,
                    stage, lines: list[str]) -> None:
    "Universal vocoder before and after `steps` fine-tuning steps; the summary's lines added to `lines`."
    from hifigan_ruslan.checkpoints import find_generator_file, resumable_step, step_path
    from hifigan_ruslan.inference import Vocoder
    try:
        universal = find_generator_file("universal")
    except UserError as e:
        lines.append(f"  pretrained vocoder: skipped ({e})")
        return
    stage(f"resynthesising them with the official universal vocoder into {out / 'universal'}")
    before = resynthesize_clips(Vocoder.from_checkpoint(universal, device=device), wavs, out / "universal")
    lines.append(f"  universal vocoder: {out / 'universal'}: {compare_scores(before)}")
    if steps < 1:
        return
    run_dir = out / "run"
    final = step_path(run_dir / "checkpoints", "g", steps)
    first = resumable_step(run_dir / "checkpoints") or 0
    if final.is_file() and not list((run_dir / "checkpoints").glob("do_*")):
        stage(f"fine-tuning: {final} is there from an earlier run, not trained again")
        done, freed = f"{steps} steps (from an earlier run)", ""
    else:
        stage(f"fine-tuning the universal vocoder for {steps} steps into {run_dir}")
        tr, reason = train(finetune_config(steps), prepared, run_dir, max_steps=steps, init_from="universal",
                           device=device, progress=progress)
        if reason.startswith("signal "):
            lines.append(f"  fine-tune run:     {run_dir} stopped at step {tr.step} with its checkpoint")
        stop_on_signal_reason(reason)
        done, freed = _steps_done(first, tr.step, run_dir), _drop_discriminators(tr.ckpt_dir)
    stage(f"resynthesising them with the fine-tuned vocoder into {out / 'finetuned'}")
    after = resynthesize_clips(Vocoder.from_checkpoint(final, device=device), wavs, out / "finetuned")
    lines += [f"  fine-tuned {done}: {out / 'finetuned'}; generator {final}" + (f"; {freed}" if freed else ""),
              f"  before -> after fine-tuning, {len(wavs)} held-out clips: {compare_scores(before, after)}"]


# %% [markdown]
# The demo runs its stages in order, each announced on its own line as it starts. A stop (Ctrl-C, or SIGTERM from
# `timeout` or a scheduler) ends the demo as a whole: a training stage finishes its step and writes its checkpoint,
# no later stage starts, and the summary says what was done, where, and why it stopped; the command line exits with
# 130 or 143 ([Stopping](08b_stopping.ipynb#a-stop-is-a-stop-for-every-command)). Run again, the demo goes on: the
# prepared clips are reused, each run resumes from its checkpoint, and the summary says how many steps were
# trained now and how many an earlier run had.

# %%
#| export
class _Stages:
    "Announces each stage as it starts (`demo 2/6: ...`), and remembers which one is running."
    def __init__(self, total: int, say):
        self.total, self.say, self.n, self.current = total, say, 0, ""

    def __call__(self, what: str):
        self.n, self.current = self.n + 1, what
        self.say(f"demo {self.n}/{self.total}: {what}")

def run_demo(out, steps: int = 300, finetune_steps: int = 30, device: str = "cpu", progress: bool = True,
             say=partial(print, flush=True)) -> tuple[str, str | None]:
    "Prepare, train `tiny`, resynthesise; the universal vocoder before/after fine-tuning; `(summary, stop)`."
    from hifigan_ruslan.checkpoints import find_generator_file, resumable_step
    from hifigan_ruslan.inference import Vocoder
    if steps < 1:
        raise UserError(f"demo steps {steps}: must be at least 1")
    if finetune_steps < 0:
        raise UserError(f"fine-tuning steps {finetune_steps}: must be 0 or more")
    resolve_device(device)  # a wrong device, or an output folder that cannot be written: before any work
    out, start, cfg = check_output_folder(out), time.monotonic(), preset_config("tiny")
    stage, lines = _Stages(4 + 2 * (finetune_steps > 0), say), []
    try:
        stage(f"preparing the bundled real voice (24 festvox-ru clips) into {out / 'prepared'}")
        prepare_corpus(bundled_corpus(), out / "prepared", cfg=cfg, progress=progress)
        lines.append(f"  prepared corpus:   {out / 'prepared'}")
        stage(f"training the tiny preset to step {steps} into {out / 'run'}")
        first = resumable_step(out / "run" / "checkpoints") or 0
        tr, reason = train(cfg, out / "prepared", out / "run", max_steps=steps, device=device,
                           progress=progress)
        best = "no validation yet" if tr.best_step is None else \
            f"validation mel L1 {tr.best_val:.3f} (step {tr.best_step})"
        lines += [f"  tiny run:          {tr.run_dir}: {_steps_done(first, tr.step, tr.run_dir)}, {best}",
                  f"  loss curves:       {tr.run_dir / 'plots' / 'losses.png'}",
                  f"  metrics:           {tr.run_dir / 'metrics.csv'}",
                  f"  checkpoints:       {tr.ckpt_dir}"]
        stop_on_signal_reason(reason)
        wavs = [out / "prepared" / "wavs" / f"{uid}.wav" for uid in tr.val_set.ids]
        stage(f"resynthesising the {len(wavs)} validation clips with the tiny generator into {out / 'resynth'}")
        tiny = Vocoder.from_checkpoint(find_generator_file(tr.run_dir), device=device)
        resynthesize_clips(tiny, wavs, out / "resynth")
        lines += [f"  resynthesised:     {out / 'resynth'} ({len(wavs)} WAVs with mel images)",
                  f"  best generator:    {tr.ckpt_dir / 'generator_best.pt'}"]
        pretrained_part(out / "prepared", wavs, out / "pretrained", finetune_steps, device, progress, stage,
                        lines)
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        head = f"Demo done in {time.monotonic() - start:.0f} s; {out} holds {size / 1e6:.0f} MB."
        reason = None
    except Stopped as e:
        reason = e.reason
        head = (f"Demo stopped by {reason.split()[1]} after {time.monotonic() - start:.0f} s, in stage "
                f"{stage.n}/{stage.total} ({stage.current}); no later stage started; the same command goes on. "
                + ("Done:" if lines else "Nothing done yet."))
    return "\n".join([head, *lines]), reason


# %%
show_doc(run_demo)

# %% [markdown]
# The demo cut to a few steps; `hifigan-ruslan demo --out DIR` runs it in full (300 tiny steps and 30 fine-tuning steps). The fine-tune's discriminators are deleted once it is done (961 MB for V1's: nothing uses them), and its run sits beside the clips it made, in `pretrained/run/`, as the `tiny` run sits beside `resynth/`.

# %%
import contextlib, io, shutil, tempfile
from hifigan_ruslan.evaluation import optional_metrics

# %%
#| slow
work = Path(tempfile.mkdtemp())
def say(line: str):
    print(line.replace(str(work), "WORK"))

summary, reason = run_demo(work / "demo", steps=2, finetune_steps=2, progress=False, say=say)
print(summary.replace(str(work), "WORK"))
test_eq(reason, None)
val_clips = (work / "demo" / "prepared" / "val.txt").read_text().splitlines()
for folder in ("resynth", "pretrained/universal", "pretrained/finetuned"):
    test_eq(len(list((work / "demo" / folder).glob("*.wav"))), len(val_clips))
test_eq(len(val_clips), 4)
scores = next(line for line in summary.splitlines() if "before -> after fine-tuning" in line)
assert "4 held-out clips: " in scores and "mel L1 " in scores, scores
if "mos" in optional_metrics()[0]:
    assert "MOS " in scores and "(recordings " in scores, scores
test_eq(sorted(p.name for p in (work / "demo" / "pretrained").iterdir()), ["finetuned", "run", "universal"])
test_eq([p.name for p in (work / "demo" / "pretrained" / "run" / "checkpoints").glob("do_*")], [])
test_fail(lambda: run_demo(work / "demo0", steps=0), contains="must be at least 1")
test_fail(lambda: run_demo(work / "demo0", device="gpu"), contains="device 'gpu': not a device name")
assert not (work / "demo0").exists()

# %% [markdown]
# Run again, the demo trains nothing more, and says so:

# %%
#| slow
with contextlib.redirect_stdout(io.StringIO()):  # the stages and the runs' logs: only the summary is shown
    again, _ = run_demo(work / "demo", steps=2, finetune_steps=2, progress=False)
print("\n".join(line for line in again.splitlines() if "steps" in line).replace(str(work), "WORK"))
assert "2 steps (none trained now: " in again, again
assert "fine-tuned 2 steps (from an earlier run)" in again, again

# %% [markdown]
# A SIGTERM while the `tiny` run trains (sent here once its baseline validation is logged, as `timeout` or a
# scheduler would) stops the demo as a whole: the run writes its checkpoint, no later stage starts, and the summary
# says where it stopped.

# %%
import os, signal, threading
from hifigan_ruslan.stopping import stop_signals


# %%
def signal_when_logged(log: Path, text: str, signum: int):
    "Send `signum` to this process once `log` holds `text`."
    def wait():
        while not (log.is_file() and text in log.read_text()):
            time.sleep(0.05)
        os.kill(os.getpid(), signum)
    threading.Thread(target=wait, daemon=True).start()


# %%
#| slow
signal_when_logged(work / "stopped" / "run" / "train.log", "validation mel L1", signal.SIGTERM)
with stop_signals():
    summary, reason = run_demo(work / "stopped", steps=10_000, progress=False, say=say)
print(summary.replace(str(work), "WORK"))
test_eq(reason, "signal SIGTERM")
test_eq(sorted(p.name for p in (work / "stopped").iterdir()), ["prepared", "run"])  # no later stage
test_eq(len(list((work / "stopped" / "run" / "checkpoints").glob("g_*"))), 1)
assert summary.startswith("Demo stopped by SIGTERM after "), summary
shutil.rmtree(work)
