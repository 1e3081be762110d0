# %% [markdown]
# # Locations
#
# > The folders and files a command writes to and reads from, checked before any model is loaded or any file written.

# %%
#| default_exp locations

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import hashlib, os, secrets
from pathlib import Path
from hifigan_ruslan.errors import UserError


# %% [markdown]
# Every command writes somewhere: `prepare` a data folder, `train` a run folder, `generate` and `resynth` a folder of
# WAVs, `export` one model file. If that place cannot be written (a folder without write permission, a file where a
# folder is expected, a folder where a file is expected), the command must say so in one line before it spends
# minutes loading a model and computing, not fail while writing its first result. The same for the files it reads: a
# folder given where a file is expected is named as such, not reported as missing.
#
# Nothing is created by a check: a folder that does not exist yet is fine when the nearest folder that does exist
# above it can be written in.

# %%
#| export
def _nearest_existing(path: Path) -> Path:
    "`path` or the nearest of its parents that exists."
    while not path.exists() and path != path.parent:
        path = path.parent
    return path

def _check_creatable(path: Path, what: str) -> None:
    "A `UserError` unless the missing `path` can be created: its nearest existing parent is writable."
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise UserError(f"{path}: cannot create the {what}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot create the {what}: {base} is not writable")


# %%
#| export
def check_output_folder(path, what: str = "output folder") -> Path:
    "`path` as a `Path` if it is, or can become, a folder this process writes in; a `UserError` otherwise."
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: is a file; the {what} must be a folder")
    if not path.exists():
        _check_creatable(path, what)
    elif not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{path}: the {what} is not writable")
    return path

def check_output_file(path, what: str = "output file", example: str = "") -> Path:
    "`path` as a `Path` if a file can be written there (atomically, beside it); a `UserError` otherwise."
    path = Path(path).expanduser()
    if path.is_dir():
        hint = f" such as {path / example}" if example else ""
        raise UserError(f"{path}: is a folder; the {what} must be a file name{hint}")
    if path.parent.exists() and path.parent.is_dir():
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise UserError(f"{path}: cannot write the {what}: {path.parent} is not writable")
    else:
        _check_creatable(path.parent, f"folder of the {what}")
    return path


# %%
show_doc(check_output_folder)

# %%
show_doc(check_output_file)

# %%
import tempfile
from hifigan_ruslan.testing import read_only_folder

# %%
tmp = Path(tempfile.mkdtemp())
(tmp / "file.txt").write_text("x")
test_eq(check_output_folder(tmp / "new" / "deeper"), tmp / "new" / "deeper")
test_eq(check_output_file(tmp / "new" / "g.onnx"), tmp / "new" / "g.onnx")
assert not (tmp / "new").exists()  # a check creates nothing
test_fail(lambda: check_output_folder(tmp / "file.txt"), exc=UserError,
          contains="file.txt: is a file; the output folder must be a folder")
test_fail(lambda: check_output_folder(tmp / "file.txt" / "out"), contains="file.txt is a file, not a folder")
test_fail(lambda: check_output_file(tmp, "model file", "generator.onnx"),
          contains="is a folder; the model file must be a file name such as")
with read_only_folder(tmp / "locked") as locked:
    if locked is None:
        print("skipped: no read-only folder can be made here")
    else:
        test_fail(lambda: check_output_folder(locked), contains="locked: the output folder is not writable")
        test_fail(lambda: check_output_folder(locked / "run"), contains="locked is not writable")
        test_fail(lambda: check_output_file(locked / "g.onnx"), contains="locked is not writable")


# %% [markdown]
# ## An output never replaces an input
#
# A command that writes a file over one it reads destroys the user's data without a word: `resynth --wav
# speech.wav --out .` would replace the recording by its resynthesis, `export --out` naming the checkpoint it
# exports would replace the checkpoint. So every command lists, before any work, the paths it will write and the
# paths it reads, and `check_no_overwrite` refuses in one line naming both when a written path is a read one, or
# one holds the other (a folder written into that holds an input, an output inside a folder that is read). Paths
# are compared after resolving links, and existing paths also by their device and inode, which catches a hard link. Each path is resolved once and looked up in tables, so a batch of thousands of files is checked in a fraction of a second.
#
# One more case is not an input at all: `generate --mel speech.npy --out .` beside the recording `speech.wav` the
# mel was made from would replace that recording. So where asked (`spare_siblings`), an existing file in the
# folder of an input is never replaced either.

# %%
#| export
def _identity(path: Path) -> tuple | None:
    "`(device, inode)` of an existing path, which a hard link shares; None if there is none."
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino

