# %% [markdown]
# # Testing helpers
#
# > What the tests of every page share: the error measure that a float32 implementation can promise on any CPU, the deterministic weights of the reference test data, and the synthetic test corpus.

# %%
#| default_exp testing

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_close, test_eq, test_fail

# %%
#| export
from __future__ import annotations
import zlib
from pathlib import Path
import numpy as np
import torch


# %% [markdown]
# Like `numpy.testing` or `torch.testing`, this module serves the tests, not the vocoder: nothing else in the package
# imports it.
#
# ## Relative error
#
# A network compared with a reference implementation differs by float rounding, and how much depends on the CPU's
# kernels and the thread count (the order in which a convolution sums). What a float32 implementation can promise
# everywhere is a small error *on average*, relative to the signal: the RMS of the difference over the RMS of the
# reference. The tests bound it with margins they state.

# %%
#| export
def relative_rms_error(output, reference) -> float:
    "RMS of `output - reference` over the RMS of `reference` (arrays or tensors of the same shape)."
    output, reference = (np.asarray(x, dtype=np.float64) for x in (output, reference))
    if output.shape != reference.shape:
        raise ValueError(f"relative_rms_error: shapes {output.shape} and {reference.shape} differ")
    return float(np.sqrt(np.mean((output - reference) ** 2) / np.mean(reference ** 2)))


# %%
show_doc(relative_rms_error)

# %%
x = np.array([1.0, -1.0, 1.0, -1.0])
test_close(relative_rms_error(x * 1.01, x), 0.01, eps=1e-12)
test_eq(relative_rms_error(torch.ones(3), torch.ones(3)), 0.0)
test_fail(lambda: relative_rms_error(np.ones(3), np.ones(4)), contains="shapes (3,) and (4,) differ")


# %% [markdown]
# ## Reference weights
#
# The reference test data (`testdata/reference/`, see its README) lists every key and shape of the official
# generator and discriminator state dicts, and holds the reference implementation's outputs for fixed inputs with
# weights that anyone can rebuild from the key names alone: each tensor is filled from a random generator seeded with
# the CRC-32 of its key and scaled by `fill_scale`. Weight-norm gains are set so that the effective weight equals
# `weight_v`, and spectral-norm vectors are the converged singular vectors, so that the reference's forward pass
# and ours compute with the same effective weights.

# %%
#| export
def reference_weights(manifest: dict[str, list[int]], fill_scale: float = 0.05) -> dict[str, torch.Tensor]:
    "Deterministic weights for an official state-dict layout (`{key: shape}`), as in the reference test data."
    sd = {k: torch.randn(shape, generator=torch.Generator().manual_seed(zlib.crc32(k.encode()))) * fill_scale
          for k, shape in manifest.items()}
    for k in [k for k in sd if k.endswith(".weight_g")]:  # make the effective weight equal weight_v
        v = sd[k[:-1] + "v"]
        sd[k] = v.flatten(1).norm(dim=1).reshape(sd[k].shape)
    for k in [k for k in sd if k.endswith(".weight_orig")]:  # converged spectral-norm vectors
        U, S, Vh = torch.linalg.svd(sd[k].flatten(1), full_matrices=False)
        sd[k[:-4] + "u"] = U[:, 0].contiguous()
        sd[k[:-4] + "v"] = Vh[0].contiguous()
    return sd


# %%
show_doc(reference_weights)

# %%
w = reference_weights({"conv.weight_g": [4, 1, 1], "conv.weight_v": [4, 2, 3], "conv.bias": [4]})
test_eq(w["conv.weight_v"].shape, (4, 2, 3))
test_close(w["conv.weight_g"].flatten(), w["conv.weight_v"].flatten(1).norm(dim=1), eps=1e-6)
test_eq(reference_weights({"conv.bias": [4]})["conv.bias"], w["conv.bias"])  # a key's tensor is fixed by its name

# %% [markdown]
# ## A folder that cannot be written
#
# The checks of output locations need a folder this process cannot write. Taking the write permission away is
# enough for an ordinary user, but not for root (CI runs as root), which writes anywhere; there the folder is made
# immutable (`chattr +i`), which stops root too. Where neither works the context gives `None` and the tests that
# need such a folder say that they were skipped.

