# %% [markdown]
# # Mel files
#
# > Log-mel files written by acoustic models (`.npy` or `.pt`, any of their layouts), read in pieces and judged by one set of rules, whether they are vocoded or trained on.

# %%
#| default_exp mel_files

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import math, pickle
from collections.abc import Iterator
from pathlib import Path
import numpy as np
import torch
from hifigan_ruslan.config import MelConfig
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.locations import check_input_file, npy_file_problem, torch_file_problem

# %% [markdown]
# A mel file reaches this project two ways: `generate` vocodes it, and `train --mel-dir` (with `prepare --mel-dir` checking the folder first) trains on the mels an acoustic model predicted for the corpus. Both read it here, with the same verdict for the same file: a file that cannot be a HiFi-GAN log-mel is refused with its reason, because vocoding it, or training on it, would silently produce noise. What differs between the two is named where it differs: training also needs the mel to line up with its recording (see [Data](06a_data.ipynb#mels-of-an-acoustic-model)).
#
# Acoustic models write mels as `.npy` or `.pt`, as `[80, T]` or with a batch axis `[1, 80, T]`. The rules:
#
# - the wrong number of bands or rank is refused; a `[T, 80]` layout is transposed only when unambiguous (exactly one axis has 80 entries);
# - values that are not floats are refused: integers (an acoustic model writes floats, so a file of integers is something else, or a mel quantised beyond use), and anything that is not a number;
# - NaN or infinite values are refused;
# - values that are not a natural-log mel are refused: all values `>= 0` (a linear magnitude or power mel: a log-mel of speech always has negative values, silence sits at `log(1e-5) = -11.5`), or values above 12 (a dB scale; no audio in [-1, 1] reaches `exp(12)`);
# - `.pt` files that need pickle beyond tensors (`weights_only=True` refuses them) and `.npy` files holding Python objects are refused.

# %% [markdown]
# ## Opening a file
#
# A `.npy` file is mapped, not read: opening it costs its header. A `.pt` file is loaded with `weights_only=True`, mapped where its format allows it (files written since PyTorch 1.6); a dictionary with a `mel` entry is taken for that entry.

# %%
#| export
MAX_LOG_MEL = 12.0  # exp(12) ~ 1.6e5: far above any mel magnitude of audio in [-1, 1]

def _open_npy(path: Path) -> np.ndarray:
    "A `.npy` file as a read-only memory map: nothing is read but the header."
    problem = npy_file_problem(path)
    if problem is not None:
        raise UserError(f"{path}: not a .npy file ({problem})")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:  # object arrays cannot be mapped (nor read without pickle)
        raise UserError(f"{path}: not a readable mel file ({str(e).splitlines()[0][:120]})") from None

