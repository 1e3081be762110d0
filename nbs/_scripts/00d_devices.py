# %% [markdown]
# # Devices
#
# > The device a command computes on: what the user typed for `--device`, checked before any model is built.

# %%
#| default_exp devices

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
from hifigan_ruslan.errors import UserError


# %% [markdown]
# Every command that computes takes `--device`. `resolve_device` turns what the user typed into a
# `torch.device`, or a one-line error before any model is built: `auto` (or None) is this process's GPU if
# there is one, else the CPU; a bare `cuda` means this process's GPU (`local_rank` under `torchrun`).

# %%
#| export
def resolve_device(device="auto", local_rank: int = 0):
    "`device` as a `torch.device` (`auto`: this process's GPU if any, else the CPU); `UserError` if unusable."
    import torch  # here, not at the top: the command line's --help imports this module and must stay quick
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"device {device!r}: not a device name (auto, cpu, cuda, cuda:N)") from None
    if dev.type not in ("cpu", "cuda", "meta"):
        raise UserError(f"device {device!r}: only cpu and cuda devices are supported")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r}: no CUDA device available")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise UserError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return torch.device("cuda", local_rank) if dev.type == "cuda" and dev.index is None else dev


# %%
show_doc(resolve_device)

# %%
import torch

# %%
test_eq(resolve_device("cpu"), torch.device("cpu"))
test_eq(resolve_device("auto"), torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu"))
test_fail(lambda: resolve_device("gpu"), exc=UserError, contains="device 'gpu': not a device name")
if not torch.cuda.is_available():
    test_fail(lambda: resolve_device("cuda"), exc=UserError, contains="device 'cuda': no CUDA device available")
