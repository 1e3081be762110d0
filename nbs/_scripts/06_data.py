# %% [markdown]
# # RUSLAN data
#
# > Find, check, resample and split a RUSLAN-shaped corpus (`hifigan-ruslan prepare`); the dataset and data loaders that feed training.

# %%
#| default_exp data

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import argparse, codecs, hashlib, json, math, os, random, re, time, wave
import multiprocessing as mp
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import NamedTuple
import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from hifigan_ruslan.config import Config
from hifigan_ruslan.mel import mel_spectrogram

# %% [markdown]
# ## The corpus
#
# [RUSLAN](https://ruslan-corpus.github.io/) is a single-speaker Russian corpus: 22,200 utterances of one male voice, a little over 31 hours, recorded as 16-bit PCM mono WAV at 44.1 kHz. Its metadata file, `metadata_RUSLAN_22200.csv`, has no header and one `ID|text` line per clip, in UTF-8; the texts contain ordinary quotes and « », so the file is **not** read as CSV: each line is split on its first `|` and nothing else is interpreted. IDs look like `000000_RUSLAN` and name `000000_RUSLAN.wav`; some copies of the corpus use bare numbers (`000001.wav`), so IDs are matched with or without the `_RUSLAN` suffix.
#
# On Kaggle the dataset `freezerainml/ruslan` is mounted read-only at `/kaggle/input/ruslan`, and the folder holding the WAVs is named differently between copies (`RUSLAN/`, `ruslan_dataset/`, `wavs/`). So nothing here assumes a layout: `find_corpus` looks for the metadata file and for the folder with the most WAVs anywhere under the root it is given.
#
# HiFi-GAN is trained at 22,050 Hz, so `prepare` converts every usable clip once, up front, to 22,050 Hz mono 16-bit WAV with the soxr resampler, and writes a fixed train/validation split next to them. Training then reads small 16-bit files and never resamples. Every clip is checked on the way; what is wrong with the input is written to `report.json` rather than raised, because one bad file in 22,200 should cost one clip, not the run.

# %% [markdown]
# ### The bundled small corpus
#
# The package carries a 12-clip corpus in RUSLAN's shape, `assets/tiny_ruslan`, for the tests, for `hifigan-ruslan demo` and for the Kaggle notebook's smoke test. Its Russian sentences were synthesised with espeak-ng; half of the clips are at 44.1 kHz like RUSLAN and half at 22,050 Hz, so that both the resampling path and the copy path are exercised, and one text carries « » and another ordinary quotes.

# %%
#| export
METADATA_NAME = "metadata_RUSLAN_22200.csv"

def bundled_corpus() -> Path:
    "The 12-clip RUSLAN-shaped corpus shipped with the package (`metadata_RUSLAN_22200.csv` + `RUSLAN/*.wav`)."
    return Path(str(resources.files("hifigan_ruslan") / "assets" / "tiny_ruslan"))


# %%
show_doc(bundled_corpus)

# %%
tiny = bundled_corpus()
print(tiny.name, sorted(p.name for p in tiny.iterdir()), len(list((tiny / "RUSLAN").glob("*.wav"))), "WAVs")
assert (tiny / METADATA_NAME).is_file() and len(list((tiny / "RUSLAN").glob("*.wav"))) == 12
assert sum(p.stat().st_size for p in tiny.rglob("*") if p.is_file()) < 1.5e6
assert {sf.info(p).samplerate for p in (tiny / "RUSLAN").glob("*.wav")} == {22050, 44100}


# %% [markdown]
# The corpus was made with the script below (espeak-ng's Russian voice, then sox to trim the silence at both ends, pad it to a natural 0.1 s / 0.15 s, normalise to -3 dBFS and set the rate). It is kept here as text, not as a cell, so that running this notebook never rewrites the package data; paste it into a Python prompt at the repository root to regenerate the folder.
#
# ```python
# import subprocess, tempfile
# from pathlib import Path
# METADATA_NAME = "metadata_RUSLAN_22200.csv"
# TINY_SENTENCES = [
#     "Мама мыла раму.", "Кошка спит на диване.", "Сегодня хорошая погода.", "Москва — столица России.",
#     "Дети играют во дворе.", "Откройте, пожалуйста, окно.", "«Спасибо», — сказал он.", "Поезд прибывает в полдень.",
#     "Завтра будет дождь и ветер.", 'Она ответила: "До свидания!"', "Я люблю читать книги.", "Это синтезированная речь.",
# ]
# out = Path("hifigan_ruslan/assets/tiny_ruslan")
# (out / "RUSLAN").mkdir(parents=True, exist_ok=True)
# with tempfile.TemporaryDirectory() as tmp:
#     for i, text in enumerate(TINY_SENTENCES):
#         uid, raw = f"{i:06d}_RUSLAN", Path(tmp) / "raw.wav"
#         subprocess.run(["espeak-ng", "-v", "ru", "-s", "150", "-p", "45", "-w", str(raw), text], check=True)
#         rate = "44100" if i % 2 == 0 else "22050"  # even clips at RUSLAN's own rate, odd ones already at 22,050 Hz
#         subprocess.run(["sox", str(raw), "-r", rate, "-b", "16", "-c", "1", str(out / "RUSLAN" / f"{uid}.wav"),
#                         "silence", "1", "0.02", "0.1%", "reverse", "silence", "1", "0.02", "0.1%", "reverse",
#                         "pad", "0.1", "0.15", "gain", "-n", "-3", "rate", "-v", rate], check=True)
# (out / METADATA_NAME).write_text("".join(f"{i:06d}_RUSLAN|{t}\n" for i, t in enumerate(TINY_SENTENCES)), encoding="utf-8")
# ```

# %% [markdown]
# ## Finding the corpus
#
# A clip is identified by a **key**: its ID without the `_RUSLAN` suffix, and without leading zeros when it is a number. `000001_RUSLAN`, `000001` and `1` are the same clip. The key is only used for matching; outputs keep the ID as the metadata writes it.

# %%
#| export
def clip_key(name: str) -> str:
    "Matching key of an ID or WAV stem: without a `_RUSLAN` suffix, and without leading zeros when numeric."
    base = re.sub(r"_ruslan$", "", name.strip(), flags=re.IGNORECASE)
    return str(int(base)) if base.isascii() and base.isdigit() else base

def id_variants(uid: str) -> list[str]:
    "File stems under which a clip may be stored: the ID as given, with and without the `_RUSLAN` suffix."
    base = re.sub(r"_ruslan$", "", uid, flags=re.IGNORECASE)
    return list(dict.fromkeys([uid, base, f"{base}_RUSLAN"]))


# %%
show_doc(clip_key)

# %%
assert clip_key("000001_RUSLAN") == clip_key("000001") == clip_key("1") == "1"
assert clip_key("000000_ruslan") == "0" and clip_key("speaker_a_001") == "speaker_a_001"
assert id_variants("000007") == ["000007", "000007_RUSLAN"] and id_variants("000007_RUSLAN") == ["000007_RUSLAN", "000007"]

# %% [markdown]
# `find_corpus` walks the root once. The metadata is `metadata_RUSLAN_22200.csv` if there is one (the shallowest, in any letter case), else the shallowest `.csv`/`.txt` whose first line reads `ID|text`; the WAV folder is the folder holding the most `.wav` files. Hidden files (macOS `._*` resource forks that some archives carry) are not WAVs. A root that does not exist, or holds no metadata or no WAV, is a one-line error naming it.

# %%
#| export
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

def _is_wav(name: str) -> bool: return name.lower().endswith(".wav") and not name.startswith(".")

def _looks_like_metadata(path: Path) -> bool:
    try: head = path.read_bytes()[:4096].decode("utf-8-sig", errors="replace")
    except OSError: return False
    first = next((l for l in head.splitlines() if l.strip()), "")
    uid, sep, _ = first.partition("|")
    return bool(sep) and bool(_ID_PATTERN.fullmatch(uid.strip()))

def find_corpus(root) -> tuple[Path, Path]:
    "`(metadata_path, wav_dir)` of the RUSLAN-shaped corpus anywhere under `root` (or `root` may be the metadata file)."
    root = Path(root).expanduser()
    if not root.exists(): raise FileNotFoundError(f"{root}: no such file or directory")
    metadata = root if root.is_file() else None
    base = root.parent if root.is_file() else root
    exact, candidates, wav_counts = [], [], Counter()
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        depth = len(Path(dirpath).relative_to(base).parts)
        for name in filenames:
            if _is_wav(name): wav_counts[dirpath] += 1
            elif name.lower() == METADATA_NAME.lower(): exact.append((depth, Path(dirpath) / name))
            elif name.lower().endswith((".csv", ".txt")) and not name.startswith("."):
                candidates.append((depth, Path(dirpath) / name))
    if not wav_counts: raise FileNotFoundError(f"{root}: no WAV files found under it")
    if metadata is None:
        if exact: metadata = min(exact)[1]
        else:
            sniffed = [c for c in sorted(candidates) if _looks_like_metadata(c[1])]
            if not sniffed: raise FileNotFoundError(f"{root}: no metadata file ({METADATA_NAME} or another `ID|text` .csv/.txt) under it")
            metadata = sniffed[0][1]
    wav_dir = max(wav_counts, key=lambda d: (wav_counts[d], -len(Path(d).parts)))
    return metadata, Path(wav_dir)


