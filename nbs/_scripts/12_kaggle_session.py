# %% [markdown]
# # Kaggle session
#
# > What the Kaggle kernel runs in one session: check its inputs and GPUs, resume the run (or start from pretrained weights), train within the session's budget or run the smoke check, and leave a report and a manifest whatever happens.

# %%
#| default_exp kaggle_session

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import collections, datetime, io, json, os, re, shutil, subprocess, sys, time, traceback
from dataclasses import asdict, dataclass, field, fields, replace
from fastcore.basics import patch
from pathlib import Path
from hifigan_ruslan.checkpoints import list_steps, resumable_step
from hifigan_ruslan.clips import METADATA_NAME, clip_key, is_audio_name, read_metadata
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.locations import sha256_file
from hifigan_ruslan.prepare import Corpus, find_corpus, format_summary, prepare_corpus

# %% [markdown]
# The kernel notebook (built by [Kaggle kernel](12a_kaggle_kernel.ipynb)) is a short story; the decisions it makes live here, in functions that the kernel imports and that this notebook tests on small folders. The module needs nothing but the standard library and the package's training code, because it is one of the modules the kernel carries. The whole notebook runs as Kaggle would run it on [Kaggle runs](12c_kaggle_runs.ipynb).
#
# A session on Kaggle costs GPU quota (about 30 hours a week), so the kernel never falls back silently to something the user did not ask for: no GPU, a corpus or weights that did not arrive, a previous version whose checkpoints are not there, each stop the session within its first minute with one line that says why. And whatever happens, the session leaves `RESULTS.md`, `SESSION.json` and `MANIFEST.json` in its output, and ends as a version Kaggle completes, so that the output is kept (see [the session, start to end](#the-session-start-to-end)).

# %%
import tempfile

# %% [markdown]
# ## The settings of a version
#
# What a version does is decided when it is pushed, and Kaggle cannot pass anything to a kernel but its notebook: `hifigan-ruslan kaggle push` writes the settings into the notebook's first code cell, as a dictionary that the kernel reads with `SessionSettings.from_dict`. Each field's comment is repeated in that cell. The corpus is the dataset `freezerainml/ruslan` unless the settings name another.

# %%
#| export
DATASET_SOURCE = "freezerainml/ruslan"  # the corpus dataset the kernel's metadata attaches

def _setting(default, doc: str):
    "A field of `SessionSettings` with its default and the comment the settings cell shows for it."
    return field(default=default, metadata={"doc": doc})


# %%
#| export
@dataclass(frozen=True)
class SessionSettings:
    "What one version of the Kaggle kernel does; `push` writes them into the notebook."
    kernel: str = _setting("", "OWNER/SLUG of this kernel, recorded in its output for the next version")
    smoke: bool = _setting(False, "a short check of the GPUs and of every stage instead of a long run")
    gpu_check: bool = _setting(False, "run the package's GPU check on the GPUs first (smoke runs)")
    in_editor: str = _setting("smoke", "what Run All in Kaggle's editor runs: smoke, or full (this session)")
    session_hours: float = _setting(11.0, "the session's budget; the push limits the session to it "
                                          "plus 15 min (Kaggle's own limit: 12 h)")
    report_minutes: float = _setting(10.0, "kept back from training for the report")
    checkpoint_minutes: float = _setting(30.0, "a checkpoint at least this often, so a kill loses at most "
                                               "this much (0: only the config's step/epoch rule)")
    max_steps: int = _setting(0, "stop training at this step (0: when the budget ends)")
    preset: str = _setting("", "empty: the run's own on resume, else finetune or recipe")
    train_set: tuple[str, ...] = _setting((), "extra `train --set key=value` overrides")
    val_size: int = _setting(100, "validation clips held out when the corpus is prepared")
    init_from: str = _setting("", "the pretrained generator (universal, lj) a first version fine-tunes from")
    weights_dataset: str = _setting("", "OWNER/SLUG of the dataset the push uploaded that generator to")
    previous: str = _setting("", "the kernel whose previous version's output must be mounted (set by push "
                                 "when that version exists)")
    fresh: bool = _setting(False, "start a new run: do not resume the previous version's checkpoints")
    corpus_dataset: str = _setting(DATASET_SOURCE, "OWNER/SLUG of the corpus dataset the metadata attaches")
    corpus: str = _setting("", "a folder or transcript file inside that dataset (empty: all of it)")
    plain_audio: bool = _setting(False, "the corpus is a folder of audio without transcripts (else refused)")
    mel_dir: str = _setting("", "mels of an acoustic model, for `train --mel-dir`")
    smoke_clips: int = _setting(400, "clips of the corpus a smoke run prepares")
    smoke_steps: int = _setting(200, "steps a smoke run trains before it resumes once")
    smoke_resume_steps: int = _setting(100, "steps the smoke run trains after resuming")


# %% [markdown]
# A smoke run is the short version `push --smoke` starts, about 15 minutes of GPU time on two T4s: these values replace the defaults (the `smoke_*` fields size it):

# %%
#| export
SMOKE = {"smoke": True, "gpu_check": True, "session_hours": 1.0, "report_minutes": 5.0, "val_size": 16}

# %% [markdown]
# ### The session's time limit
#
# A hang outside the training loop (a stuck subprocess, a data loader that deadlocks, a collective that never returns before NCCL's watchdog fires) would otherwise run until Kaggle's own cap of 12 hours, even in a smoke run. So every push sends a session time limit (`kaggle kernels push -t`): the session's budget plus 15 minutes, which the report needs and a little more. Training stops itself within the budget; the limit only ends a session that hangs.

# %%
#| export
KAGGLE_SESSION_LIMIT_S = 12 * 3600  # Kaggle stops a GPU session after 12 hours
SESSION_MARGIN_S = 15 * 60  # past the budget: the report, and the end of a training that stops late

def session_timeout_s(settings: SessionSettings) -> int:
    "The session time limit a push sends: the budget plus the margin, never past Kaggle's 12 hours."
    return int(min(settings.session_hours * 3600 + SESSION_MARGIN_S, KAGGLE_SESSION_LIMIT_S))


# %%
print(session_timeout_s(SessionSettings()), session_timeout_s(SessionSettings(**SMOKE)))
test_eq((session_timeout_s(SessionSettings()), session_timeout_s(SessionSettings(**SMOKE))), (40_500, 4_500))

# %% [markdown]
# `from_dict` checks the dictionary the way the rest of the package checks what a user gives: an unknown key, a value of the wrong type or out of range is a `UserError` that names it.

# %%
#| export
_KERNEL_REF = re.compile(r"[A-Za-z0-9][\w-]*/[a-z0-9][a-z0-9-]*")

def _coerce(name: str, value, default):
    "`value` as the type of `default` (a list of strings: a tuple; an int: a float); else a `UserError`."
    kind = type(default)
    if kind is tuple and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is kind:
        return value
    raise UserError(f"kernel setting {name}={value!r}: expected {kind.__name__}")


# %% [markdown]
# Then the values are checked together, the way `Config` checks a training config:

# %%
#| export
@patch(cls_method=True)
def from_dict(cls: SessionSettings, values: dict) -> SessionSettings:
    "Settings from the notebook's dictionary, checked."
    defaults = {f.name: f.default for f in fields(cls)}
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise UserError(f"kernel settings: unknown {', '.join(unknown)}; known: {', '.join(defaults)}")
    s = cls(**{k: _coerce(k, v, defaults[k]) for k, v in values.items()})
    for name in ("session_hours", "val_size", "smoke_clips", "smoke_steps", "smoke_resume_steps"):
        if not getattr(s, name) > 0:
            raise UserError(f"kernel setting {name}={getattr(s, name)!r}: must be positive")
    for name in ("report_minutes", "checkpoint_minutes", "max_steps"):
        if getattr(s, name) < 0:
            raise UserError(f"kernel setting {name}={getattr(s, name)!r}: must be 0 or more")
    for name in ("kernel", "weights_dataset", "previous", "corpus_dataset"):
        if getattr(s, name) and not _KERNEL_REF.fullmatch(getattr(s, name)):
            raise UserError(f"kernel setting {name}={getattr(s, name)!r}: expected OWNER/SLUG")
    if not s.corpus_dataset:
        raise UserError("kernel setting corpus_dataset='': name the corpus dataset (OWNER/SLUG)")
    if bool(s.init_from) != bool(s.weights_dataset):
        raise UserError("kernel settings init_from and weights_dataset: give both or neither")
    if s.in_editor not in ("smoke", "full"):
        raise UserError(f"kernel setting in_editor={s.in_editor!r}: expected smoke or full")
    if s.session_hours * 3600 + SESSION_MARGIN_S > KAGGLE_SESSION_LIMIT_S:
        limit = (KAGGLE_SESSION_LIMIT_S - SESSION_MARGIN_S) / 3600
        raise UserError(f"kernel setting session_hours={s.session_hours:g}: at most {limit:g} (Kaggle stops "
                        "a session after 12 h, and the limit keeps 15 min for the report)")
    return s


