# %% [markdown]
# # Clips and metadata
#
# > Reading transcripts (RUSLAN-style metadata, Festival's `txt.done.data`) and checking, converting and writing one clip (WAV, FLAC or OGG): the pieces that `hifigan-ruslan prepare` is made of.

# %%
#| default_exp clips

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_close, test_eq

# %%
#| export
from __future__ import annotations
import codecs, math, os, re, wave
from importlib import resources
from pathlib import Path
from typing import NamedTuple
import numpy as np
import soundfile as sf
from hifigan_ruslan.config import MelConfig
from hifigan_ruslan.locations import atomic_write

# %% [markdown]
# ## The corpus
#
# [RUSLAN](https://ruslan-corpus.github.io/) is a single-speaker Russian corpus: 22,200 utterances of one male voice, a little over 31 hours, recorded as 16-bit PCM mono WAV at 44.1 kHz. Its metadata file, `metadata_RUSLAN_22200.csv`, has no header and one `ID|text` line per clip, in UTF-8; the texts contain ordinary quotes and « », so the file is **not** read as CSV: each line is split on its first `|` and nothing else is interpreted. IDs look like `000000_RUSLAN` and name `000000_RUSLAN.wav`; some copies of the corpus use bare numbers (`000001.wav`), so IDs are matched with or without the `_RUSLAN` suffix.
#
# Other corpora come in other shapes, and `prepare` reads the common ones ([Preparing the corpus](06b_prepare.ipynb)): LJSpeech's `metadata.csv` (the same `ID|text` lines, often with a third, normalised text), a Festival voice (`etc/txt.done.data`, one `( ID "text" )` line per clip), or a plain folder of audio files with no transcripts at all, since a vocoder needs none.
#
# HiFi-GAN is trained at 22,050 Hz, so every usable clip is converted once, up front, to 22,050 Hz mono 16-bit WAV with the soxr resampler, whatever it came as: WAV, FLAC or OGG (Vorbis), at any rate and with any number of channels. This page holds the pieces that work on single files: the readers of the transcripts and the check and conversion of one clip. They report what is wrong with the input instead of raising, because one bad line or file in 22,200 should cost one clip, not the run; [Preparing the corpus](06b_prepare.ipynb) runs them over a whole corpus in parallel and writes the report.
#
# A file counts as audio by its name: `.wav`, `.flac` or `.ogg` in any letter case, and not hidden (macOS `._*` resource forks, which some archives carry, are not audio). An ID must be a plain file name, since it names the output `OUT/wavs/ID.wav`.

# %%
#| export
METADATA_NAME = "metadata_RUSLAN_22200.csv"
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")

def is_audio_name(name: str) -> bool:
    "A `.wav`, `.flac` or `.ogg` file that is not hidden (a macOS `._*` resource fork is not audio)."
    return name.lower().endswith(AUDIO_EXTENSIONS) and not name.startswith(".")


# %%
test_eq([is_audio_name(n) for n in ["a.wav", "B.WAV", "._a.wav", "a.flac", "a.OGG", "a.mp3", "a.csv"]],
        [True, True, False, True, True, False, False])
test_eq([bool(ID_PATTERN.fullmatch(u)) for u in ["000001_RUSLAN", "a.b-c", "../evil", "a b"]],
        [True, True, False, False])


# %% [markdown]
# ## The bundled real voice
#
# The package carries 24 utterances of a real Russian voice, `assets/festvox_ru`, for `hifigan-ruslan demo`, the examples of these pages and the Kaggle notebook's smoke test: a subset of festvox-ru, the Russian voice of the Festival speech synthesis system as Debian packages it (`festvox-ru`, section main; one male speaker reading literary prose, recorded at 16 kHz, 16-bit). It keeps the voice's own Festival layout, `etc/txt.done.data` and `wav/`, with the audio re-encoded losslessly as FLAC (2.6 MB for 159 s), and its licence: the copyright notice is in `assets/festvox_ru/COPYRIGHT`, which also marks what was modified. The texts keep the voice's own notation: a `+` after a stressed vowel where the stress is ambiguous, commas where the speaker pauses.
#
# Recorded at 16 kHz, the voice holds nothing above 8 kHz (in fact little above 7 kHz): fine for hearing and measuring what a vocoder does to speech, and a reminder that such a corpus needs a loss limited to its band ([Training](09a_training.ipynb#the-loss-band-follows-the-corpus)). The tests that need small fast fixtures use a synthetic corpus kept with the repository's test data instead (`hifigan_ruslan.testing.tiny_corpus`).

