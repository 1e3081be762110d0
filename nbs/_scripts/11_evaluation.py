# %% [markdown]
# # Evaluation
#
# > Score a checkpoint on the validation clips: mel L1, multi-resolution STFT distance, PESQ, STOI, periodicity and voicing, DistillMOS, with a figure per clip and the tables of results.

# %%
#| default_exp evaluation

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import csv, dataclasses, importlib, math, sys, types
from functools import lru_cache
from pathlib import Path
import numpy as np
import torch
from hifigan_ruslan.config import MelConfig
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.locations import check_output_folder
from hifigan_ruslan.losses import loss_mel, mel_loss
from hifigan_ruslan.mel import mel_figure
from hifigan_ruslan.inference import Vocoder, load_audio


# %% [markdown]
# ## Markdown tables
#
# Results end up in Markdown files (`metrics.md` here, the results page of a training run elsewhere), so one
# function writes every table: a header row, the separator, then one line per row, cells as given.

# %%
#| export
def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    "A GitHub-flavoured Markdown table (no trailing newline); each row must have as many cells as the header."
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"markdown_table: a row of {len(row)} cells under a header of {len(header)}")
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


# %%
show_doc(markdown_table)

# %%
print(markdown_table(["clip", "mel_l1"], [["000001_RUSLAN", "0.231"], ["**mean**", "**0.231**"]]))
test_eq(markdown_table(["a", "b"], [["1", "2"]]), "| a | b |\n| --- | --- |\n| 1 | 2 |")
test_eq(markdown_table(["a"], []), "| a |\n| --- |")
test_fail(lambda: markdown_table(["a", "b"], [["1"]]), contains="a row of 1 cells under a header of 2")

# %% [markdown]
# A vocoder is evaluated by **resynthesis**: each held-out recording is turned into its mel, the mel back into audio, and the two recordings are compared. No single number captures what a listener hears, so the table has several, each sensitive to a different failure:
#
# | metric | better | what it catches |
# |---|---|---|
# | **mel L1** | lower | the validation error of training on a full-band corpus: L1 between the loss mels (`for_loss=True`) up to 11,025 Hz, whatever band a run's own loss used, so that runs compare; spectral envelope errors, missing high band |
# | **MR-STFT** | lower | spectral convergence plus log-magnitude L1, averaged over three STFT resolutions (512, 1024, 2048 points): fine spectral detail the mel pools away |
# | **PESQ** (wide band, 16 kHz) | higher, 1.0 to 4.64 | perceived quality as a telephony-standard model of a listener rates it; very sensitive to noise and phase smearing |
# | **STOI** | higher, 0 to 1 | intelligibility: whether the short-time envelopes of the speech bands survive |
# | **periodicity error** | lower | RMSE between the two recordings' periodicity (CREPE's voicing confidence per 10 ms): the metallic or buzzy buzz of a vocoder that cannot hold a pitch |
# | **V/UV F1** | higher, 0 to 1 | agreement on which frames are voiced (periodicity above 0.5): breathy voicing or voiced noise |
# | **MOS** (DistillMOS, 16 kHz) | higher, 1 to 5 | how listeners would rate the resynthesis on its own, next to the recording's own score (`mos_recording`): buzz, muffling, noise that a listener hears |
#
# PESQ, STOI, the pitch metrics and MOS come from optional packages, all in the `dev` extra (`pesq`, `pystoi`, `torchcrepe` with its bundled 'tiny' model and `distillmos` with its weights, neither of which downloads anything). A missing package removes its columns with a one-line note; it never stops the evaluation.
#
# To compare two checkpoints, say a model fine-tuned from the official weights and one trained from scratch, evaluate both on the same prepared folder and read the two tables side by side: the clips and the metric code are identical, so the differences are the models'.

# %% [markdown]
# ## Spectral distances

# %%
#| export
STFT_RESOLUTIONS = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))  # (n_fft, hop, window)

