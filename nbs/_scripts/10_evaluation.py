# %% [markdown]
# # Evaluation
#
# > Score a checkpoint on the validation clips: mel L1, multi-resolution STFT distance, PESQ, STOI, periodicity and voicing, with a figure per clip; `hifigan-ruslan evaluate`.

# %%
#| default_exp evaluation

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import argparse, csv, importlib, math, sys, types
from functools import lru_cache
from pathlib import Path
import numpy as np
import torch
from hifigan_ruslan.config import MelConfig
from hifigan_ruslan.mel import mel_spectrogram, mel_figure
from hifigan_ruslan.inference import Vocoder, load_audio

# %% [markdown]
# A vocoder is evaluated by **resynthesis**: each held-out recording is turned into its mel, the mel back into audio, and the two recordings are compared. No single number captures what a listener hears, so the table has several, each sensitive to a different failure:
#
# | metric | better | what it catches |
# |---|---|---|
# | **mel L1** | lower | the validation error of training: L1 between the full-band loss mels (`for_loss=True`); spectral envelope errors, missing high band |
# | **MR-STFT** | lower | spectral convergence plus log-magnitude L1, averaged over three STFT resolutions (512, 1024, 2048 points): fine spectral detail the mel pools away |
# | **PESQ** (wide band, 16 kHz) | higher, 1.0 to 4.64 | perceived quality as a telephony-standard model of a listener rates it; very sensitive to noise and phase smearing |
# | **STOI** | higher, 0 to 1 | intelligibility: whether the short-time envelopes of the speech bands survive |
# | **periodicity error** | lower | RMSE between the two recordings' periodicity (CREPE's voicing confidence per 10 ms): the metallic or buzzy buzz of a vocoder that cannot hold a pitch |
# | **V/UV F1** | higher, 0 to 1 | agreement on which frames are voiced (periodicity above 0.5): breathy voicing or voiced noise |
#
# PESQ, STOI and the pitch metrics come from optional packages (`pesq`, `pystoi`, `torchcrepe` with its bundled 'tiny' model, which needs no download). A missing package removes its columns with a one-line note; it never stops the evaluation.
#
# To compare two checkpoints, say a model fine-tuned from the official weights and one trained from scratch, evaluate both on the same prepared folder and read the two tables side by side: the clips and the metric code are identical, so the differences are the models'.

# %% [markdown]
# ## Spectral distances

# %%
#| export
STFT_RESOLUTIONS = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))  # (n_fft, hop, window)

def mr_stft_distance(reference: torch.Tensor, generated: torch.Tensor, resolutions=STFT_RESOLUTIONS) -> float:
    "Multi-resolution STFT distance: spectral convergence + mean |log magnitude difference|, averaged over resolutions."
    total = 0.0
    for n_fft, hop, win in resolutions:
        window = torch.hann_window(win)
        mags = [torch.stft(x.float(), n_fft, hop, win, window, return_complex=True).abs().clamp(min=1e-7)
                for x in (reference, generated)]
        convergence = torch.linalg.norm(mags[0] - mags[1]) / torch.linalg.norm(mags[0])
        total += float(convergence + (mags[0].log() - mags[1].log()).abs().mean())
    return total / len(resolutions)

def mel_l1(reference: torch.Tensor, generated: torch.Tensor, cfg: MelConfig | None = None) -> float:
    "Mean |difference| of the full-band loss mels, the number the trainer reports as validation error."
    return float((mel_spectrogram(reference, cfg, for_loss=True) - mel_spectrogram(generated, cfg, for_loss=True)).abs().mean())


# %%
show_doc(mr_stft_distance)


# %% [markdown]
# ## Optional metrics
#
# `torchcrepe` itself only needs `torchaudio` to read audio files, which this module never asks it to do. Some installations carry a `torchaudio` build that does not match the installed `torch` and fails on import (or none at all); in that case `torchcrepe` is imported with an empty stand-in for `torchaudio`, visible only during that import, so that the pitch metrics still work.

# %%
#| export
def _import_torchcrepe():
    try: return importlib.import_module("torchcrepe")
    except (OSError, ImportError):  # torchaudio missing or not matching torch; torchcrepe only uses it to read files
        for name in [k for k in sys.modules if k.split(".")[0] in ("torchaudio", "torchcrepe")]: del sys.modules[name]
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
        try: return importlib.import_module("torchcrepe")
        finally: del sys.modules["torchaudio"]

