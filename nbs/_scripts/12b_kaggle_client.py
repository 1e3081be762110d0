# %% [markdown]
# # Kaggle client
#
# > Push the Kaggle training kernel, watch it and download its output with the `kaggle` client; check the client, the previous version and the uploaded weights before a session is spent.

# %%
#| default_exp kaggle_client

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import csv, importlib.machinery, importlib.metadata, io, json, os, re, subprocess, sys, tempfile, time
from pathlib import Path
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.kaggle_kernel import (KERNEL_NOTEBOOK, OWNER_ENV, build_kernel, check_kernel_id,
                                          kernel_files, kernel_settings, resolve_kernel_id, write_kernel_files)
from hifigan_ruslan.kaggle_session import (SESSION_FILE, SMOKE, SessionSettings, check_manifest,
                                           session_timeout_s, weights_file)
from hifigan_ruslan.pretrained import PRETRAINED, pretrained_path

# %% [markdown]
# The kernel itself is built by [Kaggle kernel](12a_kaggle_kernel.ipynb), and what it does in a session is the [Kaggle session](12_kaggle_session.ipynb); this module sends it to Kaggle and brings its output back. Every function here runs against a stand-in for Kaggle on [Kaggle runs](12c_kaggle_runs.ipynb).
#
# ## Training on Kaggle, step by step
#
# 1. **Set up.** Your Kaggle username goes in `settings.ini` (`kaggle_owner`) in a checkout, or in `kernel-metadata.json` of the kernel folder, or in `HIFIGAN_KAGGLE_OWNER` for one command; credentials come from `~/.kaggle/kaggle.json` or `KAGGLE_USERNAME` / `KAGGLE_KEY`. The client is `pip install "kaggle>=2.2.2"` (or `pip install -e ".[kaggle]"`), which needs Python 3.11 or newer. GPUs need a phone-verified Kaggle account.
# 2. **A smoke run first**: `hifigan-ruslan kaggle push --smoke` starts a short version, about 15 minutes of GPU time and limited to 75 minutes, that prepares a slice of RUSLAN, measures the two T4s with the package's GPU check (steps per second, peak memory, first losses and skipped steps in fp32, fp16 with the scaler and bf16 where supported), trains a few hundred steps on both GPUs, validates, checkpoints and resumes once. `hifigan-ruslan kaggle output` downloads its `RESULTS.md` with the GPU figures. A mistake costs minutes here, not a session.
# 3. **Train**: `hifigan-ruslan kaggle push` starts a full session (11 hours on two T4s, a checkpoint at least every 30 minutes, the session limited to 11 h 15 min so that a hang cannot run on to Kaggle's 12 hours); with `--init-from universal`, the first version fine-tunes the official universal generator, which the push uploads to a private dataset of yours. RUSLAN comes from the Kaggle dataset `freezerainml/ruslan`, which the metadata attaches; Kaggle mounts datasets at `/kaggle/input/datasets/OWNER/SLUG/` and a kernel's output at `/kaggle/input/notebooks/OWNER/SLUG/` (the kernel searches for its previous output, so a change of layout does not break it; the corpus it takes only from the dataset's own mount). A dataset Kaggle refuses to attach stops the push with its name, and the version it started stops in its first minute.
# 4. **Watch**: `hifigan-ruslan kaggle status` gives Kaggle's status and, once the version is complete, how its session ended.
# 5. **Download or continue**: `hifigan-ruslan kaggle output` downloads checkpoints, samples, plots and `RESULTS.md` and checks them against the version's manifest; pushing again starts a version that resumes from the previous one's checkpoints. A session that stopped says why in its `RESULTS.md` (the version still completes, so that Kaggle keeps it), and the next push refuses to start until you have seen it (`--after-error`) or start over (`--fresh`).

# %%
import tempfile

# %% [markdown]
# ## The client
#
# The functions below run the real `kaggle` client as `python -P -m kaggle`: the one installed with this Python, and never a folder of the current directory (`-P`), such as this repository's own `kaggle/`, which holds the kernel notebook. `python -m kaggle` exists from kaggle 2.2.0; kaggle 2.x needs Python 3.11 (on 3.10, `pip install kaggle` still gets 1.7.4.5, a client without `python -m kaggle` and one that drops the kernel's `machine_shape`, so that a push would get no GPU). So before any request, `check_client` checks the Python version, that the client is installed (by its distribution's metadata and an importable package, which a folder named `kaggle` without `__init__.py` is not), and its version, each with one line that says what to install. The project needs 2.2.2: 2.2.0 and 2.2.1 download only the first 500 files of an output, where 2.2.2 pages through all of them.

