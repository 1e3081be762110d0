# %% [markdown]
# # Export
#
# > The generator as a model file for other runtimes: ONNX (OpenVINO, ONNX Runtime, TensorRT) or TorchScript (libtorch, mobile), written atomically and checked against PyTorch.

# %%
#| default_exp export

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import io, warnings
from pathlib import Path
import numpy as np
import torch
from hifigan_ruslan.config import EXPORT_FORMATS
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.locations import atomic_write, check_output_file
from hifigan_ruslan.cpu_runtime import OpenVINOGenerator
from hifigan_ruslan.inference import Vocoder

# %%
import json, shutil, tempfile
from fastcore.test import test_eq, test_fail
from hifigan_ruslan.checkpoints import atomic_save
from hifigan_ruslan.config import config_to_dict, preset_config
from hifigan_ruslan.testing import reference_weights


# %% [markdown]
# `hifigan-ruslan export` writes what this page builds. The vocoder itself needs none of it: on the CPU it runs the
# generator through OpenVINO from a graph built straight from the weights ([CPU runtime](10_cpu_runtime.ipynb)).

# %% [markdown]
# ## ONNX
#
# For other runtimes the generator is exported to ONNX. Weight norm must be folded first
# (`Generator.remove_weight_norm`), so the weights are plain constants; the exporter's own constant folding then has
# nothing to fold but still copies every weight, which for V1's 55 MB took 1.5 s of a 2.2 s export, so it is
# switched off. Tracing on 8 frames is enough: batch and length are dynamic axes.