# %%
show_doc(SessionSettings.from_dict)

# %% [markdown]
# The settings of a smoke run, as `push --smoke` writes them, and the mistakes `from_dict` names:

# %%
smoke = SessionSettings.from_dict({"kernel": "alice/hifigan-ruslan-train", **SMOKE, "train_set": ["a=1"]})
print(smoke)
assert smoke.smoke and smoke.gpu_check, smoke
test_eq(smoke.train_set, ("a=1",))
test_eq(SessionSettings.from_dict({"session_hours": 2}).session_hours, 2.0)
test_eq(SessionSettings.from_dict({}), SessionSettings())
for values, message in [({"hours": 2}, "kernel settings: unknown hours; known: kernel, smoke"),
                        ({"smoke": "yes"}, "kernel setting smoke='yes': expected bool"),
                        ({"max_steps": 1.5}, "kernel setting max_steps=1.5: expected int"),
                        ({"session_hours": 0}, "kernel setting session_hours=0.0: must be positive"),
                        ({"report_minutes": -1}, "kernel setting report_minutes=-1.0: must be 0 or more"),
                        ({"previous": "alice"}, "kernel setting previous='alice': expected OWNER/SLUG"),
                        ({"init_from": "universal"}, "init_from and weights_dataset: give both or neither"),
                        ({"in_editor": "train"}, "kernel setting in_editor='train': expected smoke or full"),
                        ({"session_hours": 12}, "kernel setting session_hours=12: at most 11.75"),
                        ({"corpus_dataset": "ruslan"}, "corpus_dataset='ruslan': expected OWNER/SLUG")]:
    test_fail(lambda: SessionSettings.from_dict(values), exc=UserError, contains=message)


# %% [markdown]
# ## Stopping early, with one line
#
# When the kernel cannot do what it was pushed to do, it raises `KernelStop`. The session catches it (see [the session, start to end](#the-session-start-to-end)): nothing after it runs, the report says why in one line, and the version still ends as complete on Kaggle, because Kaggle may not keep the output of a version that fails. Raised in a cell of its own, the exception renders itself as that one line instead of a traceback. The kernel knows it runs on Kaggle by the variable `KAGGLE_KERNEL_RUN_TYPE`, which Kaggle sets in every session: `Batch` in a pushed version, `Interactive` in the editor.

# %%
#| export
class KernelStop(Exception):
    "The kernel stops early for a reason the user can fix; shown as one line, not a traceback."
    def _render_traceback_(self) -> list[str]:  # IPython's hook for exceptions that render themselves
        return [f"Stopped: {self}"]

def on_kaggle(environ=None) -> bool:
    "Whether this is a Kaggle session (Kaggle sets `KAGGLE_KERNEL_RUN_TYPE`)."
    return "KAGGLE_KERNEL_RUN_TYPE" in (os.environ if environ is None else environ)


# %%
test_eq(KernelStop("no GPU")._render_traceback_(), ["Stopped: no GPU"])
test_eq((on_kaggle({"KAGGLE_KERNEL_RUN_TYPE": "Batch"}), on_kaggle({})), (True, False))


# %% [markdown]
# ## GPUs
#
# The metadata asks for two T4s (`machine_shape: NvidiaTeslaT4`), and a session can still start without them: an account that is not phone-verified, an accelerator that was not granted, or a client that dropped `machine_shape` all give a CPU-only session, which would spend eleven hours training at a few steps a minute. So on Kaggle no GPU stops the kernel, one GPU is worth a warning (training goes on at half the speed), two are the plan. Outside Kaggle (the tests) the CPU is allowed: it is how the notebook is tested.

# %%
#| export
def check_gpus(names: list[str], kaggle: bool) -> str:
    "The line about the session's GPUs `names`; a `KernelStop` on Kaggle without any."
    if not names and kaggle:
        raise KernelStop("no GPU in this Kaggle session: the kernel asks for two T4s, which need a "
                         "phone-verified account (kaggle.com/settings) and kaggle>=2.2.2 to push; "
                         "nothing was trained")
    if not names:
        return "no GPU: training runs as one process on the CPU (outside Kaggle, to test the notebook)"
    if len(names) == 1:
        return (f"warning: 1 GPU ({names[0]}) instead of 2: training goes on at about half the speed; "
                "check the kernel's accelerator (GPU T4 x2)")
    return f"{len(names)} GPUs: {', '.join(names)}"


# %%
print(check_gpus(["Tesla T4", "Tesla T4"], kaggle=True))
print(check_gpus(["Tesla T4"], kaggle=True))
assert check_gpus(["Tesla T4"], kaggle=True).startswith("warning: 1 GPU (Tesla T4) instead of 2")
assert check_gpus([], kaggle=False).startswith("no GPU: training runs as one process on the CPU")
test_fail(lambda: check_gpus([], kaggle=True), exc=KernelStop, contains="no GPU in this Kaggle session")


# %% [markdown]
# The GPUs are counted before the corpus is prepared, and `prepare` forks its worker processes: CUDA initialised in the parent before a fork is unusable in the children, and `torch.cuda.get_device_name` initialises it. So the kernel asks `nvidia-smi` for the names instead, and falls back to PyTorch's count, which reads NVML and leaves CUDA alone.

# %%
#| export
def gpu_names() -> list[str]:
    "This machine's NVIDIA GPUs by name, found without initialising CUDA in this process."
    try:
        found = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=60)
        if found.returncode == 0:
            return [line.strip() for line in found.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.TimeoutExpired):
        pass
    import torch
    return [f"GPU {i}" for i in range(torch.cuda.device_count())]  # NVML: no CUDA context


# %%
print(gpu_names())  # none on the machine that builds these docs

# %% [markdown]
# ## The previous version's output
#
# The kernel lists itself in `kernel_sources`, so a new version sees the previous version's output among its inputs; today Kaggle mounts it at `/kaggle/input/notebooks/OWNER/SLUG/` (datasets at `/kaggle/input/datasets/OWNER/SLUG/`), and since those paths have changed before, the kernel searches. It recognises the output by `SESSION.json`, the record every version writes last (with the report): which kernel wrote it, whether it was a smoke run, how it ended, and the newest checkpoint step of the run it carries.

# %%
#| export
SESSION_FILE = "SESSION.json"