# %%
#| export
CLIENT_MIN = (2, 2, 2)  # `python -m kaggle` from 2.2.0; all of an output's files from 2.2.2 (before: 500)
CLIENT_PYTHON = (3, 11)  # kaggle 2.x needs Python 3.11 or newer
CLIENT_INSTALL = 'pip install -U "kaggle>=2.2.2"'

def client_version(path=None) -> str | None:
    "The version of the installed `kaggle` client on `path` (default: `sys.path`), or None if it is absent."
    spec = importlib.machinery.PathFinder.find_spec("kaggle", path)
    if spec is None or spec.origin is None:  # not there, or only a folder of that name (a namespace package)
        return None
    dists = list(importlib.metadata.distributions(name="kaggle", path=path or sys.path))
    return dists[0].version if dists else None

def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])

def check_client(version: str | None = "installed", python: tuple = sys.version_info[:3]) -> str:
    "The installed client's version; a `UserError` saying what to install if it is absent or too old."
    if tuple(python[:2]) < CLIENT_PYTHON:
        raise UserError(f"the kaggle client needs Python 3.11 or newer and this is Python "
                        f"{'.'.join(map(str, python))}: run hifigan-ruslan kaggle from a Python 3.11+ "
                        f"environment, there {CLIENT_INSTALL}")
    version = client_version() if version == "installed" else version
    if version is None:
        raise UserError(f"the kaggle client is not installed: {CLIENT_INSTALL}")
    if _release(version) < CLIENT_MIN:
        raise UserError(f"kaggle {version} is too old (before 2.2.2 it downloads only 500 files of an "
                        "output; before 2.2.0 it has no `python -m kaggle` and drops the GPU request): "
                        f"{CLIENT_INSTALL}")
    return version


# %%
show_doc(check_client)

# %% [markdown]
# The client installed here passes; the other cases each give their line. A folder named `kaggle` next to the code, like the repository's own, is not taken for the client:

# %%
print(f"kaggle {check_client()}")
for version, python, message in [
        ("2.2.5", (3, 10, 13), "the kaggle client needs Python 3.11 or newer and this is Python 3.10.13"),
        (None, (3, 12, 1), 'the kaggle client is not installed: pip install -U "kaggle>=2.2.2"'),
        ("1.7.4.5", (3, 12, 1), 'kaggle 1.7.4.5 is too old (before 2.2.2 it downloads only 500 files'),
        ("2.2.1", (3, 11, 7), 'kaggle 2.2.1 is too old')]:
    test_fail(lambda: check_client(version, python), exc=UserError, contains=message)
    print(message.split(":")[0])
with tempfile.TemporaryDirectory() as d:
    (Path(d) / "kaggle").mkdir()
    (Path(d) / "kaggle/train.ipynb").write_text("{}")  # the repository's kernel folder
    test_eq(client_version([d]), None)
assert client_version() is not None

# %% [markdown]
# The client finds the credentials itself in `~/.kaggle/kaggle.json`, `KAGGLE_USERNAME` / `KAGGLE_KEY` or its newer token files; this module never reads, prints or writes a key. It only checks, before the first request, that one of them is there (`check_credentials`), so that a missing key is one clear line instead of the client's page of help, and reads the username they belong to where it is written (`credential_user`), so that a push to another user's kernel is one line too.

# %%
#| export
CREDENTIAL_FILES = ("kaggle.json", "access_token", "access_token.txt", "credentials.json")

def check_credentials(environ=None):
    "A `UserError` unless Kaggle credentials are set up; only their presence is checked, never their value."
    environ = os.environ if environ is None else environ
    if environ.get("KAGGLE_API_TOKEN") or (environ.get("KAGGLE_USERNAME") and environ.get("KAGGLE_KEY")):
        return
    files = [folder / name for folder in _credential_folders(environ) for name in CREDENTIAL_FILES]
    if not any(file.is_file() for file in files):
        raise UserError("no Kaggle credentials: put kaggle.json (kaggle.com/settings, API) in ~/.kaggle "
                        "or set KAGGLE_USERNAME and KAGGLE_KEY")