# %%
#| export
def bundled_corpus() -> Path:
    "The real voice bundled with the package: 24 festvox-ru clips in Festival's layout (`etc/`, `wav/`)."
    return Path(str(resources.files("hifigan_ruslan") / "assets" / "festvox_ru"))


# %%
show_doc(bundled_corpus)

# %%
voice = bundled_corpus()
voice_files = sorted((voice / "wav").glob("*.flac"))
print(voice.name, sorted(p.name for p in voice.iterdir()), len(voice_files), "FLAC files,",
      f"{sum(sf.info(p).duration for p in voice_files):.0f} s")
test_eq(len(voice_files), 24)
voice_bytes = sum(p.stat().st_size for p in voice.rglob("*") if p.is_file())
assert voice_bytes < 3e6, voice_bytes
test_eq({(sf.info(p).samplerate, sf.info(p).channels, sf.info(p).subtype) for p in voice_files},
        {(16000, 1, "PCM_16")})
assert "Nickolay V. Shmyrev" in (voice / "COPYRIGHT").read_text() and "MODIFIED" in (voice / "COPYRIGHT").read_text()


# %% [markdown]
# The subset was made with the script below from the unpacked Debian package (`apt-get download festvox-ru && dpkg-deb -x festvox-ru_*.deb DIR`): 20 clips of 5 to 8 s spread over the corpus for training and 4 that `prepare` holds out (they are among the 24 clips that the transfer benchmark holds out, `benchmarks/bench_transfer.py --real`). It is kept here as text, not as a cell, so that running this notebook never rewrites the package data.
#
# ```python
# import re
# from pathlib import Path
# import soundfile as sf
# VOICE = Path("DIR/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
# IDS = sorted(["ru_0003", "ru_0038", "ru_0050", "ru_0071", "ru_0100", "ru_0148", "ru_0201", "ru_0241", "ru_0268",
#               "ru_0292", "ru_0320", "ru_0372", "ru_0419", "ru_0490", "ru_0531", "ru_0562", "ru_0598", "ru_0635",
#               "ru_0692", "ru_0735", "ru_0063", "ru_0209", "ru_0325", "ru_0538"])
# out = Path("hifigan_ruslan/assets/festvox_ru")
# (out / "wav").mkdir(parents=True, exist_ok=True)
# (out / "etc").mkdir(exist_ok=True)
# lines = {re.match(r"\(\s*(\S+)", line).group(1): line
#          for line in (VOICE / "etc/txt.done.data").read_text("utf-8").splitlines()}
# (out / "etc/txt.done.data").write_text("".join(lines[u] + "\n" for u in IDS), encoding="utf-8")
# for u in IDS:
#     audio, sr = sf.read(VOICE / "wav" / f"{u}.wav", dtype="int16")
#     sf.write(out / "wav" / f"{u}.flac", audio, sr, format="FLAC", subtype="PCM_16", compression_level=1.0)
# ```
#
# `COPYRIGHT` holds the notice of the Debian package's `usr/share/doc/festvox-ru/copyright` for the voice, with the modifications marked.

# %% [markdown]
# ## Clip keys
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
test_eq({clip_key("000001_RUSLAN"), clip_key("000001"), clip_key("1")}, {"1"})
test_eq(clip_key("000000_ruslan"), "0")
test_eq(clip_key("speaker_a_001"), "speaker_a_001")
test_eq(id_variants("000007"), ["000007", "000007_RUSLAN"])
test_eq(id_variants("000007_RUSLAN"), ["000007_RUSLAN", "000007"])


# %% [markdown]
# ## Reading the metadata
#
# Every line that is not a clean `ID|text` is reported and, when it can be, repaired: a byte-order mark is dropped, Windows line endings are read as plain ones, a blank line or a line without `|` is skipped, as is an ID that could not be a file name (it would otherwise name a path under `OUT/wavs/`) or a second entry for the same clip. A problem is a small dict: `line` (1-based) or `id`, a `reason` a person can read, a `kind` for counting, and the `action` taken (`skipped`, or `kept` when the input was used, possibly repaired).