def write_session_record(working, settings: SessionSettings, outcome: str, step: int | None) -> Path:
    "Write `working/SESSION.json`: the kernel, the kind of run, its outcome and the newest checkpoint step."
    record = {"kernel": settings.kernel, "smoke": settings.smoke, "outcome": outcome, "step": step,
              "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "settings": asdict(settings)}
    path = Path(working) / SESSION_FILE
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return path

def find_previous_output(roots, kernel: str) -> tuple[Path, dict] | None:
    "`(folder, record)` of the newest output of `kernel` under `roots` (found by its SESSION.json), or None."
    found, seen = [], set()
    for root in map(Path, roots):
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            if os.path.realpath(dirpath) in seen:  # a folder linked twice (or in a loop) is read once
                dirnames[:] = []
                continue
            seen.add(os.path.realpath(dirpath))
            dirnames.sort()
            if SESSION_FILE in filenames:
                try:
                    record = json.loads((Path(dirpath) / SESSION_FILE).read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if isinstance(record, dict) and record.get("kernel") == kernel:
                    found.append((str(record.get("finished", "")), Path(dirpath), record))
    return max(found, key=lambda t: t[0])[1:] if found else None


# %%
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    mounted = d / "input/notebooks/alice/hifigan-ruslan-train"  # today's mount of a kernel's output
    mounted.mkdir(parents=True)
    settings = SessionSettings(kernel="alice/hifigan-ruslan-train")
    record = json.loads(write_session_record(mounted, settings, "complete", 1200).read_text())
    print({k: v for k, v in record.items() if k != "settings"})
    folder, found = find_previous_output([d / "input"], "alice/hifigan-ruslan-train")
    test_eq((folder, found["step"], found["outcome"]), (mounted, 1200, "complete"))
    (d / "input/hifigan-ruslan-train").symlink_to(mounted)  # an older layout's name for the same mount
    (mounted / "loop").symlink_to(d / "input")
    test_eq(find_previous_output([d / "input"], "alice/hifigan-ruslan-train")[0].resolve(), mounted.resolve())
    test_eq(find_previous_output([d / "input"], "bob/hifigan-ruslan-train"), None)
    test_eq(find_previous_output([d / "nothing"], "alice/hifigan-ruslan-train"), None)

# %% [markdown]
# ## Resuming from the previous version
#
# A run folder is recognised by its `checkpoints/` holding a complete pair (`resumable_step` of the checkpoints module): a generator file `g_XXXXXXXX` and the optimiser file `do_XXXXXXXX` of the same step; a lone `g_` file, as left by a session killed between the two writes, is not a resume point. A smoke run trains in a folder of its own, `smoke/`, which is a check and never a run to continue: its checkpoints have a few hundred steps of a slice of the corpus and the smoke's settings.

# %%
#| export
RUN_DIR, SMOKE_DIR = "run", "smoke"  # in /kaggle/working: the run a version continues, and a smoke run's

def find_runs(roots) -> list[tuple[int, Path]]:
    "`(step, run_dir)` of each run under `roots` with a resumable checkpoint (not a smoke run), newest first."
    seen, found = set(), []
    for root in map(Path, roots):
        if not root.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(root, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen:
                dirnames[:] = []
                continue
            seen.add(real)
            dirnames.sort()
            is_run = Path(dirpath).name == "checkpoints" and Path(dirpath).parent.name != SMOKE_DIR
            step = resumable_step(dirpath) if is_run else None
            if step is not None:
                found.append((step, Path(dirpath).parent))
    return sorted(found, key=lambda t: -t[0])  # stable: on a tie the earlier root first


# %% [markdown]
# `restore_newest_run` copies the newest run found into the run folder of this session, unless that folder already holds a checkpoint at least as new. Everything of the old run comes along (metrics, samples, plots, the best generator) except older checkpoints, which would only fill the output. Files are copied without their permissions, because inputs are read-only and the copies must be appendable. Every version restores the run first, even a smoke run or one that then stops: its output carries the run on, so the chain of versions never loses its checkpoints.

# %%
#| export
def restore_newest_run(roots, run_dir) -> int | None:
    "Copy the newest resumable run under `roots` into `run_dir` unless older; the step training resumes from."
    run_dir = Path(run_dir)
    current = resumable_step(run_dir / "checkpoints")
    runs = [(s, d) for s, d in find_runs(roots) if d.resolve() != run_dir.resolve()]
    if not runs or (current is not None and current >= runs[0][0]):
        return current
    step, src = runs[0]
    keep = {f"g_{step:08d}", f"do_{step:08d}", "generator_best.pt"}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src)
        if rel.parts[0] == "checkpoints" and (len(rel.parts) != 2 or rel.name not in keep):
            continue
        (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, run_dir / rel)
    return step


# %%
show_doc(restore_newest_run)

# %%
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    old = d / "input/notebooks/alice/hifigan-ruslan-train/run"  # the previous version's output
    (old / "checkpoints").mkdir(parents=True)
    (old / "samples").mkdir()
    for name in ["g_00000100", "do_00000100", "g_00000200", "do_00000200", "g_00000300", "generator_best.pt"]:
        (old / "checkpoints" / name).write_text(name)
    (old / "metrics.csv").write_text("step,loss\n200,1.0\n")
    (old / "samples/a.wav").write_text("x")
    (old / "metrics.csv").chmod(0o444)
    run = d / "working/run"
    test_eq(find_runs([d / "input", d / "working"]), [(200, old)])  # g_00000300 has no do_ file
    test_eq(restore_newest_run([d / "input", d / "working"], run), 200)
    test_eq(sorted(p.name for p in (run / "checkpoints").iterdir()),
            ["do_00000200", "g_00000200", "generator_best.pt"])
    assert (run / "samples/a.wav").is_file()
    assert os.access(run / "metrics.csv", os.W_OK)
    for name in ["g_00000400", "do_00000400"]:
        (run / "checkpoints" / name).write_text(name)  # this session got further
    test_eq(restore_newest_run([d / "input", d / "working"], run), 400)
    test_eq(restore_newest_run([d / "nothing"], d / "fresh"), None)


# %% [markdown]
# ## Starting from pretrained weights
#
# A first version has no run to resume. It can still start from a pretrained generator instead of from random weights: `hifigan-ruslan kaggle push --init-from universal` uploads the official universal generator to a private dataset of the owner's, `OWNER/hifigan-ruslan-universal`, attaches it and writes both names into the settings (see [Kaggle client](12b_kaggle_client.ipynb)); the kernel passes the file to `train --init-from`. Fine-tuning only happens when nothing is resumed: a later version resumes from its own output, which has moved on from those weights.
#
# The official files are named `generator_universal.pth.tar`, but they are torch pickles, not tar archives, and Kaggle's dataset backend unpacks archives it recognises by their name: uploaded under that name, the weights would not arrive as a file. So the dataset holds them as `generator_universal.pth`, a name that ends in none of the archive suffixes. When the weights dataset is mounted but holds no such file, or is not mounted at all, the kernel stops: training from scratch with the recipe instead would spend the session on the wrong job.

# %%
#| export
def weights_file(name: str) -> str:
    "The file name of the pretrained generator `name` in its Kaggle dataset: one Kaggle does not unpack."
    return f"generator_{name.lower()}.pth"

def find_weights(roots, dataset: str, name: str) -> Path:
    "The generator file `name` of the weights `dataset` mounted under `roots`; a `KernelStop` if it is not."
    slug, file = dataset.rsplit("/", 1)[-1], weights_file(name)
    folders = sorted(p for root in map(Path, roots) if root.is_dir() for p in root.rglob(slug) if p.is_dir())
    where = ", ".join(map(str, roots))
    if not folders:
        raise KernelStop(f"the weights dataset {dataset} is not mounted under {where}: "
                         f"push again with --init-from {name}")
    files = sorted(p for folder in folders for p in folder.rglob(file) if p.is_file())
    if not files:
        raise KernelStop(f"the weights dataset {dataset} is attached but holds no {file} "
                         f"(in {folders[0]}): push again with --init-from {name} to upload it")
    return files[0]


# %%
show_doc(find_weights)

# %%
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    dataset = d / "input/datasets/alice/hifigan-ruslan-universal"
    dataset.mkdir(parents=True)
    test_fail(lambda: find_weights([d / "input"], "alice/hifigan-ruslan-universal", "universal"),
              exc=KernelStop, contains="the weights dataset alice/hifigan-ruslan-universal is attached but "
                                       "holds no generator_universal.pth")
    (dataset / "generator_universal.pth").write_bytes(b"weights")
    test_eq(find_weights([d / "input"], "alice/hifigan-ruslan-universal", "universal"),
            dataset / "generator_universal.pth")
    test_fail(lambda: find_weights([d / "input"], "alice/hifigan-ruslan-lj", "lj"), exc=KernelStop,
              contains="the weights dataset alice/hifigan-ruslan-lj is not mounted under")

# %% [markdown]
# The names survive Kaggle's unpacking rule (the archive suffixes it unpacks); the official ones would not:

# %%
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".tbz2", ".xz", ".txz", ".7z", ".rar")
names = [weights_file(n) for n in ("universal", "lj", "LJ")]
print(names)
test_eq([n for n in names if n.lower().endswith(ARCHIVE_SUFFIXES)], [])
test_eq([n for n in ("generator_universal.pth.tar", "generator_LJSpeech.pth.tar")
         if not n.lower().endswith(ARCHIVE_SUFFIXES)], [])


# %% [markdown]
# ## Where a version starts
#
# `plan_start` decides it from the settings and the inputs, before anything costly happens:
#
# - the weights a push attached must be there (else `find_weights` stops);
# - with `fresh`, nothing is resumed: a new run starts (from the weights, if any);
# - when the push pinned the previous version (it exists on Kaggle), its output must be mounted, and if that version recorded checkpoints, they must be mounted too; otherwise the kernel stops, because starting over would silently lose the run's progress. A previous smoke run, or a version that stopped before its first checkpoint, recorded none: then starting is right;
# - the newest run found is restored into `working/run` and resumed; without one, the version starts from the weights, or from scratch.

# %%
#| export
@dataclass(frozen=True)
class Start:
    "Where training starts: the step it resumes from, or the weights it fine-tunes, or from scratch."
    resumed: int | None = None
    init_from: Path | None = None

    def __str__(self) -> str:
        if self.resumed is not None:
            return f"resuming from step {self.resumed}"
        return "no previous checkpoint: " + (f"fine-tuning from {self.init_from}" if self.init_from
                                             else "training from scratch")

def _previous_output(settings: SessionSettings, input_root: Path) -> tuple[Path, int | None]:
    "Where the pinned previous output is mounted, and its newest checkpoint step; else a `KernelStop`."
    found = find_previous_output([input_root], settings.previous)
    if found is None:
        raise KernelStop(f"the previous version's output of {settings.previous} is not mounted under "
                         f"{input_root} (no {SESSION_FILE} of it): push again once it is complete, or with "
                         "--fresh to start a new run")
    return found[0], found[1].get("step")

def plan_start(settings: SessionSettings, input_root, working) -> Start:
    "Restore the run to resume into `working/run`; where training starts (a `KernelStop` if it can't)."
    input_root, working = Path(input_root), Path(working)
    weights = None
    if settings.init_from:
        weights = find_weights([input_root], settings.weights_dataset, settings.init_from)
    if settings.fresh:
        return Start(None, weights)
    previous, recorded = _previous_output(settings, input_root) if settings.previous else (None, None)
    resumed = restore_newest_run([previous or input_root, working], working / RUN_DIR)
    if resumed is None and recorded:
        raise KernelStop(f"the previous version of {settings.previous} saved checkpoints up to step "
                         f"{recorded}, but none is mounted under {previous}: push again with --fresh "
                         "to start a new run")
    return Start(resumed, None if resumed is not None else weights)


# %%
show_doc(plan_start)


# %% [markdown]
# A first version, then the second one with the first one's output mounted; then the stops: the pinned previous output missing, and mounted without the checkpoints it recorded. With `fresh` neither matters:

# %%
def mount_output(folder: Path, kernel: str, step: int | None):
    "A version's output as the next version sees it: SESSION.json and, with `step`, a resumable run."
    (folder / "run/checkpoints").mkdir(parents=True)
    if step is not None:
        for prefix in ("g", "do"):
            (folder / f"run/checkpoints/{prefix}_{step:08d}").write_text("x")
    write_session_record(folder, SessionSettings(kernel=kernel), "complete", step)

with tempfile.TemporaryDirectory() as d:
    d, kernel = Path(d), "alice/hifigan-ruslan-train"
    first = plan_start(SessionSettings(kernel=kernel), d / "input", d / "v1")
    print(first)
    test_eq(first, Start())
    pinned = SessionSettings(kernel=kernel, previous=kernel)
    test_fail(lambda: plan_start(pinned, d / "input", d / "v2"), exc=KernelStop,
              contains="the previous version's output of alice/hifigan-ruslan-train is not mounted under")
    mount_output(d / "input/notebooks/alice/hifigan-ruslan-train", kernel, 40)
    second = plan_start(pinned, d / "input", d / "v2")
    print(second)
    test_eq(second, Start(resumed=40))
    shutil.rmtree(d / "input/notebooks/alice/hifigan-ruslan-train/run")
    test_fail(lambda: plan_start(pinned, d / "input", d / "v3"), exc=KernelStop,
              contains="saved checkpoints up to step 40, but none is mounted under")
    test_eq(plan_start(SessionSettings(kernel=kernel, previous=kernel, fresh=True), d / "input", d / "v4"),
            Start())
    shutil.rmtree(d / "input/notebooks")  # the previous version was a smoke run, not a run to continue
    smoke_output = d / "input/notebooks/alice/hifigan-ruslan-train"
    mount_output(smoke_output, kernel, None)
    (smoke_output / "run").rename(smoke_output / SMOKE_DIR)
    for prefix in ("g", "do"):
        (smoke_output / f"{SMOKE_DIR}/checkpoints/{prefix}_00000300").write_text("x")
    test_eq(plan_start(pinned, d / "input", d / "v5"), Start())

# %% [markdown]
# A previous version that stopped before its first checkpoint recorded no step: the next one starts from the weights the push attached, here found where Kaggle mounts datasets:

# %%
with tempfile.TemporaryDirectory() as d:
    d, kernel = Path(d), "alice/hifigan-ruslan-train"
    mount_output(d / "input/notebooks/alice/hifigan-ruslan-train", kernel, None)
    weights = d / "input/datasets/alice/hifigan-ruslan-universal/generator_universal.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    settings = SessionSettings(kernel=kernel, previous=kernel, init_from="universal",
                               weights_dataset="alice/hifigan-ruslan-universal")
    start = plan_start(settings, d / "input", d / "working")
    print(start)
    test_eq(start, Start(init_from=weights))