def _credential_folders(environ) -> list[Path]:
    "Where the client looks for its credential files, in its order."
    home = Path(environ.get("HOME") or Path.home())
    folders = [Path(environ["KAGGLE_CONFIG_DIR"])] if environ.get("KAGGLE_CONFIG_DIR") else []
    return folders + [home / ".kaggle", Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"]

def credential_user(environ=None) -> str | None:
    "The username the credentials belong to (`KAGGLE_USERNAME`, else kaggle.json's), or None if unwritten."
    environ = os.environ if environ is None else environ
    if environ.get("KAGGLE_USERNAME"):
        return environ["KAGGLE_USERNAME"]
    for file in (folder / "kaggle.json" for folder in _credential_folders(environ)):
        try:
            user = json.loads(file.read_text(encoding="utf-8")).get("username")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(user, str) and user:
            return user
    return None


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
    test_eq((credential_user(bare), credential_user({**bare, "KAGGLE_USERNAME": "bob"})), (None, "bob"))
    (Path(home) / ".kaggle/kaggle.json").write_text('{"username": "alice", "key": "k"}')
    test_eq(credential_user(bare), "alice")

# %% [markdown]
# The client's output (and its error stream) is passed through as it comes. It reports some refusals only in its output while exiting with status 0 (`Kernel push error: ...`, `Dataset creation error: ...`), and answers credentials Kaggle refuses (401) with a page of advice on how to log in, so `kaggle_call` looks for those lines as well as for the exit status, and turns a failure into a one-line `UserError` that names the step and repeats Kaggle's reason (an HTTP error line, when the client printed one, rather than its advice below it).

# %%
#| export
CLI_ERRORS = ("Kernel push error", "Dataset creation error", "Dataset version creation error")
_HTTP_ERROR = re.compile(r"\b\d{3} (Client|Server) Error\b")
REFUSED_CREDENTIALS = "Authentication required to call the Kaggle API"  # the client's first line on a 401

def run_kaggle_cli(args: list[str], environ=None, echo: bool = True) -> tuple[int, list[str]]:
    "Run `python -P -m kaggle ARGS` (output passed through with `echo`); its exit status and non-empty lines."
    check_client()
    lines, text = [], ""
    env = {**(os.environ if environ is None else environ), "PYTHONUNBUFFERED": "1"}  # progress as it happens
    with subprocess.Popen([sys.executable, "-P", "-m", "kaggle", *args], stdout=subprocess.PIPE,
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
    "Why a kaggle client run failed (its error line, else an HTTP error, else its last line), or None."
    errors = [line for line in lines if line.startswith(CLI_ERRORS)]
    if not (rc or errors):
        return None
    if any(line.startswith(REFUSED_CREDENTIALS) for line in lines):  # then a page of advice, not the reason
        return ("Kaggle refused the credentials (401): check the key in ~/.kaggle/kaggle.json or "
                "KAGGLE_USERNAME / KAGGLE_KEY (a new one at kaggle.com/settings, API)")
    http = [line for line in lines if _HTTP_ERROR.search(line)]
    return (errors or http or lines or [f"exit status {rc}"])[-1]

def kaggle_call(args: list[str], step: str, environ=None, echo: bool = True) -> list[str]:
    "Run the kaggle client; its output lines, or a `UserError` naming `step` and Kaggle's reason."
    rc, lines = run_kaggle_cli(args, environ, echo)
    if reason := refusal(rc, lines):
        raise UserError(f"{step}: {reason}")
    return lines


# %%
test_eq(refusal(0, ["Kernel version 3 successfully pushed."]), None)
test_eq(refusal(0, ["Kernel push error: Invalid machine shape"]), "Kernel push error: Invalid machine shape")
test_eq(refusal(1, ["404 Client Error: Not Found for url: http://x", "Check the spelling."]),
        "404 Client Error: Not Found for url: http://x")
test_eq(refusal(2, []), "exit status 2")
test_eq(refusal(1, [f"{REFUSED_CREDENTIALS}.", "First, you will need a Kaggle account.", "Option B: API token"]),
        "Kaggle refused the credentials (401): check the key in ~/.kaggle/kaggle.json or KAGGLE_USERNAME / "
        "KAGGLE_KEY (a new one at kaggle.com/settings, API)")

# %% [markdown]
# ## The previous version
#
# A push starts a new version, and the new version resumes from the previous one's output, so before anything is uploaded `previous_version` asks Kaggle how the latest version is doing (`kaggle kernels status`). The client prints `OWNER/SLUG has status "KernelWorkerStatus.COMPLETE"` (older clients `"complete"`) and, after a failure, `Failure message: "..."`.
#
# A kernel that was never pushed has no status, and Kaggle does not say so plainly: today it answers 403, which kaggle 2.x turns into "Cannot access kernel ... (Permission 'kernels.get' was denied)", the same words as for a kernel of someone else's; older servers answered 404. So a refused status is never read by its wording: `previous_version` then asks for the account's own kernels (`kaggle kernels list --mine`), and a kernel that is not among them does not exist yet. A refusal of that list too (wrong credentials) is the one line; so is a status refused for a kernel the account does own.

# %%
#| export
_STATUS = re.compile(r'has status "(?:KernelWorkerStatus\.)?(\w+)"')
_FAILURE = re.compile(r'Failure message: "(.*)"')
_NEXT_PAGE = "Next Page Token = "

def own_kernels(environ=None, pages: int = 50) -> set[str]:
    "`OWNER/SLUG` (lower-case) of every kernel of the credentials' account: `kaggle kernels list --mine`."
    refs, token = set(), None
    for _ in range(pages):
        args = ["kernels", "list", "--mine", "--csv", "--page-size", "100"]
        lines = kaggle_call(args + (["--page-token", token] if token else []), "kaggle kernels list --mine",
                            environ, echo=False)
        token = next((line[len(_NEXT_PAGE):].strip() for line in lines if line.startswith(_NEXT_PAGE)), None)
        rows = csv.DictReader(line for line in lines if not line.startswith(_NEXT_PAGE))
        refs |= {row["ref"].lower() for row in rows if row.get("ref")}
        if not token:
            break
    return refs

def previous_version(kernel: str, environ=None) -> tuple[str, str] | None:
    "`(status, failure message)` of the kernel's latest version (status lower-case), or None if it has none."
    rc, lines = run_kaggle_cli(["kernels", "status", kernel], environ, echo=False)
    found = next((m for line in lines if (m := _STATUS.search(line))), None)
    if rc == 0 and found is not None:
        failure = next((m.group(1) for line in lines if (m := _FAILURE.search(line))), "")
        return found.group(1).lower(), failure
    try:
        exists = kernel.lower() in own_kernels(environ)
    except UserError as e:
        raise UserError(f"{e}; nothing was pushed") from None
    if not exists:
        return None  # never pushed: Kaggle answers 403 (older servers 404) for a kernel that does not exist
    raise UserError(f"kaggle kernels status {kernel}: {refusal(rc, lines) or ' '.join(lines)}; "
                    "nothing was pushed")


# %% [markdown]
# A version that Kaggle completed may still have stopped early: the session catches its own stops, writes why into `SESSION.json` and `RESULTS.md`, and ends normally so that Kaggle keeps its output (see [Kaggle session](12_kaggle_session.ipynb#the-session-start-to-end)). So for a complete version, `previous_outcome` downloads those two files alone (`kaggle kernels output --file-pattern`), into `runs/kaggle-previous/` under the kernel root, where the user can read them, and returns the outcome recorded there.

# %%
#| export
PREVIOUS_FOLDER = "runs/kaggle-previous"  # under the kernel root: the last version's report, as pushes read it
REPORT_PATTERN = r"^(SESSION\.json|RESULTS\.md)$"

def previous_outcome(kernel: str, folder, environ=None) -> str:
    "The outcome the kernel's latest version recorded (downloading its report into `folder`); '' if none."
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (SESSION_FILE, "RESULTS.md"):
        (folder / name).unlink(missing_ok=True)  # a report of an older version must not stand in
    args = ["kernels", "output", kernel, "-p", str(folder), "--file-pattern", REPORT_PATTERN, "-o", "-q"]
    kaggle_call(args, f"kaggle kernels output {kernel}", environ, echo=False)
    try:
        record = json.loads((folder / SESSION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(record.get("outcome") or "") if isinstance(record, dict) else ""


# %% [markdown]
# `check_previous` then decides:
#
# - no kernel yet (or one never run): a first version, which cannot resume;
# - queued or running: refused, because two versions at once would both write a run, and the new one could not see the old one's output;
# - failed or cancelled on Kaggle, or complete with a session that stopped (or left no report): refused with the reason, because resuming from a session that stopped needs a look first: its `RESULTS.md` says why (it is in `runs/kaggle-previous/` when Kaggle kept it); then `--after-error` resumes from what it left, or `--fresh` starts a new run;
# - complete, with a complete session: the new version is pinned to it, and stops at its start if that output is not mounted.

# %%
#| export
def check_previous(kernel: str, previous: tuple[str, str] | None, fresh: bool = False,
                   after_error: bool = False, outcome: str = "complete") -> bool:
    "Whether the new version must resume from the previous one; a `UserError` if it must not be pushed now."
    if previous is None or previous[0] == "new_script":
        return False
    status, failure = previous
    if status in ("queued", "running", "cancel_requested"):
        raise UserError(f"kaggle kernels push {kernel}: its latest version is still {status} on Kaggle; "
                        "wait until `hifigan-ruslan kaggle status` says complete (or stop it on its page); "
                        "nothing was pushed")
    if status != "complete":
        ended = f"ended with {status.upper()}" + (f": {failure}" if failure else "")
    elif not outcome.startswith("complete"):
        ended = f"{outcome}" if outcome else "left no report (SESSION.json)"
    else:
        return not fresh
    if fresh or after_error:
        return not fresh
    raise UserError(f"kaggle kernels push {kernel}: its latest version {ended}; see its RESULTS.md "
                    f"({PREVIOUS_FOLDER}/ or hifigan-ruslan kaggle output), then push with --after-error to "
                    "resume from what it left, or --fresh to start a new run; nothing was pushed")


# %%
show_doc(check_previous)

# %%
kernel = "alice/hifigan-ruslan-train"
test_eq([check_previous(kernel, p) for p in (None, ("new_script", ""), ("complete", ""))],
        [False, False, True])
test_eq(check_previous(kernel, ("complete", ""), fresh=True), False)
test_eq(check_previous(kernel, ("error", "Stopped: no GPU"), after_error=True), True)
test_eq(check_previous(kernel, ("complete", ""), outcome="stopped: no GPU", after_error=True), True)
test_fail(lambda: check_previous(kernel, ("running", "")), exc=UserError,
          contains="kaggle kernels push alice/hifigan-ruslan-train: its latest version is still running on")
test_fail(lambda: check_previous(kernel, ("error", "Stopped: no GPU in this Kaggle session")), exc=UserError,
          contains="its latest version ended with ERROR: Stopped: no GPU in this Kaggle session; see its")
test_fail(lambda: check_previous(kernel, ("complete", ""), outcome="stopped: no GPU in this Kaggle session"),
          exc=UserError, contains="its latest version stopped: no GPU in this Kaggle session; see its RESULTS.md")
test_fail(lambda: check_previous(kernel, ("complete", ""), outcome=""), exc=UserError,
          contains="its latest version left no report (SESSION.json); see its RESULTS.md")

# %% [markdown]
# ## Transfer: the pretrained generator as a dataset
#
# The kernel has no internet, so the pretrained generator it fine-tunes from must be among its inputs. `upload_pretrained` puts the official file (found and verified by `pretrained_path` of [Pretrained](05_pretrained.ipynb)) into a **private** dataset of the kernel's owner, `OWNER/hifigan-ruslan-universal`, with the real `kaggle datasets create`; when the dataset exists already (Kaggle says the slug is in use, before anything is uploaded), it becomes a new version of it (`kaggle datasets version`). The weights are linked into a temporary folder next to the `dataset-metadata.json`, never copied into the project, under a name Kaggle does not unpack (`generator_universal.pth`: the official `.pth.tar` is a torch pickle that Kaggle would take for a tar archive; see `weights_file`). The weights are the original authors' (MIT license), so the dataset's license is `other`, spelled out in its description.

# %%
#| export
DATASET_EXISTS = "is already in use by a dataset"  # the client's answer to a create of an existing slug

def pretrained_dataset_metadata(owner: str, name: str) -> dict:
    "The `dataset-metadata.json` of the private dataset that holds the pretrained generator `name`."
    return {"title": f"HiFi-GAN {name} generator", "id": f"{owner}/hifigan-ruslan-{name.lower()}",
            "licenses": [{"name": "other"}],
            "description": f"The official HiFi-GAN `{name}` generator (MIT license, "
                           "github.com/jik876/hifi-gan), for fine-tuning on RUSLAN with hifigan-ruslan."}


# %%
meta = pretrained_dataset_metadata("alice", "universal")
print(json.dumps(meta))
test_eq(meta["id"], "alice/hifigan-ruslan-universal")
test_eq(meta["licenses"], [{"name": "other"}])


# %% [markdown]
# Kaggle processes an upload before a kernel can mount it, so `wait_for_dataset` waits until `kaggle datasets status` says `ready`. Then `check_dataset_file` asks for the dataset's file list (`kaggle datasets files`): a ready dataset without the file (unpacked, or refused) would otherwise be found missing only by the kernel, after a session has started.

# %%
#| export
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

def check_dataset_file(dataset: str, file: str, environ=None):
    "A `UserError` unless Kaggle lists `file` in `dataset` (`kaggle datasets files`)."
    lines = kaggle_call(["datasets", "files", dataset, "--csv"], f"kaggle datasets files {dataset}", environ,
                        echo=False)
    names = [row.get("name") for row in csv.DictReader(lines)]
    if file not in names:
        raise UserError(f"dataset {dataset} is ready but does not list {file} (it lists "
                        f"{', '.join(filter(None, names)) or 'nothing'}); nothing was pushed: "
                        "push again with --init-from to upload it once more")


# %% [markdown]
# `upload_pretrained` puts the three together:

# %%
#| export
def upload_pretrained(owner: str, name: str, environ=None, timeout_s: float = 900) -> str:
    "Create (or version) the private dataset of the pretrained generator `name`, wait, check it; its id."
    weights, file = pretrained_path(name), weights_file(name)
    meta = pretrained_dataset_metadata(owner, name)
    dataset = meta["id"]
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / file).symlink_to(weights)
        (Path(folder) / "dataset-metadata.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        print(f"uploading {weights.name} as {file} to the private dataset {dataset}", flush=True)
        rc, lines = run_kaggle_cli(["datasets", "create", "-p", folder], environ)
        if rc == 0 and any(DATASET_EXISTS in line for line in lines):
            step = f"kaggle datasets version {dataset}"
            notes = f"{file} for hifigan-ruslan"
            kaggle_call(["datasets", "version", "-p", folder, "-m", notes], step, environ)
        elif reason := refusal(rc, lines):
            raise UserError(f"kaggle datasets create {dataset}: {reason}; nothing was pushed")
    wait_for_dataset(dataset, environ, timeout_s)
    check_dataset_file(dataset, file, environ)
    return dataset


# %% [markdown]
# ## Pushing
#
# `push_kernel` checks everything it can before the first request: the owner is not the placeholder, the pretrained model is known, the client and the credentials are there, and the credentials are the owner's. Then it asks for the previous version's status and, for a complete one, its outcome (above), uploads the weights dataset (with `init_from`), and builds the version: the kernel root gets the default build, like `hifigan-ruslan kaggle build` (so that a checkout's committed kernel stays as it is), and the version's own files, with its settings and datasets, go to `runs/kaggle-push/` under the kernel root, from where they are pushed and where they can be read afterwards.
#
# Every push sends the session's time limit (`kaggle kernels push -t`, from `session_timeout_s` of the session module: the budget plus 15 minutes), and says it. Kaggle answers a push with the sources it could not attach. A kernel source refused (the previous output) is a warning, since the version stops at its start and says so. A dataset refused, the corpus or the weights, fails the push with the dataset's name and the user's exit status: the version Kaggle started cannot train on the wrong data, because the kernel takes its corpus only from the corpus dataset and its weights only from the weights dataset, and stops in its first minute without them.
#
# The settings the push writes: `smoke` (and the short run's values) with `--smoke`; `previous`, the kernel itself, when its latest version is complete (or failed, with `--after-error`), so that the new version stops rather than start over without its checkpoints; `fresh` with `--fresh`; `init_from` and `weights_dataset` with `--init-from`. A first version (no kernel yet) is pushed without itself in `kernel_sources`, since Kaggle cannot attach a kernel that does not exist; the next push attaches it.

# %%
#| export
PUSH_FOLDER = "runs/kaggle-push"  # under the kernel root: the files of the version pushed last
INVALID_KERNEL_SOURCES = "not valid kernel sources"
INVALID_DATASET_SOURCES = "not valid dataset sources"

def _hours(seconds: float) -> str:
    "A duration as `11 h 15 min`."
    hours, minutes = divmod(round(seconds / 60), 60)
    return " ".join(filter(None, [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]))

def push_message(kernel: str, settings: SessionSettings, modules: int) -> str:
    "The line `push_kernel` prints before it uploads."
    kind = "a smoke run" if settings.smoke else f"a full session ({settings.session_hours:g} h)"
    start = ("a new run" if settings.fresh or not settings.previous else f"resuming {settings.previous}")
    start += f", fine-tuning {settings.init_from} on a first start" if settings.init_from else ""
    return (f"pushing {kernel}: {kind}, {start}, session limit {_hours(session_timeout_s(settings))} "
            f"({KERNEL_NOTEBOOK}, {modules} embedded modules)")

def refused_datasets(lines: list[str], datasets: list[str]) -> list[str]:
    "Which of `datasets` the push's answer `lines` says Kaggle could not attach."
    said = " ".join(line for line in lines if INVALID_DATASET_SOURCES in line)
    return [d for d in datasets if re.search(rf"['\"]{re.escape(d)}['\"]", said)]

def output_message(kernel: str, out) -> str:
    "The line `download_output` prints when the download is complete."
    return f"output of {kernel} in {out}"


# %%
print(push_message("alice/hifigan-ruslan-train", SessionSettings(**SMOKE), 21))
print(push_message("alice/hifigan-ruslan-train", SessionSettings(previous="alice/hifigan-ruslan-train"), 20))
assert "session limit 1 h 15 min" in push_message("a/b", SessionSettings(**SMOKE), 21)
answer = ["The following are not valid dataset sources and could not be added to the kernel: "
          "['freezerainml/ruslan']", "Kernel version 2 successfully pushed."]
test_eq(refused_datasets(answer, ["freezerainml/ruslan", "alice/hifigan-ruslan-universal"]),
        ["freezerainml/ruslan"])


# %% [markdown]
# Three steps of the push: the owner's check, the resume decision, and the reading of Kaggle's answer:

# %%
#| export
def _check_owner(kernel: str, environ=None):
    "A `UserError` when the credentials belong to another user than the kernel's owner (where they say)."
    owner, user = kernel.split("/")[0], credential_user(environ)
    if user is not None and user.lower() != owner.lower():
        raise UserError(f"kernel {kernel} belongs to {owner}, and the Kaggle credentials are {user}'s: only "
                        f"its owner can push it; set kaggle_owner in settings.ini (or {OWNER_ENV}) to {user}")

def _resume_point(kernel: str, root: Path, fresh: bool, after_error: bool, environ=None):
    "The kernel's latest version (or None), and whether the new one resumes from it (`check_previous`)."
    previous, outcome = previous_version(kernel, environ), "complete"
    if previous is not None and previous[0] == "complete":
        outcome = previous_outcome(kernel, root / PREVIOUS_FOLDER, environ)
    return previous, check_previous(kernel, previous, fresh, after_error, outcome)

def _check_answer(kernel: str, lines: list[str], settings: SessionSettings, first: bool):
    "Read Kaggle's answer to a push: a refused dataset is a `UserError`; the first or a refused kernel: a line."
    datasets = [settings.corpus_dataset, *filter(None, [settings.weights_dataset])]
    if refused := refused_datasets(lines, datasets):
        what = " and ".join(f"the {'corpus' if d == settings.corpus_dataset else 'weights'} dataset {d}"
                            for d in refused)
        raise UserError(f"kaggle kernels push {kernel}: Kaggle did not attach {what} (check the name, and "
                        "that your account can open it): the version it started stops in its first minute "
                        "without training")
    if first:
        print(f"first version of {kernel}: it starts without a previous output; the next push attaches this "
              "one's (kernel_sources)")
    elif settings.previous and any(INVALID_KERNEL_SOURCES in line and kernel in line for line in lines):
        print(f"warning: Kaggle did not attach the previous output of {kernel}: the new version will stop at "
              "its start; push with --fresh to start a new run instead")


# %% [markdown]
# `push_kernel` puts the steps together; a failure after the dataset upload says that the dataset stays on Kaggle (a later push with `init_from` adds a version to it):

# %%
#| export
def push_kernel(root, environ=None, init_from: str | None = None, smoke: bool = False, fresh: bool = False,
                after_error: bool = False, dataset_timeout_s: float = 900) -> int:
    "Build the kernel in `root` and push it as a new version (a smoke run with `smoke`); returns 0."
    root = Path(root)
    kernel = resolve_kernel_id(None, root, environ)
    if init_from is not None and init_from.lower() not in PRETRAINED:  # before anything reaches Kaggle
        raise UserError(f"{init_from!r} is not a pretrained model: choose one of {', '.join(PRETRAINED)}")
    check_client()
    check_credentials(environ)
    _check_owner(kernel, environ)
    previous, pinned = _resume_point(kernel, root, fresh, after_error, environ)
    owner = kernel.split("/")[0]
    dataset = upload_pretrained(owner, init_from, environ, dataset_timeout_s) if init_from else ""
    settings = SessionSettings(kernel=kernel, previous=kernel if pinned else "", fresh=fresh,
                               init_from=(init_from or "").lower(), weights_dataset=dataset,
                               **(SMOKE if smoke else {}))
    build_kernel(root, environ=environ)
    files = kernel_files(kernel_settings(root, environ), settings, datasets=[dataset] if dataset else [],
                         resume=previous is not None)
    write_kernel_files(root / PUSH_FOLDER, files)
    cells = json.loads(files[KERNEL_NOTEBOOK])["cells"]
    embedded = sum("".join(c["source"]).startswith("%%writefile") for c in cells)
    print(push_message(kernel, settings, embedded), flush=True)
    try:
        push = ["kernels", "push", "-p", str(root / PUSH_FOLDER), "-t", str(session_timeout_s(settings))]
        lines = kaggle_call(push, f"kaggle kernels push {kernel}", environ)
    except UserError as e:
        if not dataset:
            raise
        kept = f"the dataset {dataset} stays on Kaggle (a later --init-from push versions it)"
        raise UserError(f"{e}; {kept}") from None
    _check_answer(kernel, lines, settings, first=previous is None)
    return 0


# %%
show_doc(push_kernel)


# %% [markdown]
# `status` passes the client's answer through and, for a complete version, adds how its session ended (`previous_outcome`, into a temporary folder); `output` downloads the latest version's output, checks it against its manifest, and says how the version ended (from its `SESSION.json`), so that a version that stopped is read as stopped, not as a broken download. A version that ended before its report (a kill, Kaggle's time limit) has no manifest: the download says so in one line.

# %%
#| export
def kernel_status(kernel: str, environ=None) -> int:
    "`kaggle kernels status OWNER/SLUG` (printed); 0, or a `UserError` with Kaggle's reason."
    kernel = check_kernel_id(kernel)
    check_client()
    check_credentials(environ)
    lines = kaggle_call(["kernels", "status", kernel], f"kaggle kernels status {kernel}", environ)
    if any((m := _STATUS.search(line)) and m.group(1).lower() == "complete" for line in lines):
        with tempfile.TemporaryDirectory() as folder:
            outcome = previous_outcome(kernel, folder, environ)
        print(f"the session's outcome: {outcome or 'no report (SESSION.json) in its output'}")
    return 0

def download_output(kernel: str, out, force: bool = False, environ=None) -> int:
    "Download the latest output of `kernel` into `out`, check it against its manifest; 0 if intact, else 1."
    kernel = check_kernel_id(kernel)
    check_client()
    check_credentials(environ)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    args = ["kernels", "output", kernel, "-p", str(out)] + (["-o"] if force else [])
    kaggle_call(args, f"kaggle kernels output {kernel}", environ)
    found = check_manifest(out)
    for problem in (*found.missing, *found.differ):
        print(problem)
    print(found.summary)
    if (out / SESSION_FILE).is_file():
        print(f"the version's outcome: {json.loads((out / SESSION_FILE).read_text()).get('outcome')}")
    if found.ok:
        print(output_message(kernel, out))
    return 0 if found.ok else 1


# %%
show_doc(download_output)

# %% [markdown]
# Mistakes are caught before any request: the placeholder owner, missing credentials, an unknown pretrained model, credentials of another user, a kernel that is not `OWNER/SLUG`. Nothing is built either.

# %%
with tempfile.TemporaryDirectory() as d:
    test_fail(lambda: push_kernel(d, environ={}), exc=UserError, contains="still the placeholder")
    no_key = {OWNER_ENV: "alice", "HOME": d, "XDG_CONFIG_HOME": d}
    test_fail(lambda: push_kernel(d, environ=no_key), exc=UserError, contains="no Kaggle credentials")
    keyed = {**no_key, "KAGGLE_USERNAME": "alice", "KAGGLE_KEY": "k"}
    test_fail(lambda: push_kernel(d, environ=keyed, init_from="vctk"), exc=UserError,
              contains="'vctk' is not a pretrained model")
    test_fail(lambda: push_kernel(d, environ={**keyed, "KAGGLE_USERNAME": "bob"}), exc=UserError,
              contains="kernel alice/hifigan-ruslan-train belongs to alice, and the Kaggle credentials are bob's")
    test_eq(list(Path(d).iterdir()), [])  # nothing built
test_fail(lambda: kernel_status("hifigan-ruslan-train"), exc=UserError, contains="expected OWNER/SLUG")
test_fail(lambda: download_output("a/b/c", "unused"), exc=UserError, contains="'a/b/c': expected OWNER/SLUG")