def _open_pt(path: Path) -> torch.Tensor:
    "The tensor of a `.pt` file (or its `mel` entry), memory-mapped where the file's format allows it."
    problem = torch_file_problem(path)
    if problem is not None:
        raise UserError(f"{path}: not a PyTorch file ({problem})")
    try:
        try:
            mel = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # the format before PyTorch 1.6 cannot be mapped
            mel = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(f"{path}: not a plain tensor file (needs pickle, refused)") from None
    except Exception as e:
        raise UserError(f"{path}: not a readable mel file ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None
    if isinstance(mel, dict) and "mel" in mel:
        mel = mel["mel"]
    if not isinstance(mel, torch.Tensor):
        raise UserError(f"{path}: holds a {type(mel).__name__}, not a tensor")
    return mel

def _dtype_kind(mel) -> str:
    "numpy's kind letter of an array's or a tensor's element type: `f`, `i`, `u`, ..."
    if isinstance(mel, torch.Tensor):
        return np.dtype(str(mel.dtype).removeprefix("torch.").replace("bfloat16", "float32")).kind
    return mel.dtype.kind


# %% [markdown]
# ## `MelFile`
#
# A `MelFile` reads a mel file in pieces: opening it reads the shape and type and checks the values in one pass over blocks of frames (the rules above), then `read` returns the frames asked for as a float32 `[num_mels, frames]` array. A `.npy` file is mapped afresh for each read, so the pages of a long file never stay in memory.

# %%
#| export
class MelFile:
    "A `.npy` / `.pt` log-mel `[num_mels, T]` (`[1, num_mels, T]`, `[T, num_mels]`), checked, read in pieces."
    def __init__(self, path, num_mels: int = MelConfig.num_mels, block: int = 1 << 15):
        self.path, self.num_mels = check_input_file(path, "mel file"), num_mels
        if self.path.suffix not in (".npy", ".pt"):
            raise UserError(f"{self.path}: unknown mel file type {self.path.suffix!r} (expected .npy or .pt)")
        self._tensor = _open_pt(self.path) if self.path.suffix == ".pt" else None
        self._layout(self._array())
        self._check_values(block)

    def _array(self):
        "The whole mel as stored: a fresh memory map of a `.npy` file, or the `.pt` file's tensor."
        return _open_npy(self.path) if self._tensor is None else self._tensor

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        "Frames `start:stop` as a float32 `[num_mels, frames]` array."
        mel = self._array()
        mel = mel[0] if self._batched else mel
        piece = mel[start:stop].T if self._time_major else mel[:, start:stop]
        piece = piece.float().numpy() if isinstance(piece, torch.Tensor) else piece
        return np.array(piece, dtype=np.float32, order="C")  # a copy: the map is closed when it is dropped

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        "The whole mel in pieces of `size` frames."
        for start in range(0, self.frames, size):
            yield self.read(start, start + size)


# %% [markdown]
# The two checks `MelFile` makes when it opens a file: the layout and type, read off the header, then the values.

# %%
#| export
def _layout(self: MelFile, mel):
    "Read the layout off the shape and type: a `UserError` for one that cannot be a log-mel."
    shape, kind = tuple(mel.shape), (str(mel.dtype).removeprefix("torch."), _dtype_kind(mel))
    if kind[1] in "iu":
        raise UserError(f"{self.path}: holds {kind[0]} values (integers), "
                        "not the floats of a natural-log mel")
    if kind[1] != "f":
        raise UserError(f"{self.path}: holds {kind[0]} values, not numbers")
    self._batched = len(shape) == 3 and shape[0] == 1
    rows = shape[1:] if self._batched else shape
    if len(rows) != 2:
        n = self.num_mels
        raise UserError(f"{self.path}: shape {shape}: expected [{n}, T] or [1, {n}, T]")
    self._time_major = rows[0] != self.num_mels and rows[1] == self.num_mels  # [T, num_mels]: unambiguous
    bands, self.frames = rows[::-1] if self._time_major else rows
    if bands != self.num_mels:
        raise UserError(f"{self.path}: shape {shape}: {rows[0]} bands, expected {self.num_mels}")
    if self.frames == 0:
        raise UserError(f"{self.path}: has no frames")

def _check_values(self: MelFile, block: int):
    "One pass over the values in blocks: refuse NaN or infinity, a linear scale and a dB scale."
    bad, low, high = 0, math.inf, -math.inf
    for piece in self.blocks(block):
        finite = np.isfinite(piece)
        bad += int((~finite).sum())
        if finite.any():
            low, high = min(low, float(piece[finite].min())), max(high, float(piece[finite].max()))
    if bad:
        raise UserError(f"{self.path}: contains {bad} NaN or infinite values")
    if low >= 0:
        raise UserError(f"{self.path}: all values >= 0 (min {low:.3g}): looks like a linear mel, "
                        "expected a natural-log mel")
    if high > MAX_LOG_MEL:
        raise UserError(f"{self.path}: values up to {high:.3g}: not a natural-log mel (dB or linear scale?)")

MelFile._layout, MelFile._check_values = _layout, _check_values


# %%
#| export
def load_mel_file(path, num_mels: int = MelConfig.num_mels) -> np.ndarray:
    "A log-mel `[num_mels, T]` from a `.npy` / `.pt` file; a `UserError` naming the file and the problem."
    return MelFile(path, num_mels).read()


# %%
show_doc(MelFile)

# %%
show_doc(MelFile.read)

# %%
show_doc(load_mel_file)

# %% [markdown]
# The log-mel of a short Russian sentence (from the reference golden files), in each layout an acoustic model may write:

# %%
import os, shutil, tempfile

# %%
good = np.load(Path("testdata/reference/mel_espeak_ru.npz"))["mel"]
tmp = Path(tempfile.mkdtemp())
mels = tmp / "mels"
mels.mkdir()
np.save(mels / "ok.npy", good)
torch.save(torch.from_numpy(good)[None], mels / "batched.pt")
np.save(mels / "time_major.npy", good.T)
print(good.shape, good.dtype, f"{good.min():.2f} .. {good.max():.2f}")
for ok in ["ok.npy", "batched.pt", "time_major.npy"]:
    test_eq(load_mel_file(mels / ok), good)
test_eq(MelFile(mels / "time_major.npy").read(10, 20), good[:, 10:20])  # a piece, in the usual layout


# %% [markdown]
# Every refused file gets its own reason:

# %%
class Evil:
    "An object whose unpickling would run a shell command."
    def __reduce__(self):
        return (os.system, ("echo pwned",))

bad_arrays = {"bands.npy": good[:64], "rank.npy": good[None, None],
              "nan.npy": np.where(good > -3, np.nan, good), "linear.npy": np.exp(good),
              # a dB mel: its floor, 20 log10(1e-5) = -100 dB, lifted to -20 dB (not to 0 dB, where its minimum would
              # sit on the linear-mel test's boundary and rounding would decide), its peaks far above 12
              "decibel.npy": 20 * np.log10(np.exp(good)) + 80, "empty.npy": good[:, :0],
              "integers.npy": np.round(good).astype(np.int16)}
for name, arr in bad_arrays.items():
    np.save(mels / name, arr)
np.save(mels / "objects.npy", np.array([{"mel": 1}], dtype=object), allow_pickle=True)
(mels / "text.pt").write_text("not a tensor")
(mels / "renamed.npy").write_text("0.1 0.2 0.3\n")
(mels / "noise.pt").write_bytes(np.random.default_rng(0).bytes(1000))
(mels / "folder.npy").mkdir()
torch.save({"mel": Evil()}, mels / "pickled.pt")
(mels / "mel.txt").write_text("1 2 3")
expected = {"bands.npy": "64 bands, expected 80", "rank.npy": "expected [80, T] or [1, 80, T]",
            "nan.npy": "NaN or infinite values", "linear.npy": "looks like a linear mel",
            "decibel.npy": "not a natural-log mel", "empty.npy": "has no frames",
            "integers.npy": "holds int16 values (integers), not the floats of a natural-log mel",
            "objects.npy": "not a readable mel file", "text.pt": "not a PyTorch file (a text file)",
            "renamed.npy": "not a .npy file (a text file)",
            "noise.pt": "not a PyTorch file (neither a torch.save archive nor a pickle)",
            "folder.npy": "is a folder, not a mel file",
            "pickled.pt": "needs pickle, refused", "mel.txt": "unknown mel file type '.txt'",
            "missing.npy": "mel file not found"}
for name, reason in expected.items():
    test_fail(lambda: load_mel_file(mels / name), contains=f"{name}: ")
    test_fail(lambda: load_mel_file(mels / name), contains=reason)
test_fail(lambda: load_mel_file(mels / "ok.npy", num_mels=100), contains="80 bands, expected 100")
print(len(expected), "files refused, each with its reason")

# %%
shutil.rmtree(tmp)
