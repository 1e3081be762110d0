# %% [markdown]
# # Bad input
#
# > Every mistake a user can make, run through the real `hifigan-ruslan` command: one line naming the file or value, no traceback, nothing already done lost.

# %% [markdown]
# Each page tests its own functions' errors. This page tests what a user sees: every case below runs the console
# script `hifigan-ruslan` in a fresh process, as a user would type it, and checks
#
# - the **exit status**: 2 for a mistake, 1 for a batch in which some files failed, 0 for input that is accepted
#   (with a warning where something looks wrong);
# - that each error or warning is **one line** on stderr, `hifigan-ruslan COMMAND: error: ...` (or `warning:`),
#   **naming the file or value** (the case's expected fragments);
# - that **no traceback** is printed, on stdout or stderr;
# - that the files written **before** the failure (a run's checkpoints, an earlier output) and the inputs a command
#   was told to write over are **still there, unchanged** (the same SHA-256), and that a mistake found before any
#   work writes nothing;
# - that a stop (exit status 130 for SIGINT, 143 for SIGTERM) prints no traceback either.
#
# The cases are the sixteen mistakes that issue 19 collected and those that already gave one clean line, then those
# of issue 26: an output pointed at an input (each input's SHA-256 the same afterwards), a refused command that left
# state the next one obeyed, and stops (Ctrl-C, SIGTERM) that must end a command as a whole; a regression shows up as
# one failing row of the table at the end. Every command runs with a broken `torchaudio`
# first on its path (one that fails on import, as a build for another `torch` does): no command may let it reach
# the user (see [Evaluation](11_evaluation.ipynb#optional-metrics)).

# %%
from fastcore.test import test_eq

# %%
import hashlib, os, re, shutil, signal, stat, subprocess, sys, tempfile, time
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np, soundfile as sf, torch
from hifigan_ruslan.clips import METADATA_NAME
from hifigan_ruslan.testing import tiny_corpus
from hifigan_ruslan.mel import mel_spectrogram
from hifigan_ruslan.testing import read_only_folder

# %% [markdown]
# ## The command and its environment
#
# The installed console script if there is one (`python -m hifigan_ruslan` otherwise), one thread, no progress
# bars, and the broken `torchaudio` in front of everything else on the path.

# %%
work = Path(tempfile.mkdtemp())
(work / "site" / "torchaudio").mkdir(parents=True)
(work / "site" / "torchaudio" / "__init__.py").write_text(
    'raise OSError("Could not load this library: libtorchaudio.so (built for another torch)")\n')
SCRIPT = shutil.which("hifigan-ruslan")
COMMAND = [SCRIPT] if SCRIPT else [sys.executable, "-m", "hifigan_ruslan"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(work / "site"), *filter(None, [os.environ.get("PYTHONPATH")])])}
print(" ".join(COMMAND))


# %% [markdown]
# A case is a command line with what it must do. `ok` cases (exit 0) check their output instead of an error line;
# `kept` names files that must be there, unchanged (the same SHA-256), afterwards, and `absent` paths that must not
# have been created. A case with a `stop` is sent a signal while it runs, as a user's Ctrl-C (to the whole process
# group, as a terminal sends it) or a scheduler's SIGTERM would be, once its `ready` function says so.

# %%
@dataclass
class Case:
    "One command line and what it must do."
    name: str
    argv: list
    status: int = 2
    expect: list = field(default_factory=list)   # fragments of the error/warning lines (or of stdout when ok)
    kept: list = field(default_factory=list)     # files that must be there, unchanged, afterwards
    absent: list = field(default_factory=list)   # paths that must not exist afterwards
    check: object = None                         # a further check: a function of the finished process
    stop: tuple = ()                             # (signal, ready: a function, to the whole group: bool)

def snapshot(paths) -> dict:
    "SHA-256 and modification time of every file under `paths`."
    files = [f for p in map(Path, paths) for f in ([p] if p.is_file() else sorted(p.rglob("*")))
             if f.is_file()]
    return {str(f): (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns) for f in files}

