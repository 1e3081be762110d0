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
from pathlib import Path
from hifigan_ruslan.config import UserError, apply_overrides, preset_config, resolve_device
from hifigan_ruslan.locations import check_output_folder
from hifigan_ruslan.clips import bundled_corpus
from hifigan_ruslan.prepare import prepare_corpus
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

def pretrained_part(prepared: Path, wavs: list[Path], out: Path, steps: int, device: str,
                    progress: bool) -> list[str]:
    "Universal vocoder before and after `steps` fine-tuning steps; the summary lines."
    from hifigan_ruslan.checkpoints import find_generator_file, step_path
    from hifigan_ruslan.inference import Vocoder
    try:
        universal = find_generator_file("universal")
    except UserError as e:
        return [f"  pretrained vocoder: skipped ({e})"]
    before = resynthesize_clips(Vocoder.from_checkpoint(universal, device=device), wavs, out / "universal")
    lines = [f"  universal vocoder: {out / 'universal'}: {compare_scores(before)}"]
    if steps < 1:
        return lines
    tr, _ = train(finetune_config(steps), prepared, out / "finetune", max_steps=steps, init_from="universal",
                  device=device, progress=progress)
    tuned = Vocoder.from_checkpoint(step_path(tr.ckpt_dir, "g", tr.step), device=device)  # the final state
    after = resynthesize_clips(tuned, wavs, out / "finetuned")
    lines += [f"  fine-tuned {steps} steps: {out / 'finetuned'}; run: {tr.run_dir}",
              f"  before -> after fine-tuning, {len(wavs)} held-out clips: {compare_scores(before, after)}"]
    return lines


# %%
#| export
def run_demo(out, steps: int = 300, finetune_steps: int = 30, device: str = "cpu",
             progress: bool = True) -> str:
    "Prepare the bundled voice, train `tiny`, resynthesise; then universal vocoder before/after fine-tuning."
    from hifigan_ruslan.checkpoints import find_generator_file
    from hifigan_ruslan.inference import Vocoder
    if steps < 1:
        raise UserError(f"demo steps {steps}: must be at least 1")
    if finetune_steps < 0:
        raise UserError(f"fine-tuning steps {finetune_steps}: must be 0 or more")
    resolve_device(device)  # a wrong device, or an output folder that cannot be written: before any work
    out, start, cfg = check_output_folder(out), time.monotonic(), preset_config("tiny")
    prepare_corpus(bundled_corpus(), out / "prepared", cfg=cfg, progress=progress)
    tr, _ = train(cfg, out / "prepared", out / "run", max_steps=steps, device=device, progress=progress)
    wavs = [out / "prepared" / "wavs" / f"{uid}.wav" for uid in tr.val_set.ids]
    tiny = Vocoder.from_checkpoint(find_generator_file(tr.run_dir), device=device)
    resynthesize_clips(tiny, wavs, out / "resynth")
    lines = [f"  prepared corpus:   {out / 'prepared'}",
             f"  loss curves:       {tr.run_dir / 'plots' / 'losses.png'}",
             f"  metrics:           {tr.run_dir / 'metrics.csv'}",
             f"  samples per step:  {tr.run_dir / 'samples'}",
             f"  resynthesised:     {out / 'resynth'} ({len(wavs)} WAVs with mel images)",
             f"  best generator:    {tr.ckpt_dir / 'generator_best.pt'}"]
    lines += pretrained_part(out / "prepared", wavs, out / "pretrained", finetune_steps, device, progress)
    head = (f"Demo done in {time.monotonic() - start:.0f} s: tiny preset {tr.step} steps, validation mel L1 "
            f"{tr.best_val:.3f} (step {tr.best_step}).")
    return "\n".join([head, *lines])


# %%
show_doc(run_demo)

# %% [markdown]
# The demo cut to a few steps; `hifigan-ruslan demo --out DIR` runs it in full (300 tiny steps and 30 fine-tuning steps).

# %%
import shutil, tempfile
from hifigan_ruslan.evaluation import optional_metrics

# %%
#| slow
work = Path(tempfile.mkdtemp())
summary = run_demo(work / "demo", steps=2, finetune_steps=2, progress=False)
print(summary.replace(str(work), "WORK"))
val_clips = (work / "demo" / "prepared" / "val.txt").read_text().splitlines()
for folder in ("resynth", "pretrained/universal", "pretrained/finetuned"):
    test_eq(len(list((work / "demo" / folder).glob("*.wav"))), len(val_clips))
test_eq(len(val_clips), 4)
scores = next(line for line in summary.splitlines() if "before -> after fine-tuning" in line)
assert "4 held-out clips: " in scores and "mel L1 " in scores, scores
if "mos" in optional_metrics()[0]:
    assert "MOS " in scores and "(recordings " in scores, scores
test_fail(lambda: run_demo(work / "demo0", steps=0), contains="must be at least 1")
test_fail(lambda: run_demo(work / "demo0", device="gpu"), contains="device 'gpu': not a device name")
assert not (work / "demo0").exists()
shutil.rmtree(work)