# %% [markdown]
# ## The corpus
#
# The corpus is the dataset the metadata attaches, `corpus_dataset`, and nothing else under `/kaggle/input`. A search of all the inputs would find other things when the dataset is missing: the previous version's output holds WAVs (its validation samples), which `prepare` would take for a plain folder of audio and train on. So `locate_corpus` looks only where Kaggle mounts that dataset (`/kaggle/input/datasets/OWNER/SLUG/` today, `/kaggle/input/SLUG/` before), and stops the session in its first minute when it is not there, naming it and what is mounted instead. Inside the dataset, `prepare`'s `find_corpus` finds the layout (RUSLAN, LJSpeech, Festival); a folder of audio without transcripts is taken only when the settings say `plain_audio`, and a notebook's output (a folder with `SESSION.json`) never. An absolute `corpus` names a folder anywhere, for running the notebook outside Kaggle.

# %%
#| export
def mounted_dataset(input_root, dataset: str) -> Path | None:
    "Where Kaggle mounted `dataset` (OWNER/SLUG) under `input_root`, in today's layout or the older one."
    owner, slug = dataset.split("/", 1)
    for folder in (Path(input_root) / "datasets" / owner / slug, Path(input_root) / slug):
        if folder.is_dir():
            return folder
    return None

def _mounted(input_root: Path) -> str:
    "What is mounted under `input_root`, two or three levels deep, for a message."
    tops = sorted(p for p in input_root.glob("*") if p.is_dir()) if input_root.is_dir() else []
    found = [q for top in tops for q in (sorted(top.glob("*/*")) if top.name in ("datasets", "notebooks")
                                           else [top])]
    return ", ".join(str(q.relative_to(input_root)) for q in found[:6]) or "nothing"

def locate_corpus(settings: SessionSettings, input_root) -> Corpus:
    "The corpus this session prepares: in the attached corpus dataset, never an output; else a `KernelStop`."
    input_root = Path(input_root)
    if Path(settings.corpus).is_absolute():
        base = Path(settings.corpus)
    elif (mount := mounted_dataset(input_root, settings.corpus_dataset)) is not None:
        base = mount / settings.corpus
    else:
        raise KernelStop(f"the corpus dataset {settings.corpus_dataset} is not mounted under {input_root} "
                         f"(mounted: {_mounted(input_root)}): check its name and that your account can open "
                         "it, then push again; nothing was trained")
    if any((folder / SESSION_FILE).is_file() for folder in (base, *base.parents)):
        raise KernelStop(f"{base}: a notebook's output (it holds {SESSION_FILE}), not a corpus; "
                         "nothing was trained")
    try:
        corpus = find_corpus(base)
    except UserError as e:
        raise KernelStop(f"the corpus of {settings.corpus_dataset}: {e}; nothing was trained") from None
    if corpus.transcripts is None and not settings.plain_audio:
        raise KernelStop(f"{base}: audio without transcripts (no RUSLAN or LJSpeech metadata, no Festival "
                         "txt.done.data); set plain_audio to true to train on it as it is; "
                         "nothing was trained")
    return corpus


# %%
show_doc(locate_corpus)

# %%
from hifigan_ruslan.testing import tiny_corpus

# %% [markdown]
# The corpus where Kaggle mounts it, in either layout; then the stops: only the previous version's output mounted, a plain folder of audio without `plain_audio`, and an absolute `corpus` inside an output:

# %%
with tempfile.TemporaryDirectory() as d:
    d, ruslan = Path(d), SessionSettings()
    shutil.copytree(tiny_corpus(), d / "input/datasets/freezerainml/ruslan")
    found = locate_corpus(ruslan, d / "input")
    print(found)
    test_eq(found.transcripts.parent, d / "input/datasets/freezerainml/ruslan")
    (d / "input/datasets/freezerainml/ruslan").rename(d / "input/ruslan")  # the older layout
    test_eq(locate_corpus(ruslan, d / "input").audio_dir.parent, d / "input/ruslan")
    shutil.rmtree(d / "input")
    output = d / "input/notebooks/alice/hifigan-ruslan-train"  # only the previous output: WAVs, no corpus
    (output / "run/samples").mkdir(parents=True)
    (output / SESSION_FILE).write_text("{}")
    shutil.copyfile(next((tiny_corpus() / "RUSLAN").glob("*.wav")), output / "run/samples/a_real.wav")
    test_fail(lambda: locate_corpus(ruslan, d / "input"), exc=KernelStop,
              contains=f"the corpus dataset freezerainml/ruslan is not mounted under {d / 'input'} (mounted: "
                       "notebooks/alice/hifigan-ruslan-train): check its name")
    test_fail(lambda: locate_corpus(SessionSettings(corpus=str(output / "run")), d / "input"),
              exc=KernelStop, contains="run: a notebook's output (it holds SESSION.json), not a corpus")
    plain = d / "input/datasets/alice/voice"
    shutil.copytree(tiny_corpus() / "RUSLAN", plain)
    voice = SessionSettings(corpus_dataset="alice/voice")
    test_fail(lambda: locate_corpus(voice, d / "input"), exc=KernelStop,
              contains="voice: audio without transcripts")
    test_eq(locate_corpus(replace(voice, plain_audio=True), d / "input"), (None, plain))


# %% [markdown]
# ## A slice of the corpus
#
# A smoke run prepares only the first `smoke_clips` clips of the corpus: `corpus_slice` writes their transcript lines into a folder of its own and links their audio files next to them, so that `prepare_corpus` sees a small corpus of the same shape and nothing is copied. A plain audio folder gives its first clips by name. It returns what `prepare_corpus` takes: the metadata file, or the folder of a plain slice.