def run_command(case: Case) -> subprocess.CompletedProcess:
    "Run the case's command line; with a `stop`, send its signal once `ready()` holds."
    argv = COMMAND + [str(a) for a in case.argv]
    if not case.stop:
        return subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=300)
    signum, ready, group = case.stop
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)  # its own process group, as a terminal's job
    deadline = time.monotonic() + 300
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signum) if group else proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)

def run_case(case: Case) -> tuple[str, str]:
    "Run `case`; `(the line it printed, '')` when it did what it must, else `(that line, what went wrong)`."
    before = snapshot(case.kept)
    done = run_command(case)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith("hifigan-ruslan ")]
    output = done.stdout.strip().splitlines()
    summary_head = [line for line in output if re.match(r"(Demo s|S)topped", line)]  # where a stop says why
    shown = said or summary_head[:1] or output[-1:] or [""]
    problems = []
    if done.returncode != case.status:
        problems.append(f"exit {done.returncode}, expected {case.status}")
    if "Traceback" in done.stdout + done.stderr:
        problems.append("a traceback")
    if case.status == 2 and len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr, expected one")
    if any(not re.match(r"hifigan-ruslan \w+: (error: |warning: |stopped by SIG)", line) for line in lines):
        problems.append("stderr holds lines that are neither errors nor warnings")
    text = (done.stdout + "\n".join(said)).replace(str(work), "WORK")
    problems += [f"no {fragment!r}" for fragment in case.expect if str(fragment) not in text]
    if before and snapshot(case.kept) != before:
        problems.append("files written before were changed or lost")
    elif before:  # the digests of the first two files kept, as evidence
        digests = ", ".join(f"{Path(f).name} {digest[:12]}" for f, (digest, _) in list(before.items())[:2])
        more = f" and {len(before) - 2} more" if len(before) > 2 else ""
        shown.append(f"SHA-256 unchanged: {digests}{more}")
    problems += [f"{p} was created" for p in case.absent if Path(p).exists()]
    if case.check is not None and not problems:
        problems += [m for m in [case.check(done)] if m]
    return " / ".join(shown).replace(str(work), "WORK"), "; ".join(problems)


# %% [markdown]
# ## The inputs
#
# Corpora made from the clips of the synthetic test corpus: one clip, two, metadata in cp1251, in UTF-16, with a BOM and Windows line
# endings, with a duplicate ID and an entry without its WAV.

# %%
tiny = tiny_corpus()  # RUSLAN-shaped, synthetic: 12 short clips
texts = dict(line.split("|", 1) for line in (tiny / METADATA_NAME).read_text(encoding="utf-8").splitlines())

def corpus(name: str, ids, encoding: str = "utf-8", newline: str = "\n", extra: tuple = ()) -> Path:
    "A corpus of the test corpus's clips `ids` whose metadata is written in `encoding` with `newline`."
    root = work / "corpora" / name
    (root / "wavs").mkdir(parents=True)
    for uid in ids:
        shutil.copy(tiny / "RUSLAN" / f"{uid}.wav", root / "wavs")
    lines = [f"{uid}|{texts[uid]}" for uid in ids] + list(extra)
    (root / METADATA_NAME).write_bytes(newline.join(lines + [""]).encode(encoding))
    return root

ids = sorted(texts)
single, two = corpus("single", ids[:1]), corpus("two", ids[:2])
cp1251 = corpus("cp1251", ids[:6], "cp1251", "\r\n")
utf16 = corpus("utf16", ids[:6], "utf-16")
bom_crlf = corpus("bom_crlf", ids[:6], "utf-8-sig", "\r\n")
duplicates = corpus("duplicates", ids[:6], extra=(f"{ids[0]}|again", "000999_RUSLAN|no WAV for this one"))

# %% [markdown]
# Mels: a good one (the log-mel of a test clip), a text file renamed `.npy`, random bytes named `.pt`, a folder, a
# mel of NaN, a mel of integers, a mel of a single frame. Audio: a clip of 100 samples (5 ms), a float WAV reaching
# 1.6, a WAV cut short, a text file named `.wav`. Checkpoints: a text file and random bytes. Config files with a
# value that is not a number and with a misspelt key.

