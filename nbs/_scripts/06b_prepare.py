# %% [markdown]
# # Preparing the corpus
#
# > Find, check, resample and split a corpus (RUSLAN, LJSpeech-style metadata, a Festival voice or a plain folder of audio): what `hifigan-ruslan prepare` does before training.

# %%
#| default_exp prepare

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_close, test_eq, test_fail, test_ne

# %%
#| export
from __future__ import annotations
import hashlib, json, os, signal, time
import multiprocessing as mp
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple
import soundfile as sf
from hifigan_ruslan.config import Config
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.clips import (FESTIVAL_NAME, ID_PATTERN, METADATA_NAME, MIN_SEGMENT_FRACTION,
                                  TARGET_SUBTYPE, MetaEntry, clip_key, is_audio_name, problem_record,
                                  process_clip, read_festival, read_metadata)
from hifigan_ruslan.locations import atomic_write, check_no_overwrite, check_output_folder

# %% [markdown]
# ## The corpus
#
# A vocoder learns from audio alone, so any collection of recordings of a voice will do, and they come in several shapes. `prepare` reads four, and finds which one it was given by itself:
#
# | layout | transcripts | audio |
# |---|---|---|
# | **RUSLAN** | `metadata_RUSLAN_22200.csv` (or another `.csv`/`.txt` of `ID\|text` lines) | the folder holding the most audio files (`RUSLAN/`, `ruslan_dataset/`, `wavs/`: copies differ) |
# | **LJSpeech** | `metadata.csv`, `ID\|text` or `ID\|text\|normalised text` (the normalised text is kept) | `wavs/` beside it |
# | **Festival voice** | `etc/txt.done.data`, `( ID "text" )` per line | `wav/` beside `etc/` |
# | **audio folder** | none: a vocoder needs none (the texts of the split files are empty) | every audio file under the folder, the ID being the file name |
#
# Audio files may be WAV, FLAC or OGG, at any rate and with any number of channels. On Kaggle the dataset `freezerainml/ruslan` is mounted read-only (today at `/kaggle/input/datasets/freezerainml/ruslan/`; the layout has changed before); wherever a corpus is, `--data-path` may name its folder, any folder above it, or its transcript file.
#
# HiFi-GAN is trained at 22,050 Hz, so `prepare` converts every usable clip once, up front, to 22,050 Hz mono 16-bit WAV with the soxr resampler, and writes a fixed train/validation split next to them. Training then reads small 16-bit files and never resamples; the dataset that reads them is the subject of [Datasets and loaders](06a_data.ipynb). Every clip is checked on the way ([Clips and metadata](06_clips.ipynb)); what is wrong with the input is written to `report.json` and named on the console rather than raised, because one bad file in 22,200 should cost one clip, not the run. What *is* raised is a mistake of the caller (a path that does not exist, a folder with no audio at all or with two corpora in it, an output folder inside the input, a negative validation size): a `UserError` with one line naming the file or value.

# %%
import numpy as np
from hifigan_ruslan.clips import bundled_corpus
from hifigan_ruslan.testing import tiny_corpus

# %%
tiny = tiny_corpus()  # the synthetic test corpus, RUSLAN-shaped (see [Testing helpers](00b_testing.ipynb))
voice = bundled_corpus()  # the real voice bundled with the package, a Festival voice

# %% [markdown]
# `find_corpus` walks the root once and collects the transcript files it recognises, each with the depth of the corpus it belongs to: `metadata_RUSLAN_22200.csv`, `metadata.csv` whose first line reads `ID|text` (both in any letter case), and `etc/txt.done.data` (its corpus being the folder above `etc/`). Only when there is none of these does any other `.csv`/`.txt` whose first line reads `ID|text` count. The shallowest corpus is the one; two at the same depth are two corpora, and which one is meant is for the user to say (except that RUSLAN's own file wins over another beside it). With no transcripts at all, the folder is a plain folder of audio. Hidden files and folders are skipped. A root that does not exist, or holds neither audio nor transcripts, is a one-line error naming it.

# %%
#| export
LJSPEECH_NAME = "metadata.csv"

class Corpus(NamedTuple):
    "Where a corpus keeps its transcripts (None for a plain folder of audio) and its audio."
    transcripts: Path | None
    audio_dir: Path

    @property
    def layout(self) -> str:
        "The layout's name: `RUSLAN`, `LJSpeech`, `Festival voice` or `audio folder`."
        if self.transcripts is None:
            return "audio folder"
        name = self.transcripts.name.lower()
        return {FESTIVAL_NAME: "Festival voice", LJSPEECH_NAME: "LJSpeech"}.get(name, "RUSLAN")

    def describe(self) -> str:
        "One line: the layout and where its transcripts and audio are."
        if self.transcripts is None:
            return f"audio folder {self.audio_dir} (no transcripts)"
        return f"{self.layout} layout: {self.transcripts}, audio in {self.audio_dir}"


# %% [markdown]
# Which files are transcripts: RUSLAN's and LJSpeech's by name or by a first line of `ID|text`, Festival's by its place in `etc/`; the corpus's folder is the one above them.

# %%
#| export
def _looks_like_metadata(path: Path) -> bool:
    "Whether the first non-blank line of `path` reads `ID|text`."
    try:
        head = path.read_bytes()[:4096].decode("utf-8-sig", errors="replace")
    except OSError:
        return False
    first = next((line for line in head.splitlines() if line.strip()), "")
    uid, sep, _ = first.partition("|")
    return bool(sep) and bool(ID_PATTERN.fullmatch(uid.strip()))

def _transcript_kind(path: Path) -> str | None:
    "`named` (a known transcript file), `other` (another `ID|text` .csv/.txt), or None."
    name = path.name.lower()
    if name == FESTIVAL_NAME and path.parent.name.lower() == "etc":
        return "named"
    if name == METADATA_NAME.lower():
        return "named"
    if name == LJSPEECH_NAME:
        return "named" if _looks_like_metadata(path) else None
    if name.endswith((".csv", ".txt")) and _looks_like_metadata(path):
        return "other"
    return None

def _corpus_root(transcripts: Path) -> Path:
    "The folder of the corpus a transcript file is in (for Festival's `etc/txt.done.data`: above `etc/`)."
    festival = transcripts.name.lower() == FESTIVAL_NAME and transcripts.parent.name.lower() == "etc"
    return transcripts.parent.parent if festival else transcripts.parent


# %% [markdown]
# One walk of the tree collects the transcript files and counts the audio files of every folder; the audio folder of a corpus is its layout's own when that holds audio, else the fullest.

# %%
#| export
def _scan(base: Path) -> tuple[dict[str, list], Counter]:
    "One walk of `base`: transcript files by kind (with their corpus's depth), audio files per folder."
    found, audio_counts = {"named": [], "other": []}, Counter()
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            path = Path(dirpath) / name
            if is_audio_name(name):
                audio_counts[dirpath] += 1
            elif not name.startswith(".") and (kind := _transcript_kind(path)):
                found[kind].append((len(_corpus_root(path).relative_to(base).parts), path))
    return found, audio_counts

def _audio_dir(transcripts: Path, audio_counts: Counter, base: Path) -> Path:
    "The folder of a corpus's audio: its layout's own (`wavs/`, `wav/`) if it holds audio, else the fullest."
    own = {FESTIVAL_NAME: transcripts.parent.parent / "wav", LJSPEECH_NAME: transcripts.parent / "wavs"}
    preferred = own.get(transcripts.name.lower())
    if preferred is not None and audio_counts.get(str(preferred)):
        return preferred
    if not audio_counts:
        return preferred or base
    return Path(max(audio_counts, key=lambda d: (audio_counts[d], -len(Path(d).parts))))


# %% [markdown]
# `find_corpus` puts them together, and refuses with one line what cannot be one corpus:

# %%
#| export
def find_corpus(root) -> Corpus:
    "The corpus under `root` (a folder, or a transcript file): its transcripts and audio folder."
    root = Path(root).expanduser()
    if not root.exists():
        raise UserError(f"{root}: no such file or directory")
    base = _corpus_root(root) if root.is_file() else root
    found, audio_counts = _scan(base)
    if root.is_file():
        if is_audio_name(root.name) or not (_transcript_kind(root) or _looks_like_metadata(root)):
            raise UserError(f"{root}: not a transcript file (`ID|text` lines or a Festival txt.done.data); "
                            "give the corpus's folder")
        return Corpus(root, _audio_dir(root, audio_counts, base))
    candidates = sorted(found["named"] or found["other"])
    if not candidates:
        if not audio_counts:
            raise UserError(f"{root}: no audio files (.wav, .flac, .ogg) and no transcripts in it")
        return Corpus(None, root)
    nearest = [path for depth, path in candidates if depth == candidates[0][0]]
    ruslan = [path for path in nearest if path.name.lower() == METADATA_NAME.lower()]
    if len(nearest) > 1 and len(ruslan) == 1:  # RUSLAN's own file, next to another: this project's corpus
        nearest = ruslan
    if len(nearest) > 1:
        names = ", ".join(str(p.relative_to(root)) for p in nearest[:4])
        raise UserError(f"{root}: holds {len(nearest)} corpora ({names}): give --data-path the folder of one")
    return Corpus(nearest[0], _audio_dir(nearest[0], audio_counts, base))


# %%
show_doc(find_corpus)

# %%
print(find_corpus(tiny).describe())
print(find_corpus(voice).describe())
test_eq(find_corpus(tiny), (tiny / METADATA_NAME, tiny / "RUSLAN"))
test_eq(find_corpus(tiny / METADATA_NAME), (tiny / METADATA_NAME, tiny / "RUSLAN"))
test_eq((find_corpus(voice).layout, find_corpus(voice).audio_dir), ("Festival voice", voice / "wav"))
test_eq(find_corpus(voice / "etc" / FESTIVAL_NAME), (voice / "etc" / FESTIVAL_NAME, voice / "wav"))
test_eq(find_corpus(tiny / "RUSLAN"), (None, tiny / "RUSLAN"))  # audio without transcripts: an audio folder
test_fail(lambda: find_corpus("/nonexistent/ruslan"), exc=UserError,
          contains="ruslan: no such file or directory")
test_fail(lambda: find_corpus(voice / "wav" / "ru_0003.flac"), exc=UserError, contains="not a transcript file")


# %% [markdown]
# ## Preparing the corpus
#
# `prepare_corpus` ties it together: find the corpus, read its transcripts (if it has any), match IDs to audio files (a transcript entry without audio and an audio file without an entry are both reported), convert what needs converting in parallel worker processes, split, and report.
#
# **Resuming.** Every finished clip appends one line to `OUT/manifest.jsonl`: the source's path, size and modification time, the settings, and the output's size and length. A second run reuses a clip only when all of that still holds *and* the output's WAV header agrees (rate, one channel, 16-bit, the recorded number of samples); anything else is redone. A run killed half-way therefore loses at most the clips in flight: their outputs were never moved into place, and the leftover temporary files are removed at the start of the next run. Skipped clips are remembered too, so a broken file is not decoded again on every run.
#
# **The split** is deterministic and stable: clips are ordered by a hash of `seed:ID` and the first `val_size` go to validation. The same seed gives the same split, and adding or removing other clips does not move a clip from one side to the other. On a small corpus validation takes at most a fifth of the clips, so that training keeps most of them.
#
# **Safety.** The input is only ever read (on Kaggle it is read-only). An output folder inside the input corpus, or one that holds it, is refused before anything is written (`check_no_overwrite`, [Locations](00c_locations.ipynb#an-output-never-replaces-an-input)).

# %%
#| export
def default_workers() -> int:
    "All the CPU cores this process may use."
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1