def check_no_overwrite(writes, reads, spare_siblings: bool = False) -> None:
    "A `UserError` naming both when a path in `writes` is, holds or lies in one in `reads`; pairs (path, what)."
    # each path resolved once, looked up by table: a batch of thousands of files is checked in linear time
    at, by_inode, under, beside = {}, {}, {}, {}
    for r, rwhat in reads:
        r = Path(r).expanduser()
        resolved = r.resolve()
        at.setdefault(resolved, (r, rwhat))
        if (inode := _identity(r)) is not None:
            by_inode.setdefault(inode, (r, rwhat))
        for folder in resolved.parents:
            under.setdefault(folder, (r, rwhat))
        beside.setdefault(resolved.parent, (r, rwhat))
    for w, wwhat in writes:
        w = Path(w).expanduser()
        resolved = w.resolve()
        if (same := at.get(resolved) or by_inode.get(_identity(w))) is not None:
            how = "" if resolved in at else " (the same file)"
            raise UserError(f"{w}: the {wwhat} would replace the {same[1]} {same[0]}{how}; an input is never "
                            "written to: choose another output")
        held = under.get(resolved)
        holder = next((at[folder] for folder in resolved.parents if folder in at), None)
        if held is not None or holder is not None:
            r, rwhat = held or holder
            where = f"would hold the {rwhat} {r}" if held is not None else f"is inside the {rwhat} {r}"
            raise UserError(f"{w}: the {wwhat} {where}; an input is never written to: choose another output")
        if spare_siblings and w.exists() and (r_beside := beside.get(resolved.parent)) is not None:
            raise UserError(f"{w}: exists beside the {r_beside[1]} {r_beside[0]} and would be replaced by the "
                            f"{wwhat} (it may be a recording): choose another output folder")


# %%
show_doc(check_no_overwrite)

# %% [markdown]
# A recording, its hard link and its symbolic link are each refused as the resynthesis of that recording; a
# folder that holds the input corpus, or lies inside it, as an output folder; an existing WAV beside a mel. A WAV
# written to another folder, or a new name beside the input, is fine. Nothing is created or changed by the check.

# %%
import os, shutil
import numpy as np

# %%
home = Path(tempfile.mkdtemp())
(home / "rec").mkdir()
(home / "rec" / "speech.wav").write_bytes(b"RIFF recording")
os.link(home / "rec" / "speech.wav", home / "hard.wav")
(home / "soft.wav").symlink_to(home / "rec" / "speech.wav")
np.save(home / "rec" / "speech.npy", np.zeros(3))
wav_in = [(home / "rec" / "speech.wav", "input --wav")]
test_fail(lambda: check_no_overwrite([(home / "rec" / "speech.wav", "output WAV")], wav_in), exc=UserError,
          contains="speech.wav: the output WAV would replace the input --wav")
test_fail(lambda: check_no_overwrite([(home / "hard.wav", "output WAV")], wav_in), contains="(the same file)")
test_fail(lambda: check_no_overwrite([(home / "soft.wav", "output WAV")], wav_in), contains="would replace")
test_fail(lambda: check_no_overwrite([(home, "output folder")], [(home / "rec", "corpus")]),
          contains="the output folder would hold the corpus")
test_fail(lambda: check_no_overwrite([(home / "rec" / "out", "output folder")], [(home / "rec", "corpus")]),
          contains="is inside the corpus")
mel_in = [(home / "rec" / "speech.npy", "input --mel")]
test_fail(lambda: check_no_overwrite([(home / "rec" / "speech.wav", "output WAV")], mel_in, spare_siblings=True),
          contains="exists beside the input --mel")
check_no_overwrite([(home / "rec" / "speech.wav", "output WAV")], mel_in)  # not an input, not asked to spare
check_no_overwrite([(home / "out" / "speech.wav", "output WAV")], wav_in, spare_siblings=True)
check_no_overwrite([(home / "rec" / "speech_2.wav", "output WAV")], wav_in, spare_siblings=True)
many_in = [(home / "rec" / f"m{i}.npy", "input --mel") for i in range(3000)]  # a batch: checked in linear time
many_out = [(home / "out" / f"m{i}.wav", "output WAV") for i in range(3000)]
check_no_overwrite(many_out, many_in, spare_siblings=True)
test_eq(sorted(p.name for p in home.iterdir()), ["hard.wav", "rec", "soft.wav"])
shutil.rmtree(home)


# %% [markdown]
# An input file that is not there, or a folder where a file belongs, is one line that says which:

# %%
#| export
def check_input_file(path, what: str) -> Path:
    "`path` as a `Path` if it is a file; a `UserError` saying it is missing or a folder otherwise."
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not {'an' if what[0] in 'aeiou' else 'a'} {what}")
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    return path


# %%
show_doc(check_input_file)

# %%
test_eq(check_input_file(tmp / "file.txt", "mel file"), tmp / "file.txt")
test_fail(lambda: check_input_file(tmp, "mel file"), contains=": is a folder, not a mel file")
test_fail(lambda: check_input_file(tmp / "none.npy", "mel file"), contains="none.npy: mel file not found")
test_fail(lambda: check_input_file(tmp, "audio file"), contains=": is a folder, not an audio file")