def mr_stft_distance(reference: torch.Tensor, generated: torch.Tensor, resolutions=STFT_RESOLUTIONS) -> float:
    "Multi-resolution STFT distance: spectral convergence + mean |log magnitude difference|, per resolution."
    total = 0.0
    for n_fft, hop, win in resolutions:
        window = torch.hann_window(win)
        mags = [torch.stft(x.float(), n_fft, hop, win, window, return_complex=True).abs().clamp(min=1e-7)
                for x in (reference, generated)]
        convergence = torch.linalg.norm(mags[0] - mags[1]) / torch.linalg.norm(mags[0])
        total += float(convergence + (mags[0].log() - mags[1].log()).abs().mean())
    return total / len(resolutions)



# %%
show_doc(mr_stft_distance)


# %% [markdown]
# The mel L1 is the training loss itself, `losses.mel_loss`, on the full band (up to half the sampling rate): on a
# corpus recorded at 22,050 Hz or more, such as RUSLAN, it is exactly the trainer's validation error. A run on a
# corpus recorded at a lower rate limits its loss to the band the recordings hold ([Training](09a_training.ipynb));
# the evaluation still measures the full band, so that every run is scored by the same definition.

# %% [markdown]
# ## Optional metrics
#
# Two of the metric packages import `torchaudio` at the top of a module but never need it for what this module asks
# of them: `torchcrepe` only reads audio files with it, and DistillMOS (`distillmos/sqa.py`) only in its own
# command-line entry point, which reads and resamples files; its model uses torch alone, and the one module of its
# dependency `xls-r-sqa` that needs `torchaudio` (`e2e_model`) is never imported. The `torchaudio` that pip installs
# next to them is often unusable: none at all, or a build for another torch (PyPI's newest, 2.11.1, fails on import
# with torch 2.13: `OSError: Could not load this library`). `import_with_stand_in` is the one place where this is
# handled: when the first import fails, the package is imported again with a stand-in module for `torchaudio`,
# present in `sys.modules` only during that import, so the metric works and no broken `torchaudio` is left for
# other code to trip on. The stand-in can be imported but not used: should one of these packages need `torchaudio`
# after all, the first use raises an error that names it, so a wrong result is impossible.

# %%
#| export
class _UnusableModule(types.ModuleType):
    "A stand-in for a missing or broken package: importable, but any use of it raises an error naming it."
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)  # what import machinery and introspection probe for
        raise RuntimeError(f"{self.__name__}.{name}: {self.__name__} is unavailable here (missing, or built "
                           "for another torch); it was replaced by a stand-in because the metric should not "
                           "need it")

def import_with_stand_in(module: str, stand_in: str = "torchaudio"):
    "`module`, imported; if that fails, imported again with a stand-in for `stand_in` during the import only."
    try:
        return importlib.import_module(module)
    except (OSError, ImportError):  # `stand_in` missing, or its compiled library does not load with torch
        for name in [k for k in sys.modules if k.split(".")[0] in (stand_in, module.split(".")[0])]:
            del sys.modules[name]  # half-imported modules of the failed attempt
        sys.modules[stand_in] = _UnusableModule(stand_in)
        try:
            return importlib.import_module(module)
        finally:
            del sys.modules[stand_in]  # a later `import torchaudio` elsewhere fails as it would have

@lru_cache(maxsize=1)
def optional_metrics() -> tuple[tuple[str, ...], tuple[str, ...]]:
    "`(available metric names, notes on the others)` among PESQ, STOI, the CREPE metrics and DistillMOS."
    names, notes = [], []
    candidates = [(("pesq",), "pesq"), (("stoi",), "pystoi"), (("periodicity_error", "vuv_f1"), "torchcrepe"),
                  (("mos", "mos_recording"), "distillmos")]
    for columns, module in candidates:
        try:
            import_with_stand_in(module)
        except Exception as e:
            reason = f"{type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}"
            notes.append(f"{', '.join(columns)} omitted: {module} unavailable ({reason})")
            continue
        names += columns
    return tuple(names), tuple(notes)


# %%
show_doc(optional_metrics)

# %%
show_doc(import_with_stand_in)

# %%
print(optional_metrics())

# %% [markdown]
# The proof that a broken `torchaudio` never reaches a user: in a fresh process whose first `torchaudio` on the path
# fails on import as a mismatched build does, both packages are imported and give numbers, nothing is printed, no
# `torchaudio` is left in `sys.modules`, and the stand-in, if it were ever used, says what it is. (A package that is
# not installed at all is omitted with a note instead, as in any installation.)