# %%
inputs = work / "inputs"
inputs.mkdir()
speech, _ = sf.read(tiny / "RUSLAN" / f"{ids[1]}.wav", dtype="float32")
speech = speech if speech.ndim == 1 else speech.mean(1)
good_mel = mel_spectrogram(torch.from_numpy(speech)).numpy()
np.save(inputs / "good.npy", good_mel)
(inputs / "renamed.npy").write_text("0.1 0.2 0.3\n")
(inputs / "noise.pt").write_bytes(np.random.default_rng(0).bytes(4096))
(inputs / "folder.npy").mkdir()
np.save(inputs / "nan.npy", np.full((80, 20), np.nan, np.float32))
np.save(inputs / "integers.npy", np.round(good_mel).astype(np.int16))
np.save(inputs / "one_frame.npy", good_mel[:, :1])
sf.write(inputs / "short.wav", speech[:100], 22050)
sf.write(inputs / "loud.wav", 1.6 * speech, 22050, subtype="FLOAT")
sf.write(inputs / "whole.wav", speech, 22050, subtype="PCM_16")
(inputs / "cut.wav").write_bytes((inputs / "whole.wav").read_bytes()[:8000])
(inputs / "text.wav").write_text("not audio\n")
(inputs / "notes.txt").write_text("these are notes, not a checkpoint\n")
(inputs / "lr.yaml").write_text("preset: tiny\ntrain:\n  lr_g: abc\n")
(inputs / "typo.yaml").write_text("preset: tiny\ntrain:\n  lamda_mel: 30\n")
(inputs / "a_file").write_text("a file where a folder belongs\n")
nan_mels = work / "nan_mels"
nan_mels.mkdir()
np.save(nan_mels / f"{ids[1]}.npy", np.full((80, len(speech) // 256), np.nan, np.float32))

# %% [markdown]
# ## The cases
#
# First what the other cases need, made by the command itself: the test corpus prepared, and a `tiny` run of two
# steps. `data`, `run` and an export stand for work already done that a later mistake must not touch.

# %%
data, run, data2, noval = work / "data", work / "run", work / "data2", work / "noval"
run_files = [run / "checkpoints", run / "config.yaml"]
train = ["train", "--data", data, "--preset", "tiny", "--no-progress", "--threads", "1"]
options = ["--backend", "torch", "--no-progress", "--threads", "1"]
vocode = ["--checkpoint", run, *options]  # the tiny run
cuda = torch.cuda.is_available()

def exported_mode(done) -> str | None:
    "Why the exported model's permissions are not those of any new file, or None."
    umask = os.umask(0o022)
    os.umask(umask)
    mode = stat.S_IMODE((work / "generator.onnx").stat().st_mode)
    return None if mode == 0o666 & ~umask else f"mode {oct(mode)}, expected {oct(0o666 & ~umask)}"

def help_names(*fragments):
    "A check that `--help` names every fragment."
    return lambda done: next((f"--help does not name {f!r}" for f in fragments if f not in done.stdout), None)

setup = [
    Case("prepare the test corpus", ["prepare", "--data-path", tiny, "--out", data, "--val-size", "2",
                                         "--no-progress"], 0, ["kept 12 of 12 clips"]),
    Case("train two steps of tiny", [*train, "--out", run, "--max-steps", "2", "--val-every", "0"], 0,
         ["Stopped at step 2"]),
    Case("prepare 2 clips", ["prepare", "--data-path", two, "--out", data2, "--no-progress"], 0,
         ["warning: train.txt lists 1 clip(s), fewer than one training step takes",
          "--set train.batch_size=1 --set train.grad_accum_steps=1"]),
    Case("prepare --val-size 0", ["prepare", "--data-path", tiny, "--out", noval, "--val-size", "0",
                                   "--no-progress"], 0, ["warning: --val-size 0: val.txt is empty"]),
]


# %%
def prep(source, out, *more) -> list:
    "The command line of `prepare` from `source` into `WORK/out`."
    return ["prepare", "--data-path", source, "--out", work / out, "--no-progress", *more]

def both_splits(folder: Path) -> str:
    return "".join((folder / f"{split}.txt").read_text(encoding="utf-8") for split in ("train", "val"))

prepare_cases = [
    Case("prepare: no such corpus", prep(work / "nowhere", "data"),
         expect=["nowhere: no such file or directory"], kept=[data]),
    Case("prepare: --out is a file", prep(tiny, "inputs/a_file"),
         expect=["a_file: is a file; the output folder must be a folder"]),
    Case("prepare: --out inside the corpus", prep(two, "corpora/two/out"),
         expect=["is inside the input corpus"], absent=[two / "out"]),
    Case("prepare: --workers 0", prep(tiny, "w0", "--workers", "0"), expect=["workers 0: must be at least 1"],
         absent=[work / "w0"]),
    Case("prepare: 1 clip", prep(single, "p_single"), 0,
         ["warning: only 1 usable clip(s): val.txt is empty, and a run needs at least 2 clips"]),
    Case("prepare: --val-size 50 of 12", prep(tiny, "p50", "--val-size", "50"), 0,
         ["warning: --val-size 50: 2 validation clip(s) used, at most a fifth of the 12 kept clips"]),
    Case("prepare: cp1251 metadata", prep(cp1251, "p_cp1251"), 0,
         ["metadata read as cp1251, not UTF-8", "kept 6 of 6"],
         check=lambda done: None if texts[ids[0]] in both_splits(work / "p_cp1251") else "not the texts"),
    Case("prepare: UTF-16 metadata", prep(utf16, "p_utf16"), 0,
         ["metadata read as utf-16", "kept 6 of 6", "bom 1"]),
    Case("prepare: BOM and CRLF", prep(bom_crlf, "p_bom"), 0, ["kept 6 of 6", "bom 1", "crlf 1"]),
    Case("prepare: duplicate ID, missing WAV", prep(duplicates, "p_dup"), 0,
         ["kept 6 of 7", "duplicate_id 1", "missing_wav 1"]),
    Case("prepare --mel-dir: a NaN mel", prep(tiny, "p_mels", "--mel-dir", nan_mels), 0,
         ["0 ok, 11 missing, 0 mismatched, 1 bad", f"mel of {ids[0]}: no {ids[0]}.npy in",
          f"mel of {ids[1]}: WORK/nan_mels/{ids[1]}.npy", "... and 2 more mel problems (report.json names all)"]),
]


# %%
def setting(item: str, message: str) -> Case:
    "`train --set item`, refused with `message`."
    return Case(f"train: {item.split('.', 1)[1]}", [*train, "--out", work / "t", "--set", item],
                expect=[message], absent=[work / "t"])

train_cases = [
    Case("train: --device gpu", [*train, "--out", work / "t", "--device", "gpu"],
         expect=["device 'gpu': not a device name"], absent=[work / "t"]),
    *([] if cuda else [Case("train: --device cuda without CUDA",
                            [*train, "--out", work / "t", "--device", "cuda"],
                            expect=["device 'cuda': no CUDA device available"], absent=[work / "t"])]),
    Case("train: --out is a file", [*train, "--out", inputs / "a_file"],
         expect=["a_file: is a file; the run folder must be a folder"]),
    setting("train.batch_size=0", "--set: train.batch_size = 0: must be an integer >= 1"),
    setting("train.batch_size=-1", "--set: train.batch_size = -1: must be an integer >= 1"),
    setting("train.lr_g=-1", "--set: train.lr_g = -1.0: must be a finite number > 0"),
    setting("train.grad_accum_steps=0", "--set: train.grad_accum_steps = 0: must be an integer >= 1"),
    setting("train.betas=0.8", "--set: train.betas = 0.8: expected a list of 2 numbers"),
    setting("train.lr_g=abc", "--set: train.lr_g = 'abc': expected a number"),
    setting("train.epochs=1.5", "--set: train.epochs = 1.5: expected an integer"),
    setting("train.lambda_mel=nan", "--set: train.lambda_mel = nan: must be a finite number >= 0"),
    setting("train.segment_size=8000", "train.segment_size = 8000: must be a multiple of mel.hop_size 256"),
    setting("train.lamda=1", "--set train.lamda=1: unknown key 'train.lamda'"),
    Case("train: lr_g abc in a YAML file",
         ["train", "--data", data, "--out", work / "t", "--config", inputs / "lr.yaml"],
         expect=["lr.yaml: train.lr_g = 'abc': expected a number"]),
    Case("train: YAML typo", ["train", "--data", data, "--out", work / "t", "--config", inputs / "typo.yaml"],
         expect=["typo.yaml: unknown key(s) train.lamda_mel"]),
    Case("train: unknown preset", ["train", "--data", data, "--out", work / "t", "--preset", "v9"],
         expect=["unknown preset 'v9'"]),
    Case("train: resume with another preset", ["train", "--data", data, "--out", run, "--preset", "recipe"],
         expect=["config.yaml: this run was trained with other values: generator.resblock 2 -> 1"],
         kept=run_files),
    Case("train: 2 clips, batch 4", [*train, "--out", work / "t2", "--data", data2],
         expect=["1 training clip(s) per process, fewer than batch_size 4: lower it",
                 "(--set train.batch_size=1)"]),
    Case("train: no validation clip", [*train, "--out", work / "t3", "--data", noval],
         expect=["val.txt: no clips listed; a run needs training and validation clips"]),
    Case("train: --init-from random bytes", [*train, "--out", work / "t", "--init-from", inputs / "noise.pt"],
         expect=["noise.pt: not a PyTorch checkpoint (neither a torch.save archive nor a pickle)"]),
    Case("train: --init-from a text file", [*train, "--out", work / "t", "--init-from", inputs / "notes.txt"],
         expect=["notes.txt: not a PyTorch checkpoint (a text file)"]),
    Case("train: --init-from misspelt name", [*train, "--out", work / "t", "--init-from", "universl"],
         expect=["universl: no such checkpoint file or folder, nor a pretrained model"]),
    Case("demo: --device gpu", ["demo", "--out", work / "demo", "--device", "gpu"],
         expect=["device 'gpu': not a device name"], absent=[work / "demo"]),
]


# %%
def gen(*mels, out="gen", checkpoint=run, more=()) -> list:
    "The command line of `generate` for `mels` (names in `inputs`) into `WORK/out`."
    return ["generate", "--checkpoint", checkpoint, *options, "--mel", *[inputs / m for m in mels],
            "--out", work / out, *more]

def model_not_loaded(done) -> str | None:
    return "the model was loaded first" if "through" in done.stdout else None

def wrote(folder: str, *names: str):
    "A check that `WORK/folder` holds exactly the files `names`."
    return lambda done: None if sorted(os.listdir(work / folder)) == sorted(names) else \
        f"wrote {sorted(os.listdir(work / folder))}"

mel_batch = ["good.npy", "missing.npy", "renamed.npy", "noise.pt", "folder.npy", "nan.npy", "integers.npy",
             "one_frame.npy"]
wav_batch = [inputs / n for n in ("short.wav", "loud.wav", "cut.wav", "missing.wav", "text.wav",
                                  "folder.npy")]
inference_cases = [
    Case("generate: a batch of bad mels", gen(*mel_batch), 1,
         ["missing.npy: mel file not found", "renamed.npy: not a .npy file (a text file)",
          "noise.pt: not a PyTorch file (neither a torch.save archive nor a pickle)",
          "folder.npy: is a folder, not a mel file", "nan.npy: contains 1600 NaN or infinite values",
          "integers.npy: holds int16 values (integers), not the floats of a natural-log mel",
          "wrote 2 WAV file(s)", "6 of 8 mel files failed"], check=wrote("gen", "good.wav", "one_frame.wav")),
    Case("generate: --out is a file", gen("good.npy", out="inputs/a_file"),
         expect=["a_file: is a file; the output folder must be a folder"], check=model_not_loaded),
    Case("generate: earlier output kept", gen("missing.npy"), 1, ["missing.npy: mel file not found"],
         kept=[work / "gen"]),
    Case("generate: a text file as checkpoint", gen("good.npy", out="g2", checkpoint=inputs / "notes.txt"),
         expect=["notes.txt: not a PyTorch checkpoint (a text file)"]),
    Case("generate: random bytes as checkpoint", gen("good.npy", out="g2", checkpoint=inputs / "noise.pt"),
         expect=["noise.pt: not a PyTorch checkpoint (neither a torch.save archive nor a pickle)"]),
    Case("generate: misspelt pretrained name", gen("good.npy", out="g2", checkpoint="universl"),
         expect=["universl: no such checkpoint file or folder, nor a pretrained model (universal, lj)"]),
    Case("generate: missing checkpoint", gen("good.npy", out="g2", checkpoint=work / "no.pt"),
         expect=["no.pt: no such checkpoint file or folder"]),
    *([] if cuda else [Case("generate: --device cuda", gen("good.npy", out="g2", more=("--device", "cuda")),
                            expect=["device 'cuda': no CUDA device available"])]),
    Case("resynth: a batch of bad WAVs", ["resynth", *vocode, "--wav", *wav_batch, "--out", work / "res"], 1,
         ["warning: WORK/inputs/loud.wav: samples reach", "scaled by", "missing.wav: audio file not found",
          "warning: WORK/inputs/cut.wav: truncated: the data chunk declares",
          "text.wav: not a readable audio file",
          "folder.npy: is a folder, not an audio file", "wrote 3 WAV file(s)", "3 of 6 audio files failed"],
         check=lambda done: None if sf.info(work / "res" / "short.wav").frames == 100 else "not 100 samples"),
    Case("export: --out is a folder", ["export", "--checkpoint", run, "--out", work],
         expect=["is a folder; the onnx model file must be a file name such as"]),
    Case("export: normal file permissions", ["export", "--checkpoint", run, "--out", work / "generator.onnx"],
         0, ["export: wrote onnx model"], check=exported_mode),
    Case("evaluate: baseline = checkpoint", ["evaluate", *vocode, "--baseline", run / "checkpoints",
                                             "--data", data, "--out", work / "eval"],
         expect=["the same model as --checkpoint"], absent=[work / "eval"]),
    Case("evaluate: with a broken torchaudio", ["evaluate", *vocode, "--data", data, "--limit", "1", "--out",
                                                work / "eval"], 0, ["evaluate: wrote"],
         check=lambda done: "a metric was omitted" if "omitted" in done.stdout else None),
    Case("kaggle: kernel without owner", ["kaggle", "status", "--kernel", "hifigan-ruslan-train"],
         expect=["OWNER/SLUG"]),
]

# %% [markdown]
# ## An output never replaces an input
#
# A recording with the mel made from it, both in one folder (and a link to that folder), and a folder of plain audio
# named `wavs`, the name of `prepare`'s own output folder. Each command pointed at them as its output is refused
# before any model is loaded, and every one of them keeps its SHA-256; so does the run whose checkpoint `export` and
# whose folder `evaluate` are told to write over.

# %%
rec = work / "rec"
rec.mkdir()
shutil.copy(inputs / "whole.wav", rec / "speech.wav")
np.save(rec / "speech.npy", good_mel)
(work / "rec_link").symlink_to(rec)
holder = work / "holder"
(holder / "wavs").mkdir(parents=True)
for uid in ids[:3]:
    shutil.copy(tiny / "RUSLAN" / f"{uid}.wav", holder / "wavs")
g2 = run / "checkpoints" / "g_00000002"

overwrite_cases = [
    Case("resynth: --out the recording's folder", ["resynth", *vocode, "--wav", rec / "speech.wav", "--out", rec],
         expect=["speech.wav: the output WAV would replace the input --wav WORK/rec/speech.wav"],
         kept=[rec], check=model_not_loaded),
    Case("resynth: --out a link to that folder", ["resynth", *vocode, "--wav", rec / "speech.wav",
                                                  "--out", work / "rec_link"],
         expect=["rec_link/speech.wav: the output WAV would replace the input --wav"], kept=[rec],
         check=model_not_loaded),
    Case("generate: a mel beside its recording", ["generate", *vocode, "--mel", rec / "speech.npy", "--out", rec],
         expect=["rec/speech.wav: exists beside the input --mel WORK/rec/speech.npy"], kept=[rec],
         check=model_not_loaded),
    Case("export: --out the checkpoint it reads", ["export", "--checkpoint", g2, "--out", g2],
         expect=["g_00000002: the onnx model file would replace the checkpoint"], kept=run_files),
    Case("evaluate: --out the run folder", ["evaluate", *vocode, "--data", data, "--out", run],
         expect=["run/metrics.csv: the evaluation output is inside the --checkpoint run folder WORK/run"],
         kept=[run]),
    Case("prepare: --out holds the corpus", prep(holder / "wavs", "holder"),
         expect=["holder/wavs: the prepared output would replace the input corpus WORK/holder/wavs"],
         kept=[holder]),
]

# %% [markdown]
# ## A refused command leaves nothing
#
# A run refused for its batch writes no `config.yaml` (which the same command without `--set` would obey) and no
# folder; a mel of 100 bands and a missing recording are refused before the model is loaded, and when no input is
# left nothing is written; an exported model given where a checkpoint belongs says what it is.

# %%
np.save(inputs / "bands100.npy", np.full((100, 40), -5.0, np.float32))

refusal_cases = [
    Case("train: batch 100000 refused", [*train, "--out", work / "bs", "--set", "train.batch_size=100000"],
         expect=["fewer than batch_size 100000"], absent=[work / "bs"]),
    Case("train: the same without --set", [*train, "--out", work / "bs", "--max-steps", "1", "--val-every", "0"],
         0, ["Stopped at step 1"]),
    Case("generate: a 100-band mel", gen("bands100.npy", out="g100"), 1,
         ["bands100.npy: shape (100, 40): 100 bands, expected 80", "wrote 0 WAV file(s)"],
         absent=[work / "g100"], check=model_not_loaded),
    Case("resynth: only a missing file", ["resynth", *vocode, "--wav", inputs / "missing.wav", "--out", work / "r0"],
         1, ["missing.wav: audio file not found"], absent=[work / "r0"], check=model_not_loaded),
    Case("export: TorchScript", ["export", "--checkpoint", run, "--format", "torchscript", "--out",
                                 work / "generator.pt"], 0, ["export: wrote torchscript model"]),
    Case("generate: a TorchScript file as checkpoint", gen("good.npy", out="g3", checkpoint=work / "generator.pt"),
         expect=["generator.pt: a TorchScript export of a generator, not a checkpoint: load it with torch.jit.load"]),
    Case("generate: an ONNX file as checkpoint", gen("good.npy", out="g3", checkpoint=work / "generator.onnx"),
         expect=["generator.onnx: an ONNX export of a generator, not a checkpoint: run it with OpenVINO"]),
]


# %% [markdown]
# ## A stop is a stop
#
# Ctrl-C while `train` builds its models (once it holds its run folder's lock) ends it without a traceback, and the
# folder it had just made is gone. Ctrl-C while `prepare` converts (sent to the whole group, its worker processes
# included) ends it with one line, and the same command afterwards completes. SIGTERM while the demo trains its
# `tiny` run ends the demo as a whole: the run's checkpoint, no later stage, the summary, exit status 143.

# %%
def lines_in(path: Path, text: str = "") -> callable:
    "A `ready` function: `path` exists and holds `text`."
    return lambda: path.is_file() and text in path.read_text(errors="replace")

many = work / "corpora" / "many"
many.mkdir()
for n in range(120):  # a plain folder of audio, large enough to be stopped half-way
    shutil.copy(tiny / "RUSLAN" / f"{ids[n % len(ids)]}.wav", many / f"clip_{n:03d}.wav")

stop_cases = [
    Case("train: Ctrl-C while it starts", [*train, "--out", work / "t_int", "--max-steps", "1000"], 130,
         ["stopped by SIGINT"], absent=[work / "t_int"],
         stop=(signal.SIGINT, lines_in(work / "t_int" / ".lock"), True)),
    Case("prepare: Ctrl-C, workers too", prep(many, "p_int", "--workers", "2"), 130, ["stopped by SIGINT"],
         stop=(signal.SIGINT, lines_in(work / "p_int" / "manifest.jsonl", "clip_"), True)),
    Case("prepare: again after the Ctrl-C", prep(many, "p_int", "--workers", "2"), 0, ["kept 120 of 120 clips"]),
    Case("demo: SIGTERM while it trains", ["demo", "--out", work / "demo_stop", "--no-progress", "--threads", "1"],
         143, ["Demo stopped by SIGTERM", "no later stage started", "tiny run:", "checkpoints:"],
         absent=[work / "demo_stop" / "resynth", work / "demo_stop" / "pretrained"],
         stop=(signal.SIGTERM, lines_in(work / "demo_stop" / "run" / "train.log", "validation mel L1"), True)),
]

# %%
pretrained_and_runs = ("universal", "lj", "run folder")
help_cases = [
    Case("--help: generate --checkpoint", ["generate", "--help"], 0, check=help_names(*pretrained_and_runs)),
    Case("--help: resynth --checkpoint", ["resynth", "--help"], 0, check=help_names(*pretrained_and_runs)),
    Case("--help: export --checkpoint, --format", ["export", "--help"], 0,
         check=help_names(*pretrained_and_runs, "onnx (OpenVINO")),
    Case("--help: evaluate --checkpoint, --baseline", ["evaluate", "--help"], 0,
         check=help_names(*pretrained_and_runs, "other than --checkpoint")),
    Case("--help: train --preset, --init-from", ["train", "--help"], 0,
         check=help_names("finetune", *pretrained_and_runs)),
]

# %% [markdown]
# ## The table
#
# Every case, what it printed (its error or warning lines, or the last line of its output) and whether it did what it
# must. A folder this process cannot write (made read-only, or immutable for root) is used by two more cases where
# one can be made.

# %%
#| slow
start = time.perf_counter()
with read_only_folder(work / "locked") as locked:
    lock_cases = [] if locked is None else [
        Case("prepare: read-only folder", ["prepare", "--data-path", tiny, "--out", locked / "prepared"],
             expect=["locked/prepared: cannot create the output folder: WORK/locked is not writable"]),
        Case("resynth: read-only --out", ["resynth", *vocode, "--wav", inputs / "whole.wav", "--out", locked],
             expect=["locked: the output folder is not writable"],
             check=model_not_loaded)]
    cases = (setup + prepare_cases + train_cases + inference_cases + overwrite_cases + refusal_cases + stop_cases
             + lock_cases + help_cases)
    results = []
    for case in cases:
        began = time.perf_counter()
        said, problem = run_case(case)
        results.append((case.name, case.status, said, problem, time.perf_counter() - began))
seconds = time.perf_counter() - start

# %%
#| slow
width = max(len(name) for name, *_ in results)
for name, status, said, problem, took in results:
    print(f"{'FAIL' if problem else 'ok':4} {name:{width}} exit {status:<3} {took:4.1f} s  {said[:160]}"
          + (f"\n     {'':{width}} -> {problem}" if problem else ""))
print(f"{len(results)} cases in {seconds:.0f} s" + ("; no read-only folder here" if locked is None else ""))
test_eq([(name, problem) for name, _, _, problem, _ in results if problem], [])

# %%
shutil.rmtree(work, ignore_errors=True)
