# %% [markdown]
# # Kaggle client
#
# > Push the Kaggle training kernel, watch it and download its output with the `kaggle` client; upload the pretrained generator a first version fine-tunes from.

# %%
#| default_exp kaggle_client

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import importlib.util, io, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
from hifigan_ruslan.config import UserError
from hifigan_ruslan.kaggle_kernel import (KERNEL_NOTEBOOK, METADATA_FILE, build_kernel, check_kernel_id,
                                          embedded_modules, resolve_kernel_id)
from hifigan_ruslan.kaggle_session import check_manifest
from hifigan_ruslan.pretrained import PRETRAINED, pretrained_path

# %% [markdown]
# The kernel itself is built by [Kaggle kernel](12a_kaggle_kernel.ipynb); this module sends it to Kaggle and brings its output back. The workflow, in five steps (the notebook's introduction repeats them):
#
# 1. **Add the dataset**: the kernel reads RUSLAN from the Kaggle dataset `freezerainml/ruslan`, which the metadata attaches.
# 2. **Set the owner**: your Kaggle username goes in `settings.ini` (`kaggle_owner`) in a checkout, or in `kernel-metadata.json` of the kernel folder, or in `HIFIGAN_KAGGLE_OWNER` for one command; credentials come from `~/.kaggle/kaggle.json` or `KAGGLE_USERNAME` / `KAGGLE_KEY`.
# 3. **Push**: `hifigan-ruslan kaggle push` rebuilds the kernel and runs `kaggle kernels push`; with `--init-from universal`, the first version fine-tunes the official universal generator, which the push uploads to a private dataset of yours.
# 4. **Watch**: `hifigan-ruslan kaggle status`.
# 5. **Download or continue**: `hifigan-ruslan kaggle output` downloads checkpoints, samples, plots and `RESULTS.md` and checks them against the version's manifest; pushing again starts a version that resumes.
#
# Every function here is run against a stand-in for Kaggle on [Kaggle runs](12c_kaggle_runs.ipynb).

# %%
import tempfile
from hifigan_ruslan.kaggle_kernel import OWNER_ENV

# %% [markdown]
# ## Talking to Kaggle
#
# `push_kernel`, `kernel_status` and `download_output` run the real `kaggle` CLI (as `python -m kaggle`, so that it is the one installed with this Python), which finds the credentials itself in `~/.kaggle/kaggle.json`, `KAGGLE_USERNAME` / `KAGGLE_KEY` or its newer token files; this module never reads, prints or writes them. It only checks, before the first request, that one of them is there (`check_credentials`), so that a missing key is one clear line instead of the CLI's page of help.
#
# The CLI's output (and its error stream) is passed through as it comes. The CLI reports some refusals only in its output while exiting with status 0 (`Kernel push error: ...`, `Dataset creation error: ...`), so `kaggle_call` looks for those lines as well as for the exit status, and turns a failure into a one-line `UserError` that names the step and repeats Kaggle's reason.

# %%
#| export
CLI_ERRORS = ("Kernel push error", "Dataset creation error", "Dataset version creation error")
CREDENTIAL_FILES = ("kaggle.json", "access_token", "access_token.txt", "credentials.json")