# %%
import importlib.util, os, subprocess, tempfile

# %%
BROKEN_TORCHAUDIO = 'raise OSError("Could not load this library: libtorchaudio.so (built for another torch)")\n'
PROBE = """
import sys, numpy as np
from hifigan_ruslan.evaluation import optional_metrics, crepe_periodicity, distillmos, import_with_stand_in
names, notes = optional_metrics()
print(sorted(names), notes, 'torchaudio' in sys.modules)
if 'vuv_f1' in names:
    print('periodicity frames', len(crepe_periodicity(np.zeros(16000, np.float32))))
if 'mos' in names:
    print('mos of a tone', round(distillmos(0.1 * np.sin(np.arange(32000, dtype=np.float32) / 3)), 2))
    try:
        import_with_stand_in('distillmos.sqa').torchaudio.load('x.wav')
    except RuntimeError as e:
        print('stand-in:', e)
"""
with tempfile.TemporaryDirectory() as broken:
    (Path(broken) / "torchaudio").mkdir()
    (Path(broken) / "torchaudio" / "__init__.py").write_text(BROKEN_TORCHAUDIO)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([broken, *filter(None, [os.environ.get("PYTHONPATH")])])}
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=600)
print(probe.stdout.strip())
test_eq((probe.returncode, probe.stderr), (0, ""))
first_line = probe.stdout.splitlines()[0]
for columns, module in [("'vuv_f1'", "torchcrepe"), ("'mos'", "distillmos")]:
    assert (columns in first_line) == (importlib.util.find_spec(module) is not None), first_line
assert first_line.endswith("False"), first_line  # no torchaudio left behind
if "'mos'" in first_line:
    assert "stand-in: torchaudio.load: torchaudio is unavailable here" in probe.stdout, probe.stdout

# %% [markdown]
# Periodicity and voicing use CREPE at 16 kHz with 10 ms frames and the `tiny` model (fast on a CPU, and shipped inside the package). Frames whose periodicity exceeds `VOICED_THRESHOLD` count as voiced.

# %%
#| export
METRIC_RATE = 16000  # the rate PESQ (wide band), CREPE and DistillMOS read: every clip is scored at 16 kHz
VOICED_THRESHOLD = 0.5

def crepe_periodicity(audio_16k: np.ndarray) -> np.ndarray:
    "Periodicity (CREPE voicing confidence, 0..1) per 10 ms frame of 16 kHz audio; the 'tiny' model on CPU."
    crepe = import_with_stand_in("torchcrepe")
    with torch.inference_mode():
        _, periodicity = crepe.predict(torch.from_numpy(audio_16k)[None], METRIC_RATE, hop_length=160,
                                       fmin=50.0,
                                       fmax=550.0, model="tiny", decoder=crepe.decode.argmax,
                                       return_periodicity=True, batch_size=512, device="cpu", pad=True)
    return periodicity[0].numpy()

def voicing_f1(reference_voiced: np.ndarray, generated_voiced: np.ndarray) -> float:
    "F1 of the generated voiced/unvoiced decisions against the reference ones (1.0 if both are all unvoiced)."
    tp = np.sum(reference_voiced & generated_voiced)
    wrong = np.sum(reference_voiced != generated_voiced)
    return 1.0 if tp + wrong == 0 else float(2 * tp / (2 * tp + wrong))


# %% [markdown]
# ## A perceptual score: DistillMOS
#
# PESQ compares a clip with its reference; a listener hears the clip alone. DistillMOS (Microsoft, MIT licence,
# `distillmos` 0.9.1 on PyPI) predicts the mean opinion score (1 to 5) that listeners would give a 16 kHz clip,
# without a reference: a small convolutional and transformer network distilled from an XLS-R based model, whose
# weights are inside the wheel, so nothing is downloaded at run time. It peak-normalises its input itself and
# averages its prediction over 7.7 s windows. Measured here, it separates real from synthetic Russian speech by two
# points: recordings of the real voice bundled with the package score about 4, the espeak-ng sentences of the test
# corpus about 2. The evaluation scores both the resynthesis (`mos`) and the recording itself (`mos_recording`),
# so that the gap to the recording can be read off directly: a vocoder cannot be rated above its input.