@lru_cache(maxsize=1)
def optional_metrics() -> tuple[tuple[str, ...], tuple[str, ...]]:
    "`(available metric names, notes on unavailable ones)` among PESQ, STOI and the CREPE pitch metrics."
    names, notes = [], []
    for columns, module, load in [(("pesq",), "pesq", lambda: importlib.import_module("pesq")),
                                  (("stoi",), "pystoi", lambda: importlib.import_module("pystoi")),
                                  (("periodicity_error", "vuv_f1"), "torchcrepe", _import_torchcrepe)]:
        try: load(); names += columns
        except Exception as e: notes.append(f"{', '.join(columns)} omitted: {module} unavailable ({type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''})")
    return tuple(names), tuple(notes)


# %%
print(optional_metrics())

# %% [markdown]
# Periodicity and voicing use CREPE at 16 kHz with 10 ms frames and the `tiny` model (fast on a CPU, and shipped inside the package). Frames whose periodicity exceeds `VOICED_THRESHOLD` count as voiced.

# %%
#| export
VOICED_THRESHOLD = 0.5

def crepe_periodicity(audio_16k: np.ndarray) -> np.ndarray:
    "Periodicity (CREPE voicing confidence, 0..1) per 10 ms frame of 16 kHz audio, with the 'tiny' model on CPU."
    crepe = _import_torchcrepe()
    with torch.inference_mode():
        _, periodicity = crepe.predict(torch.from_numpy(audio_16k)[None], 16000, hop_length=160, fmin=50.0, fmax=550.0,
                                       model="tiny", decoder=crepe.decode.argmax, return_periodicity=True,
                                       batch_size=512, device="cpu", pad=True)
    return periodicity[0].numpy()

def voicing_f1(reference_voiced: np.ndarray, generated_voiced: np.ndarray) -> float:
    "F1 of the generated voiced/unvoiced decisions against the reference ones (1.0 when both are all unvoiced)."
    tp = np.sum(reference_voiced & generated_voiced)
    wrong = np.sum(reference_voiced != generated_voiced)
    return 1.0 if tp + wrong == 0 else float(2 * tp / (2 * tp + wrong))


# %% [markdown]
# ## Scoring one clip

# %%
#| export
def clip_metrics(reference: np.ndarray, generated: np.ndarray, cfg: MelConfig | None = None,
                 metrics: tuple[str, ...] | None = None) -> dict[str, float]:
    "All metrics for one pair of mono float32 clips at the mel config's rate (trimmed to the shorter one)."
    import soxr
    cfg = cfg or MelConfig()
    metrics = optional_metrics()[0] if metrics is None else metrics
    n = min(len(reference), len(generated))
    ref, gen = np.asarray(reference[:n], np.float32), np.asarray(generated[:n], np.float32)
    ref_t, gen_t = torch.from_numpy(ref), torch.from_numpy(gen)
    row = {"seconds": n / cfg.sampling_rate, "mel_l1": mel_l1(ref_t, gen_t, cfg), "mr_stft": mr_stft_distance(ref_t, gen_t)}
    ref16, gen16 = (soxr.resample(x, cfg.sampling_rate, 16000).astype(np.float32) for x in (ref, gen))
    if "pesq" in metrics:
        from pesq import pesq
        try: row["pesq"] = float(pesq(16000, ref16, gen16, "wb"))
        except Exception: row["pesq"] = math.nan  # e.g. no speech detected in the reference
    if "stoi" in metrics:
        from pystoi import stoi
        row["stoi"] = float(stoi(ref, gen, cfg.sampling_rate, extended=False))
    if "periodicity_error" in metrics:
        p_ref, p_gen = crepe_periodicity(ref16), crepe_periodicity(gen16)
        row["periodicity_error"] = float(np.sqrt(np.mean((p_ref - p_gen) ** 2)))
        row["vuv_f1"] = voicing_f1(p_ref > VOICED_THRESHOLD, p_gen > VOICED_THRESHOLD)
    return row


# %%
show_doc(clip_metrics)

# %% [markdown]
# The metrics must say "perfect" for a clip compared with itself, and get worse, in the right direction, as noise is added:

# %%
ref_dir = Path("testdata/reference")
speech = np.load(ref_dir / "mel_espeak_ru.npz")["audio"][:22050 * 2]
rng = np.random.default_rng(0)
rows = {level: clip_metrics(speech, (speech + level * rng.standard_normal(len(speech))).astype(np.float32))
        for level in (0.0, 0.003, 0.03)}
for level, row in rows.items(): print(f"noise {level:<5}", {k: round(v, 3) for k, v in row.items()})
same, light, heavy = rows.values()
assert same["mel_l1"] < 1e-6 and same["mr_stft"] < 1e-6
assert light["mel_l1"] < heavy["mel_l1"] and light["mr_stft"] < heavy["mr_stft"]
if "pesq" in same: assert same["pesq"] > 4.5 > light["pesq"] > heavy["pesq"]
if "stoi" in same: assert same["stoi"] > 0.999 and light["stoi"] > heavy["stoi"]
if "vuv_f1" in same: assert same["vuv_f1"] == 1.0 and same["periodicity_error"] < 1e-6 and heavy["periodicity_error"] > 0.01