# %%
#| export
import os, subprocess
from contextlib import contextmanager


# %%
#| export
@contextmanager
def read_only_folder(path):
    "Inside: `path` (created), a folder this process cannot write in; `None` where that cannot be arranged."
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    immutable = False
    if os.access(path, os.W_OK):  # root: the mode does not stop it
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        immutable = done.returncode == 0
    try:
        yield None if os.access(path, os.W_OK) else path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o755)


# %%
show_doc(read_only_folder)

# %%
import tempfile

# %%
with tempfile.TemporaryDirectory() as d:
    with read_only_folder(Path(d) / "locked") as locked:
        if locked is None:
            print("no way to make a read-only folder here")
        else:
            test_fail(lambda: (locked / "x").write_text("x"), exc=(PermissionError, OSError))
    (Path(d) / "locked" / "x").write_text("writable again")


# %% [markdown]
# ## The synthetic test corpus
#
# Tests that train, prepare or evaluate many times need a corpus that is small and fast more than one that sounds
# real: `tiny_corpus` is 12 short Russian sentences synthesised with espeak-ng, in RUSLAN's layout
# (`metadata_RUSLAN_22200.csv`, `RUSLAN/*.wav`), half of them at 44.1 kHz like RUSLAN and half at 22,050 Hz, so that
# both the resampling path and the copy path are exercised; one text carries « » and another ordinary quotes. It is
# test data of the repository (`nbs/testdata/tiny_ruslan`), not part of the installed package, whose bundled corpus
# is a real voice ([Clips and metadata](06_clips.ipynb#the-bundled-real-voice)).

# %%
#| export
def tiny_corpus() -> Path:
    "The 12-clip synthetic RUSLAN-shaped test corpus of the repository (`nbs/testdata/tiny_ruslan`)."
    import hifigan_ruslan
    path = Path(hifigan_ruslan.__file__).resolve().parents[1] / "nbs" / "testdata" / "tiny_ruslan"
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: the test corpus is in the repository, not in the installed package")
    return path


# %%
show_doc(tiny_corpus)

# %%
import soundfile as sf

# %%
tiny = tiny_corpus()
tiny_wavs = sorted((tiny / "RUSLAN").glob("*.wav"))
test_eq(len(tiny_wavs), 12)
tiny_bytes = sum(p.stat().st_size for p in tiny.rglob("*") if p.is_file())
assert tiny_bytes < 1.5e6, tiny_bytes
test_eq(sorted({sf.info(p).samplerate for p in tiny_wavs}), [22050, 44100])

# %% [markdown]
# The corpus was made with the script below (espeak-ng's Russian voice, then sox to trim the silence at both ends,
# pad it to a natural 0.1 s / 0.15 s, normalise to -3 dBFS and set the rate). It is kept here as text, not as a cell,
# so that running this notebook never rewrites the test data; paste it into a Python prompt at the repository root
# to regenerate the folder.
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
# out = Path("nbs/testdata/tiny_ruslan")
# (out / "RUSLAN").mkdir(parents=True, exist_ok=True)
# with tempfile.TemporaryDirectory() as tmp:
#     for i, text in enumerate(TINY_SENTENCES):
#         uid, raw = f"{i:06d}_RUSLAN", Path(tmp) / "raw.wav"
#         subprocess.run(["espeak-ng", "-v", "ru", "-s", "150", "-p", "45", "-w", str(raw), text], check=True)
#         rate = "44100" if i % 2 == 0 else "22050"  # even clips at RUSLAN's own rate, odd ones already at 22,050 Hz
#         subprocess.run(["sox", str(raw), "-r", rate, "-b", "16", "-c", "1", str(out / "RUSLAN" / f"{uid}.wav"),
#                         "silence", "1", "0.02", "0.1%", "reverse", "silence", "1", "0.02", "0.1%", "reverse",
#                         "pad", "0.1", "0.15", "gain", "-n", "-3", "rate", "-v", rate], check=True)
# lines = "".join(f"{i:06d}_RUSLAN|{t}\n" for i, t in enumerate(TINY_SENTENCES))
# (out / METADATA_NAME).write_text(lines, encoding="utf-8")
# ```