# %%
#| export
def corpus_slice(corpus: Corpus, out, clips: int) -> Path:
    "A corpus in `out` of the first `clips` clips of `corpus`, audio linked; its metadata file or folder."
    out = Path(out)
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    audio = sorted(p for p in Path(corpus.audio_dir).iterdir() if is_audio_name(p.name))
    if corpus.transcripts is None:
        chosen, sliced = audio[:clips], out / "wavs"
    else:
        entries = read_metadata(corpus.transcripts)[0][:clips]
        keys = {clip_key(e.id) for e in entries}
        chosen, sliced = [p for p in audio if clip_key(p.stem) in keys], out / METADATA_NAME
        sliced.write_text("".join(f"{e.id}|{e.text}\n" for e in entries), encoding="utf-8")
    for path in chosen:
        if not (out / "wavs" / path.name).exists():
            (out / "wavs" / path.name).symlink_to(path.resolve())
    return sliced


# %%
with tempfile.TemporaryDirectory() as d:
    sliced = corpus_slice(find_corpus(tiny_corpus()), Path(d) / "slice", clips=5)
    print(sliced.read_text().splitlines()[0])
    test_eq(len(sliced.read_text().splitlines()), 5)
    test_eq(len(list((Path(d) / "slice/wavs").iterdir())), 5)
    test_eq(find_corpus(Path(d) / "slice"), (sliced, Path(d) / "slice/wavs"))
    plain = corpus_slice(Corpus(None, tiny_corpus() / "RUSLAN"), Path(d) / "plain", clips=3)
    test_eq((plain, len(list(plain.iterdir()))), (Path(d) / "plain/wavs", 3))


# %% [markdown]
# ## The training command
#
# Both T4s are used through `torchrun` (here `python -m torch.distributed.run`, which needs no script on the path), one process per GPU, in fp16: the T4 has fast fp16 tensor cores and no bf16. Without a GPU the same launcher starts one process on the CPU, which is how the tests run the notebook, so they exercise the launch path Kaggle uses. The time budget goes to `train`, which stops when it is spent and writes a final checkpoint; `checkpoint_minutes` adds a checkpoint whenever that many minutes have passed since the last one (`train.checkpoint_every_minutes`), so that a session stopped by the weekly quota loses at most that much, where the recipe's rule alone (every 5 epochs) would lose an hour or more. Two optional inputs pass straight through: `init_from`, the pretrained generator of a first version (above), and `mel_dir`, a folder of mels predicted by an acoustic model, for fine-tuning the vocoder on the features it will be given at synthesis time.

# %%
#| export
def training_command(prepared, run_dir, preset: str | None, gpus: int, time_budget_s: float,
                     max_steps: int | None = None, overrides=(), init_from=None, mel_dir=None,
                     checkpoint_minutes: float = 0) -> list[str]:
    "The torchrun command line that trains on `gpus` GPUs in fp16 (0: one CPU process) within the budget."
    if time_budget_s < 60:
        raise KernelStop(f"time budget {time_budget_s:.0f} s: too little left to train; "
                         "raise session_hours or shorten preparation")
    cmd = [sys.executable, "-u", "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={max(gpus, 1)}", "-m", "hifigan_ruslan", "train", "--data", str(prepared),
           "--out", str(run_dir)]
    if preset:  # without one, a resumed run keeps the config it saved
        cmd += ["--preset", preset]
    cmd += ["--time-budget", str(int(time_budget_s))]
    for flag, value in (("--max-steps", max_steps), ("--init-from", init_from), ("--mel-dir", mel_dir)):
        cmd += [flag, str(value)] if value else []
    sets = ["train.tensorboard=false"]  # Kaggle's image has TensorFlow, which TensorBoard's writer imports
    sets += ["train.precision=fp16"] if gpus else []
    sets += [f"train.checkpoint_every_minutes={checkpoint_minutes:g}"] if checkpoint_minutes else []
    for override in sets + list(overrides):
        cmd += ["--set", override]
    return cmd


# %%
show_doc(training_command)

# %%
cmd = training_command("/kaggle/temp/prepared", "/kaggle/working/run", "recipe", gpus=2,
                       time_budget_s=38_000.4, checkpoint_minutes=30)
