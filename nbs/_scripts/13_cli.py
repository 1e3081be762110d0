# %% [markdown]
# # Command line
#
# > `hifigan-ruslan`: one console script whose subcommands run every job of the project.

# %%
#| default_exp cli

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import argparse, importlib, sys
import hifigan_ruslan

# %% [markdown]
# Every subcommand lives in the module it belongs to, as a function `main_<name>(argv) -> int` that parses its own arguments. This module only dispatches, importing a module when its subcommand runs, so that `hifigan-ruslan --help` answers instantly and a missing optional dependency only affects the subcommand that needs it.
#
# Errors that a user can fix (a wrong path, a malformed file, a bad value) are raised by the modules as `ValueError`, `FileNotFoundError`, `NotADirectoryError` or `PermissionError` with a one-line message naming the file or value; the dispatcher prints that line and exits with status 2 instead of a traceback. Anything else is a bug and keeps its traceback.

# %%
#| export
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare":  ("data",       "check, resample and split a RUSLAN-shaped corpus"),
    "train":    ("training",   "train (or resume) a HiFi-GAN run"),
    "demo":     ("training",   "the whole pipeline on the bundled small corpus, in minutes on a CPU"),
    "generate": ("inference",  "vocode mel files (.npy / .pt) into WAVs"),
    "resynth":  ("inference",  "audio -> mel -> audio for WAV files"),
    "export":   ("inference",  "export a generator to ONNX or TorchScript"),
    "evaluate": ("evaluation", "score a checkpoint on the validation clips"),
    "kaggle":   ("kaggle",     "build / push / watch the Kaggle training kernel"),
    "docs":     ("docsite",    "build the documentation site locally (no Quarto needed)"),
}
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)


# %%
#| export
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hifigan-ruslan", description="HiFi-GAN vocoder for Russian speech (RUSLAN).",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="subcommands:\n" + "\n".join(f"  {k:<10}{h}" for k, (_, h) in COMMANDS.items())
                                       + "\n\nRun `hifigan-ruslan COMMAND --help` for the options of one command.")
    p.add_argument("--version", action="version", version=f"hifigan-ruslan {hifigan_ruslan.__version__}")
    p.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="one of: " + ", ".join(COMMANDS))
    return p

def main(argv: list[str] | None = None) -> int:
    "Entry point of the `hifigan-ruslan` console script (and of `python -m hifigan_ruslan`)."
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "--version"):
        _parser().parse_args(argv or ["--help"])
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS: _parser().parse_args([name])  # prints the choices and exits 2
    module = importlib.import_module(f"hifigan_ruslan.{COMMANDS[name][0]}")
    try: return int(getattr(module, f"main_{name}")(rest) or 0)
    except USER_ERRORS as e:
        print(f"hifigan-ruslan {name}: error: {e}", file=sys.stderr)
        return 2


# %%
show_doc(main)

# %%
import subprocess

# %%
out = subprocess.run([sys.executable, "-m", "hifigan_ruslan", "--help"], capture_output=True, text=True)
print(out.stdout)
assert out.returncode == 0 and all(c in out.stdout for c in COMMANDS)
v = subprocess.run([sys.executable, "-m", "hifigan_ruslan", "--version"], capture_output=True, text=True)
assert v.stdout.strip() == f"hifigan-ruslan {hifigan_ruslan.__version__}"
bad = subprocess.run([sys.executable, "-m", "hifigan_ruslan", "fly"], capture_output=True, text=True)
assert bad.returncode == 2 and "invalid choice" in bad.stderr