def split_ids(ids: list[str], val_size: int = 100, seed: int = 1234) -> tuple[list[str], list[str]]:
    "Deterministic `(train, val)` split in input order: `val_size` validation clips, at most a fifth of them."
    n = len(ids)
    k = min(val_size, max(1, n // 5)) if n >= 2 and val_size > 0 else 0
    ranked = sorted(ids, key=lambda u: hashlib.sha256(f"{seed}:{u}".encode()).hexdigest())
    val = set(ranked[:k])
    return [u for u in ids if u not in val], [u for u in ids if u in val]


# %%
show_doc(split_ids)

# %%
ids = [f"{i:06d}_RUSLAN" for i in range(1000)]
tr, va = split_ids(ids, 100, 1234)
print(va[:5])
test_eq(len(tr), 900)
test_eq(len(va), 100)
test_eq(set(tr) & set(va), set())
test_eq(split_ids(ids, 100, 1234), (tr, va))
test_ne(split_ids(ids, 100, 7)[1], va)  # another seed, another split
test_eq([len(split_ids(ids[:n], 100)[1]) for n in [1, 2, 12, 24, 499, 500]], [0, 1, 2, 4, 99, 100])

# %% [markdown]
# Because the rank of a clip depends on nothing but its own ID, dropping clips that are not in validation (files found broken on a later run, say) leaves the validation set exactly as it was:

# %%
test_eq(split_ids([u for u in ids if u in va or int(u[:6]) % 3], 100, 1234)[1], va)

# %% [markdown]
# The manifest and the matching of IDs to files, the pieces `prepare_corpus` is made of:

# %%
#| export
MANIFEST_NAME = "manifest.jsonl"

def _load_manifest(path: Path) -> dict[str, dict]:
    "Latest record per ID; a line cut by a kill (invalid JSON) is ignored."
    records = {}
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else []
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "id" in rec:
            records[rec["id"]] = rec
    return records

def _output_matches(rec: dict, dst: Path, settings: dict) -> bool:
    "Whether `dst` is the complete WAV that `rec` describes."
    try:
        if dst.stat().st_size != rec["out_size"]:
            return False
        info = sf.info(dst)
    except (OSError, RuntimeError):
        return False
    want = (settings["sr"], 1, TARGET_SUBTYPE, rec["out_frames"])
    return (info.samplerate, info.channels, info.subtype, info.frames) == want

def _reusable(rec: dict | None, src: Path, dst: Path, settings: dict) -> bool:
    "Whether a manifest record still describes `src` and, for a kept clip, a complete, matching `dst`."
    if not rec or rec.get("settings") != settings or rec.get("src") != str(src):
        return False
    try:
        st = src.stat()
    except OSError:
        return False
    if (st.st_size, st.st_mtime_ns) != (rec.get("src_size"), rec.get("src_mtime_ns")):
        return False
    return not rec["kept"] or _output_matches(rec, dst, settings)


# %% [markdown]
# A clip is converted again only when its source or the settings changed or its output is gone: the plan sorts the clips into those reused from the manifest and those to convert.

# %%
#| export
def _plan(pairs: list, out: Path, previous: dict, settings: dict) -> tuple[dict, list[tuple]]:
    "`(records reused from the manifest, tasks for process_clip)`."
    records, todo = {}, []
    for e, src in pairs:
        dst = out / "wavs" / f"{e.id}.wav"
        if _reusable(previous.get(e.id), src, dst, settings):
            records[e.id] = previous[e.id]
        else:
            todo.append((e.id, str(src), str(dst), settings["sr"], settings["min_seconds"]))
    return records, todo

def _run_task(task: tuple) -> dict:
    return process_clip(*task)

def _write_text_atomic(path: Path, text: str):
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# %% [markdown]
# The transcripts in every layout become the same list of entries: a plain folder of audio gets one entry per file (empty text), an LJSpeech line keeps its normalised text.

# %%
#| export
def _index_audio(audio_dir: Path, recursive: bool = False) -> dict[str, list[Path]]:
    "Audio files of `audio_dir` (and of its subfolders if `recursive`) by clip key."
    index: dict[str, list[Path]] = {}
    paths = audio_dir.rglob("*") if recursive else audio_dir.iterdir() if audio_dir.is_dir() else []
    for p in sorted(paths):
        hidden = any(part.startswith(".") for part in p.relative_to(audio_dir).parts)
        if is_audio_name(p.name) and not hidden and p.is_file():
            index.setdefault(clip_key(p.stem), []).append(p)
    return index

def _folder_entries(index: dict[str, list[Path]]) -> tuple[list[MetaEntry], list[dict]]:
    "Entries (empty texts) of a folder of audio without transcripts: an ID per file name."
    entries, problems = [], []
    for paths in index.values():
        uid = paths[0].stem
        if ID_PATTERN.fullmatch(uid):
            entries.append(MetaEntry(uid, "", 0))
        else:
            reason = f"{paths[0].name}: the file name is not a plain ID (letters, digits, `_.-`); skipped"
            problems.append(problem_record("id", uid, "bad_id", reason))
    return entries, problems

def _ljspeech_text(text: str) -> str:
    "The normalised text of an LJSpeech `text|normalised` pair, else the text."
    raw, _, normalised = text.partition("|")
    return normalised.strip() or raw.strip()

def read_transcripts(corpus: Corpus, index: dict[str, list[Path]]) -> tuple[list[MetaEntry], list[dict]]:
    "The entries of a corpus, by its layout, and the problems of its transcripts: `(entries, problems)`."
    if corpus.transcripts is None:
        return _folder_entries(index)
    if corpus.layout == "Festival voice":
        return read_festival(corpus.transcripts)
    entries, problems = read_metadata(corpus.transcripts)
    if corpus.layout == "LJSpeech":
        entries = [e._replace(text=_ljspeech_text(e.text)) for e in entries]
    return entries, problems


# %% [markdown]
# Each entry is matched to its audio file; an entry without one, or a file named twice, is a problem of that clip:

# %%
#| export
def _match(entries: list[MetaEntry], audio_index: dict[str, list[Path]], audio_dir: Path,
           transcribed: bool = True):
    "`(pairs, problems)`: entries paired with audio by key; entries or files without a partner, duplicates."
    index, problems, pairs = dict(audio_index), [], []
    for e in entries:
        paths = index.pop(clip_key(e.id), None)
        if not paths:
            reason = f"no audio file for this transcript entry (line {e.line}) in {audio_dir}"
            problems.append(problem_record("id", e.id, "missing_wav", reason))
            continue
        paths = sorted(paths, key=lambda p: p.stem != e.id)  # the file named exactly like the ID first
        pairs.append((e, paths[0]))
        for extra in paths[1:]:
            reason = f"{extra.name} is a second file for ID {e.id} ({paths[0].name} used); ignored"
            problems.append(problem_record("id", extra.stem, "duplicate_wav", reason))
    for p in (p for paths in index.values() for p in paths if transcribed):  # untranscribed: reported already
        reason = f"{p.name} is not in the transcripts; skipped"
        problems.append(problem_record("id", p.stem, "not_in_metadata", reason))
    return pairs, problems


# %% [markdown]
# Converting runs in `workers` processes (forked where the platform can), each finished clip logged to the manifest at once; the problems of the report are collected from the records afterwards, in metadata order, so that they do not depend on which worker finished first. A stop is the parent's to handle: Ctrl-C reaches every process of the terminal's group, so the workers ignore it and the parent ends them (SIGTERM, which ends a worker without a word); a stopped run leaves only finished clips in the manifest, and the next run goes on from them.

# %%
#| export
def _convert(todo: list[tuple], workers: int, manifest_path: Path, settings: dict, records: dict,
             progress: bool):
    "Run `process_clip` on every task, appending each record to the manifest as it finishes."
    from tqdm.auto import tqdm
    with open(manifest_path, "a", encoding="utf-8") as log, \
         tqdm(total=len(todo), unit="clip", desc="prepare", disable=not progress or not todo) as bar:
        def done(rec: dict):
            rec["settings"] = settings
            records[rec["id"]] = rec
            log.write(json.dumps(rec, ensure_ascii=False) + "\n")
            log.flush()
            bar.update()
        if workers == 1:
            for task in todo:
                done(_run_task(task))
            return
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with _quiet_workers(ctx, workers) as pool:
            chunksize = max(1, min(16, len(todo) // (8 * workers)))
            for rec in pool.imap_unordered(_run_task, todo, chunksize=chunksize):
                done(rec)

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}

def _leave_stopping_to_parent():
    "In a worker: ignore Ctrl-C (a terminal sends it to every process), let SIGTERM end it without a word."
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

@contextmanager
def _quiet_workers(ctx, workers: int):
    "A pool whose workers leave a stop to the parent, which ends them (signals held while they start)."
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        pool = ctx.Pool(workers, initializer=_leave_stopping_to_parent)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    with pool:
        yield pool

def usual_rate(rates: dict) -> int | None:
    "The corpus's usual source sample rate among `{rate: clips}`: the most common (a tie goes to the higher)."
    counts = {int(sr): n for sr, n in rates.items()}
    return max(counts, key=lambda sr: (counts[sr], sr)) if counts else None

def _record_problems(ordered: list[dict], target_sr: int) -> tuple[list[dict], Counter]:
    "Problems of the converted clips (skips, notes, unusual sample rates) and the count of each input rate."
    problems = []
    rates = Counter(r["sr"] for r in ordered if r["sr"])
    usual = usual_rate(rates)
    for r in ordered:
        if not r["kept"]:
            problems.append(problem_record("id", r["id"], r["skip"][0], r["skip"][1]))
            continue
        problems += [problem_record("id", r["id"], kind, text, "kept") for kind, text in r["notes"]]
        if r["sr"] != usual:
            how = f"upsampled: nothing above {r['sr'] / 2:.0f} Hz" if r["sr"] < target_sr else \
                  f"resampled to {target_sr} Hz"
            reason = f"sample rate {r['sr']} Hz, not the corpus's usual {usual} Hz; {how}"
            problems.append(problem_record("id", r["id"], "sample_rate", reason, "kept"))
    return problems, rates


# %% [markdown]
# `prepare_corpus` checks its own arguments before it reads or writes anything, so that the same mistakes get the same one-line error from the command line and from Python.

# %%
#| export
def _check_counts(workers: int | None, val_size: int):
    if workers is not None and workers < 1:
        raise UserError(f"workers {workers}: must be at least 1")
    if val_size < 0:
        raise UserError(f"val_size {val_size}: must be 0 or more")

def _check_folders(data_path: Path, out: Path, corpus: Corpus, mel_dir):
    "The mel folder exists; nothing `prepare` writes is, holds or lies inside what it reads."
    if mel_dir is not None and not Path(mel_dir).expanduser().is_dir():
        raise UserError(f"{mel_dir}: mel directory not found")
    base = data_path if data_path.is_dir() else data_path.parent
    writes = [(out / name, "prepared output") for name in ("wavs", "train.txt", "val.txt", "report.json",
                                                          MANIFEST_NAME)]
    reads = [(base, "input corpus"), (corpus.audio_dir, "corpus audio")]
    reads += [(corpus.transcripts, "transcripts")] if corpus.transcripts else []
    reads += [(mel_dir, "mel folder")] if mel_dir is not None else []
    check_no_overwrite(writes, reads)

def prepare_corpus(data_path, out, workers: int | None = None, val_size: int = 100, seed: int = 1234,
                   mel_dir=None, cfg: Config | None = None, progress: bool = True) -> dict:
    "Check, resample (22,050 Hz mono 16-bit) and split the corpus under `data_path` into `out`; the report."
    _check_counts(workers, val_size)
    check_output_folder(out)
    cfg = cfg or Config()
    start = time.perf_counter()
    data_path, out = Path(data_path).expanduser().resolve(), Path(out).expanduser().resolve()  # stable keys
    corpus = find_corpus(data_path)
    _check_folders(data_path, out, corpus, mel_dir)
    audio_index = _index_audio(corpus.audio_dir, recursive=corpus.transcripts is None)
    entries, problems = read_transcripts(corpus, audio_index)
    if not entries:
        what = "no usable file name" if corpus.transcripts is None else "no entry in the transcripts"
        raise UserError(f"{corpus.transcripts or corpus.audio_dir}: {what}")
    pairs, match_problems = _match(entries, audio_index, corpus.audio_dir, corpus.transcripts is not None)
    problems += match_problems
    target_sr = cfg.mel.sampling_rate
    settings = {"version": 1, "sr": target_sr,
                "min_seconds": round(MIN_SEGMENT_FRACTION * cfg.train.segment_size / target_sr, 4)}
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    for leftover in (out / "wavs").glob(".*.partial.wav"):
        leftover.unlink()  # from a killed run
    manifest_path = out / MANIFEST_NAME
    records, todo = _plan(pairs, out, _load_manifest(manifest_path), settings)
    reused = len(records)
    workers = max(1, min(workers or default_workers(), len(todo) or 1))
    _convert(todo, workers, manifest_path, settings, records, progress)
    ordered = [records[e.id] for e, _ in pairs]
    _write_text_atomic(manifest_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered))
    record_problems, rates = _record_problems(ordered, target_sr)
    problems += record_problems
    kept = [r for r in ordered if r["kept"]]
    texts = {e.id: e.text for e, _ in pairs}
    train_ids, val_ids = split_ids([r["id"] for r in kept], val_size, seed)
    for name, split in [("train", train_ids), ("val", val_ids)]:
        _write_text_atomic(out / f"{name}.txt", "".join(f"{u}|{texts[u]}\n" for u in split))
    seconds = sum(r["seconds"] for r in kept)
    report = {
        "data_path": str(data_path), "layout": corpus.layout,
        "transcripts": str(corpus.transcripts) if corpus.transcripts else None,
        "audio_dir": str(corpus.audio_dir), "out": str(out),
        "transcript_entries": len(entries), "audio_files": sum(len(v) for v in audio_index.values()),
        "clips_found": len({clip_key(e.id) for e in entries} | set(audio_index)),
        "clips_matched": len(pairs), "kept": len(kept), "skipped": len(pairs) - len(kept),
        "reused": reused, "processed": len(todo), "workers": workers,
        "hours_kept": round(seconds / 3600, 4), "seconds_kept": round(seconds, 2),
        "sample_rates": {str(sr): n for sr, n in sorted(rates.items())}, "target_sample_rate": target_sr,
        "train": len(train_ids), "val": len(val_ids), "val_size_requested": val_size, "seed": seed,
        "metadata_encoding": metadata_encoding(problems),
        "warnings": split_warnings(len(train_ids), len(val_ids), val_size, cfg),
        "problem_counts": {}, "problems": problems, "elapsed_s": round(time.perf_counter() - start, 2),
    }
    if mel_dir is not None:
        report["mel_dir"] = check_mel_dir(mel_dir, [(r["id"], r["out_frames"]) for r in kept], cfg, problems)
    report["problem_counts"] = dict(Counter(p["kind"] for p in problems).most_common())
    _write_text_atomic(out / "report.json", json.dumps(report, ensure_ascii=False, indent=1))
    if not kept:
        why = f"no usable clip among {len(pairs)}" if pairs else \
              f"none of the {len(entries)} transcript entries has an audio file in {corpus.audio_dir}"
        raise UserError(f"{data_path}: {why} ({len(problems)} problems listed in {out / 'report.json'})")
    return report


# %% [markdown]
# A corpus that `train` would refuse is still prepared (its clips are checked and converted, and more can be added
# later), but the report and the summary say so, with what to do: no validation clip (`--val-size 0`, or a single
# clip), fewer training clips than one step of the config takes, or fewer validation clips than asked for (never
# more than a fifth of the corpus). The report also names the encoding the metadata was read in.

# %%
#| export
def split_warnings(n_train: int, n_val: int, val_size: int, cfg: Config | None = None) -> list[str]:
    "What `train` (with `cfg`, the recipe by default) would say about a split of `n_train` and `n_val` clips."
    t = (cfg or Config()).train
    warnings = []
    if n_val == 0 and val_size == 0:
        warnings.append("--val-size 0: val.txt is empty, but training validates on it: prepare again with "
                        "--val-size 1 or more")
    elif n_val == 0:
        warnings.append(f"only {n_train + n_val} usable clip(s): val.txt is empty, and a run needs at least "
                        "2 clips (one to train on, one to validate on)")
    elif n_val < val_size:
        warnings.append(f"--val-size {val_size}: {n_val} validation clip(s) used, at most a fifth of the "
                        f"{n_train + n_val} kept clips")
    step = t.batch_size * t.grad_accum_steps
    if 0 < n_train < step:
        sizes = f"train.batch_size {t.batch_size} x train.grad_accum_steps {t.grad_accum_steps}"
        advice = f"--set train.batch_size={min(n_train, t.batch_size)} --set train.grad_accum_steps=1"
        warnings.append(f"train.txt lists {n_train} clip(s), fewer than one training step takes ({step}: "
                        f"{sizes}): train with {advice}")
    return warnings

def metadata_encoding(problems: list[dict]) -> str:
    "The encoding the metadata was read in, as `read_metadata`'s problems tell it."
    kinds = {p["kind"]: p["reason"] for p in problems if p.get("line") == 1}
    if "cp1251" in kinds:
        return "cp1251"
    return "utf-16" if "UTF-16" in kinds.get("bom", "") else "utf-8"


# %%
show_doc(split_warnings)

# %%
for n_train, n_val, val_size in [(10, 2, 100), (1, 0, 100), (12, 0, 0), (2, 1, 1), (12, 2, 50)]:
    print((n_train, n_val, val_size), split_warnings(n_train, n_val, val_size))
test_eq(split_warnings(10_000, 100, 100), [])
test_eq(len(split_warnings(2, 1, 1)), 1)
assert "--set train.batch_size=2 --set train.grad_accum_steps=1" in split_warnings(2, 1, 1)[0]
test_eq(metadata_encoding([{"line": 1, "kind": "cp1251", "reason": "..."}]), "cp1251")

# %% [markdown]
# `format_summary` is the few lines `hifigan-ruslan prepare` prints at the end (and the Kaggle kernel, too): the layout it found, what it kept, and each clip it skipped with the reason (the first ten; `report.json` has them all), and likewise each clip whose cached mel (`--mel-dir`) is missing, of another length or bad.

# %%
#| export
SUMMARY_SKIPS = 10  # skipped clips named one per line on the console; report.json lists every one

def format_summary(report: dict) -> str:
    "A few lines a person reads after `prepare`."
    rates = ", ".join(f"{sr} Hz x{n}" for sr, n in report["sample_rates"].items())
    counts = ", ".join(f"{k} {v}" for k, v in report["problem_counts"].items()) or "none"
    where = (f"{report['layout']} layout, transcripts {report['transcripts']}, audio in {report['audio_dir']}"
             if report["transcripts"] else f"audio folder {report['audio_dir']} (no transcripts)")
    lines = [f"kept {report['kept']} of {report['clips_found']} clips, {report['hours_kept']:.2f} h "
             f"({report['seconds_kept']:.0f} s), from the {where}",
             f"  sample rates seen: {rates} -> {report['target_sample_rate']} Hz mono 16-bit",
             f"  reused {report['reused']}, processed {report['processed']} "
             f"with {report['workers']} worker(s) "
             f"in {report['elapsed_s']:.1f} s",
             f"  split (seed {report['seed']}): {report['train']} train, {report['val']} val",
             f"  problems: {counts}"]
    if "mel_dir" in report:
        m = report["mel_dir"]
        lines.append(f"  mel cache {m['path']}: {m['ok']} ok, {m['missing']} missing, "
                     f"{m['mismatched']} mismatched, {m['bad']} bad (integer, NaN or infinite values)")
        mels = [p for p in report["problems"] if p["kind"].startswith("mel_") and "id" in p]
        lines += [f"  mel of {p['id']}: {p['reason']}" for p in mels[:SUMMARY_SKIPS]]
        if len(mels) > SUMMARY_SKIPS:
            lines.append(f"  ... and {len(mels) - SUMMARY_SKIPS} more mel problems (report.json names all)")
    if report.get("metadata_encoding", "utf-8") != "utf-8":
        lines.append(f"  metadata read as {report['metadata_encoding']}, not UTF-8 (see report.json)")
    skipped = [p for p in report["problems"] if p["action"] == "skipped" and "id" in p]
    for p in skipped[:SUMMARY_SKIPS]:
        lines.append(f"  skipped {p['id']}: {p['reason']}")
    if len(skipped) > SUMMARY_SKIPS:
        lines.append(f"  ... and {len(skipped) - SUMMARY_SKIPS} more clips skipped (report.json names all)")
    lines += [f"  warning: {w}" for w in report.get("warnings", [])]
    out = Path(report["out"])
    lines.append(f"wrote {out / 'wavs'}/, {out / 'train.txt'}, {out / 'val.txt'}, {out / 'report.json'}")
    return "\n".join(lines)


# %%
show_doc(prepare_corpus)

# %%
show_doc(format_summary)

# %% [markdown]
# On the synthetic test corpus (no progress bar in this notebook):

# %%
import codecs, shutil, tempfile

# %%
work = Path(tempfile.mkdtemp())
tiny_report = prepare_corpus(tiny, work / "tiny", workers=2, progress=False)
print(format_summary(tiny_report))
print((work / "tiny/val.txt").read_text())

# %%
test_eq(tiny_report["kept"], 12)
test_eq(tiny_report["train"], 10)
test_eq(tiny_report["val"], 2)
test_eq(tiny_report["sample_rates"], {"22050": 6, "44100": 6})
test_eq({(p["kind"], p["action"]) for p in tiny_report["problems"]}, {("sample_rate", "kept")})
test_eq(sorted(p.name for p in (work / "tiny/wavs").iterdir()), [f"{i:06d}_RUSLAN.wav" for i in range(12)])
test_eq({(sf.info(p).samplerate, sf.info(p).subtype) for p in (work / "tiny/wavs").iterdir()},
        {(22050, "PCM_16")})
test_eq(json.loads((work / "tiny/report.json").read_text())["kept"], 12)
assert format_summary(tiny_report).splitlines()[0].startswith("kept 12 of 12 clips")

# %% [markdown]
# ### The corpus at a glance
#
# What `prepare` made of the bundled corpus: how long the clips are, how much audio there is, and one clip as a waveform and as the log-mel the generator will read. (The same cell on the real RUSLAN shows 22,200 clips of 1 to 15 s, 31 hours.)

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import Audio, display
from hifigan_ruslan.mel import mel_spectrogram

# %%
durations = {p.stem: sf.info(p).duration for p in sorted((work / "tiny/wavs").glob("*.wav"))}
seconds = list(durations.values())
print(f"{len(seconds)} clips, {sum(seconds) / 3600:.4f} h ({sum(seconds):.1f} s), "
      f"{min(seconds):.2f}-{max(seconds):.2f} s each; problems: {tiny_report['problem_counts']}")
first_id = min(durations, key=durations.get)  # the shortest clip keeps this page light
clip, clip_sr = sf.read(work / "tiny/wavs" / f"{first_id}.wav", dtype="float32")
fig, axes = plt.subplots(1, 3, figsize=(10, 2.5), dpi=72, gridspec_kw={"width_ratios": [1, 1.3, 1.6]})
axes[0].hist(seconds, bins=8, color="tab:blue")
axes[0].set(xlabel="seconds", ylabel="clips", title="clip durations")
axes[1].plot(np.arange(len(clip)) / clip_sr, clip, lw=0.4)
axes[1].set(xlabel="seconds", title=f"{first_id}: waveform")
axes[2].imshow(mel_spectrogram(torch.from_numpy(clip)).numpy(), origin="lower", aspect="auto", cmap="magma",
               extent=(0, len(clip) / clip_sr, 0, 80))
axes[2].set(xlabel="seconds", ylabel="mel band", title="log-mel (input, 0-8 kHz)")
fig.tight_layout()
plt.show()
display(Audio(clip, rate=clip_sr))


# %% [markdown]
# ### Every bad case, end to end
#
# A corpus with everything wrong with it, in a layout unlike RUSLAN's: the WAVs in `ruslan_dataset/`, some named with bare numbers, the metadata with a BOM and CRLF endings. Each WAV defect from above gets its own ID; one metadata line has no `|`, one entry has no WAV, and one WAV has no entry.

# %%
def tone(sr=44100, seconds=0.4, amp=0.5, channels=1) -> np.ndarray:
    "A 220 Hz tone, a stand-in for speech (in stereo, the second channel at half the level)."
    t = np.arange(int(sr * seconds)) / sr
    x = (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return np.stack([x, 0.5 * x], 1) if channels == 2 else x

def make_corpus(root: Path, clips: dict, extra_lines=(), folder="ruslan_dataset", bom=True, crlf=True) -> Path:
    "A RUSLAN-shaped corpus of tiny WAVs: `clips` maps a file stem to `(audio, sr, subtype)` or to raw bytes."
    (root / folder).mkdir(parents=True)
    for stem, spec in clips.items():
        if isinstance(spec, bytes):
            (root / folder / f"{stem}.wav").write_bytes(spec)
        else:
            sf.write(root / folder / f"{stem}.wav", spec[0], spec[1], subtype=spec[2])
    ids = [s if s.endswith("_RUSLAN") else f"{s}_RUSLAN" for s in clips]
    lines = [f"{u}|Текст «{u}», \"в кавычках\"." for u in ids] + list(extra_lines)
    nl = "\r\n" if crlf else "\n"
    (root / METADATA_NAME).write_bytes((codecs.BOM_UTF8 if bom else b"") + (nl.join(lines) + nl).encode())
    return root

ok = (tone(seconds=1.0), 44100, "PCM_16")
sf.write(work / "tone.wav", tone(), 44100, subtype="PCM_16")
full = (work / "tone.wav").read_bytes()  # a complete WAV, to cut short below
bad_corpus = make_corpus(work / "bad_in", {
    "000000_RUSLAN": ok, "000001": ok,  # a bare number matches 000001_RUSLAN in the metadata
    "000002_RUSLAN": (tone(seconds=1.0, channels=2), 44100, "PCM_16"),
    "000003_RUSLAN": (tone(seconds=1.0, amp=1.6), 44100, "FLOAT"),
    "000004_RUSLAN": (np.clip(tone(seconds=1.0, amp=3.0), -1, 1), 44100, "PCM_16"),
    "000005_RUSLAN": (tone(sr=16000, seconds=0.25), 16000, "PCM_16"),
    "000006_RUSLAN": (np.zeros(44100, np.float32), 44100, "PCM_16"),
    "000007_RUSLAN": (tone(seconds=0.03), 44100, "PCM_16"),
    "000008_RUSLAN": b"",
    "000009_RUSLAN": full[: len(full) // 3],
    "000010_RUSLAN": b"RIFF junk that is not a WAV",
    "000011_RUSLAN": ok,
}, extra_lines=["000012_RUSLAN|этот файл потерян", "", "а эта строка без разделителя"])
wav_folder = bad_corpus / "ruslan_dataset"
(wav_folder / "000011_RUSLAN.wav").rename(wav_folder / "000099_RUSLAN.wav")  # 11 loses its WAV...
(wav_folder / "000099_RUSLAN.wav").write_bytes(full)  # ...and 99 is not in the metadata
input_state = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in bad_corpus.rglob("*")}
report = prepare_corpus(bad_corpus, work / "bad_out", workers=2, progress=False)
print(format_summary(report))
for p in report["problems"]:
    print(" ", p.get("id", f"line {p.get('line')}"), p["action"], "-", p["reason"])

# %%
test_eq({(p["kind"], p.get("id", p.get("line")), p["action"]) for p in report["problems"]},
        {("bom", 1, "kept"), ("crlf", 1, "kept"), ("blank_line", 14, "skipped"),
         ("no_separator", 15, "skipped"),
         ("missing_wav", "000011_RUSLAN", "skipped"), ("missing_wav", "000012_RUSLAN", "skipped"),
         ("not_in_metadata", "000099_RUSLAN", "skipped"), ("stereo", "000002_RUSLAN", "kept"),
         ("format", "000003_RUSLAN", "kept"), ("out_of_range", "000003_RUSLAN", "kept"),
         ("clipped", "000004_RUSLAN", "kept"), ("sample_rate", "000005_RUSLAN", "kept"),
         ("silent", "000006_RUSLAN", "skipped"), ("too_short", "000007_RUSLAN", "skipped"),
         ("empty_file", "000008_RUSLAN", "skipped"), ("truncated", "000009_RUSLAN", "skipped"),
         ("unreadable", "000010_RUSLAN", "skipped")})
kept_ids = sorted(p.stem for p in (work / "bad_out/wavs").glob("*.wav"))
test_eq(kept_ids, [f"{i:06d}_RUSLAN" for i in range(6)])
test_eq(report["kept"], 6)
test_eq(report["sample_rates"], {"16000": 1, "44100": 7})
test_eq(report["clips_found"], 14)
split_lines = [line for name in ["train.txt", "val.txt"]
               for line in (work / "bad_out" / name).read_text().splitlines()]
test_eq(sorted(split_lines), [f'{u}|Текст «{u}», "в кавычках".' for u in kept_ids])
test_eq({p: (p.stat().st_size, p.stat().st_mtime_ns) for p in bad_corpus.rglob("*")}, input_state)  # untouched

# %% [markdown]
# When nothing usable is found the call raises a one-line `UserError` (the command turns it into exit status 2); the report is still written when the corpus was found, so the reasons can be read. A wrong path, a folder whose only clip is silent, an output folder inside the input, and arguments out of range, none of which writes anything:

# %%
silence = (np.zeros(22050, np.float32), 22050, "PCM_16")
silent_corpus = make_corpus(work / "all_silent", {"000000_RUSLAN": silence}, bom=False, crlf=False)
test_fail(lambda: prepare_corpus(work / "no_such_corpus", work / "o1", progress=False), exc=UserError,
          contains="no_such_corpus: no such file or directory")
test_fail(lambda: prepare_corpus(silent_corpus, work / "o2", progress=False), exc=UserError,
          contains="all_silent: no usable clip among 1 (1 problems listed in")
test_eq(json.loads((work / "o2/report.json").read_text())["problem_counts"], {"silent": 1})
test_fail(lambda: prepare_corpus(bad_corpus, bad_corpus / "prepared", progress=False), exc=UserError,
          contains="prepared/wavs: the prepared output is inside the input corpus")
test_fail(lambda: prepare_corpus(tiny, work / "o3", workers=0), exc=UserError, contains="workers 0: must be")
test_fail(lambda: prepare_corpus(tiny, work / "o3", val_size=-1), exc=UserError, contains="val_size -1: must")
test_fail(lambda: prepare_corpus(tiny, work / "o3", mel_dir=work / "no_mels"), exc=UserError,
          contains="no_mels: mel directory not found")
(work / "a_file").write_text("x")
test_fail(lambda: prepare_corpus(tiny, work / "a_file"), exc=UserError, contains="a_file: is a file")
test_eq([p.exists() for p in [work / "o1", bad_corpus / "prepared", work / "o3"]], [False, False, False])

# %% [markdown]
# Corpora that `train` would refuse are prepared, with a warning that says what to do: a single clip, and
# `--val-size 50` on the 12 clips of the test corpus (2 used):

# %%
single = make_corpus(work / "single", {"000000_RUSLAN": (tone(22050, 1.0), 22050, "PCM_16")}, bom=False,
                     crlf=False)
for small in (prepare_corpus(single, work / "one", progress=False),
              prepare_corpus(tiny, work / "fifty", val_size=50, progress=False)):
    print("\n".join(line for line in format_summary(small).splitlines() if "warning" in line))
test_eq(len(prepare_corpus(single, work / "one", progress=False)["warnings"]), 2)  # no validation, no step
test_eq(prepare_corpus(tiny, work / "fifty", val_size=50, progress=False)["warnings"],
        ["--val-size 50: 2 validation clip(s) used, at most a fifth of the 12 kept clips"])
# ### The other layouts
#
# **A Festival voice**: the real voice bundled with the package, 24 FLAC files at 16 kHz in `wav/` with `etc/txt.done.data`. `prepare` says what it found and holds out 4 clips (a fifth of 24, with the default `--val-size`):

# %%
voice_report = prepare_corpus(voice, work / "voice", workers=2, progress=False)
print(format_summary(voice_report).replace(str(voice.parent), "ASSETS").replace(str(work), "WORK"))
test_eq((voice_report["layout"], voice_report["kept"], voice_report["sample_rates"]), ("Festival voice", 24, {"16000": 24}))
test_eq([line.split("|")[0] for line in (work / "voice/val.txt").read_text().splitlines()],
        ["ru_0063", "ru_0209", "ru_0325", "ru_0538"])
test_eq(voice_report["problems"], [])
test_eq(sf.info(work / "voice/wavs/ru_0003.wav").samplerate, 22050)

# %% [markdown]
# **LJSpeech**: `metadata.csv` with `ID|text|normalised text` lines (the normalised text is kept; a line without one keeps its text) and the audio in `wavs/`; the corpus's folder may sit anywhere below the folder given.

# %%
lj = work / "downloads" / "LJSpeech-1.1"
(lj / "wavs").mkdir(parents=True)
lj_texts = {"LJ001-0001": "Глава 1|Глава первая", "LJ001-0002": "В 1812 году.|В тысяча восемьсот двенадцатом году.",
            "LJ001-0003": "Без нормализации."}
for i, uid in enumerate(lj_texts):
    sf.write(lj / "wavs" / f"{uid}.wav", tone(sr=22050, seconds=1.0 + i / 10), 22050, subtype="PCM_16")
(lj / "metadata.csv").write_text("".join(f"{u}|{t}\n" for u, t in lj_texts.items()), encoding="utf-8")
lj_report = prepare_corpus(work / "downloads", work / "lj", progress=False)
print(format_summary(lj_report).splitlines()[0].replace(str(work), "WORK"))
test_eq((lj_report["layout"], lj_report["kept"]), ("LJSpeech", 3))
split_texts = dict(line.split("|", 1) for name in ("train.txt", "val.txt")
                   for line in (work / "lj" / name).read_text(encoding="utf-8").splitlines())
test_eq(split_texts, {"LJ001-0001": "Глава первая", "LJ001-0002": "В тысяча восемьсот двенадцатом году.",
                      "LJ001-0003": "Без нормализации."})

# %% [markdown]
# **A plain folder of audio**, no transcripts: every WAV, FLAC and OGG under it, in subfolders too, at any rate and channel count, the ID being the file name; the split files get empty texts. A file name that could not be an ID and a second file for the same name are reported, as in any layout.

# %%
recordings = work / "my recordings"
(recordings / "day 2").mkdir(parents=True)
sf.write(recordings / "take01.wav", tone(sr=48000, seconds=1.0), 48000, subtype="PCM_24")
sf.write(recordings / "take02.flac", tone(sr=44100, seconds=1.0, channels=2), 44100, format="FLAC")
sf.write(recordings / "day 2" / "take03.ogg", tone(sr=32000, seconds=1.0), 32000, format="OGG", subtype="VORBIS")
sf.write(recordings / "day 2" / "take01.flac", tone(seconds=1.0), 44100, format="FLAC")  # a second take01
sf.write(recordings / "запись.wav", tone(seconds=1.0), 44100, subtype="PCM_16")
folder_report = prepare_corpus(recordings, work / "folder", progress=False)
print(format_summary(folder_report).replace(str(work), "WORK"))
test_eq((folder_report["layout"], folder_report["kept"]), ("audio folder", 3))
test_eq({(p["kind"], p["id"]) for p in folder_report["problems"] if p["action"] == "skipped"},
        {("bad_id", "запись"), ("duplicate_wav", "take01")})
test_eq([p["kind"] for p in folder_report["problems"] if p["id"] == "take01"], ["duplicate_wav"])
test_eq(sorted((work / "folder/train.txt").read_text().splitlines() + (work / "folder/val.txt").read_text().splitlines()),
        ["take01|", "take02|", "take03|"])

# %% [markdown]
# ### Bad input in any layout
#
# A Festival voice with everything wrong with it: its transcripts saved in cp1251, an entry whose WAV is missing, a text file named `.flac`, and a FLAC of 0 samples, next to two good clips. Each bad one is named on the console and in `report.json` and costs its clip only:

# %%
bad_voice = work / "bad_voice"
(bad_voice / "wav").mkdir(parents=True)
(bad_voice / "etc").mkdir()
for uid in ("ru_0003", "ru_0038"):
    shutil.copy(voice / "wav" / f"{uid}.flac", bad_voice / "wav")
(bad_voice / "wav" / "ru_0004.flac").write_text("Это текст, а не звук.\n", encoding="utf-8")
streaminfo = (4096).to_bytes(2, "big") * 2 + bytes(6) + ((16000 << 44) | (15 << 36)).to_bytes(8, "big") + bytes(16)
(bad_voice / "wav" / "ru_0005.flac").write_bytes(b"fLaC" + bytes([0x80, 0, 0, 34]) + streaminfo)
bad_texts = ["( ru_0003 \"Со спокойным мужеством.\" )", "( ru_0038 \"Аванс.\" )", "( ru_0004 \"Текст.\" )",
             "( ru_0005 \"Пусто.\" )", "( ru_0006 \"Записи нет.\" )"]
(bad_voice / "etc" / FESTIVAL_NAME).write_bytes("\n".join(bad_texts).encode("cp1251") + b"\n")
bad_voice_report = prepare_corpus(bad_voice, work / "bad_voice_out", progress=False)
summary = format_summary(bad_voice_report).replace(str(work), "WORK")
print(summary)
test_eq({(p["kind"], p.get("id", p.get("line")), p["action"]) for p in bad_voice_report["problems"]},
        {("cp1251", 1, "kept"), ("unreadable", "ru_0004", "skipped"), ("empty_file", "ru_0005", "skipped"),
         ("missing_wav", "ru_0006", "skipped")})
test_eq(bad_voice_report["kept"], 2)
for uid in ("ru_0004", "ru_0005", "ru_0006"):
    assert f"skipped {uid}: " in summary, uid
on_disk = json.loads((work / "bad_voice_out/report.json").read_text())
test_eq({p.get("id") for p in on_disk["problems"] if p["action"] == "skipped"}, {"ru_0004", "ru_0005", "ru_0006"})
test_eq((work / "bad_voice_out/train.txt").read_text(encoding="utf-8").splitlines()
        + (work / "bad_voice_out/val.txt").read_text(encoding="utf-8").splitlines(),
        ["ru_0003|Со спокойным мужеством.", "ru_0038|Аванс."])

# %% [markdown]
# What cannot be a corpus at all is one line: an empty folder, a folder with no audio (only text files), and a folder holding two corpora side by side. A Festival voice whose `wav/` folder is empty is a corpus with no usable clip: its report is written, naming each missing file.

# %%
(work / "empty").mkdir()
(work / "texts_only").mkdir()
(work / "texts_only" / "notes.txt").write_text("не корпус\n", encoding="utf-8")
(work / "two" / "a").mkdir(parents=True)
shutil.copytree(lj, work / "two" / "a" / "lj")
shutil.copytree(voice, work / "two" / "b" / "voice")
for folder in ("empty", "texts_only", "two"):
    try:
        prepare_corpus(work / folder, work / f"{folder}_out", progress=False)
    except UserError as e:
        print(f"{folder}: {e}".replace(str(work), "WORK"))
test_fail(lambda: prepare_corpus(work / "empty", work / "o4"), exc=UserError, contains="empty: no audio files")
test_fail(lambda: prepare_corpus(work / "texts_only", work / "o4"), exc=UserError,
          contains="texts_only: no audio files (.wav, .flac, .ogg) and no transcripts")
test_fail(lambda: prepare_corpus(work / "two", work / "o4"), exc=UserError,
          contains="two: holds 2 corpora (a/lj/metadata.csv, b/voice/etc/txt.done.data)")
silent_voice = work / "silent_voice"
shutil.copytree(voice / "etc", silent_voice / "etc")
(silent_voice / "wav").mkdir()
test_fail(lambda: prepare_corpus(silent_voice, work / "o5", progress=False), exc=UserError,
          contains="none of the 24 transcript entries has an audio file")
test_eq(json.loads((work / "o5/report.json").read_text())["problem_counts"], {"missing_wav": 24})
test_eq([p.exists() for p in (work / "o4", work / "empty_out")], [False, False])

# %% [markdown]
# ### The split is deterministic
#
# The same seed gives the same files byte for byte, whatever the number of workers; another seed another split.

# %%
again = prepare_corpus(tiny, work / "tiny_again", workers=1, progress=False)
other = prepare_corpus(tiny, work / "tiny_seed7", seed=7, progress=False)
for name in ["train.txt", "val.txt"]:
    test_eq((work / "tiny_again" / name).read_bytes(), (work / "tiny" / name).read_bytes())
test_ne((work / "tiny_seed7/val.txt").read_text(), (work / "tiny/val.txt").read_text())
test_eq({p.name: p.read_bytes() for p in (work / "tiny_again/wavs").iterdir()},
        {p.name: p.read_bytes() for p in (work / "tiny/wavs").iterdir()})

# %% [markdown]
# ### A second run reuses, a killed run resumes
#
# Running again over a finished folder converts nothing and touches no WAV (their modification times do not change):

# %%
mtimes = {p.name: p.stat().st_mtime_ns for p in (work / "tiny/wavs").iterdir()}
t0 = time.perf_counter()
rerun = prepare_corpus(tiny, work / "tiny", workers=2, progress=False)
print(f"rerun: reused {rerun['reused']}, processed {rerun['processed']} in {time.perf_counter() - t0:.2f} s "
      f"(first run: {tiny_report['elapsed_s']:.2f} s)")
test_eq(rerun["reused"], 12)
test_eq(rerun["processed"], 0)
test_eq(rerun["kept"], 12)
test_eq({p.name: p.stat().st_mtime_ns for p in (work / "tiny/wavs").iterdir()}, mtimes)
bad_rerun = prepare_corpus(bad_corpus, work / "bad_out", progress=False)
test_eq(bad_rerun["processed"], 0)
test_eq(bad_rerun["reused"], 11)
test_eq(bad_rerun["problems"], report["problems"])  # skips are remembered, not decoded again

# %% [markdown]
# Reuse is checked, not assumed. A changed source, an output that was damaged, and an output whose manifest line was lost are all redone; the rest is not:

# %%
src = work / "tiny_src"
shutil.copytree(tiny, src)
prepare_corpus(src, work / "tiny_chk", progress=False)
changed = src / "RUSLAN/000003_RUSLAN.wav"
sf.write(changed, sf.read(changed)[0][:30000], 22050)                                       # source changed
damaged = work / "tiny_chk/wavs/000004_RUSLAN.wav"
damaged.write_bytes(damaged.read_bytes()[:5000])                                            # output damaged
manifest = (work / "tiny_chk" / MANIFEST_NAME).read_text().splitlines(keepends=True)
kept_lines = "".join(line for line in manifest if '"000005_RUSLAN"' not in line)
(work / "tiny_chk" / MANIFEST_NAME).write_text(kept_lines)                                  # record lost
r = prepare_corpus(src, work / "tiny_chk", progress=False)
test_eq(r["processed"], 3)
test_eq(r["reused"], 9)
test_eq(sf.info(work / "tiny_chk/wavs/000003_RUSLAN.wav").frames, 30000)
assert sf.info(damaged).frames > 5000, sf.info(damaged).frames

# %% [markdown]
# A kill half-way leaves finished WAVs with their manifest lines, perhaps a half-written line at the end of the manifest, a temporary file of the clip in flight, and no output for the clips not yet started. Simulated here exactly like that, the next run removes the temporary file, converts the missing clips and nothing else:

# %%
killed = work / "tiny_killed"
prepare_corpus(tiny, killed, progress=False)
lines = (killed / MANIFEST_NAME).read_text().splitlines(keepends=True)
unfinished = [json.loads(line)["id"] for line in lines[7:]]
for uid in unfinished:
    (killed / "wavs" / f"{uid}.wav").unlink()
(killed / MANIFEST_NAME).write_text("".join(lines[:7]) + lines[7][: len(lines[7]) // 2])  # cut mid-line
(killed / "wavs" / f".{unfinished[0]}.partial.wav").write_bytes(b"RIFF half a file")
for name in ["train.txt", "val.txt", "report.json"]:
    (killed / name).unlink()
mtimes = {p.name: p.stat().st_mtime_ns for p in (killed / "wavs").glob("[!.]*.wav")}  # finished clips
r = prepare_corpus(tiny, killed, progress=False)
print(f"resumed: processed {r['processed']}, reused {r['reused']}")
test_eq(r["processed"], 5)
test_eq(r["reused"], 7)
test_eq(r["kept"], 12)
test_eq(list((killed / "wavs").glob(".*")), [])
test_eq({p.name: p.stat().st_mtime_ns for p in (killed / "wavs").glob("*.wav") if p.name in mtimes}, mtimes)
test_eq((killed / "val.txt").read_text(), (work / "tiny/val.txt").read_text())


# %% [markdown]
# ## The band the recordings hold
#
# A clip recorded at 16 kHz holds nothing above 8 kHz, and resampling it to 22,050 Hz adds nothing there. Training
# uses this ([Training](09a_training.ipynb#the-loss-band-follows-the-corpus)): its loss mel stops where the corpus's
# recordings stop. `corpus_band_hz` reads it from the report of a prepared folder: half the usual source rate (the
# most common one, as in the report's `sample_rates`), or None when the folder has no report. RUSLAN (44.1 kHz)
# holds 22,050 Hz, more than the 11,025 Hz a 22,050 Hz model can produce.

# %%
#| export
def corpus_band_hz(prepared) -> float | None:
    "The highest frequency a prepared folder's recordings hold: half their usual source rate (None: unknown)."
    try:
        report = json.loads((Path(prepared) / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    rate = usual_rate(report.get("sample_rates") or {})
    return rate / 2 if rate else None


# %%
show_doc(corpus_band_hz)

# %%
test_eq(corpus_band_hz(work / "tiny"), 22050.0)  # 6 clips at 22,050 Hz, 6 at 44,100 Hz: the tie goes up
test_eq(corpus_band_hz(work / "bad_out"), 22050.0)  # 7 at 44.1 kHz, one at 16 kHz
test_eq(corpus_band_hz(work / "no_such_folder"), None)
test_eq(usual_rate({"16000": 620}), 16000)


# %% [markdown]
# ## The optional mel cache
#
# To fine-tune the vocoder on an acoustic model's own (teacher-forced) mels, `--mel-dir` points at a folder of `ID.npy` files of shape `[80, frames]`, whose frame counts must agree with the audio (the rule and the functions that apply it are the dataset's: [Datasets and loaders](06a_data.ipynb#cached-mels)). `prepare` checks the whole folder and lists each bad file in the report.

# %%
#| export
def check_mel_dir(mel_dir, clips: list[tuple[str, int]], cfg: Config | None = None,
                  problems: list | None = None) -> dict:
    "Check the cached mels of `clips` (`(id, audio_samples)` pairs), adding to `problems`; returns a summary."
    # the dataset's rules, imported here: the rest of `prepare` needs no PyTorch, and starts faster without it
    from hifigan_ruslan.data import aligned_mel_frames, find_mel_file
    from hifigan_ruslan.mel_files import MelFile
    cfg = cfg or Config()
    mel_dir = Path(mel_dir).expanduser()
    if not mel_dir.is_dir():
        raise UserError(f"{mel_dir}: mel directory not found")
    problems = [] if problems is None else problems
    counts = Counter()
    for uid, samples in clips:
        path = find_mel_file(mel_dir, uid)
        if path is None:
            counts["missing"] += 1
            problems.append(problem_record("id", uid, "mel_missing", f"no {uid}.npy in {mel_dir}", "kept"))
            continue
        try:
            mel = MelFile(path, cfg.mel.num_mels)  # the verdict `generate` gives the same file
        except UserError as e:
            counts["bad"] += 1
            problems.append(problem_record("id", uid, "mel_values", str(e), "kept"))
            continue
        try:
            aligned_mel_frames(mel, samples, cfg.mel.hop_size)
        except UserError as e:
            counts["mismatched"] += 1
            problems.append(problem_record("id", uid, "mel_frames", str(e), "kept"))
            continue
        counts["ok"] += 1
    return {"path": str(mel_dir), "checked": len(clips), "ok": counts["ok"], "missing": counts["missing"],
            "mismatched": counts["mismatched"], "bad": counts["bad"]}


# %%
show_doc(check_mel_dir)

# %% [markdown]
# `prepare --mel-dir` on the bundled corpus, with mels made from the prepared audio itself (one frame too many each, as a centred STFT gives), one of them five frames too long and one missing:

# %%
mel_dir = work / "mels"
mel_dir.mkdir()
for wav in sorted((work / "tiny/wavs").glob("*.wav"))[1:]:
    frames = sf.info(wav).frames // 256 + (5 if wav.stem == "000003_RUSLAN" else 1)
    fill = np.nan if wav.stem == "000004_RUSLAN" else -5.0  # one of them NaN
    np.save(mel_dir / f"{wav.stem.removesuffix('_RUSLAN')}.npy", np.full((80, frames), fill, np.float32))
r = prepare_corpus(tiny, work / "tiny", mel_dir=mel_dir, progress=False)
mel_lines = [line for line in format_summary(r).splitlines() if line.startswith("  mel ")]
print("\n".join(mel_lines).replace(str(work), "WORK"))
test_eq([line.split(":")[0].strip() for line in mel_lines[1:]],
        ["mel of 000000_RUSLAN", "mel of 000003_RUSLAN", "mel of 000004_RUSLAN"])  # each named, as skips are
test_eq({k: r["mel_dir"][k] for k in ["checked", "ok", "missing", "mismatched", "bad"]},
        {"checked": 12, "ok": 9, "missing": 1, "mismatched": 1, "bad": 1})
test_eq({p["id"]: p["kind"] for p in r["problems"] if p["kind"].startswith("mel")},
        {"000000_RUSLAN": "mel_missing", "000003_RUSLAN": "mel_frames", "000004_RUSLAN": "mel_values"})