print(" ".join(cmd[1:]))
test_eq(cmd[1:7], ["-u", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"])
test_eq(cmd[-8:], ["--time-budget", "38000", "--set", "train.tensorboard=false", "--set",
                   "train.precision=fp16", "--set", "train.checkpoint_every_minutes=30"])
cpu = training_command("p", "r", "tiny", gpus=0, time_budget_s=600, max_steps=5)
assert "--nproc_per_node=1" in cpu, cpu
test_eq(cpu[-4:], ["--max-steps", "5", "--set", "train.tensorboard=false"])
test_fail(lambda: training_command("p", "r", "recipe", gpus=2, time_budget_s=30), exc=KernelStop,
          contains="time budget 30 s: too little left to train")
transfer = training_command("p", "r", "recipe", gpus=2, time_budget_s=600, init_from="/in/g.pth",
                            mel_dir="/in/mels")
test_eq(transfer[-10:-4], ["--time-budget", "600", "--init-from", "/in/g.pth", "--mel-dir", "/in/mels"])
assert "--preset" not in training_command("p", "r", None, gpus=2, time_budget_s=600)  # resume: saved config


# %% [markdown]
# A full version trains once, in `working/run`, until its budget ends. A smoke run trains in `working/smoke`, apart from the run it carries on, in two stages: `smoke_steps` steps with a validation and a checkpoint halfway and at the end, then again from that checkpoint, which is the resume a kill would need, for `smoke_resume_steps` more. A smoke run always starts afresh, with the preset a full version would start with.

# %%
#| export
@dataclass(frozen=True)
class TrainingStage:
    "One `train` command of the session: where, from which preset and weights, until which step."
    run_dir: Path
    preset: str | None
    max_steps: int | None = None
    init_from: Path | None = None
    overrides: tuple[str, ...] = ()
    resumes: bool = False  # it must resume from the checkpoint of the stage before

def training_stages(settings: SessionSettings, working, start: Start) -> list[TrainingStage]:
    "The `train` commands this version runs: one for a full version, train and resume for a smoke run."
    working = Path(working)
    first_preset = "finetune" if start.init_from else "recipe"
    if not settings.smoke:  # a resumed run keeps the config it saved
        preset = settings.preset or (None if start.resumed is not None else first_preset)
        return [TrainingStage(working / RUN_DIR, preset, settings.max_steps or None, start.init_from,
                              settings.train_set)]
    half = max(settings.smoke_steps // 2, 1)
    sets = (f"train.val_every_steps={half}", f"train.checkpoint_every_steps={half}",
            f"train.log_every_steps={min(half, 10)}", *settings.train_set)
    preset, end = settings.preset or first_preset, settings.smoke_steps + settings.smoke_resume_steps
    return [TrainingStage(working / SMOKE_DIR, preset, settings.smoke_steps, start.init_from, sets),
            TrainingStage(working / SMOKE_DIR, None, end, None, sets, resumes=True)]


# %%
stages = training_stages(SessionSettings(**SMOKE), "/kaggle/working", Start())
for stage in stages:
    print(stage)
test_eq([(s.run_dir.name, s.preset, s.max_steps, s.resumes) for s in stages],
        [("smoke", "recipe", 200, False), ("smoke", None, 300, True)])
test_eq(stages[0].overrides[:2], ("train.val_every_steps=100", "train.checkpoint_every_steps=100"))
[full] = training_stages(SessionSettings(), "/kaggle/working", Start(resumed=4000))
test_eq((full.run_dir, full.preset, full.max_steps), (Path("/kaggle/working/run"), None, None))
[first] = training_stages(SessionSettings(), "/kaggle/working", Start(init_from=Path("/in/g.pth")))
test_eq((first.preset, first.init_from), ("finetune", Path("/in/g.pth")))


# %% [markdown]
# ## Running a command with its output in the log
#
# Kaggle's log shows what the kernel prints as it prints it, so `run_logged` passes the command's output through line by line, with Python unbuffered in it and in the processes `torchrun` starts (they inherit `PYTHONUNBUFFERED`), and tqdm's bars repainting at most every 30 s. It keeps the last lines: when the command fails, `error_line` finds the error among them, skipping the report `torchrun` adds about its failed child.

# %%
#| export
def run_logged(cmd: list[str], keep: int = 200) -> tuple[int, list[str]]:
    "Run `cmd`, printing its output as it comes; its exit status and its last `keep` lines."
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "30"}
    tail = collections.deque(maxlen=keep)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        try:
            for line in proc.stdout:
                print(line, end="", flush=True)
                tail.append(line.rstrip("\n"))
        except BaseException:  # an interrupted cell stops training too, which then saves its last checkpoint
            proc.terminate()
            proc.wait()
            raise
    return proc.returncode, list(tail)

_ERROR = re.compile(r"(?:\[rank\d+\]:\s*)?"  # torchrun prefixes a child's lines with its rank
                    r"(hifigan-ruslan \w+: .+"  # the command line's one-line errors
                    r"|[\w.-]+: error: .+"  # a script's (argparse style)
                    r"|[A-Za-z_][\w.]*(?:Error|Exception|Interrupt)\b.*)")  # the last line of a traceback

def error_line(lines: list[str], status: int) -> str:
    "The last error line among a failed command's `lines` (not torchrun's own report), else its exit status."
    for line in reversed(lines):
        found = _ERROR.fullmatch(line.strip())
        if found and "ChildFailedError" not in line and "torch.distributed.elastic" not in line:
            return found.group(1)
    return f"exit status {status}"


# %%
show_doc(run_logged)

# %%
status, lines = run_logged([sys.executable, "-c", "import sys; print('one'); sys.exit('two')"])
test_eq((status, lines), (1, ["one", "two"]))
torchrun_failure = ["hifigan-ruslan train: error: train.lr_g: could not convert 'abc'",
                    "E1203 13:23:06 .../elastic/multiprocessing/api.py:1002] failed (exitcode: 2)",
                    "Traceback (most recent call last):", '  File "run.py", line 1032, in <module>',
                    "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ", "=" * 60,
                    "hifigan_ruslan FAILED", "  exitcode  : 2 (pid: 7808)", "=" * 60]
test_eq(error_line(torchrun_failure, 1), "hifigan-ruslan train: error: train.lr_g: could not convert 'abc'")
test_eq(error_line(["[rank1]: torch.OutOfMemoryError: CUDA out of memory."], 1),
        "torch.OutOfMemoryError: CUDA out of memory.")
test_eq(error_line(["gpu_check: error: /in: no WAV", "done"], 1), "gpu_check: error: /in: no WAV")
test_eq(error_line(["Stopped at step 40 (signal SIGTERM)."], 143), "exit status 143")

# %% [markdown]
# ## The GPU check of a smoke run
#
# A smoke run first measures the GPUs with the package's own GPU check (`python -m hifigan_ruslan.gpu_check`, see [GPU check](11a_gpu_check.ipynb)), which the kernel carries like every other module it needs: the recipe's training step in fp32, in fp16 with the gradient scalers and in bf16 where the GPU computes it natively, with the steps per second, the peak memory, the first losses and the steps the scalers skipped, then the vocoder's real-time factor. Its segments come from the prepared slice of RUSLAN. What it prints goes to `smoke/gpu_check.txt`, and from there into `RESULTS.md`.

# %%
#| export
GPU_CHECK_FILE = "gpu_check.txt"

def gpu_check_command(wavs) -> list[str]:
    "The command that runs the package's GPU check on the clips in `wavs`."
    return [sys.executable, "-u", "-m", "hifigan_ruslan.gpu_check", "--wavs", str(wavs)]

def run_gpu_check(wavs, out_dir, command: list[str] | None = None) -> Path:
    "Run the GPU check (or `command`), printing and saving its output in `out_dir`; a `KernelStop` on failure."
    status, lines = run_logged(command or gpu_check_command(wavs))
    path = Path(out_dir) / GPU_CHECK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if status != 0:
        raise KernelStop(f"the GPU check failed: {error_line(lines, status)}")
    return path


# %%
with tempfile.TemporaryDirectory() as d:
    script = Path(d) / "check.py"  # a stand-in for the GPU check that fails halfway
    script.write_text("print('  fp32 1.00 steps/s'); raise ValueError('bf16 is not supported here')")
    test_eq(gpu_check_command("/tmp/prepared/wavs")[1:], ["-u", "-m", "hifigan_ruslan.gpu_check", "--wavs",
                                                          "/tmp/prepared/wavs"])
    test_fail(lambda: run_gpu_check(d, Path(d) / "smoke", [sys.executable, str(script)]), exc=KernelStop,
              contains="the GPU check failed: ValueError: bf16 is not supported here")
    assert "fp32 1.00 steps/s" in (Path(d) / "smoke" / GPU_CHECK_FILE).read_text()

# %% [markdown]
# ## Results
#
# After training, the kernel shows the loss curves (`plot_metrics` of the metrics module), the newest validation mel comparisons and the validation clips next to the recordings, and writes `RESULTS.md`: how the session ended (its outcome: complete, or the line it stopped with), the best validation mel error and a table of the latest validation points, read from the run's `metrics.csv`, and for a smoke run the GPU check's figures. A session that stopped before training still gets one, which says why.

# %%
#| export
RESULT_COLUMNS = ("step", "epoch", "val_mel_l1", "loss_mel", "loss_d", "loss_adv", "loss_fm", "health")

def _metric_text(value) -> str:
    "A metrics value as a table cell: integers as they are, other numbers to 4 significant digits."
    if value is None or str(value).isdigit():
        return "" if value is None else str(value)
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return str(value)

def write_results(run_dir, path, last: int = 10, *, outcome: str = "complete", gpu_check=None) -> Path:
    "Write `path`: the session's `outcome`, the run in `run_dir` with its latest `last` validation points."
    from hifigan_ruslan.evaluation import markdown_table
    from hifigan_ruslan.metrics import read_metrics
    run_dir, path = Path(run_dir), Path(path)
    metrics = run_dir / "metrics.csv"
    val = [r for r in read_metrics(metrics) if r.get("val_mel_l1")] if metrics.is_file() else []
    steps = max(list_steps(run_dir / "checkpoints"), default=0)
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").glob("*") if not p.name.startswith("."))
    lines = ["# Training results", "", f"Outcome: {outcome}", "",
             f"Run folder `{run_dir.name}`: {steps} steps, checkpoints {', '.join(ckpts) or 'none'}.",
             "Licence: weights trained on RUSLAN (CC BY-NC-SA 4.0) are a derived work: non-commercial use "
             "only, shared under CC BY-NC-SA 4.0, crediting RUSLAN."]
    if val:
        best = min(val, key=lambda r: float(r["val_mel_l1"]))
        lines.append(f"Best validation mel L1: {float(best['val_mel_l1']):.4f} at step {best['step']} "
                     "(`checkpoints/generator_best.pt`).")
        rows = [[_metric_text(r.get(c)) for c in RESULT_COLUMNS] for r in val[-last:]]
        lines += ["", markdown_table(list(RESULT_COLUMNS), rows).rstrip("\n")]
    else:
        lines.append("No validation point yet." if metrics.is_file() else "No metrics written.")
    if gpu_check is not None and Path(gpu_check).is_file():
        figures = Path(gpu_check).read_text(encoding="utf-8").rstrip()
        lines += ["", "## GPU check", "", "```text", figures, "```"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# %%
#| export
def newest_samples(run_dir) -> list[tuple[Path, Path | None]]:
    "`(generated, real)` WAV pairs of the newest validation step in `run_dir/samples` (real None if missing)."
    found = [(m.group(1), m.group(2), p) for p in Path(run_dir, "samples").glob("step_*.wav")
             if (m := re.fullmatch(r"step_(\d{8})_(.+)\.wav", p.name))]
    if not found:
        return []
    last = max(step for step, _, _ in found)
    pairs = []
    for step, uid, generated in sorted(found):
        real = generated.with_name(f"{uid}_real.wav")
        if step == last:
            pairs.append((generated, real if real.is_file() else None))
    return pairs

def show_results(run_dir):
    "Display the loss curves, the newest validation mel comparisons and the audio (generated, then real)."
    from IPython.display import Audio, Image, display
    from hifigan_ruslan.metrics import plot_metrics
    run_dir = Path(run_dir)
    if (run_dir / "metrics.csv").is_file():  # as a PNG: a bare Figure only displays where pyplot is set up
        png = io.BytesIO()
        plot_metrics(run_dir / "metrics.csv").savefig(png, format="png", dpi=80)
        display(Image(data=png.getvalue()))
    for generated, real in newest_samples(run_dir):
        print(generated.stem)
        if generated.with_suffix(".png").is_file():
            display(Image(filename=str(generated.with_suffix(".png"))))
        for wav in filter(None, (generated, real)):
            display(Audio(filename=str(wav)))


# %%
show_doc(write_results)

# %%
show_doc(show_results)

# %% [markdown]
# A run folder as training leaves it (two validation points, samples of both steps):

# %%
import numpy as np, soundfile as sf

# %%
with tempfile.TemporaryDirectory() as d:
    run = Path(d) / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "samples").mkdir()
    for name in ["g_00000040", "do_00000040", "generator_best.pt"]:
        (run / "checkpoints" / name).touch()
    (run / "metrics.csv").write_text("step,epoch,loss_g,loss_d,loss_adv,loss_fm,loss_mel,val_mel_l1,health\n"
                                     "0,0,,,,,,2.91,ok\n20,1,80.1,4.9,3.1,1.2,1.71,2.12,ok\n"
                                     "40,2,71.0,4.5,3.4,1.5,1.43,1.64,ok\n")
    t = np.arange(4410) / 22050
    for stem, f in [("step_00000020_000003", 150), ("step_00000040_000003", 200), ("000003_real", 220)]:
        sf.write(run / "samples" / f"{stem}.wav", 0.3 * np.sin(2 * np.pi * f * t), 22050)
    test_eq([(g.name, r.name) for g, r in newest_samples(run)],
            [("step_00000040_000003.wav", "000003_real.wav")])
    results_text = write_results(run, Path(d) / "RESULTS.md").read_text()
    print(results_text)
    assert "`run`: 40 steps" in results_text, results_text
    assert "RUSLAN (CC BY-NC-SA 4.0)" in results_text, results_text
    assert "Best validation mel L1: 1.6400 at step 40" in results_text, results_text
    assert "| 40 | 2 | 1.64 | 1.43 | 4.5 | 3.4 | 1.5 | ok |" in results_text, results_text
    stopped = write_results(Path(d) / "empty", Path(d) / "R.md", outcome="stopped: no GPU").read_text()
    print(stopped)
    test_eq(stopped.splitlines()[2:5], ["Outcome: stopped: no GPU", "", "Run folder `empty`: 0 steps, "
                                        "checkpoints none."])
    assert "No metrics written." in stopped, stopped
    (run / "gpu_check.txt").write_text("  fp16    3.10 steps/s, peak memory 4.20 GiB\n")
    smoke = write_results(run, Path(d) / "R.md", gpu_check=run / "gpu_check.txt").read_text()
    figures = smoke.split("## GPU check")[1].strip().splitlines()
    test_eq(figures[1], "  fp16    3.10 steps/s, peak memory 4.20 GiB")
    show_results(run)

# %% [markdown]
# ## The output manifest
#
# A download can be cut short, and clients before kaggle 2.2.2 fetched only the first 500 files of an output without a word about the rest (2.2.2, which the project requires, pages through all of them). So the session's last step lists its output in `MANIFEST.json`: every file the project wrote, with its path relative to `/kaggle/working`, its size and its SHA-256. Two kinds of file are left out. The run's lock file `run/.lock` is a marker of the training process, empty and of no use in a download. Kaggle's own files are written after the manifest and change after it: Kaggle runs a version through papermill with `/kaggle/working/__notebook__.ipynb` as its input and output, rewritten after every cell, and then renders it (`__results__.html`, `__output__.json`, `custom.css`, `__results___files/`). After a download, `check_manifest` compares the folder with that list; files the manifest does not name (those, and the log Kaggle adds) are not its concern.

# %%
#| export
MANIFEST_FILE = "MANIFEST.json"
LOCK_FILE = ".lock"  # the run folder's lock (`RunLock` of the run-folder module)
KAGGLE_FILES = ("__notebook__.ipynb", "__results__.html", "__output__.json", "custom.css",
                "__results___files")  # written by Kaggle's batch runner, after the manifest

def in_manifest(relative: str) -> bool:
    "Whether the output file at `relative` (a POSIX path) belongs in the manifest: not Kaggle's, not a lock."
    parts = relative.split("/")
    return parts[0] not in (*KAGGLE_FILES, MANIFEST_FILE) and parts[-1] != LOCK_FILE

def write_manifest(folder) -> Path:
    "Write `folder/MANIFEST.json`: the relative path, size and SHA-256 of every other file under `folder`."
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and in_manifest(p.relative_to(folder).as_posix()))
    entries = [{"path": p.relative_to(folder).as_posix(), "size": p.stat().st_size, "sha256": sha256_file(p)}
               for p in files]
    path = folder / MANIFEST_FILE
    path.write_text(json.dumps({"files": entries}, indent=1) + "\n", encoding="utf-8")
    return path


# %% [markdown]
# The check returns what it found, and says it in lines a user can act on: one per missing or differing file, then a summary. A missing or unreadable manifest is an error of its own, because then nothing can be checked.

# %%
#| export
@dataclass(frozen=True)
class ManifestCheck:
    "The files of a manifest that are missing from a folder or differ from it."
    expected: int
    missing: tuple[str, ...] = ()
    differ: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.missing or self.differ)

    @property
    def summary(self) -> str:
        intact = self.expected - len(self.missing) - len(self.differ)
        return (f"{intact} of {self.expected} files of {MANIFEST_FILE} intact, "
                f"{len(self.missing)} missing, {len(self.differ)} differ")