# %%
#| export
@lru_cache(maxsize=1)
def distillmos_model() -> torch.nn.Module:
    "The DistillMOS network (weights from the `distillmos` wheel) on the CPU in eval mode, loaded once."
    import contextlib, io
    sqa = import_with_stand_in("distillmos.sqa")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the path of its weights
        return sqa.ConvTransformerSQAModel(load_weights=True).eval()

def distillmos(audio_16k: np.ndarray) -> float:
    "Predicted mean opinion score (1..5) of one mono clip at 16 kHz."
    x = torch.as_tensor(np.asarray(audio_16k, np.float32)).reshape(1, -1)
    with torch.inference_mode():
        return float(distillmos_model()(x).reshape(-1)[0])


# %%
show_doc(distillmos)

# %% [markdown]
# What it hears: a clip of the real voice bundled with the package, the same with white noise added, and a sentence of espeak-ng from the test data.

# %%
if "mos" in optional_metrics()[0]:
    import soxr
    from hifigan_ruslan.clips import bundled_corpus
    from hifigan_ruslan.inference import load_audio
    voice_clip = load_audio(bundled_corpus() / "wav" / "ru_0063.flac", METRIC_RATE)
    noise = np.random.default_rng(0).standard_normal(len(voice_clip)).astype(np.float32)
    espeak = np.load("testdata/reference/mel_espeak_ru.npz")["audio"]
    heard = {"real voice (ru_0063)": voice_clip, "with noise at 0.003": voice_clip + 0.003 * noise,
             "with noise at 0.03": voice_clip + 0.03 * noise,
             "espeak-ng": soxr.resample(espeak, 22050, METRIC_RATE).astype(np.float32)}
    mos_heard = {name: distillmos(audio) for name, audio in heard.items()}
    print({name: round(score, 2) for name, score in mos_heard.items()})
    scores = list(mos_heard.values())
    assert scores == sorted(scores, reverse=True), scores  # measured 3.94, 3.32, 2.64, 1.47
    assert scores[0] - scores[-1] > 1.5, scores  # real speech against a formant synthesiser: 2.5 points


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
    ref_t, gen_t = torch.from_numpy(ref)[None], torch.from_numpy(gen)[None]
    full_band = dataclasses.replace(cfg, fmax_loss=None)  # whatever band a run's own loss used
    mel_l1 = float(mel_loss(loss_mel(ref_t, full_band), gen_t, full_band))
    row = {"seconds": n / cfg.sampling_rate, "mel_l1": mel_l1,
           "mr_stft": mr_stft_distance(ref_t[0], gen_t[0])}
    ref16, gen16 = (soxr.resample(x, cfg.sampling_rate, METRIC_RATE).astype(np.float32) for x in (ref, gen))
    if "pesq" in metrics:
        from pesq import pesq
        try:
            row["pesq"] = float(pesq(METRIC_RATE, ref16, gen16, "wb"))
        except Exception:  # the pesq package raises its own errors, e.g. when no speech is detected
            row["pesq"] = math.nan
    if "stoi" in metrics:
        from pystoi import stoi
        row["stoi"] = float(stoi(ref, gen, cfg.sampling_rate, extended=False))
    if "periodicity_error" in metrics:
        p_ref, p_gen = crepe_periodicity(ref16), crepe_periodicity(gen16)
        row["periodicity_error"] = float(np.sqrt(np.mean((p_ref - p_gen) ** 2)))
        row["vuv_f1"] = voicing_f1(p_ref > VOICED_THRESHOLD, p_gen > VOICED_THRESHOLD)
    if "mos" in metrics:
        row["mos"], row["mos_recording"] = distillmos(gen16), distillmos(ref16)
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
for level, row in rows.items():
    print(f"noise {level:<5}", {k: round(v, 3) for k, v in row.items()})