# %%
#| export
class MetaEntry(NamedTuple):
    "One usable metadata line: the clip's ID as written, its text, and the 1-based line number."
    id: str
    text: str
    line: int

def problem_record(where: str, value, kind: str, reason: str, action: str = "skipped") -> dict:
    "A problem for the report: `{where: value}` (`line` or `id`), its `kind`, a `reason`, the `action` taken."
    return {where: value, "kind": kind, "reason": reason, "action": action}


# %% [markdown]
# The bytes of a text file become lines in three steps: a byte-order mark says the encoding (and is dropped); a file that is not UTF-8 but reads as Cyrillic in cp1251 is read as cp1251; what is left undecodable is replaced, line by line, and noted.

# %%
#| export
def _decode_bom(raw: bytes) -> tuple[bytes, list[dict]]:
    "UTF-8 bytes without a byte-order mark (a UTF-16 file is re-encoded), and the problem noted."
    if raw.startswith(codecs.BOM_UTF8):
        removed = problem_record("line", 1, "bom", "UTF-8 byte-order mark removed", "kept")
        return raw[len(codecs.BOM_UTF8):], [removed]
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        reason = "UTF-16 file (byte-order mark) read as UTF-16"
        return raw.decode("utf-16").encode("utf-8"), [problem_record("line", 1, "bom", reason, "kept")]
    return raw, []

def _decode_cp1251(raw: bytes) -> tuple[bytes, list[dict]]:
    "A file that is not UTF-8 but reads as Windows-1251 Cyrillic, re-encoded as UTF-8, and the problem noted."
    try:
        raw.decode("utf-8")
        return raw, []
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp1251")
    except UnicodeDecodeError:  # byte 0x98: not cp1251 either
        return raw, []
    as_utf8 = raw.decode("utf-8", errors="replace")
    cyrillic = sum("\u0400" <= c <= "\u04ff" for c in text)
    letters = sum(ord(c) > 127 and c.isalpha() for c in text)
    genuine_utf8 = sum(ord(c) > 127 and c != "\ufffd" for c in as_utf8)  # a UTF-8 file with a few bad bytes
    if cyrillic < 0.9 * letters or genuine_utf8 > 0.01 * cyrillic:
        return raw, []
    reason = "not UTF-8: read as Windows-1251 (cp1251), in which every line decodes to Cyrillic text"
    return text.encode("utf-8"), [problem_record("line", 1, "cp1251", reason, "kept")]

def _decode_line(data: bytes) -> tuple[str, bool]:
    "The text of one line and whether it was valid UTF-8 (undecodable bytes become U+FFFD)."
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), False


# %% [markdown]
# `decoded_lines` applies them to a whole file and numbers its lines from 1, as a text editor does:

# %%
#| export
def decoded_lines(path) -> tuple[list[tuple[int, str]], list[dict]]:
    "The numbered lines of a text file, and the problems of its encoding (BOM, cp1251, CRLF, bad bytes)."
    raw, problems = _decode_bom(Path(path).read_bytes())
    if not problems:
        raw, problems = _decode_cp1251(raw)
    lines = raw.split(b"\n")
    if lines and not lines[-1].strip():
        lines.pop()  # the final newline, or trailing whitespace
    decoded, crlf = [], []
    for n, data in enumerate(lines, 1):
        if data.endswith(b"\r"):
            data = data[:-1]
            crlf.append(n)
        line, valid = _decode_line(data)
        if not valid:
            reason = "not valid UTF-8: undecodable bytes replaced by U+FFFD"
            problems.append(problem_record("line", n, "bad_utf8", reason, "kept"))
        decoded.append((n, line))
    if crlf:
        reason = f"Windows line endings (CRLF) on {len(crlf)} line(s), read as plain newlines"
        problems.append(problem_record("line", crlf[0], "crlf", reason, "kept"))
    return decoded, problems


# %% [markdown]
# Then each line is parsed by the format's own function, and what every format shares is checked once: an ID that could not be a file name, a repeated ID, an empty text.

# %%
#| export
def _entry_problem(n: int, uid: str, seen: dict) -> dict | None:
    "Why the entry of line `n` with this ID is skipped (not a file name, a second entry), or None."
    if not ID_PATTERN.fullmatch(uid):
        return problem_record("line", n, "bad_id", f"ID {uid[:50]!r} is not a plain file name; skipped")
    if clip_key(uid) in seen:
        reason = f"ID {uid} already on line {seen[clip_key(uid)]}; skipped"
        return problem_record("line", n, "duplicate_id", reason)
    return None