# %%
#| export
def onnx_model(generator: Generator, frames: int = 8) -> bytes:
    "`generator` as ONNX opset 17, dynamic batch and length: mel `[B, num_mels, T]` -> audio `[B, 1, hop T]`."
    buf = io.BytesIO()
    mel = torch.zeros(1, generator.num_mels, frames)
    dynamic_axes = {"mel": {0: "batch", 2: "frames"}, "audio": {0: "batch", 2: "samples"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(generator, (mel,), buf, input_names=["mel"], output_names=["audio"],
                          opset_version=17, dynamo=False, do_constant_folding=False,
                          dynamic_axes=dynamic_axes)
    return buf.getvalue()


# %%
show_doc(onnx_model)

# %% [markdown]
# The examples use a `tiny` generator with random weights and the reference V3 generator (weights rebuilt from the
# reference test data, as on the [Generator](02_generator.ipynb) page).

# %%
tmp = Path(tempfile.mkdtemp())
tiny_cfg = preset_config("tiny")
torch.manual_seed(0)
tiny_payload = {"generator": Generator(tiny_cfg.generator).state_dict(), "config": config_to_dict(tiny_cfg), "steps": 0}
voc = Vocoder.from_checkpoint(atomic_save(tiny_payload, tmp / "tiny" / "g_00000000"), device="cpu", backend="torch")
manifest = json.loads(Path("testdata/reference/state_dict_manifest.json").read_text())
official = {"v3": atomic_save({"generator": reference_weights(manifest["generator_v3"])}, tmp / "v3" / "g_02500000")}

# %% [markdown]
# The ONNX model runs in OpenVINO too (`OpenVINOGenerator.from_onnx`, which `check_export` uses), with PyTorch's output
# to float rounding:

# %%
mel = torch.from_numpy(np.load("testdata/reference/mel_espeak_ru.npz")["mel"])[None]
with torch.no_grad():
    expected = voc.generator(mel)[:, 0].numpy()
got = OpenVINOGenerator.from_onnx(onnx_model(voc.generator))(mel.numpy())
err = float(np.sqrt(np.mean((got - expected) ** 2) / np.mean(expected ** 2)))
print(f"relative RMS error {err:.1e}")
assert err < 1e-5, err  # measured 2e-7: margin 50


# %% [markdown]
# ## Writing a model file
#
# Exported models take a mel `[B, 80, T]` of any length and return audio `[B, 1, 256 T]`: ONNX for OpenVINO, ONNX
# Runtime and other engines, TorchScript for C++ (libtorch) or mobile. Weight norm is folded first. The file is
# written to a temporary name and renamed, so a failed export never leaves a half-written model behind. An ONNX file
# is checked by compiling the file itself with OpenVINO (fp32), a runtime independent of the exporter.

# %%
#| export
def _write_model(generator: Generator, path: str, fmt: str) -> None:
    "Write `generator` to `path` as `fmt`."
    if fmt == "onnx":
        Path(path).write_bytes(onnx_model(generator))
        return
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(generator, torch.zeros(1, generator.num_mels, 32), check_trace=False).save(path)

def export_generator(vocoder: Vocoder, path, fmt: str = "onnx") -> Path:
    "Write the vocoder's generator as a dynamic-length ONNX or TorchScript model, atomically; the path."
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"unknown export format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    path = check_output_file(path, f"{fmt} model file", f"generator.{'onnx' if fmt == 'onnx' else 'pt'}")
    generator = vocoder.generator.cpu()
    try:
        return atomic_write(path, lambda tmp: _write_model(generator, str(tmp), fmt))
    finally:
        generator.to(vocoder.device)


# %%
#| export
def check_export(vocoder: Vocoder, path, fmt: str, frames: int = 77) -> float:
    "Max |exported - PyTorch| on a random mel of a new length (ONNX run by OpenVINO, TorchScript by PyTorch)."
    mel = torch.randn(2, vocoder.num_mels, frames) - 5
    with torch.inference_mode():
        expected = vocoder.generator.cpu()(mel).numpy()
    vocoder.generator.to(vocoder.device)
    if fmt == "onnx":
        got = OpenVINOGenerator.from_onnx(Path(path))(mel.numpy())[:, None]
    else:
        with torch.inference_mode():
            got = torch.jit.load(str(path))(mel).numpy()
    return float(np.abs(got - expected).max())


# %%
show_doc(export_generator)

# %%
show_doc(check_export)

# %% [markdown]
# The `tiny` vocoder's weights keep its outputs at a realistic scale, so the exported models agree with PyTorch to
# float rounding in every sample:

# %%
for fmt in EXPORT_FORMATS:
    p = export_generator(voc, tmp / f"tiny.{fmt}", fmt)
    err = check_export(voc, p, fmt)
    print(f"{fmt}: {p.stat().st_size / 1e6:.2f} MB, max |exported - PyTorch| = {err:.1e}")
    assert err < 1e-4, err  # measured 6.0e-8 (ONNX), 0 (TorchScript)
test_eq(list(tmp.glob(".*.partial*")), [])  # no temporary file left behind
test_fail(lambda: export_generator(voc, tmp / "x.trt", "tensorrt"), contains="unknown export format 'tensorrt'")

# %% [markdown]
# The files get the permissions of any new file (0666 less the umask: 0644 with the usual 022), so that other users
# and containers can read them; a folder given as the output is refused before anything is written:

# %%
import os, stat

# %%
umask = os.umask(0o022)
os.umask(umask)
test_eq({stat.S_IMODE((tmp / f"tiny.{fmt}").stat().st_mode) for fmt in EXPORT_FORMATS}, {0o666 & ~umask})
test_fail(lambda: export_generator(voc, tmp, "onnx"), contains="is a folder; the onnx model file must be")

# %%
#| slow
v3 = Vocoder.from_checkpoint(official["v3"], device="cpu", backend="torch")
err = check_export(v3, export_generator(v3, tmp / "v3.onnx"), "onnx")
print(f"official V3 as ONNX: max |exported - PyTorch| = {err:.1e}")
assert err < 1e-4, err  # measured 2.3e-6 (outputs up to 1): margin ~40

# %%
shutil.rmtree(tmp)