# %% [markdown]
# `read_manifest` reads the list back, and `check_manifest` compares it with the folder:

# %%
#| export
def read_manifest(folder) -> list[dict]:
    "The file entries of `folder/MANIFEST.json`."
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise UserError(f"{path}: no manifest in the download (a version older than the manifest, or one "
                        "that ended before its report); its completeness cannot be checked")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["files"]
        return [{"path": str(e["path"]), "size": int(e["size"]), "sha256": str(e["sha256"])} for e in entries]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not a manifest (a JSON object with a list `files` of path, size, sha256); "
                        "download it again with --force") from None

def check_manifest(folder) -> ManifestCheck:
    "Compare the files under `folder` with its manifest: which are missing, which differ in size or SHA-256."
    folder = Path(folder)
    entries = [e for e in read_manifest(folder) if in_manifest(e["path"])]  # older manifests listed Kaggle's
    missing, differ = [], []
    for entry in entries:
        path = folder / entry["path"]
        if not path.is_file():
            missing.append(f"missing: {entry['path']} ({entry['size']} bytes)")
        elif path.stat().st_size != entry["size"]:
            differ.append(f"differs: {entry['path']} ({path.stat().st_size} bytes, expected {entry['size']})")
        elif sha256_file(path) != entry["sha256"]:
            differ.append(f"differs: {entry['path']} (SHA-256 {sha256_file(path)[:12]}..., "
                          f"expected {entry['sha256'][:12]}...)")
    return ManifestCheck(len(entries), tuple(missing), tuple(differ))


# %%
show_doc(write_manifest)

# %%
show_doc(check_manifest)

# %% [markdown]
# A session's output, its manifest, and a download that lost one file and damaged another (same size, other bytes):

# %%
with tempfile.TemporaryDirectory() as d:
    working, download = Path(d) / "working", Path(d) / "download"
    (working / "run/checkpoints").mkdir(parents=True)
    (working / "RESULTS.md").write_text("# Training results\n")
    (working / "run/metrics.csv").write_text("step,loss\n0,1.0\n")
    (working / "run/checkpoints/g_00000010").write_bytes(bytes(range(256)))
    (working / "run" / LOCK_FILE).touch()  # left by the training process: not listed
    for name in ("__notebook__.ipynb", "__results__.html", "__results___files/plot.png"):  # Kaggle's own
        (working / name).parent.mkdir(exist_ok=True)
        (working / name).write_text("written by Kaggle")
    manifest = json.loads(write_manifest(working).read_text())
    print(json.dumps(manifest["files"][0]))
    test_eq([e["path"] for e in manifest["files"]],
            ["RESULTS.md", "run/checkpoints/g_00000010", "run/metrics.csv"])
    test_eq(check_manifest(working), ManifestCheck(3))
    shutil.copytree(working, download)
    (download / "run/metrics.csv").unlink()
    (download / "run/checkpoints/g_00000010").write_bytes(bytes(256))
    (download / "hifigan-ruslan-train.log").write_text("[]")  # added by Kaggle, not in the manifest
    (download / "__notebook__.ipynb").write_text("rewritten by papermill after the manifest")
    found = check_manifest(download)
    print("\n".join([*found.missing, *found.differ, found.summary]))
    test_eq(found.missing, ("missing: run/metrics.csv (16 bytes)",))
    assert found.differ[0].startswith("differs: run/checkpoints/g_00000010 (SHA-256")
    assert not found.ok
    test_eq(found.summary, "1 of 3 files of MANIFEST.json intact, 1 missing, 1 differ")
    (download / MANIFEST_FILE).write_text('{"files": [{"path": "a"}]}')
    test_fail(lambda: check_manifest(download), exc=UserError, contains="MANIFEST.json: not a manifest")
    (download / MANIFEST_FILE).unlink()
    test_fail(lambda: check_manifest(download), exc=UserError, contains="MANIFEST.json: no manifest in the")


# %% [markdown]
# ## The report, whatever happens
#
# A session that stops must still say why in its output, or `hifigan-ruslan kaggle output` has nothing to show but a download it cannot check. `SessionReport` writes the three files of the report: `RESULTS.md` (the outcome and the run), `SESSION.json` (the record the next version, and the next push, look for) and, last, `MANIFEST.json`.

# %%
#| export
class SessionReport:
    "The report of one session in `working`: RESULTS.md, SESSION.json and MANIFEST.json."
    def __init__(self, settings: SessionSettings, working):
        self.settings, self.working = settings, Path(working)
        self.outcome: str | None = None

    @property
    def run_dir(self) -> Path:
        "The run this session trains: `working/smoke` for a smoke run, else `working/run`."
        return self.working / (SMOKE_DIR if self.settings.smoke else RUN_DIR)

    def write(self, outcome: str) -> Path:
        "Write the report with `outcome` (`complete: ...`, `stopped: ...`, `failed: ...`); the manifest."
        self.outcome = outcome
        gpu_check = self.run_dir / GPU_CHECK_FILE
        write_results(self.run_dir, self.working / "RESULTS.md", outcome=outcome, gpu_check=gpu_check)
        step = resumable_step(self.working / RUN_DIR / "checkpoints")  # of the run the next version resumes
        write_session_record(self.working, self.settings, outcome, step)
        return write_manifest(self.working)