def _entries(lines: list[tuple[int, str]], parse) -> tuple[list[MetaEntry], list[dict]]:
    "Entries of numbered lines, `parse(n, line)` giving `(uid, text)` or the problem: `(entries, problems)`."
    entries, problems, seen = [], [], {}
    for n, line in lines:
        if not line.strip():
            problems.append(problem_record("line", n, "blank_line", "blank line skipped"))
            continue
        parsed = parse(n, line)
        if isinstance(parsed, dict):
            problems.append(parsed)
            continue
        uid, text = parsed
        problem = _entry_problem(n, uid, seen)
        if problem is not None:
            problems.append(problem)
            continue
        seen[clip_key(uid)] = n
        if not text:
            reason = f"ID {uid} has an empty text; audio kept"
            problems.append(problem_record("line", n, "empty_text", reason, "kept"))
        entries.append(MetaEntry(uid, text, n))
    return entries, problems


# %% [markdown]
# RUSLAN's format is `ID|text` per line:

# %%
#| export
def _metadata_line(n: int, line: str) -> tuple[str, str] | dict:
    uid, sep, text = (part.strip() for part in line.partition("|"))
    if not sep:
        reason = f"no `|` between ID and text in {line[:50]!r}; skipped"
        return problem_record("line", n, "no_separator", reason)
    return uid, text

def read_metadata(path) -> tuple[list[MetaEntry], list[dict]]:
    "Parse an `ID|text` metadata file (split on the first `|` only, no CSV quoting): `(entries, problems)`."
    lines, problems = decoded_lines(path)
    entries, more = _entries(lines, _metadata_line)
    return entries, problems + more


# %%
show_doc(read_metadata)

# %% [markdown]
# On the synthetic test corpus (`testing.tiny_corpus`: 12 espeak-ng sentences in RUSLAN's layout, one text with « » and one with ordinary quotes):

# %%
from hifigan_ruslan.testing import tiny_corpus

# %%
tiny = tiny_corpus()
entries, problems = read_metadata(tiny / METADATA_NAME)
print(len(entries), entries[6], problems)
test_eq(len(entries), 12)
test_eq(problems, [])
test_eq(entries[6].text, "«Спасибо», — сказал он.")
assert '"' in entries[9].text, entries[9].text

# %% [markdown]
# Every defect at once, in one small file: a BOM, CRLF endings, a blank line, a line without `|`, a path-like ID, a duplicate (the same clip as `000001_RUSLAN` written as a bare number), an empty text, a `|` inside the text (kept: only the first one separates), and a byte that is not UTF-8.

# %%
import tempfile

# %%
tmp = Path(tempfile.mkdtemp())
meta_lines = ["000001_RUSLAN|«Привет», — сказал он.", "", "no separator here", "../evil|x",
              "000001|дубль", "000002_RUSLAN|", "000003_RUSLAN|a|b \"q\""]
(tmp / "meta.csv").write_bytes(codecs.BOM_UTF8 + "\r\n".join(meta_lines).encode()
                               + b"\r\n000004_RUSLAN|caf\xe9\r\n")
entries, problems = read_metadata(tmp / "meta.csv")
for p in problems:
    print(p)

# %%
test_eq([e.id for e in entries], ["000001_RUSLAN", "000002_RUSLAN", "000003_RUSLAN", "000004_RUSLAN"])
test_eq([e.text for e in entries], ["«Привет», — сказал он.", "", 'a|b "q"', "caf\ufffd"])
test_eq({p["kind"]: p.get("line") for p in problems},
        {"bom": 1, "blank_line": 2, "no_separator": 3, "bad_id": 4, "duplicate_id": 5, "empty_text": 6,
         "bad_utf8": 8, "crlf": 1})
(tmp / "replacement.csv").write_text("000001_RUSLAN|a real U+FFFD: \ufffd\n", encoding="utf-8")
test_eq(read_metadata(tmp / "replacement.csv")[1], [])  # a U+FFFD written in the file is not a decoding error