def check_credentials(environ=None):
    "A `UserError` unless Kaggle credentials are set up; only their presence is checked, never their value."
    environ = os.environ if environ is None else environ
    if environ.get("KAGGLE_API_TOKEN") or (environ.get("KAGGLE_USERNAME") and environ.get("KAGGLE_KEY")):
        return
    home = Path(environ.get("HOME") or Path.home())
    folders = [home / ".kaggle", Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"]
    folders += [Path(environ["KAGGLE_CONFIG_DIR"])] if environ.get("KAGGLE_CONFIG_DIR") else []
    if not any((folder / name).is_file() for folder in folders for name in CREDENTIAL_FILES):
        raise UserError("no Kaggle credentials: put kaggle.json (kaggle.com/settings, API) in ~/.kaggle "
                        "or set KAGGLE_USERNAME and KAGGLE_KEY")

def run_kaggle_cli(args: list[str], environ=None, echo: bool = True) -> tuple[int, list[str]]:
    "Run `python -m kaggle ARGS` (output passed through with `echo`); its exit status and non-empty lines."
    if importlib.util.find_spec("kaggle") is None:
        raise UserError("the kaggle CLI is not installed: pip install kaggle")
    lines, text = [], ""
    env = {**(os.environ if environ is None else environ), "PYTHONUNBUFFERED": "1"}  # progress as it happens
    with subprocess.Popen([sys.executable, "-m", "kaggle", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=env) as proc:
        # newline="": a progress bar's carriage returns repaint its line instead of adding lines
        for text in io.TextIOWrapper(proc.stdout, encoding="utf-8", errors="replace", newline=""):
            if echo:
                print(text, end="", flush=True)
            lines += [text.strip()] if text.strip() else []
    if echo and text and not text.endswith(("\n", "\r")):
        print()
    return proc.returncode, lines

def refusal(rc: int, lines: list[str]) -> str | None:
    "Why a kaggle CLI run failed (its error line, else its last line), or None if it succeeded."
    errors = [line for line in lines if line.startswith(CLI_ERRORS)]
    if not (rc or errors):
        return None
    return (errors or lines or [f"exit status {rc}"])[-1]

def kaggle_call(args: list[str], step: str, environ=None, echo: bool = True) -> list[str]:
    "Run the kaggle CLI; its output lines, or a `UserError` naming `step` with Kaggle's reason if it failed."
    rc, lines = run_kaggle_cli(args, environ, echo)
    if reason := refusal(rc, lines):
        raise UserError(f"{step}: {reason}")
    return lines


# %%
show_doc(check_credentials)

# %%
with tempfile.TemporaryDirectory() as home:
    bare = {"HOME": home, "XDG_CONFIG_HOME": home}
    test_fail(lambda: check_credentials(bare), exc=UserError, contains="no Kaggle credentials: put kaggle")
    test_eq(check_credentials({**bare, "KAGGLE_USERNAME": "alice", "KAGGLE_KEY": "k"}), None)
    (Path(home) / ".kaggle").mkdir()
    (Path(home) / ".kaggle/kaggle.json").write_text("{}")  # only its presence counts
    test_eq(check_credentials(bare), None)

# %% [markdown]
# ## Transfer: the pretrained generator as a dataset
#
# The kernel has no internet, so the pretrained generator it fine-tunes from must be among its inputs. `upload_pretrained` puts the official file (found and verified by `pretrained_path` of [Pretrained](05_pretrained.ipynb)) into a **private** dataset of the kernel's owner, `OWNER/hifigan-ruslan-universal`, with the real `kaggle datasets create`; when the dataset exists already (Kaggle says the slug is in use, before anything is uploaded), it becomes a new version of it (`kaggle datasets version`). The weights are linked into a temporary folder next to the `dataset-metadata.json`, never copied into the project. Kaggle processes an upload before a kernel can mount it, so the function waits until `kaggle datasets status` says `ready`. The weights are the original authors' (MIT license), so the dataset's license is `other`, spelled out in its description.

# %%
#| export
DATASET_EXISTS = "is already in use by a dataset"  # the CLI's answer to a create of an existing slug

def pretrained_dataset_metadata(owner: str, name: str) -> dict:
    "The `dataset-metadata.json` of the private dataset that holds the pretrained generator `name`."
    return {"title": f"HiFi-GAN {name} generator", "id": f"{owner}/hifigan-ruslan-{name.lower()}",
            "licenses": [{"name": "other"}],
            "description": f"The official HiFi-GAN `{name}` generator (MIT license, "
                           "github.com/jik876/hifi-gan), for fine-tuning on RUSLAN with hifigan-ruslan."}

def wait_for_dataset(dataset: str, environ=None, timeout_s: float = 900, poll_s: float = 15):
    "Wait until `kaggle datasets status` says `ready`; a `UserError` when it failed or took too long."
    started = time.monotonic()
    while True:
        lines = kaggle_call(["datasets", "status", dataset], f"kaggle datasets status {dataset}", environ)
        status = lines[-1] if lines else "unknown"
        if status == "ready":
            return
        waited = time.monotonic() - started
        if status in ("failed", "deleted") or waited > timeout_s:
            raise UserError(f"dataset {dataset} is {status!r} on Kaggle after {waited:.0f} s; nothing was "
                            "pushed: push again once `kaggle datasets status` says ready")
        time.sleep(poll_s)

def upload_pretrained(owner: str, name: str, environ=None, timeout_s: float = 900) -> str:
    "Create (or version) the private dataset of the pretrained generator `name` and wait for it; its id."
    weights = pretrained_path(name)
    meta = pretrained_dataset_metadata(owner, name)
    dataset = meta["id"]
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / weights.name).symlink_to(weights)
        (Path(folder) / "dataset-metadata.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        print(f"uploading {weights.name} to the private dataset {dataset}", flush=True)
        rc, lines = run_kaggle_cli(["datasets", "create", "-p", folder], environ)
        if rc == 0 and any(DATASET_EXISTS in line for line in lines):
            notes = f"{weights.name} for hifigan-ruslan"
            step = f"kaggle datasets version {dataset}"
            kaggle_call(["datasets", "version", "-p", folder, "-m", notes], step, environ)
        elif reason := refusal(rc, lines):
            raise UserError(f"kaggle datasets create {dataset}: {reason}; nothing was pushed")
    wait_for_dataset(dataset, environ, timeout_s)
    return dataset


# %%
meta = pretrained_dataset_metadata("alice", "universal")
print(json.dumps(meta))
test_eq(meta["id"], "alice/hifigan-ruslan-universal")
test_eq(meta["licenses"], [{"name": "other"}])

# %% [markdown]
# ## Pushing
#
# `push_kernel` checks everything it can before the first request: the owner is not the placeholder, credentials exist, the pretrained model is known and intact. Then it uploads the dataset (with `init_from`), builds the kernel with that dataset attached, prints which kernel it pushes (`push_message`) and runs `kaggle kernels push`.
#
# **The first push.** The metadata lists the kernel itself in `kernel_sources`, and on a first push that kernel does not exist. Kaggle may accept the version and only warn that the source is not valid (the CLI prints it); the version then simply runs without a previous output. Or it may refuse the push (an answer of the server; a failure of the CLI itself, such as its own checks or the network, is reported as it is). Then `push_kernel` asks Kaggle whether the kernel exists (`kaggle kernels status`, quietly): if it does not, the refusal is the self-reference, and the push goes once more from a temporary copy of the kernel folder whose metadata lacks it; the next push, from the kernel root, attaches it again. If the kernel exists, the refusal is something else and becomes the error. A failure after the dataset upload says that the dataset stays on Kaggle (a later push with `init_from` adds a version to it).

# %%
#| export
INVALID_KERNEL_SOURCES = "not valid kernel sources"

def push_message(kernel: str, modules: int) -> str:
    "The line `push_kernel` prints before it uploads."
    return f"pushing {kernel} ({KERNEL_NOTEBOOK}, {modules} embedded modules)"

def output_message(kernel: str, out) -> str:
    "The line `download_output` prints when the download is complete."
    return f"output of {kernel} in {out}"

def _push_folder(root: Path, kernel: str, environ) -> None:
    "`kaggle kernels push` of `root`; if Kaggle refuses a kernel that does not exist, again without itself."
    rc, lines = run_kaggle_cli(["kernels", "push", "-p", str(root)], environ)
    reason = refusal(rc, lines)
    if reason is None:
        if any(INVALID_KERNEL_SOURCES in line and kernel in line for line in lines):
            print(f"first version of {kernel}: it runs without a previous output; the next push attaches it")
        return
    refused_by_kaggle = rc == 0  # the server's answer; an exit status is the CLI's own check or the network
    if not refused_by_kaggle or run_kaggle_cli(["kernels", "status", kernel], environ, echo=False)[0] == 0:
        raise UserError(f"kaggle kernels push {kernel}: {reason}")
    print(f"{kernel} does not exist yet: pushing a first version without itself as input", flush=True)
    with tempfile.TemporaryDirectory() as first:
        meta = json.loads((root / METADATA_FILE).read_text(encoding="utf-8"))
        (Path(first) / METADATA_FILE).write_text(json.dumps({**meta, "kernel_sources": []}), encoding="utf-8")
        (Path(first) / KERNEL_NOTEBOOK).parent.mkdir(parents=True)
        shutil.copyfile(root / KERNEL_NOTEBOOK, Path(first) / KERNEL_NOTEBOOK)
        kaggle_call(["kernels", "push", "-p", first],
                    f"kaggle kernels push {kernel} (first version)", environ)
    print(f"the next push of {kernel} attaches this version's output (kernel_sources)")

def push_kernel(root, environ=None, init_from: str | None = None, dataset_timeout_s: float = 900) -> int:
    "Build the kernel in `root` and push it as a new version, with `init_from`'s dataset attached; returns 0."
    root = Path(root)
    kernel = resolve_kernel_id(None, root, environ)
    if init_from is not None and init_from.lower() not in PRETRAINED:  # before anything reaches Kaggle
        raise UserError(f"{init_from!r} is not a pretrained model: choose one of {', '.join(PRETRAINED)}")
    check_credentials(environ)
    owner = kernel.split("/")[0]
    datasets = [upload_pretrained(owner, init_from, environ, dataset_timeout_s)] if init_from else []
    build_kernel(root, environ=environ, datasets=datasets)
    print(push_message(kernel, len(embedded_modules())), flush=True)
    try:
        _push_folder(root, kernel, environ)
    except UserError as e:
        if not datasets:
            raise
        kept = f"the dataset {datasets[0]} stays on Kaggle (a later --init-from push versions it)"
        raise UserError(f"{e}; {kept}") from None
    return 0

def kernel_status(kernel: str, environ=None) -> int:
    "`kaggle kernels status OWNER/SLUG` (printed); 0, or a `UserError` with Kaggle's reason."
    kernel = check_kernel_id(kernel)
    check_credentials(environ)
    kaggle_call(["kernels", "status", kernel], f"kaggle kernels status {kernel}", environ)
    return 0

def download_output(kernel: str, out, force: bool = False, environ=None) -> int:
    "Download the latest output of `kernel` into `out`, check it against its manifest; 0 if intact, else 1."
    kernel = check_kernel_id(kernel)
    check_credentials(environ)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    args = ["kernels", "output", kernel, "-p", str(out)] + (["-o"] if force else [])
    kaggle_call(args, f"kaggle kernels output {kernel}", environ)
    found = check_manifest(out)
    for problem in (*found.missing, *found.differ):
        print(problem)
    print(found.summary)
    if found.ok:
        print(output_message(kernel, out))
    return 0 if found.ok else 1


# %%
show_doc(push_kernel)

# %%
show_doc(download_output)

# %% [markdown]
# Mistakes are caught before any request: the placeholder owner, missing credentials, an unknown pretrained model, a kernel that is not `OWNER/SLUG`. Nothing is built either.

# %%
with tempfile.TemporaryDirectory() as d:
    test_fail(lambda: push_kernel(d, environ={}), exc=UserError, contains="still the placeholder")
    no_key = {OWNER_ENV: "alice", "HOME": d, "XDG_CONFIG_HOME": d}
    test_fail(lambda: push_kernel(d, environ=no_key), exc=UserError, contains="no Kaggle credentials")
    keyed = {**no_key, "KAGGLE_USERNAME": "alice", "KAGGLE_KEY": "k"}
    test_fail(lambda: push_kernel(d, environ=keyed, init_from="vctk"), exc=UserError,
              contains="'vctk' is not a pretrained model")
    test_eq(list(Path(d).iterdir()), [])  # nothing built
test_fail(lambda: kernel_status("hifigan-ruslan-train"), exc=UserError, contains="expected OWNER/SLUG")
test_fail(lambda: download_output("a/b/c", "unused"), exc=UserError, contains="'a/b/c': expected OWNER/SLUG")