# %% [markdown]
# ## Figures
#
# One figure per clip: the ground-truth log-mel, the generated one, and their difference (generated minus reference, in natural-log units, so `+1` means `e` times too loud). Horizontal stripes in the difference point to a band the model misses; vertical ones to transients.

# %%
import io
from IPython.display import Image

# %%
noisy = (speech + 0.03 * rng.standard_normal(len(speech))).astype(np.float32)
buf = io.BytesIO()
mel_figure(speech, noisy, "the reference clip with noise added").savefig(buf, format="jpg", dpi=70, pil_kwargs={"quality": 75})
Image(buf.getvalue(), format="jpeg")  # JPEG here only to keep the notebook small; evaluate writes PNG

# %% [markdown]
# ## Evaluating a checkpoint
#
# `evaluate_checkpoint` resynthesises the validation clips of a prepared folder (`wavs/ID.wav` and `val.txt` with `ID|text` lines, as written by `hifigan-ruslan prepare`) and writes into `out`: `metrics.csv` and `metrics.md` (one row per clip, then the mean), `figures/ID.png`, and the resynthesised `audio/ID.wav` for listening. A clip that cannot be read gets a one-line error and the others are still scored.

# %%
#| export
COLUMNS = ("seconds", "mel_l1", "mr_stft", "pesq", "stoi", "periodicity_error", "vuv_f1")

def _mean_row(rows: list[dict]) -> dict:
    keys = [k for k in COLUMNS if rows and k in rows[0]]
    return {k: float(np.nanmean([r[k] for r in rows])) if any(not math.isnan(r[k]) for r in rows) else math.nan for k in keys}