same, light, heavy = rows.values()
test_eq(same["mel_l1"], 0.0)
test_eq(same["mr_stft"], 0.0)
assert same["mel_l1"] < light["mel_l1"] < heavy["mel_l1"], same["mel_l1"]
assert same["mr_stft"] < light["mr_stft"] < heavy["mr_stft"], same["mr_stft"]
available = optional_metrics()[0]
if "pesq" in available:
    assert same["pesq"] > 4.5 > light["pesq"] > heavy["pesq"], same["pesq"]
if "stoi" in available:
    assert same["stoi"] > 0.999, same["stoi"]
    assert light["stoi"] > heavy["stoi"], light["stoi"]
if "vuv_f1" in available:
    test_eq(same["vuv_f1"], 1.0)
    assert same["periodicity_error"] < 1e-6, same["periodicity_error"]
    assert heavy["periodicity_error"] > 0.01, heavy["periodicity_error"]

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
fig = mel_figure(speech, noisy, "the reference clip with noise added")
fig.savefig(buf, format="jpg", dpi=70, pil_kwargs={"quality": 75})
Image(buf.getvalue(), format="jpeg")  # JPEG here only to keep the notebook small; evaluate writes PNG

# %% [markdown]
# ## Evaluating a checkpoint
#
# `evaluate_checkpoint` resynthesises the validation clips of a prepared folder (`wavs/ID.wav` and `val.txt` with
# `ID|text` lines, as written by `hifigan-ruslan prepare`) and writes into `out`: `metrics.csv` and `metrics.md` (one
# row per clip, then the mean), `figures/ID.png`, and the resynthesised `audio/ID.wav` for listening. A clip that
# cannot be read is reported (in the returned errors, and as one line on stderr) and the others are still scored.

# %%
#| export
COLUMNS = ("seconds", "mel_l1", "mr_stft", "pesq", "stoi", "periodicity_error", "vuv_f1", "mos",
           "mos_recording")

def mean_row(rows: list[dict]) -> dict:
    "The mean of every metric column over `rows`, ignoring NaN (NaN where a column is NaN in every row)."
    keys = [k for k in COLUMNS if rows and k in rows[0]]
    means = {}
    for k in keys:
        values = [r[k] for r in rows]
        means[k] = math.nan if all(math.isnan(v) for v in values) else float(np.nanmean(values))
    return means


# %%
show_doc(mean_row)

# %%
test_eq(mean_row([{"clip": "a", "mel_l1": 1.0, "pesq": math.nan}, {"clip": "b", "mel_l1": 2.0, "pesq": 3.0}]),
        {"mel_l1": 1.5, "pesq": 3.0})
assert math.isnan(mean_row([{"pesq": math.nan}])["pesq"])
test_eq(mean_row([]), {})