# %%
show_doc(SessionReport.write)


# %% [markdown]
# ## Run All in the editor
#
# Kaggle runs the same notebook in two ways: as a version pushed with `kaggle kernels push` (`KAGGLE_KERNEL_RUN_TYPE=Batch`), whose `/kaggle/working` becomes the version's output, and from its editor (`Interactive`), whose `/kaggle/working` is nobody's output: neither `hifigan-ruslan kaggle output` nor the next version ever sees what it trained. A Run All there with the settings of a full session would spend eleven hours of quota on a run that is then lost. So in the editor the kernel runs the smoke settings, unless `in_editor` asks for the full session, and its first line says which:

# %%
#| export
def session_settings(values: dict, run_type: str | None) -> tuple[SessionSettings, str]:
    "The settings a session runs with, and the line that says what it does (in the editor: the smoke run)."
    settings = SessionSettings.from_dict(values)
    if run_type == "Interactive" and not settings.smoke and settings.in_editor == "smoke":
        return replace(settings, **SMOKE), (
            f"Interactive session (Run All in Kaggle's editor): the smoke settings, not the "
            f"{settings.session_hours:g}-hour session, since nothing trained here becomes a version's "
            "output; "
            'set in_editor to "full" to train here anyway, or push a version: hifigan-ruslan kaggle push')
    what = "smoke run" if settings.smoke else f"full session of {settings.session_hours:g} h"
    where = {"Batch": "a pushed version", "Interactive": "in Kaggle's editor"}.get(run_type, "outside Kaggle")
    return settings, f"{what} of {settings.kernel or 'this kernel'}, {where}"


# %%
editor, line = session_settings({"kernel": "alice/hifigan-ruslan-train"}, "Interactive")
print(line)
test_eq((editor.smoke, editor.session_hours), (True, SMOKE["session_hours"]))
full, line = session_settings({"kernel": "alice/hifigan-ruslan-train", "in_editor": "full"}, "Interactive")
test_eq((full.smoke, line), (False, "full session of 11 h of alice/hifigan-ruslan-train, in Kaggle's editor"))
test_eq(session_settings({}, "Batch")[0], SessionSettings())
test_eq(session_settings({}, "Batch")[1], "full session of 11 h of this kernel, a pushed version")


# %% [markdown]
# ## The session, start to end
#
# `run_session` is the kernel: the notebook calls it in one cell, after writing the package. Its stages go from the cheap checks to the costly work, so that a session that cannot do its job stops in its first minute: where training starts (the run to resume, the weights to fine-tune), the corpus, the GPUs, then preparing the corpus, the GPU check of a smoke run, and training, one `train` command per stage, within the session's budget less the minutes kept for the report.
#
# Every way a session can end goes through the report. A stop (`KernelStop`, or a user error from the settings or `prepare`) prints its one line, a bug its traceback, and both are recorded as the outcome in `RESULTS.md` and `SESSION.json`; then the function returns normally. The version therefore ends as complete on Kaggle: Kaggle does not document whether it keeps the output of a version that fails, and the reason must reach the user either way. The push after it reads that outcome (see [Kaggle client](12b_kaggle_client.ipynb)) and refuses to resume from a session that stopped unless told to (`--after-error`, `--fresh`). An interrupt, the stop button in the editor, is passed on after the report is written.

# %%
#| export
def _last_line(error: BaseException) -> str:
    "A failure as one line: a stop's reason, else the type and the last line of the message."
    text = str(error).strip()
    if isinstance(error, (KernelStop, UserError)):
        return text
    return f"{type(error).__name__}: {text.splitlines()[-1]}" if text else type(error).__name__

def train_stages(settings: SessionSettings, start: Start, working, prepared, gpus: int,
                 deadline: float) -> str:
    "Run this version's `train` commands until `deadline` (a `time.time()`); the last one's summary."
    summary = ""
    for stage in training_stages(settings, working, start):
        cmd = training_command(prepared, stage.run_dir, stage.preset, gpus=gpus,
                               time_budget_s=deadline - time.time(), max_steps=stage.max_steps,
                               overrides=stage.overrides, init_from=stage.init_from,
                               mel_dir=settings.mel_dir or None,
                               checkpoint_minutes=settings.checkpoint_minutes)
        print(" ".join(cmd), flush=True)
        status, lines = run_logged(cmd)
        if status != 0:
            raise KernelStop(f"training failed: {error_line(lines, status)}")
        if stage.resumes and not any(line.startswith("Resuming from") for line in lines):
            raise KernelStop(f"the smoke run did not resume from its checkpoint in {stage.run_dir}")
        summary = next((line for line in reversed(lines) if line.startswith("Stopped at step")), "")
        summary = summary.split(". ")[0]
        print(f"stage done: {summary}", flush=True)
    return summary


# %%
#| export
def run_session(values: dict, input_root, working, temp, started: float | None = None,
                environ=None) -> SessionReport:
    "One session of the kernel from its settings `values`: check, prepare, train, and always the report."
    environ = os.environ if environ is None else environ
    started = time.time() if started is None else started
    input_root, working, temp = Path(input_root), Path(working), Path(temp)
    settings = SessionSettings()
    try:
        settings, line = session_settings(values, environ.get("KAGGLE_KERNEL_RUN_TYPE"))
        print(line, flush=True)
        report = SessionReport(settings, working)
        start = plan_start(settings, input_root, working)  # 1. the run to resume, or the weights
        print(start, flush=True)
        corpus = locate_corpus(settings, input_root)  # 2. the corpus dataset
        print(f"corpus: {corpus.transcripts or corpus.audio_dir}", flush=True)
        gpus = gpu_names()  # 3. the GPUs, CUDA left alone: `prepare` forks
        print(check_gpus(gpus, on_kaggle(environ)), flush=True)
        source = corpus.transcripts or corpus.audio_dir  # 4. the corpus prepared (a smoke run: a slice)
        if settings.smoke:
            source = corpus_slice(corpus, temp / "slice", settings.smoke_clips)
        print(format_summary(prepare_corpus(source, temp / "prepared", val_size=settings.val_size)))
        print(f"{(time.time() - started) / 60:.1f} min since the start", flush=True)
        if settings.gpu_check:  # 5. a smoke run measures the GPUs
            run_gpu_check(temp / "prepared/wavs", report.run_dir)
        deadline = started + settings.session_hours * 3600 - settings.report_minutes * 60
        summary = train_stages(settings, start, working, temp / "prepared", len(gpus), deadline)  # 6. train
        outcome = f"complete: {summary}" if summary else "complete"
    except (KernelStop, UserError) as e:
        outcome = f"stopped: {_last_line(e)}"
        print(f"Stopped: {_last_line(e)}", flush=True)
    except KeyboardInterrupt:
        SessionReport(settings, working).write("stopped: interrupted")
        raise
    except Exception as e:  # a bug: its traceback in the log, its last line in the report
        traceback.print_exc()
        outcome = f"failed: {_last_line(e)}"
    report = SessionReport(settings, working)
    manifest = report.write(outcome)
    print(f"the report is in {working} (RESULTS.md, {SESSION_FILE}, {manifest.name}); outcome: {outcome}")
    return report


# %%
show_doc(run_session)

# %% [markdown]
# Sessions that stop before anything costly, run here with Kaggle's folders in a temporary one: a settings dictionary with a mistake, and a Kaggle session without a GPU. Each ends normally, with its one line printed and recorded; neither prepared the corpus. The whole kernel, executed as Kaggle executes it, is on [Kaggle runs](12c_kaggle_runs.ipynb).

# %%
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    shutil.copytree(tiny_corpus(), d / "input/datasets/freezerainml/ruslan")
    (d / "working" / RUN_DIR).mkdir(parents=True)
    (d / "working" / RUN_DIR / LOCK_FILE).touch()
    report = run_session({"smoke": "yes"}, d / "input", d / "working", d / "temp")
    test_eq(report.outcome, "stopped: kernel setting smoke='yes': expected bool")
    no_gpu = run_session({"kernel": "alice/hifigan-ruslan-train"}, d / "input", d / "working", d / "temp",
                         environ={"KAGGLE_KERNEL_RUN_TYPE": "Batch"})
    record = json.loads((d / "working" / SESSION_FILE).read_text())
    test_eq((record["outcome"], record["step"]), (no_gpu.outcome, None))
    assert no_gpu.outcome.startswith("stopped: no GPU in this Kaggle session"), no_gpu.outcome
    test_eq(check_manifest(d / "working"), ManifestCheck(2))  # RESULTS.md and SESSION.json; not run/.lock
    assert not (d / "temp/prepared").exists()
test_eq(_last_line(ValueError("first\nsecond")), "ValueError: second")
test_eq(_last_line(KeyboardInterrupt()), "KeyboardInterrupt")