# %% [markdown]
# A metadata file saved in the Windows Cyrillic code page (cp1251) instead of UTF-8 is read as such when every byte decodes and the text is Cyrillic, and the problems say so; a UTF-8 file with a stray bad byte (the file above) stays UTF-8 with that byte replaced:

# %%
cp1251_lines = ["000001_RUSLAN|«Кошка спит на диване», — сказала она.", "000002_RUSLAN|Съешь же ещё этих булок."]
(tmp / "cp1251.csv").write_bytes("\r\n".join(cp1251_lines).encode("cp1251") + b"\r\n")
entries, problems = read_metadata(tmp / "cp1251.csv")
print(problems[0]["reason"])
test_eq([e.text for e in entries], [line.split("|")[1] for line in cp1251_lines])
test_eq([p["kind"] for p in problems], ["cp1251", "crlf"])

# %% [markdown]
# ### A Festival voice's transcripts
#
# A Festival voice lists its utterances in `etc/txt.done.data`, one `( ID "text" )` line each, and keeps their audio in `wav/ID.wav`. `read_festival` reads that file with the same care as `read_metadata`: the same encodings, and a line that is not such an entry, a bad or repeated ID or an empty text is reported the same way. A `\"` inside a text is a quote.

# %%
#| export
FESTIVAL_NAME = "txt.done.data"
_FESTIVAL_LINE = re.compile(r'\(\s*(\S+)\s+"(.*)"\s*\)')

def _festival_line(n: int, line: str) -> tuple[str, str] | dict:
    match = _FESTIVAL_LINE.fullmatch(line.strip())
    if match is None:
        reason = f'not a `( ID "text" )` entry: {line.strip()[:50]!r}; skipped'
        return problem_record("line", n, "not_an_entry", reason)
    return match[1], match[2].replace('\\"', '"').strip()

def read_festival(path) -> tuple[list[MetaEntry], list[dict]]:
    "Parse a Festival `txt.done.data` (`( ID \"text\" )` per line): `(entries, problems)`."
    lines, problems = decoded_lines(path)
    entries, more = _entries(lines, _festival_line)
    return entries, problems + more


# %%
show_doc(read_festival)

# %%
entries, problems = read_festival(voice / "etc" / FESTIVAL_NAME)
print(len(entries), entries[2])
test_eq(len(entries), 24)
test_eq(problems, [])
test_eq(entries[0], MetaEntry("ru_0003", "Со спокойным мужеством, Скайлс, ожидал всего, в этом безумном городе.", 1))
assert "т+олку" in entries[2].text, entries[2].text  # the voice's stress mark is kept

# %% [markdown]
# The same defects in a Festival file, saved in cp1251: a line that is not an entry, a blank line, an ID that is not a file name, a repeated ID, an empty text and a quoted quote.

# %%
festival_lines = ['( ru_0001 "Первая фраза." )', "( ru_0002 без кавычек )", "", '( ../x "Путь." )',
                  '( ru_0001 "Снова первая." )', '( ru_0003 "" )', '( ru_0004 "Он сказал: \\"да\\"." )']
(tmp / "txt.done.data").write_bytes("\n".join(festival_lines).encode("cp1251") + b"\n")
entries, problems = read_festival(tmp / "txt.done.data")
for p in problems:
    print(p)
test_eq([(e.id, e.text) for e in entries], [("ru_0001", "Первая фраза."), ("ru_0003", ""),
                                            ("ru_0004", 'Он сказал: "да".')])
test_eq({p["kind"]: p["line"] for p in problems},
        {"cp1251": 1, "not_an_entry": 2, "blank_line": 3, "bad_id": 4, "duplicate_id": 5, "empty_text": 6})