# %% [markdown]
# A file of the wrong kind is named as what it is, judged from its first bytes before any reader sees it: a text
# file renamed `.npy`, random bytes in a `.pt`. A file `torch.save` wrote is a zip archive, or a pickle in the format
# before PyTorch 1.6; a `.npy` file starts with NumPy's magic string.

# %%
#| export
def looks_like_text(head: bytes) -> bool:
    "Whether the first bytes of a file read as text (UTF-8, no control characters but line breaks and tabs)."
    text = head.decode("utf-8", errors="ignore")
    return bool(head) and b"\0" not in head and all(c.isprintable() or c in "\r\n\t" for c in text)

def torch_file_problem(path) -> str | None:
    "Why `path` cannot be a file that `torch.save` wrote, judged from its first bytes; None if it may be."
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith((b"PK\x03\x04", b"\x80")):  # a zip archive, or a pickle (the format before 1.6)
        return None
    if not head:
        return "an empty file"
    return "a text file" if looks_like_text(head) else "neither a torch.save archive nor a pickle"

def npy_file_problem(path) -> str | None:
    "Why `path` cannot be a `.npy` file, judged from its first bytes; None when it may be one."
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"\x93NUMPY"):
        return None
    if not head:
        return "an empty file"
    return "a text file" if looks_like_text(head) else "no NumPy header"


# %%
show_doc(torch_file_problem)

# %%
show_doc(npy_file_problem)

# %%
import torch

# %%
(tmp / "notes.npy").write_text("1 2 3\n")
(tmp / "noise.pt").write_bytes(np.random.default_rng(0).bytes(600))
np.save(tmp / "real.npy", np.zeros(3))
torch.save(torch.zeros(3), tmp / "real.pt")
test_eq([npy_file_problem(tmp / n) for n in ("notes.npy", "noise.pt", "real.npy")],
        ["a text file", "no NumPy header", None])
test_eq([torch_file_problem(tmp / n) for n in ("notes.npy", "noise.pt", "real.pt")],
        ["a text file", "neither a torch.save archive nor a pickle", None])

# %%
shutil.rmtree(tmp)


# %% [markdown]
# ## Writing a file whole, and naming its contents
#
# Every file this project writes goes through `atomic_write`: the content goes to a temporary file in the same
# folder, which is then renamed over the final name. A rename within one file system is atomic, so the final name
# holds either the old complete file or the new complete file, never half of one, whether a Kaggle session hits its
# time limit in the middle of `torch.save`, a `kill -9` stops `prepare`, or a disk fills up. The temporary name
# keeps the final suffix (`.speech.1f2e3d4c.partial.wav`), because some writers choose the format by it, and starts
# with a dot, so that it is hidden and never taken for a result. It is created with the ordinary permissions (the
# umask applies), so a checkpoint can be shared like any other file. With `durable` (the default) the file and its
# folder are flushed to disk before the rename is reported done, which a checkpoint needs and a clip that `prepare`
# can redo does not.
#
# `sha256_file` is the one hash of a file's contents: the pretrained weights are checked with it, and the Kaggle
# manifest lists it for every output file.

# %%
#| export
def _fsync_dir(folder: Path):
    "Make a rename in `folder` durable (not every file system can open a folder)."
    try: dir_fd = os.open(folder, os.O_RDONLY)
    except OSError: return
    try: os.fsync(dir_fd)
    except OSError: pass
    finally: os.close(dir_fd)

def atomic_write(path, write, durable: bool = True) -> Path:
    "`write(temp)` to a new file beside `path`, then rename it to `path`: a crash never leaves half a file."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.partial{path.suffix}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies, as to any file
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)
    return path

def sha256_file(path) -> str:
    "The SHA-256 of the file at `path`, read in blocks of 1 MiB."
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# %%
show_doc(atomic_write)

# %% [markdown]
# A write that fails halfway leaves the old file as it was and no temporary file behind; one that succeeds replaces
# it whole:

# %%
with tempfile.TemporaryDirectory() as d:
    target = Path(d) / "speech.wav"
    target.write_bytes(b"the old recording")
    def fails(tmp):
        tmp.write_bytes(b"half a")
        raise OSError("No space left on device")
    test_fail(lambda: atomic_write(target, fails), exc=OSError, contains="No space left")
    test_eq((target.read_bytes(), sorted(p.name for p in Path(d).iterdir())),
            (b"the old recording", ["speech.wav"]))
    seen = []
    atomic_write(target, lambda tmp: seen.append(tmp.name) or tmp.write_bytes(b"new"), durable=False)
    print(seen[0])
    assert seen[0].startswith(".speech.") and seen[0].endswith(".partial.wav"), seen
    test_eq((target.read_bytes(), sha256_file(target)), (b"new", hashlib.sha256(b"new").hexdigest()))