# %%
show_doc(find_corpus)

# %%
print(find_corpus(tiny))
assert find_corpus(tiny) == (tiny / METADATA_NAME, tiny / "RUSLAN")
assert find_corpus(tiny / METADATA_NAME) == (tiny / METADATA_NAME, tiny / "RUSLAN")
for bad in ["/nonexistent/ruslan", tiny / "RUSLAN"]:
    try: find_corpus(bad); raise AssertionError("no error")
    except FileNotFoundError as e: print(e)


# %% [markdown]
# ## Reading the metadata
#
# Every line that is not a clean `ID|text` is reported and, when it can be, repaired: a byte-order mark is dropped, Windows line endings are read as plain ones, a blank line or a line without `|` is skipped, as is an ID that could not be a file name (it would otherwise name a path under `OUT/wavs/`) or a second entry for the same clip. A problem is a small dict: `line` (1-based) or `id`, a `reason` a person can read, a `kind` for counting, and the `action` taken (`skipped`, or `kept` when the input was used, possibly repaired).

# %%
#| export
class MetaEntry(NamedTuple):
    id: str
    text: str
    line: int

def _problem(where: str, value, kind: str, reason: str, action: str = "skipped") -> dict:
    return {where: value, "kind": kind, "reason": reason, "action": action}

def read_metadata(path) -> tuple[list[MetaEntry], list[dict]]:
    "Parse an `ID|text` metadata file (split on the first `|` only, no CSV quoting): `(entries, problems)`."
    path = Path(path)
    raw = path.read_bytes()
    problems = []
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
        problems.append(_problem("line", 1, "bom", "UTF-8 byte-order mark removed", "kept"))
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raw = raw.decode("utf-16").encode("utf-8")
        problems.append(_problem("line", 1, "bom", "UTF-16 file (byte-order mark) read as UTF-16", "kept"))
    lines = raw.split(b"\n")
    if lines and not lines[-1].strip(): lines.pop()  # the final newline, or trailing whitespace
    entries, seen, crlf = [], {}, []
    for n, data in enumerate(lines, 1):
        if data.endswith(b"\r"): data, _ = data[:-1], crlf.append(n)
        try: line = data.decode("utf-8")
        except UnicodeDecodeError:
            line = data.decode("utf-8", errors="replace")
            problems.append(_problem("line", n, "bad_utf8", "not valid UTF-8: undecodable bytes replaced by U+FFFD", "kept"))
        if not line.strip():
            problems.append(_problem("line", n, "blank_line", "blank line skipped")); continue
        uid, sep, text = line.partition("|")
        uid, text = uid.strip(), text.strip()
        if not sep:
            problems.append(_problem("line", n, "no_separator", f"no `|` between ID and text in {line[:50]!r}; skipped")); continue
        if not _ID_PATTERN.fullmatch(uid):
            problems.append(_problem("line", n, "bad_id", f"ID {uid[:50]!r} is not a plain file name; skipped")); continue
        key = clip_key(uid)
        if key in seen:
            problems.append(_problem("line", n, "duplicate_id", f"ID {uid} already on line {seen[key]}; skipped")); continue
        seen[key] = n
        if not text: problems.append(_problem("line", n, "empty_text", f"ID {uid} has an empty text; audio kept", "kept"))
        entries.append(MetaEntry(uid, text, n))
    if crlf:
        problems.append(_problem("line", crlf[0], "crlf", f"Windows line endings (CRLF) on {len(crlf)} line(s), read as plain newlines", "kept"))
    return entries, problems


# %%
show_doc(read_metadata)

# %%
entries, problems = read_metadata(tiny / METADATA_NAME)
print(len(entries), entries[6], problems)
assert len(entries) == 12 and not problems and entries[6].text == "«Спасибо», — сказал он." and '"' in entries[9].text

# %% [markdown]
# Every defect at once, in one small file: a BOM, CRLF endings, a blank line, a line without `|`, a path-like ID, a duplicate (the same clip as `000001_RUSLAN` written as a bare number), an empty text, a `|` inside the text (kept: only the first one separates), and a byte that is not UTF-8.

# %%
import tempfile

# %%
tmp = Path(tempfile.mkdtemp())
(tmp / "meta.csv").write_bytes(codecs.BOM_UTF8 + "\r\n".join([
    "000001_RUSLAN|«Привет», — сказал он.", "", "no separator here", "../evil|x", "000001|дубль",
    "000002_RUSLAN|", "000003_RUSLAN|a|b \"q\""]).encode() + b"\r\n000004_RUSLAN|caf\xe9\r\n")
entries, problems = read_metadata(tmp / "meta.csv")
for p in problems: print(p)
assert [e.id for e in entries] == ["000001_RUSLAN", "000002_RUSLAN", "000003_RUSLAN", "000004_RUSLAN"]
assert entries[0].text == "«Привет», — сказал он." and entries[2].text == 'a|b "q"' and entries[3].text == "caf\ufffd"
assert {p["kind"]: p.get("line") for p in problems} == {"bom": 1, "blank_line": 2, "no_separator": 3, "bad_id": 4,
       "duplicate_id": 5, "empty_text": 6, "bad_utf8": 8, "crlf": 1}

# %% [markdown]
# ## Checking and converting one clip
#
# `process_clip` is what each worker process runs on one file. It never raises for bad audio; it returns a record saying what it did. The checks, in order:
#
# - **empty** (0 bytes), **truncated** or **unreadable** files are skipped. libsndfile quietly reads a truncated WAV as a shorter one, so the RIFF chunks are checked first: a `data` chunk that declares more bytes than the file holds means the recording was cut, and the audio would no longer match its text.
# - **stereo** (or more channels) is downmixed to mono by averaging: kept, noted.
# - **float, 24-bit or 8-bit** samples are converted to 16-bit: kept, noted.
# - **samples beyond [-1, 1]** (a float WAV written without limiting) are scaled down so that the peak is 0.99 rather than clipped, which keeps the waveform's shape: kept, noted. A 16-bit clip with many samples **at full scale** was clipped when recorded; that cannot be undone, so it is kept and noted.
# - a **silent** clip (peak below -60 dBFS) and a clip **far shorter than a training segment** (under a quarter of one: 0.09 s for the recipe's 8,192 samples) are skipped: there is nothing in them to learn.
# - the **sample rate** is read from every file, never assumed; anything other than 22,050 Hz is resampled with soxr's high-quality filter. Once all clips are in, a rate that differs from the corpus's usual one is noted (upsampled audio has nothing above the original Nyquist frequency).
#
# The output is written to a hidden temporary name and moved into place with `os.replace`, so `OUT/wavs/ID.wav` is either complete or absent, even if the process is killed.

# %%
#| export
SILENCE_PEAK = 10 ** (-60 / 20)   # a clip whose loudest sample is below -60 dBFS holds no usable speech
CLIPPED_FRACTION = 1e-3           # more than 0.1 % of the samples at full scale: clipped when recorded
MIN_SEGMENT_FRACTION = 0.25       # a clip shorter than this part of a training segment is skipped
TARGET_SUBTYPE = "PCM_16"

def wav_truncation(path) -> str | None:
    "Why a RIFF/WAVE file is cut short (its `data` chunk declares more than the file holds), or None if it is not."
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE": return None  # not plain RIFF: libsndfile decides
        pos, byte_rate = 12, 0
        while True:
            f.seek(pos)
            chunk = f.read(24)
            if len(chunk) < 8: return f"truncated: the file ends after {size} bytes, before its audio data"
            cid, csize = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if cid == b"fmt " and len(chunk) >= 20: byte_rate = int.from_bytes(chunk[16:20], "little")
            if cid == b"data":
                held = size - pos - 8
                if csize <= held or csize in (0, 0xFFFFFFFF): return None  # 0 / 0xFFFFFFFF: streamed, size unknown
                if byte_rate: return f"truncated: the data chunk declares {csize / byte_rate:.2f} s, the file holds {held / byte_rate:.2f} s"
                return f"truncated: the data chunk declares {csize} bytes, the file holds {held}"
            pos += 8 + csize + (csize & 1)

def _partial_path(dst: Path) -> Path: return dst.with_name(f".{dst.stem}.partial.wav")

def to_pcm16(audio: np.ndarray) -> np.ndarray:
    "Float audio in [-1, 1] to int16 with the x32768 convention (exact for audio that came from 16-bit)."
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)

def write_pcm16(path, pcm: np.ndarray, sr: int):
    "Write mono int16 samples as a plain 16-bit WAV (the standard library's writer: no fsync per file, unlike libsndfile's close)."
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(sr)
        w.writeframes(pcm.astype("<i2").tobytes())