# %% [markdown]
# ## Checking and converting one clip
#
# `process_clip` is what each worker process runs on one file. It never raises for bad audio; it returns a record saying what it did. The checks, in order:
#
# - **empty** (0 bytes, or a header without samples, such as a FLAC of 0 samples), **truncated** or **unreadable** files (anything libsndfile cannot decode, a text file named `.flac` among them) are skipped. libsndfile quietly reads a truncated WAV as a shorter one, so the RIFF chunks are checked first: a `data` chunk that declares more bytes than the file holds means the recording was cut, and the audio would no longer match its text.
# - **stereo** (or more channels) is downmixed to mono by averaging: kept, noted.
# - **float, 24-bit or 8-bit** samples are converted to 16-bit: kept, noted.
# - **samples beyond [-1, 1]** (a float WAV written without limiting) are scaled down so that the peak is 0.99 rather than clipped, which keeps the waveform's shape: kept, noted. A 16-bit clip with many samples **at full scale** was clipped when recorded; that cannot be undone, so it is kept and noted.
# - a **silent** clip (peak below -60 dBFS) and a clip **far shorter than a training segment** (under a quarter of one: 0.09 s for the recipe's 8,192 samples) are skipped: there is nothing in them to learn.
# - the **sample rate** is read from every file, never assumed; anything other than 22,050 Hz is resampled with soxr's high-quality filter. Once all clips are in, a rate that differs from the corpus's usual one is noted (upsampled audio has nothing above the original Nyquist frequency).
#
# The output is written through `atomic_write` of [Locations](00c_locations.ipynb#writing-a-file-whole-and-naming-its-contents), to a hidden temporary name moved into place, so `OUT/wavs/ID.wav` is either complete or absent, even if the process is killed.

# %%
#| export
SILENCE_PEAK = 10 ** (-60 / 20)   # a clip whose loudest sample is below -60 dBFS holds no usable speech
CLIPPED_FRACTION = 1e-3           # more than 0.1 % of the samples at full scale: clipped when recorded
MIN_SEGMENT_FRACTION = 0.25       # a clip shorter than this part of a training segment is skipped
TARGET_SUBTYPE = "PCM_16"

def _data_chunk_problem(size: int, pos: int, csize: int, byte_rate: int) -> str | None:
    "Why a `data` chunk of `csize` bytes at `pos` does not fit a file of `size` bytes, or None."
    held = size - pos - 8
    if csize <= held or csize in (0, 0xFFFFFFFF):  # 0 / 0xFFFFFFFF: streamed, size unknown
        return None
    if byte_rate:
        declared, holds = csize / byte_rate, held / byte_rate
        return f"truncated: the data chunk declares {declared:.2f} s, the file holds {holds:.2f} s"
    return f"truncated: the data chunk declares {csize} bytes, the file holds {held}"

def wav_truncation(path) -> str | None:
    "Why a RIFF/WAVE file is cut short (its `data` chunk declares more than the file holds), or None."
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # not plain RIFF: libsndfile decides
        pos, byte_rate = 12, 0
        while True:
            f.seek(pos)
            chunk = f.read(24)
            if len(chunk) < 8:
                return f"truncated: the file ends after {size} bytes, before its audio data"
            cid, csize = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if cid == b"fmt " and len(chunk) >= 20:
                byte_rate = int.from_bytes(chunk[16:20], "little")
            if cid == b"data":
                return _data_chunk_problem(size, pos, csize, byte_rate)
            pos += 8 + csize + (csize & 1)


# %% [markdown]
# Writing a clip: samples to 16-bit PCM, and a WAV file of them:

# %%
#| export
def to_pcm16(audio: np.ndarray) -> np.ndarray:
    "Float audio in [-1, 1] to int16 with the x32768 convention (exact for audio that came from 16-bit)."
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)

def write_pcm16(path, pcm: np.ndarray, sr: int):
    "Write mono int16 samples as a plain 16-bit WAV (the standard library's writer: no fsync per file)."
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.astype("<i2").tobytes())


# %% [markdown]
# The checks of the decoded samples are one private function: it returns the mono audio to write (or None) and what happened, so that `process_clip` itself only reads, converts and writes.

# %%
#| export
UNKNOWN_LENGTH = 2**62  # libsndfile's frame count of a FLAC whose header declares 0 samples is 2**63 - 1

def _read_audio(src: Path) -> tuple[tuple | None, list | None]:
    "`((audio [frames, channels], sr, channels, subtype), None)`, or `(None, [kind, reason])` when unusable."
    if src.stat().st_size == 0:
        return None, ["empty_file", "empty file (0 bytes)"]
    cut = wav_truncation(src)
    if cut:
        return None, ["truncated", cut]
    try:
        with sf.SoundFile(src) as f:
            if f.frames >= UNKNOWN_LENGTH:
                return None, ["empty_file", f"no audio samples: the {f.format} header declares none"]
            return (f.read(dtype="float32", always_2d=True), f.samplerate, f.channels, f.subtype), None
    except Exception as e:
        # any decoder failure is a property of this file, reported, never a crash of the run
        message = str(e).splitlines()[0].replace(repr(str(src)), repr(src.name)) if str(e) else \
            type(e).__name__
        return None, ["unreadable", f"unreadable: {message}"]