# %%
#| export
def _cell(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"

def write_tables(rows: list[dict], out: Path, title: str) -> tuple[Path, Path]:
    "Write `metrics.csv` and `metrics.md` into `out` (per clip, then the mean); returns their paths."
    out = Path(out)
    keys = [k for k in COLUMNS if k in rows[0]]
    mean = {"clip": "mean", **mean_row(rows)}
    with open(out / "metrics.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["clip", *keys])
        writer.writeheader()
        for r in [*rows, mean]:
            writer.writerow({"clip": r["clip"], **{k: f"{r[k]:.4f}" for k in keys}})
    cells = [[r["clip"], *(_cell(r[k]) for k in keys)] for r in rows]
    cells.append(["**mean**", *(f"**{_cell(mean[k])}**" for k in keys)])
    table = markdown_table(["clip", *keys], cells)
    (out / "metrics.md").write_text(f"# {title}\n\n{table}\n", encoding="utf-8")
    return out / "metrics.csv", out / "metrics.md"


# %%
show_doc(write_tables)


# %%
#| export
def _score_clip(vocoder: Vocoder, uid: str, reference: np.ndarray, out: Path) -> dict:
    "Resynthesise one clip, write its audio and figure, return its metrics row."
    import soundfile as sf
    generated = vocoder.resynthesize(reference, vocoder.sampling_rate)
    row = {"clip": uid, **clip_metrics(reference, generated, vocoder.mel_config)}
    sf.write(out / "audio" / f"{uid}.wav", np.clip(generated, -1, 1), vocoder.sampling_rate, subtype="PCM_16")
    figure = mel_figure(reference, generated, f"{uid}: mel L1 {row['mel_l1']:.3f}", vocoder.mel_config)
    figure.savefig(out / "figures" / f"{uid}.png", dpi=80)
    return row


# %% [markdown]
# The clips of a prepared corpus an evaluation scores, and the whole evaluation of a checkpoint:

# %%
#| export
def validation_clips(data, limit: int | None = None) -> list[tuple[str, str]]:
    "The first `limit` `(id, text)` pairs of the prepared folder's `val.txt`; a `UserError` if none."
    from hifigan_ruslan.data import read_split
    data = Path(data)
    if limit is not None and limit < 1:
        raise UserError(f"limit {limit}: must be at least 1")
    if not data.is_dir():
        raise UserError(f"{data}: not a prepared data folder")
    clips = read_split(data / "val.txt")[:limit]
    if not clips:
        raise UserError(f"{data / 'val.txt'}: no validation clips")
    return clips

def evaluate_checkpoint(vocoder: Vocoder, data, out, limit: int | None = None, title: str = "evaluation",
                        progress: bool = True) -> tuple[list[dict], list[str]]:
    "Score `vocoder` on the validation clips of the prepared folder `data`; writes results; `(rows, errors)`."
    from tqdm.auto import tqdm
    data, out = Path(data), check_output_folder(out)
    clips = validation_clips(data, limit)
    for sub in ("figures", "audio"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rows, errors = [], []
    for uid, _ in tqdm(clips, desc="evaluate", unit="clip", disable=not progress):
        try:
            reference = load_audio(data / "wavs" / f"{uid}.wav", vocoder.sampling_rate)
        except UserError as e:
            errors.append(str(e))
            tqdm.write(f"hifigan-ruslan evaluate: error: {e}", file=sys.stderr)
            continue
        rows.append(_score_clip(vocoder, uid, reference, out))
    if rows:
        write_tables(rows, out, title)
    return rows, errors


# %%
show_doc(evaluate_checkpoint)

# %% [markdown]
# On a small prepared folder: the synthetic test corpus (`testing.tiny_corpus`), prepared with two validation clips, plus a third line
# in `val.txt` whose WAV does not exist, to show that a broken clip costs only itself. The checkpoint is an untrained
# `tiny` generator, so the scores are those of noise (PESQ near 1, STOI low); with a trained checkpoint the same
# call gives the numbers to compare.

# %%
#| slow
import tempfile
from hifigan_ruslan.config import preset_config
from hifigan_ruslan.data import read_split
from hifigan_ruslan.prepare import prepare_corpus
from hifigan_ruslan.testing import tiny_corpus
from hifigan_ruslan.generator import Generator

# %%
#| slow
tmp = Path(tempfile.mkdtemp())
prepare_corpus(tiny_corpus(), tmp / "prepared", workers=1, val_size=2, progress=False)
scored = [uid for uid, _ in read_split(tmp / "prepared" / "val.txt")]
with open(tmp / "prepared" / "val.txt", "a", encoding="utf-8") as f:
    f.write("999999_RUSLAN|a clip whose WAV is missing\n")
cfg = preset_config("tiny")
torch.manual_seed(0)
vocoder = Vocoder(Generator(cfg.generator), cfg, device="cpu")
rows, errors = evaluate_checkpoint(vocoder, tmp / "prepared", tmp / "eval", title="untrained tiny",
                                   progress=False)
test_eq([r["clip"] for r in rows], scored)
test_eq(len(errors), 1)
assert "999999_RUSLAN.wav: audio file not found" in errors[0], errors[0]
table = (tmp / "eval" / "metrics.md").read_text()
print(table)
assert all(uid in table for uid in scored)
assert "| **mean** |" in table, table
test_eq(sorted(f.stem for f in (tmp / "eval" / "figures").glob("*.png")), sorted(scored))
test_eq(sorted(f.stem for f in (tmp / "eval" / "audio").glob("*.wav")), sorted(scored))
with open(tmp / "eval" / "metrics.csv") as f:
    csv_rows = list(csv.DictReader(f))
test_eq([r["clip"] for r in csv_rows], [*scored, "mean"])
assert float(csv_rows[-1]["mel_l1"]) > 0.5, float(csv_rows[-1]["mel_l1"])  # noise, far from the reference


# %% [markdown]
# ## Comparing with a baseline
#
# A fine-tune is worth keeping only if it beats the model it started from. `hifigan-ruslan evaluate --baseline universal` scores both the checkpoint and the baseline (any checkpoint, or a pretrained model by name) on the same clips, and `write_comparison` puts them in one table: each clip with one row per model, then the means, then the gain of the first model over the second (a negative gain in mel L1 or MR-STFT, a positive one in PESQ, STOI, V/UV F1 and MOS, is an improvement; `mos_recording` is the same for both, since the clips are).

# %%
#| export
def write_comparison(results: dict[str, list[dict]], out, title: str) -> tuple[Path, Path]:
    "`comparison.csv` and `comparison.md` in `out`: every model per clip, their means, the gain of the first."
    out = Path(out)
    names = list(results)
    by_clip = {name: {r["clip"]: r for r in rows} for name, rows in results.items()}
    clips = [r["clip"] for r in results[names[0]] if all(r["clip"] in by_clip[n] for n in names)]
    if not clips:
        raise UserError(f"{', '.join(names)}: no clip was scored for every model")
    keys = [k for k in COLUMNS if all(k in by_clip[n][clips[0]] for n in names)]
    records = [{"clip": c, "model": n, **by_clip[n][c]} for c in clips for n in names]
    means = {n: mean_row([by_clip[n][c] for c in clips]) for n in names}
    records += [{"clip": "mean", "model": n, **means[n]} for n in names]
    if len(names) == 2:
        gain = {k: means[names[0]][k] - means[names[1]][k] for k in keys}
        records.append({"clip": "mean", "model": f"{names[0]} - {names[1]}", **gain})
    with open(out / "comparison.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["clip", "model", *keys])
        writer.writeheader()
        for r in records:
            writer.writerow({"clip": r["clip"], "model": r["model"], **{k: f"{r[k]:.4f}" for k in keys}})
    cells = [[r["clip"], r["model"], *(_cell(r[k]) for k in keys)] for r in records]
    for row in cells[len(clips) * len(names):]:
        row[:] = [f"**{value}**" for value in row]
    table = markdown_table(["clip", "model", *keys], cells)
    (out / "comparison.md").write_text(f"# {title}\n\n{table}\n", encoding="utf-8")
    return out / "comparison.csv", out / "comparison.md"


# %%
show_doc(write_comparison)

# %% [markdown]
# Two untrained `tiny` generators with different seeds on the same clips: every clip appears once per model, then the two means and their difference.

# %%
#| slow
torch.manual_seed(1)
other = Vocoder(Generator(cfg.generator), cfg, device="cpu")
other_rows, _ = evaluate_checkpoint(other, tmp / "prepared", tmp / "eval" / "baseline", progress=False)
write_comparison({"seed 0": rows, "seed 1": other_rows}, tmp / "eval", "seed 0 against seed 1")
comparison = (tmp / "eval" / "comparison.md").read_text()
print(comparison)
test_eq(comparison.count("| seed 0 |"), len(scored))
assert "| **mean** | **seed 0 - seed 1** |" in comparison, comparison
test_fail(lambda: write_comparison({"a": rows, "b": []}, tmp / "eval", "x"), contains="no clip was scored")

# %% [markdown]
# Mistakes in the arguments are one-line `UserError`s, raised before any work:

# %%
#| slow
test_fail(lambda: evaluate_checkpoint(vocoder, tmp / "nowhere", tmp / "e2"), contains="nowhere: not a prepared")
test_fail(lambda: evaluate_checkpoint(vocoder, tmp / "prepared", tmp / "e2", limit=0), contains="limit 0")
test_eq(len(evaluate_checkpoint(vocoder, tmp / "prepared", tmp / "e3", limit=1, progress=False)[0]), 1)

# %%
#| slow
import shutil

# %%
#| slow
shutil.rmtree(tmp)