def process_clip(uid: str, src, dst, target_sr: int = 22050, min_seconds: float = 0.0) -> dict:
    "Check one WAV and write it to `dst` as `target_sr` mono 16-bit; returns a record (`kept`, `reason`, `notes`, ...)."
    import soxr
    src, dst = Path(src), Path(dst)
    st = src.stat()
    rec = {"id": uid, "src": str(src), "src_size": st.st_size, "src_mtime_ns": st.st_mtime_ns, "kept": False,
           "sr": None, "notes": []}
    def skip(kind, reason): rec.update(skip=[kind, reason]); return rec
    def note(kind, text): rec["notes"].append([kind, text])
    if st.st_size == 0: return skip("empty_file", "empty file (0 bytes)")
    cut = wav_truncation(src)
    if cut: return skip("truncated", cut)
    try:
        with sf.SoundFile(src) as f:
            sr, channels, subtype = f.samplerate, f.channels, f.subtype
            audio = f.read(dtype="float32", always_2d=True)
    except Exception as e:  # any decoder failure is a property of this file, reported, never a crash of the run
        return skip("unreadable", f"unreadable: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    rec.update(sr=sr, channels=channels, subtype=subtype, seconds_in=len(audio) / sr)
    if len(audio) == 0: return skip("empty_file", "no audio samples (header only)")
    if not np.isfinite(audio).all(): return skip("unreadable", "NaN or infinite samples")
    if channels > 1:
        audio = audio.mean(axis=1)
        note("stereo", f"{channels} channels downmixed to mono")
    else: audio = audio[:, 0]
    if subtype != TARGET_SUBTYPE: note("format", f"{subtype} samples converted to 16-bit PCM")
    peak = float(np.abs(audio).max())
    if peak < SILENCE_PEAK: return skip("silent", f"silent: peak {20 * math.log10(max(peak, 1e-10)):.0f} dBFS")
    if len(audio) / sr < min_seconds:
        return skip("too_short", f"too short: {len(audio) / sr:.3f} s, under {min_seconds:.3f} s (a quarter of a training segment)")
    if peak > 1.0:
        audio = audio * np.float32(0.99 / peak)
        note("out_of_range", f"samples reach {peak:.2f}, beyond [-1, 1]: scaled by {0.99 / peak:.3f}")
    else:
        at_full_scale = int(np.count_nonzero(np.abs(audio) >= 32767 / 32768))
        if at_full_scale > CLIPPED_FRACTION * len(audio):
            note("clipped", f"clipped: {at_full_scale} samples ({100 * at_full_scale / len(audio):.1f} %) at full scale")
    if sr != target_sr: audio = soxr.resample(audio, sr, target_sr, quality="HQ")
    pcm = to_pcm16(audio)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial_path(dst)
    write_pcm16(tmp, pcm, target_sr)
    os.replace(tmp, dst)
    rec.update(kept=True, out_frames=len(pcm), out_size=dst.stat().st_size, seconds=len(pcm) / target_sr)
    return rec


# %%
show_doc(wav_truncation)

# %%
show_doc(process_clip)

# %% [markdown]
# The clean path: a 44.1 kHz clip of the bundled corpus becomes a 22,050 Hz one of the same duration, and a clip already at 22,050 Hz 16-bit is copied sample for sample.

# %%
r = process_clip("000000_RUSLAN", tiny / "RUSLAN/000000_RUSLAN.wav", tmp / "out/000000_RUSLAN.wav", 22050, 0.09)
print({k: r[k] for k in ["kept", "sr", "seconds_in", "seconds", "notes"]})
assert r["kept"] and r["sr"] == 44100 and abs(r["seconds"] - r["seconds_in"]) < 1e-3 and not r["notes"]
assert sf.info(tmp / "out/000000_RUSLAN.wav").samplerate == 22050 and sf.info(tmp / "out/000000_RUSLAN.wav").subtype == "PCM_16"
r = process_clip("000001_RUSLAN", tiny / "RUSLAN/000001_RUSLAN.wav", tmp / "out/000001_RUSLAN.wav", 22050, 0.09)
assert np.array_equal(sf.read(tmp / "out/000001_RUSLAN.wav", dtype="int16")[0], sf.read(tiny / "RUSLAN/000001_RUSLAN.wav", dtype="int16")[0])
assert not list((tmp / "out").glob(".*"))  # no temporary file left behind


# %% [markdown]
# Each bad case, on a tiny file made here: the records say what happened. `tone` is 0.4 s of a 220 Hz tone at 44.1 kHz, a stand-in for speech.

# %%
def tone(sr=44100, seconds=0.4, amp=0.5, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return np.stack([x, 0.5 * x], 1) if channels == 2 else x

bad = tmp / "bad"; bad.mkdir()
sf.write(bad / "ok.wav", tone(), 44100, subtype="PCM_16")
sf.write(bad / "stereo.wav", tone(channels=2), 44100, subtype="PCM_16")
sf.write(bad / "float_hot.wav", tone(amp=1.6), 44100, subtype="FLOAT")
sf.write(bad / "clipped.wav", np.clip(tone(amp=3.0), -1, 1), 44100, subtype="PCM_16")
sf.write(bad / "rate16k.wav", tone(sr=16000), 16000, subtype="PCM_16")
sf.write(bad / "pcm24.wav", tone(), 44100, subtype="PCM_24")
sf.write(bad / "silent.wav", np.zeros(44100, np.float32), 44100, subtype="PCM_16")
sf.write(bad / "short.wav", tone(seconds=0.03), 44100, subtype="PCM_16")
(bad / "empty.wav").write_bytes(b"")
(bad / "garbage.wav").write_bytes(b"this is not audio at all" * 20)
full = (bad / "ok.wav").read_bytes()
(bad / "truncated.wav").write_bytes(full[: len(full) // 3])
(bad / "header_only.wav").write_bytes(full[:30])

results = {p.stem: process_clip(p.stem, p, tmp / "bad_out" / p.name, 22050, 0.09) for p in sorted(bad.glob("*.wav"))}
for name, r in results.items():
    print(f"{name:12} kept={r['kept']!s:5} {r.get('skip', [''])[-1] or '; '.join(n[1] for n in r['notes'])}")

# %%
kinds = {n: (r["kept"], r["skip"][0] if not r["kept"] else sorted(k for k, _ in r["notes"])) for n, r in results.items()}
assert kinds == {"clipped": (True, ["clipped"]), "empty": (False, "empty_file"), "float_hot": (True, ["format", "out_of_range"]),
                 "garbage": (False, "unreadable"), "header_only": (False, "truncated"), "ok": (True, []),
                 "pcm24": (True, ["format"]), "rate16k": (True, []), "short": (False, "too_short"), "silent": (False, "silent"),
                 "stereo": (True, ["stereo"]), "truncated": (False, "truncated")}, kinds
out_audio, out_sr = sf.read(tmp / "bad_out/float_hot.wav")
assert out_sr == 22050 and 0.98 < np.abs(out_audio).max() <= 0.995  # scaled, not clipped
assert sf.info(tmp / "bad_out/stereo.wav").channels == 1 and abs(sf.read(tmp / "bad_out/stereo.wav")[0]).max() > 0.3
assert sf.info(tmp / "bad_out/rate16k.wav").frames == round(0.4 * 22050)
assert not (tmp / "bad_out/silent.wav").exists() and not (tmp / "bad_out/truncated.wav").exists()


# %% [markdown]
# ## Preparing the corpus
#
# `prepare_corpus` ties it together: find the corpus, read the metadata, match IDs to WAVs (a metadata entry without a WAV and a WAV without a metadata entry are both reported), convert what needs converting in parallel worker processes, split, and report.
#
# **Resuming.** Every finished clip appends one line to `OUT/manifest.jsonl`: the source's path, size and modification time, the settings, and the output's size and length. A second run reuses a clip only when all of that still holds *and* the output's WAV header agrees (rate, one channel, 16-bit, the recorded number of samples); anything else is redone. A run killed half-way therefore loses at most the clips in flight: their outputs were never moved into place, and the leftover temporary files are removed at the start of the next run. Skipped clips are remembered too, so a broken file is not decoded again on every run.
#
# **The split** is deterministic and stable: clips are ordered by a hash of `seed:ID` and the first `val_size` go to validation. The same seed gives the same split, and adding or removing other clips does not move a clip from one side to the other. On a small corpus validation takes at most a fifth of the clips, so that training keeps most of them.
#
# **Safety.** The input is only ever read (on Kaggle it is read-only). An `--out` inside `--data-path` is refused before anything is written.

# %%
#| export
def default_workers() -> int:
    "All the CPU cores this process may use."
    try: return len(os.sched_getaffinity(0))
    except AttributeError: return os.cpu_count() or 1

def split_ids(ids: list[str], val_size: int = 100, seed: int = 1234) -> tuple[list[str], list[str]]:
    "Deterministic `(train, val)` split keeping the input order; validation gets `val_size` clips, at most a fifth of a small corpus."
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
assert len(va) == 100 and len(tr) == 900 and not set(tr) & set(va) and (tr, va) == split_ids(ids, 100, 1234)
assert split_ids(ids, 100, 7)[1] != va  # another seed, another split
assert [len(split_ids(ids[:n], 100)[1]) for n in [1, 2, 12, 24, 499, 500]] == [0, 1, 2, 4, 99, 100]
print(va[:5])

# %% [markdown]
# Because the rank of a clip depends on nothing but its own ID, dropping clips that are not in validation (files found broken on a later run, say) leaves the validation set exactly as it was:

# %%
assert split_ids([u for u in ids if u in va or int(u[:6]) % 3], 100, 1234)[1] == va

# %%
#| export
MANIFEST_NAME = "manifest.jsonl"

def _load_manifest(path: Path) -> dict[str, dict]:
    "Latest record per ID; a line cut by a kill (invalid JSON) is ignored."
    records = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try: rec = json.loads(line)
            except json.JSONDecodeError: continue
            if isinstance(rec, dict) and "id" in rec: records[rec["id"]] = rec
    return records

def _reusable(rec: dict | None, src: Path, dst: Path, settings: dict) -> bool:
    "Whether a manifest record still describes `src` and a complete, matching `dst`."
    if not rec or rec.get("settings") != settings or rec.get("src") != str(src): return False
    try: st = src.stat()
    except OSError: return False
    if (st.st_size, st.st_mtime_ns) != (rec.get("src_size"), rec.get("src_mtime_ns")): return False
    if not rec["kept"]: return True
    try:
        if dst.stat().st_size != rec["out_size"]: return False
        info = sf.info(dst)
    except (OSError, RuntimeError): return False
    return (info.samplerate, info.channels, info.subtype, info.frames) == (settings["sr"], 1, TARGET_SUBTYPE, rec["out_frames"])

def _run_task(task: tuple) -> dict:
    uid, src, dst, target_sr, min_seconds = task
    return process_clip(uid, src, dst, target_sr, min_seconds)

def _write_text_atomic(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

def _inside(child: Path, parent: Path) -> bool:
    child, parent = child.resolve(), parent.resolve()
    return child == parent or parent in child.parents


# %%
#| export
def _index_wavs(wav_dir: Path) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for p in sorted(wav_dir.iterdir()):
        if _is_wav(p.name) and p.is_file(): index.setdefault(clip_key(p.stem), []).append(p)
    return index

def _match(entries: list[MetaEntry], wav_index: dict[str, list[Path]], wav_dir: Path) -> tuple[list[tuple[MetaEntry, Path]], list[dict]]:
    "Pair metadata entries with WAVs by key; report entries without a WAV, WAVs without an entry, and duplicates."
    index, problems, pairs = dict(wav_index), [], []
    for e in entries:
        paths = index.pop(clip_key(e.id), None)
        if not paths:
            problems.append(_problem("id", e.id, "missing_wav", f"no WAV for this metadata entry (line {e.line}) in {wav_dir}")); continue
        paths = sorted(paths, key=lambda p: p.stem != e.id)  # the file named exactly like the ID first
        pairs.append((e, paths[0]))
        for extra in paths[1:]:
            problems.append(_problem("id", extra.stem, "duplicate_wav", f"{extra.name} is a second file for ID {e.id} ({paths[0].name} used); ignored"))
    for paths in index.values():
        for p in paths: problems.append(_problem("id", p.stem, "not_in_metadata", f"{p.name} is not in the metadata; skipped"))
    return pairs, problems


# %%
#| export
def _check_out_dir(out: Path, data_path: Path):
    base = data_path if data_path.is_dir() else data_path.parent
    if _inside(out, base): raise ValueError(f"--out {out} is inside the input corpus {base}: the input is never written to; choose another folder")

def prepare_corpus(data_path, out, workers: int | None = None, val_size: int = 100, seed: int = 1234, mel_dir=None,
                   cfg: Config | None = None, progress: bool = True) -> dict:
    "Check, resample (22,050 Hz mono 16-bit) and split the corpus under `data_path` into `out`; returns the report (also in `out/report.json`)."
    from tqdm.auto import tqdm
    cfg = cfg or Config()
    start = time.perf_counter()
    data_path, out = Path(data_path).expanduser().resolve(), Path(out).expanduser().resolve()  # stable manifest keys
    metadata, wav_dir = find_corpus(data_path)
    _check_out_dir(out, data_path)
    entries, problems = read_metadata(metadata)
    if not entries: raise ValueError(f"{metadata}: no `ID|text` line in the metadata")
    wav_index = _index_wavs(wav_dir)
    pairs, match_problems = _match(entries, wav_index, wav_dir)
    problems += match_problems
    if not pairs: raise ValueError(f"{data_path}: none of the {len(entries)} metadata IDs has a WAV in {wav_dir}")
    if mel_dir is not None and not Path(mel_dir).expanduser().is_dir(): raise NotADirectoryError(f"{mel_dir}: mel directory not found")
    target_sr = cfg.mel.sampling_rate
    settings = {"version": 1, "sr": target_sr,
                "min_seconds": round(MIN_SEGMENT_FRACTION * cfg.train.segment_size / target_sr, 4)}
    wavs_out = out / "wavs"
    wavs_out.mkdir(parents=True, exist_ok=True)
    for leftover in wavs_out.glob(".*.partial.wav"): leftover.unlink()  # from a killed run
    manifest_path = out / MANIFEST_NAME
    previous = _load_manifest(manifest_path)
    records, todo = {}, []
    for e, src in pairs:
        dst = wavs_out / f"{e.id}.wav"
        if _reusable(previous.get(e.id), src, dst, settings): records[e.id] = previous[e.id]
        else: todo.append((e.id, str(src), str(dst), target_sr, settings["min_seconds"]))
    reused = len(records)
    workers = max(1, min(workers or default_workers(), len(todo) or 1))
    with open(manifest_path, "a", encoding="utf-8") as log, \
         tqdm(total=len(todo), unit="clip", desc="prepare", disable=not progress or not todo) as bar:
        def done(rec):
            rec["settings"] = settings
            records[rec["id"]] = rec
            log.write(json.dumps(rec, ensure_ascii=False) + "\n"); log.flush()
            bar.update()
        if workers == 1:
            for task in todo: done(_run_task(task))
        else:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(workers) as pool:
                for rec in pool.imap_unordered(_run_task, todo, chunksize=max(1, min(16, len(todo) // (8 * workers)))): done(rec)
    ordered = [records[e.id] for e, _ in pairs]
    _write_text_atomic(manifest_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered))
    kept = [r for r in ordered if r["kept"]]
    rates = Counter(r["sr"] for r in ordered if r["sr"])
    usual_rate = max(rates, key=lambda sr: (rates[sr], sr)) if rates else None  # a tie goes to the higher rate
    for r in ordered:
        if not r["kept"]: problems.append(_problem("id", r["id"], r["skip"][0], r["skip"][1])); continue
        for kind, text in r["notes"]: problems.append(_problem("id", r["id"], kind, text, "kept"))
        if r["sr"] != usual_rate:
            how = "upsampled: nothing above {:.0f} Hz".format(r["sr"] / 2) if r["sr"] < target_sr else f"resampled to {target_sr} Hz"
            problems.append(_problem("id", r["id"], "sample_rate", f"sample rate {r['sr']} Hz, not the corpus's usual {usual_rate} Hz; {how}", "kept"))
    texts = {e.id: e.text for e, _ in pairs}
    train_ids, val_ids = split_ids([r["id"] for r in kept], val_size, seed)
    for name, split in [("train", train_ids), ("val", val_ids)]:
        _write_text_atomic(out / f"{name}.txt", "".join(f"{u}|{texts[u]}\n" for u in split))
    seconds = sum(r["seconds"] for r in kept)
    report = {
        "data_path": str(data_path), "metadata": str(metadata), "wav_dir": str(wav_dir), "out": str(out),
        "metadata_entries": len(entries), "wav_files": sum(len(v) for v in wav_index.values()),
        "clips_found": len({clip_key(e.id) for e in entries} | set(wav_index)),
        "clips_matched": len(pairs), "kept": len(kept), "skipped": len(pairs) - len(kept),
        "reused": reused, "processed": len(todo), "workers": workers,
        "hours_kept": round(seconds / 3600, 4), "seconds_kept": round(seconds, 2),
        "sample_rates": {str(sr): n for sr, n in sorted(rates.items())}, "target_sample_rate": target_sr,
        "train": len(train_ids), "val": len(val_ids), "val_size_requested": val_size, "seed": seed,
        "problem_counts": dict(Counter(p["kind"] for p in problems).most_common()), "problems": problems,
        "elapsed_s": round(time.perf_counter() - start, 2),
    }
    if mel_dir is not None: report["mel_dir"] = check_mel_dir(mel_dir, [(r["id"], r["out_frames"]) for r in kept], cfg, problems)
    report["problem_counts"] = dict(Counter(p["kind"] for p in problems).most_common())
    _write_text_atomic(out / "report.json", json.dumps(report, ensure_ascii=False, indent=1))
    if not kept: raise ValueError(f"{data_path}: no usable clip among {len(pairs)} ({len(problems)} problems listed in {out / 'report.json'})")
    return report


# %%
#| export
def format_summary(report: dict) -> str:
    "A few lines a person reads after `prepare`."
    rates = ", ".join(f"{sr} Hz x{n}" for sr, n in report["sample_rates"].items())
    counts = ", ".join(f"{k} {v}" for k, v in report["problem_counts"].items()) or "none"
    lines = [f"kept {report['kept']} of {report['clips_found']} clips, {report['hours_kept']:.2f} h "
             f"({report['seconds_kept']:.0f} s), from {report['metadata']}",
             f"  sample rates seen: {rates} -> {report['target_sample_rate']} Hz mono 16-bit",
             f"  reused {report['reused']}, processed {report['processed']} with {report['workers']} worker(s) in {report['elapsed_s']:.1f} s",
             f"  split (seed {report['seed']}): {report['train']} train, {report['val']} val",
             f"  problems: {counts}"]
    if "mel_dir" in report:
        m = report["mel_dir"]
        lines.append(f"  mel cache {m['path']}: {m['ok']} ok, {m['missing']} missing, {m['mismatched']} mismatched")
    out = Path(report["out"])
    lines.append(f"wrote {out / 'wavs'}/, {out / 'train.txt'}, {out / 'val.txt'}, {out / 'report.json'}")
    return "\n".join(lines)


# %%
show_doc(prepare_corpus)

# %% [markdown]
# On the bundled corpus (no progress bar in this notebook):

# %%
work = Path(tempfile.mkdtemp())
tiny_report = prepare_corpus(tiny, work / "tiny", workers=2, progress=False)
print(format_summary(tiny_report))
assert tiny_report["kept"] == 12 and tiny_report["sample_rates"] == {"22050": 6, "44100": 6}
assert (tiny_report["train"], tiny_report["val"]) == (10, 2)
assert {p["kind"] for p in tiny_report["problems"]} == {"sample_rate"} and all(p["action"] == "kept" for p in tiny_report["problems"])
assert sorted(p.name for p in (work / "tiny/wavs").iterdir()) == [f"{i:06d}_RUSLAN.wav" for i in range(12)]
assert all(sf.info(p).samplerate == 22050 and sf.info(p).subtype == "PCM_16" for p in (work / "tiny/wavs").iterdir())
assert json.loads((work / "tiny/report.json").read_text())["kept"] == 12
print((work / "tiny/val.txt").read_text())

# %% [markdown]
# ### The corpus at a glance
#
# What `prepare` made of the bundled corpus: how long the clips are, how much audio there is, and one clip as a waveform and as the log-mel the generator will read. (The same cell on the real RUSLAN shows 22,200 clips of 1 to 15 s, 31 hours.)

# %%
import matplotlib.pyplot as plt
from IPython.display import Audio, display

# %%
durations = {p.stem: sf.info(p).duration for p in sorted((work / "tiny/wavs").glob("*.wav"))}
seconds = list(durations.values())
print(f"{len(seconds)} clips, {sum(seconds) / 3600:.4f} h ({sum(seconds):.1f} s), "
      f"{min(seconds):.2f}-{max(seconds):.2f} s each; problems: {tiny_report['problem_counts']}")
first_id = min(durations, key=durations.get)  # the shortest clip keeps this page light
clip, clip_sr = sf.read(work / "tiny/wavs" / f"{first_id}.wav", dtype="float32")
fig, axes = plt.subplots(1, 3, figsize=(10, 2.5), dpi=72, gridspec_kw={"width_ratios": [1, 1.3, 1.6]})
axes[0].hist(seconds, bins=8, color="tab:blue"); axes[0].set(xlabel="seconds", ylabel="clips", title="clip durations")
axes[1].plot(np.arange(len(clip)) / clip_sr, clip, lw=0.4); axes[1].set(xlabel="seconds", title=f"{first_id}: waveform")
axes[2].imshow(mel_spectrogram(torch.from_numpy(clip)).numpy(), origin="lower", aspect="auto", cmap="magma",
               extent=(0, len(clip) / clip_sr, 0, 80))
axes[2].set(xlabel="seconds", ylabel="mel band", title="log-mel (input, 0-8 kHz)")
fig.tight_layout(); plt.show()
display(Audio(clip, rate=clip_sr))


# %% [markdown]
# ### Every bad case, end to end
#
# A corpus with everything wrong with it, in a layout unlike RUSLAN's: the WAVs in `ruslan_dataset/`, some named with bare numbers, the metadata with a BOM and CRLF endings. Each WAV defect from above gets its own ID; one metadata line has no `|`, one entry has no WAV, and one WAV has no entry.

# %%
def make_corpus(root: Path, clips: dict[str, tuple], extra_lines=(), folder="ruslan_dataset", bom=True, crlf=True) -> Path:
    "A RUSLAN-shaped corpus of tiny WAVs: `clips` maps a file stem to `(audio, sr, subtype)` or to raw bytes."
    (root / folder).mkdir(parents=True)
    for stem, spec in clips.items():
        if isinstance(spec, bytes): (root / folder / f"{stem}.wav").write_bytes(spec)
        else: sf.write(root / folder / f"{stem}.wav", spec[0], spec[1], subtype=spec[2])
    ids = [s if s.endswith("_RUSLAN") else f"{s}_RUSLAN" for s in clips]
    lines = [f"{u}|Текст «{u}», \"в кавычках\"." for u in ids] + list(extra_lines)
    nl = "\r\n" if crlf else "\n"
    (root / METADATA_NAME).write_bytes((codecs.BOM_UTF8 if bom else b"") + (nl.join(lines) + nl).encode())
    return root

ok = (tone(seconds=1.0), 44100, "PCM_16")
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
(bad_corpus / "ruslan_dataset/000011_RUSLAN.wav").rename(bad_corpus / "ruslan_dataset/000099_RUSLAN.wav")  # 11 loses its WAV...
(bad_corpus / "ruslan_dataset/000099_RUSLAN.wav").write_bytes((bad_corpus / "ruslan_dataset/000000_RUSLAN.wav").read_bytes())  # ...99 is not in the metadata
input_state = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in bad_corpus.rglob("*")}
report = prepare_corpus(bad_corpus, work / "bad_out", workers=2, progress=False)
print(format_summary(report))
for p in report["problems"]: print(" ", p.get("id", f"line {p.get('line')}"), p["action"], "-", p["reason"])

# %%
by_kind = {(p["kind"], p.get("id", p.get("line")), p["action"]) for p in report["problems"]}
assert by_kind == {("bom", 1, "kept"), ("crlf", 1, "kept"), ("blank_line", 14, "skipped"), ("no_separator", 15, "skipped"),
                   ("missing_wav", "000011_RUSLAN", "skipped"), ("missing_wav", "000012_RUSLAN", "skipped"),
                   ("not_in_metadata", "000099_RUSLAN", "skipped"), ("stereo", "000002_RUSLAN", "kept"),
                   ("format", "000003_RUSLAN", "kept"), ("out_of_range", "000003_RUSLAN", "kept"),
                   ("clipped", "000004_RUSLAN", "kept"), ("sample_rate", "000005_RUSLAN", "kept"),
                   ("silent", "000006_RUSLAN", "skipped"), ("too_short", "000007_RUSLAN", "skipped"),
                   ("empty_file", "000008_RUSLAN", "skipped"), ("truncated", "000009_RUSLAN", "skipped"),
                   ("unreadable", "000010_RUSLAN", "skipped")}, sorted(by_kind)
kept_ids = sorted(p.stem for p in (work / "bad_out/wavs").glob("*.wav"))
assert kept_ids == ["000000_RUSLAN", "000001_RUSLAN", "000002_RUSLAN", "000003_RUSLAN", "000004_RUSLAN", "000005_RUSLAN"]
assert report["kept"] == 6 and report["sample_rates"] == {"16000": 1, "44100": 7} and report["clips_found"] == 14
assert sorted((work / "bad_out/train.txt").read_text().splitlines() + (work / "bad_out/val.txt").read_text().splitlines()) == \
       [f'{u}|Текст «{u}», "в кавычках".' for u in kept_ids]
assert input_state == {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in bad_corpus.rglob("*")}  # the input is untouched

# %% [markdown]
# When nothing usable is found the call raises a one-line error, which the command turns into exit status 2; the report is still written when the corpus was found, so the reasons can be read. A wrong path, and a folder whose only clip is silent:

# %%
for args in [(work / "no_such_corpus", work / "o1"),
             (make_corpus(work / "all_silent", {"000000_RUSLAN": (np.zeros(22050, np.float32), 22050, "PCM_16")},
                         bom=False, crlf=False), work / "o2")]:
    try: prepare_corpus(*args, progress=False); raise AssertionError("no error")
    except (ValueError, FileNotFoundError) as e: print(type(e).__name__, e); assert "\n" not in str(e)
assert not (work / "o1").exists() and json.loads((work / "o2/report.json").read_text())["problem_counts"] == {"silent": 1}

# %% [markdown]
# The output folder may never be inside the input:

# %%
try: prepare_corpus(bad_corpus, bad_corpus / "prepared", progress=False); raise AssertionError("no error")
except ValueError as e: print(e)
assert not (bad_corpus / "prepared").exists()

# %% [markdown]
# ### The split is deterministic
#
# The same seed gives the same files byte for byte, whatever the number of workers; another seed another split.

# %%
again = prepare_corpus(tiny, work / "tiny_again", workers=1, progress=False)
assert all((work / "tiny" / f).read_bytes() == (work / "tiny_again" / f).read_bytes() for f in ["train.txt", "val.txt"])
other = prepare_corpus(tiny, work / "tiny_seed7", seed=7, progress=False)
assert (work / "tiny" / "val.txt").read_text() != (work / "tiny_seed7" / "val.txt").read_text()
assert all((work / "tiny/wavs" / p.name).read_bytes() == p.read_bytes() for p in (work / "tiny_again/wavs").iterdir())

# %% [markdown]
# ### A second run reuses, a killed run resumes
#
# Running again over a finished folder converts nothing and touches no WAV (their modification times do not change):

# %%
mtimes = {p.name: p.stat().st_mtime_ns for p in (work / "tiny/wavs").iterdir()}
t0 = time.perf_counter(); rerun = prepare_corpus(tiny, work / "tiny", workers=2, progress=False); t_rerun = time.perf_counter() - t0
print(f"rerun: reused {rerun['reused']}, processed {rerun['processed']} in {t_rerun:.2f} s (first run: {tiny_report['elapsed_s']:.2f} s)")
assert (rerun["reused"], rerun["processed"], rerun["kept"]) == (12, 0, 12)
assert mtimes == {p.name: p.stat().st_mtime_ns for p in (work / "tiny/wavs").iterdir()}
bad_rerun = prepare_corpus(bad_corpus, work / "bad_out", progress=False)
assert (bad_rerun["processed"], bad_rerun["reused"]) == (0, 11) and bad_rerun["problems"] == report["problems"]  # skips remembered

# %% [markdown]
# Reuse is checked, not assumed. A changed source, an output that was damaged, and an output whose manifest line was lost are all redone; the rest is not:

# %%
import shutil

# %%
src = work / "tiny_src"
shutil.copytree(tiny, src)
prepare_corpus(src, work / "tiny_chk", progress=False)
sf.write(src / "RUSLAN/000003_RUSLAN.wav", sf.read(src / "RUSLAN/000003_RUSLAN.wav")[0][:30000], 22050)  # source changed
damaged = work / "tiny_chk/wavs/000004_RUSLAN.wav"
damaged.write_bytes(damaged.read_bytes()[:5000])                                                      # output damaged
manifest = (work / "tiny_chk" / MANIFEST_NAME).read_text().splitlines(keepends=True)
(work / "tiny_chk" / MANIFEST_NAME).write_text("".join(l for l in manifest if '"000005_RUSLAN"' not in l))  # record lost
r = prepare_corpus(src, work / "tiny_chk", progress=False)
assert (r["processed"], r["reused"]) == (3, 9)
assert sf.info(work / "tiny_chk/wavs/000003_RUSLAN.wav").frames == 30000 and sf.info(damaged).frames > 5000

# %% [markdown]
# A kill half-way leaves finished WAVs with their manifest lines, perhaps a half-written line at the end of the manifest, a temporary file of the clip in flight, and no output for the clips not yet started. Simulated here exactly like that, the next run removes the temporary file, converts the missing clips and nothing else:

# %%
killed = work / "tiny_killed"
prepare_corpus(tiny, killed, progress=False)
lines = (killed / MANIFEST_NAME).read_text().splitlines(keepends=True)
unfinished = [json.loads(l)["id"] for l in lines[7:]]
for uid in unfinished: (killed / "wavs" / f"{uid}.wav").unlink()
(killed / MANIFEST_NAME).write_text("".join(lines[:7]) + lines[7][: len(lines[7]) // 2])  # cut mid-line by the kill
(killed / "wavs" / f".{unfinished[0]}.partial.wav").write_bytes(b"RIFF half a file")
for f in ["train.txt", "val.txt", "report.json"]: (killed / f).unlink()
mtimes = {p.name: p.stat().st_mtime_ns for p in (killed / "wavs").glob("*.wav")}
r = prepare_corpus(tiny, killed, progress=False)
print(f"resumed: processed {r['processed']}, reused {r['reused']}")
assert (r["processed"], r["reused"], r["kept"]) == (5, 7, 12) and not list((killed / "wavs").glob(".*"))
assert all(p.stat().st_mtime_ns == mtimes[p.name] for p in (killed / "wavs").glob("*.wav") if p.name in mtimes)
assert (killed / "val.txt").read_text() == (work / "tiny/val.txt").read_text()

# %% [markdown]
# ## The optional mel cache
#
# To fine-tune the vocoder on an acoustic model's own (teacher-forced) mels, point `--mel-dir` at a folder of `ID.npy` files of shape `[80, frames]`. Their frame counts must agree with the audio: a clip of `N` samples at 22,050 Hz has `N // 256` frames. Acoustic models that pad their STFT differently are off by a frame or two, so up to `MEL_FRAME_TOLERANCE` frames of difference are trimmed away (both the mel and the audio keep the shorter length); more than that means the files do not belong together, and is an error naming the file.

# %%
#| export
MEL_FRAME_TOLERANCE = 2
LOG_MEL_FLOOR = math.log(1e-5)  # the value of silence in a log-mel (mel_spectrogram clamps at 1e-5)

def find_mel_file(mel_dir, uid: str) -> Path | None:
    "The `.npy` mel of clip `uid` in `mel_dir` (with or without the `_RUSLAN` suffix), or None."
    return next((p for v in id_variants(uid) if (p := Path(mel_dir) / f"{v}.npy").is_file()), None)

def aligned_mel_frames(mel_path, audio_samples: int, hop: int = 256, num_mels: int = 80,
                       tolerance: int = MEL_FRAME_TOLERANCE) -> int:
    "Frames shared by a cached mel `[num_mels, frames]` and its audio; a `ValueError` naming the file if they disagree by more than `tolerance`."
    try: shape = np.load(mel_path, mmap_mode="r").shape  # reads the header only
    except (OSError, ValueError) as e: raise ValueError(f"{mel_path}: not a readable .npy file ({e})") from None
    if len(shape) == 3 and shape[0] == 1: shape = shape[1:]
    if len(shape) != 2 or shape[0] != num_mels:
        raise ValueError(f"{mel_path}: mel of shape {tuple(shape)}, expected [{num_mels}, frames]")
    audio_frames = audio_samples // hop
    if abs(shape[1] - audio_frames) > tolerance:
        raise ValueError(f"{mel_path}: {shape[1]} mel frames but the audio has {audio_frames} "
                         f"({audio_samples} samples / hop {hop}); more than ±{tolerance} apart")
    return min(shape[1], audio_frames)

def check_mel_dir(mel_dir, clips: list[tuple[str, int]], cfg: Config | None = None, problems: list | None = None) -> dict:
    "Check the cached mels of `clips` (`(id, audio_samples)` pairs); append problems to `problems`, return a summary."
    cfg = cfg or Config()
    mel_dir = Path(mel_dir).expanduser()
    if not mel_dir.is_dir(): raise NotADirectoryError(f"{mel_dir}: mel directory not found")
    problems = [] if problems is None else problems
    counts = Counter()
    for uid, samples in clips:
        path = find_mel_file(mel_dir, uid)
        if path is None:
            counts["missing"] += 1
            problems.append(_problem("id", uid, "mel_missing", f"no {uid}.npy in {mel_dir}", "kept")); continue
        try: aligned_mel_frames(path, samples, cfg.mel.hop_size, cfg.mel.num_mels); counts["ok"] += 1
        except ValueError as e:
            counts["mismatched"] += 1
            problems.append(_problem("id", uid, "mel_frames", str(e), "kept"))
    return {"path": str(mel_dir), "checked": len(clips), "ok": counts["ok"], "missing": counts["missing"],
            "mismatched": counts["mismatched"]}


# %%
show_doc(aligned_mel_frames)

# %%
show_doc(check_mel_dir)

# %%
mels = work / "mel_unit"; mels.mkdir()
np.save(mels / "a.npy", np.zeros((80, 101), np.float32)); np.save(mels / "b.npy", np.zeros((80, 107), np.float32))
np.save(mels / "c.npy", np.zeros((101, 80), np.float32))
assert aligned_mel_frames(mels / "a.npy", 100 * 256 + 17) == 100   # one frame too many: trimmed
assert aligned_mel_frames(mels / "a.npy", 102 * 256) == 101         # one frame short: the audio is trimmed
for name in ["b", "c"]:
    try: aligned_mel_frames(mels / f"{name}.npy", 100 * 256); raise AssertionError("no error")
    except ValueError as e: print(e)


# %% [markdown]
# ## The command
#
# `hifigan-ruslan prepare --data-path DIR --out DIR [--workers N] [--val-size N] [--seed S] [--mel-dir DIR]` runs `prepare_corpus` with a progress bar and ends with a short summary. It exits 0 when anything usable was kept; when nothing was (a wrong path, an empty folder) it exits 2 with a one-line reason.

# %%
#| export
def main_prepare(argv: list[str] | None = None) -> int:
    "`hifigan-ruslan prepare`: check, resample and split a RUSLAN-shaped corpus."
    p = argparse.ArgumentParser(prog="hifigan-ruslan prepare",
                                description="Check, resample (22,050 Hz mono 16-bit) and split a RUSLAN-shaped corpus.")
    p.add_argument("--data-path", required=True, help="folder holding the metadata file and the WAVs (any layout), or the metadata file")
    p.add_argument("--out", required=True, help="output folder: wavs/, train.txt, val.txt, report.json (never inside --data-path)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--val-size", type=int, default=100, help="validation clips (default 100; at most a fifth of a small corpus)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the train/validation split")
    p.add_argument("--mel-dir", default=None, help="folder of cached ID.npy mels [80, frames] to check against the audio")
    args = p.parse_args(argv)
    if args.workers is not None and args.workers < 1: raise ValueError(f"--workers {args.workers}: must be at least 1")
    if args.val_size < 0: raise ValueError(f"--val-size {args.val_size}: must be 0 or more")
    report = prepare_corpus(args.data_path, args.out, args.workers, args.val_size, args.seed, args.mel_dir)
    print(format_summary(report))
    return 0


# %%
show_doc(main_prepare)

# %% [markdown]
# The command on the bundled corpus, then on a wrong path:

# %%
#| slow
import subprocess, sys

# %%
#| slow
cli = [sys.executable, "-m", "hifigan_ruslan", "prepare"]
res = subprocess.run(cli + ["--data-path", str(tiny), "--out", str(work / "cli"), "--workers", "2"], capture_output=True, text=True)
print(res.stdout)
assert res.returncode == 0 and "kept 12 of 12 clips" in res.stdout and (work / "cli/report.json").is_file()
assert (work / "cli/val.txt").read_text() == (work / "tiny/val.txt").read_text()
res = subprocess.run(cli + ["--data-path", str(work / "nowhere"), "--out", str(work / "cli2")], capture_output=True, text=True)
print(res.returncode, res.stderr)
assert res.returncode == 2 and res.stderr.count("\n") == 1 and "nowhere: no such file or directory" in res.stderr
assert not (work / "cli2").exists()


# %% [markdown]
# ## The dataset
#
# `VocoderDataset` reads what `prepare` wrote: `{split}.txt` and `wavs/ID.wav`. Each item is `(mel, audio)`:
#
# - for **training**, a random window of `segment_size` samples (8,192 in the recipe) and its input mel `[80, segment_size // 256]`. The window starts on a hop boundary so that a cached mel can be cut at exactly the same frames. Only the window is read from disk (a seek into the 16-bit file), and the mel is computed on the window in the worker process, as the reference HiFi-GAN does. A clip shorter than a segment is zero-padded (a cached mel with the log-mel of silence).
# - for **validation**, the whole utterance trimmed to a multiple of the hop: audio `[T * 256]` and mel `[80, T]`.
#
# The random windows come from the dataset's own generator, which `make_dataloader` seeds per worker, so a run is reproducible.

# %%
#| export
def read_split(path) -> list[tuple[str, str]]:
    "`(id, text)` pairs of a `train.txt` / `val.txt` written by `prepare`."
    path = Path(path)
    if not path.is_file(): raise FileNotFoundError(f"{path}: split file not found (run `hifigan-ruslan prepare` first)")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip(): continue
        uid, sep, text = line.partition("|")
        if not sep: raise ValueError(f"{path}:{n}: expected `ID|text`, got {line[:50]!r}")
        items.append((uid.strip(), text.strip()))
    return items

class VocoderDataset(Dataset):
    "`(mel, audio)` pairs from a folder written by `prepare`: random segments (`train=True`) or whole utterances."
    def __init__(self, prepared_dir, split: str = "train", cfg: Config | None = None, train: bool = True,
                 mel_dir=None, seed: int | None = None):
        self.cfg = cfg or Config()
        self.root, self.split, self.train = Path(prepared_dir), split, train
        self.hop, self.segment_size = self.cfg.mel.hop_size, self.cfg.train.segment_size
        if self.segment_size % self.hop:
            raise ValueError(f"segment_size {self.segment_size} is not a multiple of the hop size {self.hop}")
        items = read_split(self.root / f"{split}.txt")
        if not items: raise ValueError(f"{self.root / f'{split}.txt'}: no clips listed")
        self.ids, self.texts = [u for u, _ in items], [t for _, t in items]
        self.wav_paths = [self.root / "wavs" / f"{u}.wav" for u in self.ids]
        missing = [p for p in self.wav_paths if not p.is_file()]
        if missing: raise FileNotFoundError(f"{missing[0]}: listed in {split}.txt but missing ({len(missing)} in all); run prepare again")
        self.mel_dir = Path(mel_dir).expanduser() if mel_dir is not None else None
        self.mel_paths, self.mel_frames = self._check_mels() if self.mel_dir is not None else (None, None)
        self.reseed(seed)

    def _check_mels(self):
        if not self.mel_dir.is_dir(): raise NotADirectoryError(f"{self.mel_dir}: mel directory not found")
        paths, frames = [], []
        for uid, wav in zip(self.ids, self.wav_paths):
            path = find_mel_file(self.mel_dir, uid)
            if path is None: raise FileNotFoundError(f"{self.mel_dir / (uid + '.npy')}: no cached mel for clip {uid}")
            paths.append(path)
            frames.append(aligned_mel_frames(path, sf.info(wav).frames, self.hop, self.cfg.mel.num_mels))
        return paths, frames

    def reseed(self, seed: int | None):
        "Seed the generator of the random windows (done per worker by `make_dataloader`)."
        self.rng = np.random.default_rng(seed)

    def __len__(self): return len(self.ids)

    def _read(self, i: int):
        "Audio window (float32 in [-1, 1]), its first frame, and the number of frames it spans."
        seg_frames = self.segment_size // self.hop
        with sf.SoundFile(self.wav_paths[i]) as f:
            if f.samplerate != self.cfg.mel.sampling_rate or f.channels != 1:
                raise ValueError(f"{self.wav_paths[i]}: {f.samplerate} Hz, {f.channels} channel(s); expected "
                                 f"{self.cfg.mel.sampling_rate} Hz mono: run prepare again")
            frames = f.frames // self.hop if self.mel_frames is None else self.mel_frames[i]
            start, count = 0, frames
            if self.train and frames >= seg_frames:
                start, count = int(self.rng.integers(0, frames - seg_frames + 1)), seg_frames
            # a short training clip is read whole and zero-padded later, unless a cached mel limits it to whole frames
            short_whole = self.train and frames < seg_frames and self.mel_frames is None
            f.seek(start * self.hop)
            pcm = f.read(f.frames if short_whole else count * self.hop, dtype="int16")
        return torch.from_numpy(pcm.astype(np.float32) / 32768.0), start, count

    def __getitem__(self, i: int):
        audio, start, count = self._read(i)
        if self.train and len(audio) < self.segment_size:
            audio = torch.nn.functional.pad(audio, (0, self.segment_size - len(audio)))
        if self.mel_paths is None: return mel_spectrogram(audio, self.cfg.mel), audio
        cached = np.load(self.mel_paths[i], mmap_mode="r")
        if cached.ndim == 3: cached = cached[0]
        mel = torch.from_numpy(np.array(cached[:, start:start + count], dtype=np.float32))
        want = len(audio) // self.hop
        if mel.shape[1] < want: mel = torch.nn.functional.pad(mel, (0, want - mel.shape[1]), value=LOG_MEL_FLOOR)
        return mel, audio


# %%
show_doc(VocoderDataset)

# %% [markdown]
# With the `tiny` preset (4,096-sample segments, 16 frames):

# %%
from hifigan_ruslan.config import preset_config

# %%
cfg = preset_config("tiny")
train_ds = VocoderDataset(work / "tiny", "train", cfg, seed=0)
val_ds = VocoderDataset(work / "tiny", "val", cfg, train=False)
mel, audio = train_ds[0]
print(len(train_ds), len(val_ds), train_ds.ids[:3], train_ds.texts[0], tuple(mel.shape), tuple(audio.shape))
assert mel.shape == (80, 16) and audio.shape == (4096,) and audio.dtype == torch.float32 and audio.abs().max() <= 1
assert torch.allclose(mel, mel_spectrogram(audio, cfg.mel))
vmel, vaudio = val_ds[0]
whole = sf.read(work / "tiny/wavs" / f"{val_ds.ids[0]}.wav", dtype="int16")[0]
assert vaudio.shape == (len(whole) // 256 * 256,) and vmel.shape == (80, len(whole) // 256)
assert torch.equal(vaudio, torch.from_numpy(whole[: len(vaudio)] / 32768).float())

# %% [markdown]
# A training window is a slice of the file that starts on a hop boundary, and windows differ from draw to draw; the same seed gives the same windows:

# %%
whole = torch.from_numpy(sf.read(train_ds.wav_paths[0], dtype="int16")[0] / 32768).float()
starts = set()
for _ in range(20):
    _, a = train_ds[0]
    offsets = [s for s in range(0, len(whole) - 4096 + 1) if torch.equal(whole[s:s + 4096], a)]
    assert offsets and offsets[0] % 256 == 0
    starts.add(offsets[0])
assert len(starts) > 3
draw = lambda seed: VocoderDataset(work / "tiny", "train", cfg, seed=seed)[3][1]
assert torch.equal(draw(5), draw(5)) and not torch.equal(draw(5), draw(6))

# %% [markdown]
# A clip shorter than a segment is zero-padded: with the recipe's 8,192-sample segments, the 0.25 s clip `000005_RUSLAN` of the bad corpus above:

# %%
short = VocoderDataset(work / "bad_out", "train", preset_config("recipe"), seed=0)
lengths = {u: sf.info(p).frames for u, p in zip(short.ids, short.wav_paths)}
uid = min(lengths, key=lengths.get)
mel, audio = short[short.ids.index(uid)]
print(uid, lengths[uid], "samples ->", tuple(audio.shape), tuple(mel.shape))
assert lengths[uid] < 8192 and audio.shape == (8192,) and mel.shape == (80, 32) and not audio[lengths[uid]:].any()

# %% [markdown]
# Errors name the file: a folder that was not prepared, and a split file whose WAV has gone.

# %%
for args in [(work / "nothing_here",), (work / "tiny_chk", "val")]:
    try: VocoderDataset(*args, cfg=cfg); print("ok")
    except FileNotFoundError as e: print(e)
broken = work / "broken"; shutil.copytree(work / "tiny", broken); (broken / "wavs" / f"{train_ds.ids[0]}.wav").unlink()
try: VocoderDataset(broken, cfg=cfg); raise AssertionError("no error")
except FileNotFoundError as e: print(e); assert train_ds.ids[0] in str(e)

# %% [markdown]
# ### Cached mels
#
# Here the "acoustic model" is played by `mel_spectrogram` itself on the whole prepared clip, saved with one frame too many (as a centred STFT would give); the dataset trims that frame and cuts each training mel at the frames of its audio window. A mel that is five frames off is an error that names it, from the dataset and from `prepare --mel-dir`.

# %%
mel_dir = work / "mels"; mel_dir.mkdir()
for uid in train_ds.ids + val_ds.ids:
    a = torch.from_numpy(sf.read(work / "tiny/wavs" / f"{uid}.wav", dtype="int16")[0] / 32768).float()
    m = mel_spectrogram(a, cfg.mel).numpy()
    np.save(mel_dir / f"{uid.removesuffix('_RUSLAN')}.npy", np.concatenate([m, m[:, -1:]], 1))  # bare-number names, +1 frame
cached = VocoderDataset(work / "tiny", "train", cfg, mel_dir=mel_dir, seed=0)
for i in range(len(cached)):
    mel, audio = cached[i]
    full_mel = np.load(find_mel_file(mel_dir, cached.ids[i]))
    whole = torch.from_numpy(sf.read(cached.wav_paths[i], dtype="int16")[0] / 32768).float()
    start = next(s for s in range(0, len(whole) - 4096 + 1, 256) if torch.equal(whole[s:s + 4096], audio))
    assert mel.shape == (80, 16) and np.array_equal(mel.numpy(), full_mel[:, start // 256: start // 256 + 16])
vmel, vaudio = VocoderDataset(work / "tiny", "val", cfg, train=False, mel_dir=mel_dir)[0]
assert vmel.shape[1] * 256 == len(vaudio) == sf.info(val_ds.wav_paths[0]).frames // 256 * 256
m = np.load(mel_dir / "000003.npy"); np.save(mel_dir / "000003.npy", np.concatenate([m] + [m[:, -1:]] * 4, 1))
try: VocoderDataset(work / "tiny", "train", cfg, mel_dir=mel_dir); raise AssertionError("no error")
except ValueError as e: print(e)
r = prepare_corpus(tiny, work / "tiny", mel_dir=mel_dir, progress=False)
print(r["mel_dir"]); assert (r["mel_dir"]["ok"], r["mel_dir"]["mismatched"]) == (11, 1) and r["problem_counts"]["mel_frames"] == 1


# %% [markdown]
# ## Data loaders
#
# `make_dataloader` builds the loader the trainer iterates over. For training: `batch_size` clips per process, shuffled, incomplete last batch dropped. Under DDP (`world_size > 1`) a `DistributedSampler` gives each process its share; on one process `EpochShuffleSampler` shuffles with a `torch.Generator` seeded from `cfg.train.seed` and the epoch. Both have `set_epoch`, so a trainer calls `loader.sampler.set_epoch(epoch)` whatever the setup, and a resumed run replays the same order for the same epoch; `EpochShuffleSampler` also moves to the next epoch by itself, so that forgetting `set_epoch` does not repeat one order forever. Workers stay alive between epochs (`persistent_workers`), and `seed_worker` gives every worker its own deterministic seed for numpy, `random` and the dataset's windows. `epoch_seed`, when given, is mixed into the seed (for a run that wants a different order from the default one, not needed for resuming). Validation uses one clip per batch (utterances differ in length), in order, in the main process: it is a hundred clips, not worth starting workers for.

# %%
#| export
class EpochShuffleSampler(Sampler[int]):
    "A random order of `range(n)` that is fixed by `(seed, epoch)`; the epoch advances after each pass unless `set_epoch` sets it."
    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = n, seed, 0
    def set_epoch(self, epoch: int): self.epoch = epoch
    def __len__(self): return self.n
    def __iter__(self):
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0]))
        self.epoch += 1
        return iter(torch.randperm(self.n, generator=g).tolist())

def seed_worker(worker_id: int):
    "`worker_init_fn`: seed numpy, `random` and the dataset's window generator from the worker's own torch seed."
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "reseed"): info.dataset.reseed(seed)

def make_dataloader(dataset, cfg: Config, train: bool = True, rank: int = 0, world_size: int = 1, epoch_seed=None) -> DataLoader:
    "The training (shuffled, `cfg.train.batch_size`, drop_last) or validation (in order, batch 1) `DataLoader` of `dataset`."
    seed = cfg.train.seed if epoch_seed is None else int(np.random.SeedSequence([cfg.train.seed, epoch_seed]).generate_state(1)[0])
    if not train:
        sampler = DistributedSampler(dataset, world_size, rank, shuffle=False) if world_size > 1 else None
        return DataLoader(dataset, batch_size=1, shuffle=False, sampler=sampler, num_workers=0)
    if world_size > 1: sampler = DistributedSampler(dataset, world_size, rank, shuffle=True, seed=seed, drop_last=True)
    else: sampler = EpochShuffleSampler(len(dataset), seed)
    if len(sampler) < cfg.train.batch_size:
        raise ValueError(f"{len(sampler)} training clip(s) per process, fewer than batch_size {cfg.train.batch_size}")
    workers = cfg.train.num_workers
    if workers == 0 and hasattr(dataset, "reseed"): dataset.reseed(seed)  # windows drawn in this process
    return DataLoader(dataset, batch_size=cfg.train.batch_size, sampler=sampler, drop_last=True, num_workers=workers,
                      pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0, worker_init_fn=seed_worker,
                      generator=torch.Generator().manual_seed(seed))


# %%
show_doc(EpochShuffleSampler)

# %%
show_doc(make_dataloader)

# %% [markdown]
# Batches of `[B, 80, 16]` mels and `[B, 4096]` audio; the same seed gives the same batches (with worker processes too), the next epoch another order; two DDP ranks see disjoint clips; validation is one whole clip at a time, in order.

# %%
loader = make_dataloader(train_ds, cfg)
mel, audio = next(iter(loader))
print(len(loader), "batches:", tuple(mel.shape), tuple(audio.shape))
assert mel.shape == (4, 80, 16) and audio.shape == (4, 4096) and len(loader) == 2


# %%
#| slow
def epoch_sums(workers, epochs=2):
    c = preset_config("tiny"); c.train.num_workers = workers
    ld = make_dataloader(VocoderDataset(work / "tiny", "train", c), c)
    return [[round(a.sum().item(), 4) for _, a in ld] for _ in range(epochs)]
a, b = epoch_sums(2), epoch_sums(2)
assert a == b and a[0] != a[1]
assert epoch_sums(0) == epoch_sums(0)

# %%
ranks = [make_dataloader(train_ds, cfg, rank=r, world_size=2) for r in (0, 1)]
seen = [list(ld.sampler) for ld in ranks]
assert all(isinstance(ld.sampler, DistributedSampler) for ld in ranks) and not set(seen[0]) & set(seen[1])
val_loader = make_dataloader(val_ds, cfg, train=False)
assert [tuple(a.shape) for _, a in val_loader] == [(1, len(val_ds[i][1])) for i in range(len(val_ds))]
sampler = EpochShuffleSampler(10, seed=1); sampler.set_epoch(3); order = list(sampler)
sampler.set_epoch(3); assert list(sampler) == order and sorted(order) == list(range(10))
big = preset_config("tiny"); big.train.batch_size = 32
try: make_dataloader(train_ds, big); raise AssertionError("no error")
except ValueError as e: print(e)