# %% [markdown]
# Once decoded, the samples themselves are checked (empty, not finite, silent, too short, beyond full scale or clipped), and a downmix or a change of sample format is noted:

# %%
#| export
def _check_samples(audio: np.ndarray, sr: int, subtype: str, min_seconds: float):
    "`(mono audio or None, skip [kind, reason] or None, notes)` for the decoded samples of one clip."
    notes = []
    if len(audio) == 0:
        return None, ["empty_file", "no audio samples (header only)"], notes
    if not np.isfinite(audio).all():
        return None, ["unreadable", "NaN or infinite samples"], notes
    if audio.shape[1] > 1:
        notes.append(["stereo", f"{audio.shape[1]} channels downmixed to mono"])
    audio = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if subtype != TARGET_SUBTYPE:
        notes.append(["format", f"{subtype} samples converted to 16-bit PCM"])
    peak = float(np.abs(audio).max())
    if peak < SILENCE_PEAK:
        return None, ["silent", f"silent: peak {20 * math.log10(max(peak, 1e-10)):.0f} dBFS"], notes
    if len(audio) / sr < min_seconds:
        seconds = len(audio) / sr
        reason = f"too short: {seconds:.3f} s, under {min_seconds:.3f} s (a quarter of a training segment)"
        return None, ["too_short", reason], notes
    if peak > 1.0:
        audio = audio * np.float32(0.99 / peak)
        notes.append(["out_of_range",
                      f"samples reach {peak:.2f}, beyond [-1, 1]: scaled by {0.99 / peak:.3f}"])
        return audio, None, notes
    at_full_scale = int(np.count_nonzero(np.abs(audio) >= 32767 / 32768))
    if at_full_scale > CLIPPED_FRACTION * len(audio):
        share = 100 * at_full_scale / len(audio)
        notes.append(["clipped", f"clipped: {at_full_scale} samples ({share:.1f} %) at full scale"])
    return audio, None, notes


# %% [markdown]
# `process_clip` itself only reads, checks, converts and writes, and returns the record of what it did:

# %%
#| export
def process_clip(uid: str, src, dst, target_sr: int = MelConfig.sampling_rate,
                 min_seconds: float = 0.0) -> dict:
    "Check one audio file, write it to `dst` as `target_sr` mono 16-bit WAV; its record (`kept`, `skip`...)."
    import soxr
    src, dst = Path(src), Path(dst)
    st = src.stat()
    rec = {"id": uid, "src": str(src), "src_size": st.st_size, "src_mtime_ns": st.st_mtime_ns, "kept": False,
           "sr": None, "notes": []}
    decoded, skip = _read_audio(src)
    if skip is not None:
        return {**rec, "skip": skip}
    audio, sr, channels, subtype = decoded
    rec.update(sr=sr, channels=channels, subtype=subtype, seconds_in=len(audio) / sr)
    audio, skip, rec["notes"] = _check_samples(audio, sr, subtype, min_seconds)
    if skip is not None:
        return {**rec, "skip": skip}
    if sr != target_sr:
        audio = soxr.resample(audio, sr, target_sr, quality="HQ")
    pcm = to_pcm16(audio)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # not durable: a clip lost in a crash is redone by the next prepare
    atomic_write(dst, lambda tmp: write_pcm16(tmp, pcm, target_sr), durable=False)
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
assert r["kept"]
test_eq(r["sr"], 44100)
test_eq(r["notes"], [])
test_close(r["seconds"], r["seconds_in"], eps=1e-3)
converted = sf.info(tmp / "out/000000_RUSLAN.wav")
test_eq(converted.samplerate, 22050)
test_eq(converted.channels, 1)
test_eq(converted.subtype, "PCM_16")
r = process_clip("000001_RUSLAN", tiny / "RUSLAN/000001_RUSLAN.wav", tmp / "out/000001_RUSLAN.wav", 22050, 0.09)
test_eq(sf.read(tmp / "out/000001_RUSLAN.wav", dtype="int16")[0],
        sf.read(tiny / "RUSLAN/000001_RUSLAN.wav", dtype="int16")[0])