def write_tables(rows: list[dict], out: Path, title: str) -> tuple[Path, Path]:
    "Write `metrics.csv` and `metrics.md` (per clip, then the mean)."
    keys = [k for k in COLUMNS if k in rows[0]]
    mean = {"clip": "mean", **_mean_row(rows)}
    with open(out / "metrics.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["clip", *keys])
        w.writeheader()
        for r in [*rows, mean]: w.writerow({k: (r[k] if k == "clip" else f"{r[k]:.4f}") for k in ["clip", *keys]})
    fmt = lambda v: "n/a" if math.isnan(v) else f"{v:.3f}"
    lines = [f"# {title}", "", "| clip | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    lines += ["| " + r["clip"] + " | " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    lines.append("| **mean** | " + " | ".join(f"**{fmt(mean[k])}**" for k in keys) + " |")
    (out / "metrics.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out / "metrics.csv", out / "metrics.md"

def evaluate_checkpoint(vocoder: Vocoder, data, out, limit: int | None = None, title: str = "evaluation",
                        progress: bool = True) -> tuple[list[dict], list[str]]:
    "Score `vocoder` on the validation clips of the prepared folder `data`; returns `(rows, errors)` and writes tables, figures, audio."
    import soundfile as sf
    from tqdm.auto import tqdm
    from hifigan_ruslan.data import read_split
    data, out = Path(data), Path(out)
    if not data.is_dir(): raise NotADirectoryError(f"{data}: not a prepared data folder")
    clips = read_split(data / "val.txt")[:limit]
    if not clips: raise ValueError(f"{data / 'val.txt'}: no validation clips")
    for sub in ("figures", "audio"): (out / sub).mkdir(parents=True, exist_ok=True)
    rows, errors = [], []
    for uid, _ in tqdm(clips, desc="evaluate", unit="clip", disable=not progress):
        try: reference = load_audio(data / "wavs" / f"{uid}.wav", vocoder.sampling_rate)
        except (ValueError, FileNotFoundError) as e:
            errors.append(str(e)); tqdm.write(f"hifigan-ruslan evaluate: error: {e}", file=sys.stderr); continue
        generated = vocoder.resynthesize(reference, vocoder.sampling_rate)
        rows.append({"clip": uid, **clip_metrics(reference, generated, vocoder.mel_config)})
        sf.write(out / "audio" / f"{uid}.wav", np.clip(generated, -1, 1), vocoder.sampling_rate, subtype="PCM_16")
        mel_figure(reference, generated, f"{uid}: mel L1 {rows[-1]['mel_l1']:.3f}", vocoder.mel_config).savefig(out / "figures" / f"{uid}.png", dpi=80)
    if rows: write_tables(rows, out, title)
    return rows, errors


# %%
show_doc(evaluate_checkpoint)


# %% [markdown]
# ## Command line

# %%
#| export
def main_evaluate(argv: list[str] | None = None) -> int:
    "`hifigan-ruslan evaluate`: resynthesise the validation clips and write metric tables and figures."
    p = argparse.ArgumentParser(prog="hifigan-ruslan evaluate", description="Score a checkpoint on the validation clips of a prepared folder.")
    p.add_argument("--checkpoint", required=True, help="g_XXXXXXXX / generator_best.pt of this project, or an official g_ file")
    p.add_argument("--preset", choices=["v1", "v2", "v3", "tiny"], help="generator preset of an official checkpoint (inferred if omitted)")
    p.add_argument("--data", required=True, help="folder written by `hifigan-ruslan prepare` (wavs/, val.txt)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N validation clips")
    p.add_argument("--out", required=True, help="output folder: metrics.csv, metrics.md, figures/, audio/")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if available")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1: raise ValueError(f"--limit {args.limit}: must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available(): raise ValueError("--device cuda: no CUDA device available")
    for note in optional_metrics()[1]: print(f"note: {note}")
    vocoder = Vocoder.from_checkpoint(args.checkpoint, args.preset, args.device)
    out = Path(args.out)
    rows, errors = evaluate_checkpoint(vocoder, args.data, out, args.limit, title=f"{Path(args.checkpoint).name} on {Path(args.data).name}")
    if not rows: raise ValueError(f"{args.data}: none of the validation clips could be read")
    mean = _mean_row(rows)
    print(f"evaluate: {len(rows)} clips, mean " + ", ".join(f"{k} {v:.3f}" for k, v in mean.items() if k != "seconds")
          + (f"; {len(errors)} clip(s) failed" if errors else ""))
    print(f"evaluate: wrote {out / 'metrics.csv'}, {out / 'metrics.md'}, {len(rows)} figures in {out / 'figures'}, audio in {out / 'audio'}")
    return 0 if not errors else 1


# %% [markdown]
# On a small prepared folder: the bundled RUSLAN-shaped corpus, prepared with two validation clips, plus a third line in `val.txt` whose WAV does not exist, to show that a broken clip costs only itself. The checkpoint is an untrained `tiny` generator, so the scores are those of noise (PESQ near 1, STOI low); with a trained checkpoint the same command gives the numbers to compare.

# %%
#| slow
import subprocess, tempfile
from hifigan_ruslan.checkpoints import atomic_save
from hifigan_ruslan.config import preset_config, config_to_dict
from hifigan_ruslan.data import bundled_corpus, prepare_corpus, read_split
from hifigan_ruslan.generator import Generator

# %%
#| slow
tmp = Path(tempfile.mkdtemp())
prepare_corpus(bundled_corpus(), tmp / "prepared", workers=1, val_size=2, progress=False)
scored = [uid for uid, _ in read_split(tmp / "prepared" / "val.txt")]
with open(tmp / "prepared" / "val.txt", "a", encoding="utf-8") as f: f.write("999999_RUSLAN|a clip whose WAV is missing\n")
cfg = preset_config("tiny")
torch.manual_seed(0)
ckpt = atomic_save({"generator": Generator(cfg.generator).state_dict(), "config": config_to_dict(cfg), "steps": 0}, tmp / "g_00000000")
res = subprocess.run([sys.executable, "-m", "hifigan_ruslan", "evaluate", "--checkpoint", str(ckpt), "--data", str(tmp / "prepared"),
                      "--out", str(tmp / "eval"), "--device", "cpu"], capture_output=True, text=True, timeout=600)
print(res.stdout.replace(str(tmp), "tmp")); print("\n".join(l for l in res.stderr.splitlines() if "error:" in l).replace(str(tmp), "tmp"))
assert res.returncode == 1 and "999999_RUSLAN" in res.stderr
table = (tmp / "eval" / "metrics.md").read_text()
print(table)
assert all(u in table for u in scored) and "**mean**" in table
assert sorted(f.stem for f in (tmp / "eval" / "figures").glob("*.png")) == sorted(scored)
with open(tmp / "eval" / "metrics.csv") as f: csv_rows = list(csv.DictReader(f))
assert [r["clip"] for r in csv_rows] == [*scored, "mean"] and float(csv_rows[-1]["mel_l1"]) > 0.5

# %% [markdown]
# Bad arguments are one-line errors with status 2:

# %%
#| slow
for args in [["--data", str(tmp / "nowhere")], ["--data", str(tmp / "prepared"), "--limit", "0"]]:
    res = subprocess.run([sys.executable, "-m", "hifigan_ruslan", "evaluate", "--checkpoint", str(ckpt), "--out", str(tmp / "e2"), *args],
                         capture_output=True, text=True, timeout=300)
    print(res.stderr.strip().replace(str(tmp), "tmp"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1

# %%
#| slow
import shutil

# %%
#| slow
shutil.rmtree(tmp)