test_eq(list((tmp / "out").glob(".*")), [])  # no temporary file left behind

# %% [markdown]
# FLAC and OGG are read the same way: a 16 kHz FLAC of the bundled voice becomes a 22,050 Hz WAV of the same duration, and a 48 kHz stereo OGG (Vorbis) one in mono.

# %%
r = process_clip("ru_0063", voice / "wav/ru_0063.flac", tmp / "out/ru_0063.wav", 22050, 0.09)
print({k: r[k] for k in ["kept", "sr", "subtype", "seconds_in", "seconds", "notes"]})
test_eq((r["kept"], r["sr"], r["notes"]), (True, 16000, []))
test_close(r["seconds"], r["seconds_in"], eps=1e-3)
stereo_48k = np.stack([np.sin(np.arange(48000) / 7), np.sin(np.arange(48000) / 9)], 1).astype(np.float32) * 0.3
sf.write(tmp / "stereo.ogg", stereo_48k, 48000, format="OGG", subtype="VORBIS")
r = process_clip("stereo", tmp / "stereo.ogg", tmp / "out/stereo.wav", 22050, 0.09)
print({k: r[k] for k in ["kept", "sr", "channels", "seconds", "notes"]})
test_eq((r["kept"], r["sr"], r["channels"]), (True, 48000, 2))
test_eq(sorted(kind for kind, _ in r["notes"]), ["format", "stereo"])
test_eq((sf.info(tmp / "out/stereo.wav").samplerate, sf.info(tmp / "out/stereo.wav").channels), (22050, 1))


# %% [markdown]
# Each bad case, on a tiny file made here: the records say what happened. `tone` is 0.4 s of a 220 Hz tone at 44.1 kHz, a stand-in for speech.

# %%
def tone(sr=44100, seconds=0.4, amp=0.5, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return np.stack([x, 0.5 * x], 1) if channels == 2 else x

bad = tmp / "bad"
bad.mkdir()
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
(bad / "text.flac").write_text("Это текст, а не звук.\n", encoding="utf-8")
streaminfo = (4096).to_bytes(2, "big") * 2 + bytes(6) + ((16000 << 44) | (15 << 36)).to_bytes(8, "big") + bytes(16)
(bad / "no_samples.flac").write_bytes(b"fLaC" + bytes([0x80, 0, 0, 34]) + streaminfo)  # a FLAC of 0 samples

results = {p.stem: process_clip(p.stem, p, tmp / "bad_out" / f"{p.stem}.wav", 22050, 0.09)
           for p in sorted(bad.iterdir())}
for name, r in results.items():
    print(f"{name:12} kept={r['kept']!s:5} {r.get('skip', [''])[-1] or '; '.join(n[1] for n in r['notes'])}")

# %%
kinds = {n: (r["kept"], sorted(k for k, _ in r["notes"]) if r["kept"] else r["skip"][0])
         for n, r in results.items()}
test_eq(kinds, {"clipped": (True, ["clipped"]), "empty": (False, "empty_file"),
                "float_hot": (True, ["format", "out_of_range"]), "garbage": (False, "unreadable"),
                "header_only": (False, "truncated"), "no_samples": (False, "empty_file"), "ok": (True, []),
                "pcm24": (True, ["format"]), "text": (False, "unreadable"),
                "rate16k": (True, []), "short": (False, "too_short"), "silent": (False, "silent"),
                "stereo": (True, ["stereo"]), "truncated": (False, "truncated")})
out_audio, out_sr = sf.read(tmp / "bad_out/float_hot.wav")
test_eq(out_sr, 22050)
test_close(np.abs(out_audio).max(), 0.99, eps=5e-3)  # scaled to 0.99, not clipped at 1 (measured 0.99002)
test_eq(sf.info(tmp / "bad_out/stereo.wav").channels, 1)
test_close(np.abs(sf.read(tmp / "bad_out/stereo.wav")[0]).max(), 0.375, eps=5e-3)  # mean of 0.5, 0.25: 0.37503
test_eq(sf.info(tmp / "bad_out/rate16k.wav").frames, round(0.4 * 22050))
test_eq([(tmp / f"bad_out/{n}.wav").exists() for n in ["silent", "truncated"]], [False, False])
