# %% [markdown]
# # Kaggle kernel
#
# > Build the Kaggle training kernel: a notebook that carries the package inside itself, trains on two T4s within one session, and resumes from its previous version.

# %%
#| default_exp kaggle_kernel

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import ast, configparser, json, os, re
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.kaggle_session import DATASET_SOURCE, SessionSettings

# %% [markdown]
# Kaggle gives a free session of up to 12 hours on two NVIDIA T4s, which is enough to train a useful HiFi-GAN on RUSLAN in a few sessions. Three constraints shape the kernel this module builds:
#
# - **No project on the image.** The kernel runs on Kaggle's stock Python image (PyTorch, torchaudio, librosa, soundfile, matplotlib, IPython) with the internet switched off, so it cannot `pip install` this package. The kernel notebook therefore *carries* the package: `hifigan-ruslan kaggle build` turns a short literate script, the kernel template shipped inside the package (`hifigan_ruslan/assets/kaggle_kernel.py.txt`), into `kaggle/train.ipynb` and inserts the source of the modules it needs as cells that write them to disk. Both come from the installed package, so the build works from a wheel as well as from a checkout.
# - **Sessions end.** Whatever is in `/kaggle/working` when a session stops becomes the version's output. The kernel lists *itself* as an input (`kernel_sources`), so the next version sees the previous output under `/kaggle/input` and resumes from its newest checkpoint.
# - **One source of truth.** The notebook is generated and committed in the repository; like the nbdev modules, it must not drift from its sources. `hifigan-ruslan kaggle build --check` fails when the committed notebook differs from a fresh build, so CI catches a package change that was not rebuilt into the kernel.
#
# What the kernel does in a session (resume, fine-tune, train, report, list its output) is the [Kaggle session](12_kaggle_session.ipynb) module; pushing the kernel, watching it and downloading its output is the [Kaggle client](12b_kaggle_client.ipynb), whose page also gives the workflow step by step. The runs of both against a stand-in for Kaggle, and of the generated notebook as Kaggle would execute it, are on [Kaggle runs](12c_kaggle_runs.ipynb).

# %% [markdown]
# ## Where the kernel files live
#
# `build` and `push` work in one folder, the **kernel root**: it receives `kaggle/train.ipynb` and `kernel-metadata.json`, and `kaggle kernels push -p ROOT` uploads from it. In a source checkout (a folder whose `settings.ini` builds this package, found above the current folder) that is the repository itself, whose committed kernel is what CI checks; anywhere else it is the current folder. Downloads go to `runs/kaggle` under the kernel root.

# %%
#| export
PLACEHOLDER_OWNER = "your-kaggle-username"
DEFAULT_SLUG = "hifigan-ruslan-train"
KERNEL_TEMPLATE = "assets/kaggle_kernel.py.txt"  # inside the package
KERNEL_NOTEBOOK = "kaggle/train.ipynb"
METADATA_FILE = "kernel-metadata.json"
OWNER_ENV = "HIFIGAN_KAGGLE_OWNER"
SLUG_ENV = "HIFIGAN_KAGGLE_SLUG"

def _read_ini(path: Path) -> configparser.SectionProxy:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(path, encoding="utf-8")
    return ini["DEFAULT"]

def checkout_root(start=None) -> Path | None:
    "The hifigan-ruslan source checkout at or above `start` (default: the current folder), or None."
    start = Path.cwd() if start is None else Path(start)
    for folder in [start.resolve(), *start.resolve().parents]:
        ini = folder / "settings.ini"
        if ini.is_file() and _read_ini(ini).get("lib_path") == "hifigan_ruslan":
            return folder
    return None

def default_kernel_root(root: str | None = None) -> Path:
    "The folder `build` and `push` work in: `root`, else the checkout around the current folder, else it."
    if root is not None:
        return Path(root)
    return checkout_root() or Path.cwd()

def default_output_dir(root=None) -> Path:
    "Where `output` downloads by default: `runs/kaggle` under the kernel root."
    return default_kernel_root(root) / "runs" / "kaggle"


# %%
show_doc(default_kernel_root)

# %%
import tempfile

# %%
repo = checkout_root()
print(repo)
assert (repo / "settings.ini").is_file()
test_eq(default_kernel_root(), repo)  # this notebook runs inside the checkout
test_eq(default_kernel_root("elsewhere"), Path("elsewhere"))
test_eq(default_output_dir("elsewhere"), Path("elsewhere/runs/kaggle"))
with tempfile.TemporaryDirectory() as d:
    test_eq(checkout_root(d), None)


# %% [markdown]
# ## Kernel settings and metadata
#
# The kernel's identity is `owner/slug`. Each of the two is taken from the first of these that names it: an explicit argument, the environment (`HIFIGAN_KAGGLE_OWNER`, `HIFIGAN_KAGGLE_SLUG`), the `kernel-metadata.json` already in the kernel root, and `settings.ini` (`kaggle_owner`, `kaggle_slug`) when the root is a checkout. The placeholder owner counts as unset, so a checkout's committed metadata, which carries the placeholder, lets `settings.ini` speak; once a build has written a real owner into `kernel-metadata.json`, that file is the kernel's record (edit it, or set the variable, to move the kernel). The build writes the identity into `kernel-metadata.json`, which the `kaggle` CLI reads. The title is derived from the slug so that Kaggle's slug of the title is the slug itself (the CLI warns otherwise, and Kaggle may then give the kernel a different address).

# %%
#| export
@dataclass(frozen=True)
class KernelSettings:
    "Who owns the kernel and what it is called on Kaggle."
    owner: str
    slug: str = DEFAULT_SLUG

    @property
    def id(self) -> str:
        return f"{self.owner}/{self.slug}"

    @property
    def title(self) -> str:
        "A title whose Kaggle slug is `slug` (`hifigan-ruslan-train` -> `Hifigan Ruslan Train`)."
        return self.slug.replace("-", " ").title()


# %% [markdown]
# `kernel_settings` looks for the owner and the slug in that order:

# %%
#| export
def _metadata_identity(root: Path) -> tuple[str | None, str | None]:
    "`(owner, slug)` of the `kernel-metadata.json` in `root`, or Nones."
    path = root / METADATA_FILE
    if not path.is_file():
        return None, None
    try:
        kernel_id = json.loads(path.read_text(encoding="utf-8")).get("id")
    except (json.JSONDecodeError, AttributeError):
        raise UserError(f"{path}: not a JSON object with an `id`; fix it or delete it to rebuild") from None
    if not isinstance(kernel_id, str) or not re.fullmatch(r"[^/\s]+/[^/\s]+", kernel_id):
        raise UserError(f"{path}: `id` {kernel_id!r} is not OWNER/SLUG; fix it or delete the file to rebuild")
    owner, _, slug = kernel_id.partition("/")
    return owner, slug

def kernel_settings(root, environ=None, owner: str | None = None, slug: str | None = None) -> KernelSettings:
    "Owner and slug: `owner`/`slug`, else the environment, else `root`'s kernel metadata, else settings.ini."
    environ = os.environ if environ is None else environ
    root = Path(root)
    ini = _read_ini(root / "settings.ini") if (root / "settings.ini").is_file() else {}
    meta_owner, meta_slug = _metadata_identity(root)
    owners = [owner, environ.get(OWNER_ENV), meta_owner, ini.get("kaggle_owner")]
    owner = next((o.strip() for o in owners if o and o.strip() != PLACEHOLDER_OWNER), PLACEHOLDER_OWNER)
    slug = next((s.strip() for s in [slug, environ.get(SLUG_ENV), meta_slug, ini.get("kaggle_slug")] if s),
                DEFAULT_SLUG)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", owner):
        raise UserError(f"kaggle owner {owner!r}: not a Kaggle username (set kaggle_owner in settings.ini, "
                        f"the id in {METADATA_FILE} or {OWNER_ENV})")
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug) or not 5 <= len(slug) <= 50:
        raise UserError(f"kaggle slug {slug!r}: use 5 to 50 lowercase letters, digits and single hyphens")
    return KernelSettings(owner, slug)


# %%
show_doc(kernel_settings)

# %%
s = kernel_settings(repo, environ={})
print(s, s.id, repr(s.title))
test_eq(s, KernelSettings(PLACEHOLDER_OWNER, DEFAULT_SLUG))
test_eq(s.title, "Hifigan Ruslan Train")
test_eq(kernel_settings(repo, environ={OWNER_ENV: "alice"}).id, "alice/hifigan-ruslan-train")
test_eq(kernel_settings(repo, environ={OWNER_ENV: "alice"}, owner="bob").id, "bob/hifigan-ruslan-train")
test_fail(lambda: kernel_settings(repo, environ={OWNER_ENV: "alice smith"}), exc=UserError,
          contains="kaggle owner 'alice smith': not a Kaggle username")
test_fail(lambda: kernel_settings(repo, environ={SLUG_ENV: "No_Caps"}), exc=UserError,
          contains="kaggle slug 'No_Caps': use 5 to 50")

# %% [markdown]
# Outside a checkout only the metadata file (or the environment) can name the kernel, and the metadata wins over `settings.ini`, unless it still holds the placeholder:

# %%
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    test_eq(kernel_settings(d, environ={}), KernelSettings(PLACEHOLDER_OWNER))
    (d / METADATA_FILE).write_text(json.dumps({"id": "carol/hifigan-carol-run"}))
    test_eq(kernel_settings(d, environ={}).id, "carol/hifigan-carol-run")
    (d / "settings.ini").write_text("[DEFAULT]\nkaggle_owner = dave\n")
    test_eq(kernel_settings(d, environ={}).id, "carol/hifigan-carol-run")
    (d / METADATA_FILE).write_text(json.dumps({"id": f"{PLACEHOLDER_OWNER}/hifigan-ruslan-train"}))
    test_eq(kernel_settings(d, environ={}).id, "dave/hifigan-ruslan-train")
    (d / METADATA_FILE).write_text("[1, 2")
    test_fail(lambda: kernel_settings(d, environ={}), exc=UserError, contains="metadata.json: not a JSON")
    for bad in [{"title": "no id"}, {"id": "carol"}, {"id": ["carol/run"]}]:
        (d / METADATA_FILE).write_text(json.dumps(bad))
        test_fail(lambda: kernel_settings(d, environ={}), exc=UserError, contains="is not OWNER/SLUG; fix it")


# %% [markdown]
# The metadata follows the `kaggle` CLI's format. Two keys deserve a comment: `enable_internet` must be given as `false` explicitly, because the CLI's default is `true`; and `kernel_sources` names the kernel itself, which attaches the previous version's output to the next one (on the very first push the kernel does not exist yet, so that push leaves it out: `resume=False`). `corpus` is the corpus dataset (RUSLAN unless the session's settings name another), and `datasets` adds inputs to it, such as the pretrained generator that a first version fine-tunes from.

# %%
#| export
def kernel_metadata(settings: KernelSettings, code_file: str = KERNEL_NOTEBOOK, datasets=(),
                    resume: bool = True, corpus: str = DATASET_SOURCE) -> dict:
    "The `kernel-metadata.json`: private, 2 x T4, no internet, the corpus and `datasets`, resuming from itself."
    return {"id": settings.id, "title": settings.title, "code_file": code_file,
            "language": "python", "kernel_type": "notebook", "is_private": True,
            "enable_gpu": True, "enable_tpu": False, "enable_internet": False,
            "machine_shape": "NvidiaTeslaT4",
            "dataset_sources": [corpus, *datasets], "competition_sources": [],
            "kernel_sources": [settings.id] if resume else [],
            "model_sources": [], "keywords": []}


# %%
meta = kernel_metadata(KernelSettings("alice"))
print(json.dumps(meta, indent=1))
test_eq(meta["kernel_sources"], ["alice/hifigan-ruslan-train"])
assert not meta["enable_internet"]
with_weights = kernel_metadata(KernelSettings("alice"), datasets=["alice/x"])
test_eq(with_weights["dataset_sources"], [DATASET_SOURCE, "alice/x"])
test_eq(kernel_metadata(KernelSettings("alice"), resume=False)["kernel_sources"], [])  # a first version
test_eq(kernel_metadata(KernelSettings("alice"), corpus="alice/voice")["dataset_sources"], ["alice/voice"])

# %% [markdown]
# The `kaggle` CLI slugifies titles with `python-slugify`; the derived title must come back as the slug:

# %%
from slugify import slugify

# %%
test_eq([slugify(KernelSettings("x", slug).title) for slug in [DEFAULT_SLUG, "hifigan-v2-run-3", "ruslan"]],
        [DEFAULT_SLUG, "hifigan-v2-run-3", "ruslan"])

# %% [markdown]
# `resolve_kernel_id` is what `status`, `output` and `push` use: an `OWNER/SLUG` given by the user, checked for its shape, or the kernel of the kernel root, which must not be the placeholder (Kaggle would answer with an error about an unknown user much later).

# %%
#| export
_KERNEL_ID = re.compile(r"[^/\s]+/[^/\s]+")

def check_kernel_id(kernel: str) -> str:
    "`kernel` if it has the shape `OWNER/SLUG`, else a `UserError`."
    if not _KERNEL_ID.fullmatch(kernel):
        raise UserError(f"kernel {kernel!r}: expected OWNER/SLUG")
    return kernel

def resolve_kernel_id(kernel: str | None, root=None, environ=None) -> str:
    "`kernel` (checked: `OWNER/SLUG`), else the kernel of `default_kernel_root(root)`, never the placeholder."
    if kernel:
        return check_kernel_id(kernel)
    settings = kernel_settings(default_kernel_root(root), environ)
    if settings.owner == PLACEHOLDER_OWNER:
        raise UserError(f"the kaggle owner is still the placeholder {PLACEHOLDER_OWNER!r}: "
                        f"set kaggle_owner in settings.ini or {OWNER_ENV}")
    return settings.id


# %%
show_doc(resolve_kernel_id)

# %%
test_eq(resolve_kernel_id("alice/run-1"), "alice/run-1")
test_eq(resolve_kernel_id(None, repo, environ={OWNER_ENV: "alice"}), "alice/hifigan-ruslan-train")
test_fail(lambda: resolve_kernel_id("hifigan-ruslan-train"), exc=UserError, contains="expected OWNER/SLUG")
test_fail(lambda: resolve_kernel_id(None, repo, environ={}), exc=UserError,
          contains="'your-kaggle-username': set kaggle_owner in settings.ini or HIFIGAN_KAGGLE_OWNER")

# %% [markdown]
# ## Which modules the kernel carries
#
# The kernel runs `train` through `python -m hifigan_ruslan`, the GPU check of a smoke run through `python -m hifigan_ruslan.gpu_check`, and imports the session itself. It carries exactly the modules those need: the package's `__init__` and `__main__`, the command line (`cli`), the module of `train`, the GPU check, the modules the kernel template imports, and, recursively, every package module those import (found by parsing the source, including imports inside functions). The command line is the exception to "inside functions": each of its subcommands imports its own module when it runs, and following them all would carry the ONNX export and the Kaggle client, which the kernel never runs (with dependencies that Kaggle's image may lack), so for `cli` only its module-level imports count.
#
# Sources are read from the installed package through `importlib.resources`, never from a repository: the build works the same from a wheel.

# %%
#| export
# with `cli`: `python -m hifigan_ruslan train`; `gpu_check` runs as `python -m hifigan_ruslan.gpu_check`
KERNEL_MODULES = ("__init__", "__main__", "training", "gpu_check")

def package_imports(source: str, nested: bool = True) -> set[str]:
    "Names of the `hifigan_ruslan` modules `source` imports (anywhere; with `nested=False`, at module level)."
    tree = ast.parse(source)
    nodes = ast.walk(tree) if nested else tree.body
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("hifigan_ruslan.")}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = "hifigan_ruslan" + ("." + module if module else "")
            if module == "hifigan_ruslan":
                names |= {a.name for a in node.names}
            elif module.startswith("hifigan_ruslan."):
                names.add(module.split(".")[1])
    return names


# %%
sample = """import os
from .config import Config
from . import mel
import hifigan_ruslan.data as d
def f():
    from hifigan_ruslan.training import x
from hifigan_ruslan import __version__
"""
test_eq(package_imports(sample), {"config", "mel", "data", "training", "__version__"})
test_eq(package_imports(sample, nested=False), {"config", "mel", "data", "__version__"})


# %% [markdown]
# `embedded_modules` follows those imports from the entry points and the template:

# %%
#| export
def package_dir():
    "The installed `hifigan_ruslan` package, as an `importlib.resources` traversable."
    return resources.files("hifigan_ruslan")

def kernel_template(package=None) -> str:
    "The kernel's literate py:percent script, shipped as package data."
    return (package or package_dir()).joinpath(KERNEL_TEMPLATE).read_text(encoding="utf-8")

def embedded_modules(script: str | None = None, package=None) -> list[str]:
    "File names of the modules the kernel needs, sorted: entry points, `train`, the script's imports, theirs."
    package = package or package_dir()
    script = kernel_template(package) if script is None else script
    cli = package.joinpath("cli.py").read_text(encoding="utf-8")
    pending = {"cli", *KERNEL_MODULES, *package_imports(cli, nested=False), *package_imports(script)}
    found = set()
    while pending:
        name = pending.pop()
        module = package.joinpath(f"{name}.py")
        if name in found or not module.is_file():
            continue  # a name imported from the package that is not a module
        found.add(name)
        if name != "cli":
            pending |= package_imports(module.read_text(encoding="utf-8")) - found
    return sorted(f"{n}.py" for n in found)


# %%
show_doc(embedded_modules)

# %%
mods = embedded_modules()
print(mods)
needed = {"__init__.py", "__main__.py", "cli.py", "config.py", "data.py", "prepare.py", "kaggle_session.py",
          "training.py", "gpu_check.py", "inference.py", "trainer.py"}
test_eq(needed - set(mods), set())
test_eq([m for m in ["_modidx.py", "kaggle_kernel.py", "kaggle_client.py"] if m in mods], [])  # they stay here

# %% [markdown]
# Every embedded module's own imports are embedded too, except the subcommand modules that `cli` imports when another subcommand runs:

# %%
pkg = package_dir()
imported = set().union(*(package_imports(pkg.joinpath(m).read_text()) for m in mods if m != "cli.py"))
test_eq([n for n in sorted(imported) if pkg.joinpath(f"{n}.py").is_file() and f"{n}.py" not in mods], [])

# %% [markdown]
# ## The settings cell
#
# What a version does is written into the notebook itself, because Kaggle passes nothing else to a kernel: its first code cell is a dictionary of `SessionSettings` (see [Kaggle session](12_kaggle_session.ipynb)), one commented line per field. `hifigan-ruslan kaggle build` writes the defaults, a full session; `push` writes the settings of the version it starts (a smoke run, the previous version to resume, the weights to fine-tune from).

# %%
#| export
SETTINGS_MARKER = "#| kernel-settings"

def _literal(value) -> str:
    "A settings value as Python source (strings in double quotes, tuples as lists)."
    if isinstance(value, tuple):
        return "[" + ", ".join(map(_literal, value)) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)

def settings_source(settings: SessionSettings) -> str:
    "The notebook's settings cell: `SETTINGS = {...}`, one line per field with what it means."
    lines = ["SETTINGS = {  # written by `hifigan-ruslan kaggle push` (or `build`: a full session)"]
    for f in fields(settings):
        value = _literal(getattr(settings, f.name))
        lines.append(f"    {json.dumps(f.name)}: {value},  # {f.metadata['doc']}")
    return "\n".join(lines + ["}"])


# %%
cell = settings_source(SessionSettings(kernel="alice/hifigan-ruslan-train", train_set=("a=1",)))
print("\n".join(cell.splitlines()[:5]))
namespace = {}
exec(cell, namespace)
test_eq(SessionSettings.from_dict(namespace["SETTINGS"]),
        SessionSettings(kernel="alice/hifigan-ruslan-train", train_set=("a=1",)))  # the cell reads back

# %% [markdown]
# ## Building the notebook
#
# The kernel template is a jupytext percent script: prose in markdown cells, short code cells. The build reads it, replaces the cell that says `#| kernel-settings` by the settings, and the one that says `#| embed-package` by one cell per module, each an IPython `%%writefile` of the source (the first line of the template's next cells puts that folder on the path), and writes `kaggle/train.ipynb`. The embedded cells are marked hidden for Kaggle's viewer (`_kg_hide-input`), so a reader sees the story and can still unfold the code.
#
# The build is deterministic: no timestamps, no random cell ids (they are numbered), modules in file-name order, the JSON written by `nbformat` with sorted keys. The same sources always give the same bytes, which is what makes the drift check possible.

# %%
#| export
EMBED_MARKER = "#| embed-package"
HIDDEN = {"_kg_hide-input": True, "_kg_hide-output": True,
          "jupyter": {"source_hidden": True, "outputs_hidden": True}}
KERNELSPEC = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
              "language_info": {"name": "python"}}

def _embedded_cells(script: str, package) -> list:
    "One hidden `%%writefile` cell per module the kernel needs."
    from nbformat.v4 import new_code_cell
    return [new_code_cell(f'%%writefile "{{PACKAGE_DIR}}/hifigan_ruslan/{name}"\n'
                          + package.joinpath(name).read_text(encoding="utf-8"), metadata=HIDDEN)
            for name in embedded_modules(script, package)]


# %% [markdown]
# `build_notebook` puts it together; the settings cell and the package cell must each appear exactly once in the template:

# %%
#| export
def build_notebook(script: str | None = None, package=None, settings: SessionSettings | None = None) -> str:
    "The kernel notebook's JSON: the template with its settings and the package filled in."
    try:
        import jupytext, nbformat
    except ImportError as e:
        raise UserError(f"building the kernel needs jupytext and nbformat ({e}): install jupytext") from None
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    package, settings = package or package_dir(), settings or SessionSettings()
    script = kernel_template(package) if script is None else script
    cells, found = [], {EMBED_MARKER: 0, SETTINGS_MARKER: 0}
    for cell in jupytext.reads(script, fmt="py:percent").cells:
        marker = cell.source.strip() if cell.cell_type == "code" else None
        found[marker] = found.get(marker, 0) + 1
        if cell.cell_type == "markdown":
            cells.append(new_markdown_cell(cell.source))
        elif marker == SETTINGS_MARKER:
            cells.append(new_code_cell(settings_source(settings)))
        elif marker == EMBED_MARKER:
            cells += _embedded_cells(script, package)
        else:
            cells.append(new_code_cell(cell.source))
    for marker in (SETTINGS_MARKER, EMBED_MARKER):
        if found[marker] != 1:
            raise ValueError(f"the kernel template needs exactly one `{marker}` cell, found {found[marker]}")
    nb = new_notebook(cells=cells, metadata=KERNELSPEC)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:03d}"
    return nbformat.writes(nb) + "\n"


# %%
show_doc(build_notebook)

# %%
text = build_notebook()
nb = json.loads(text)
embedded = [c for c in nb["cells"] if "%%writefile" in "".join(c["source"])]
print(f"{len(text) / 1024:.0f} KiB, {len(nb['cells'])} cells, of which {len(embedded)} embed modules")
test_eq(text, build_notebook())  # deterministic
test_eq([c.get("outputs") for c in nb["cells"] if c.get("outputs")], [])
test_eq(len(embedded), len(mods))
assert len(text) < 1_000_000, len(text)  # Kaggle refuses a notebook source over 1 MB
template = kernel_template()
test_fail(lambda: build_notebook(template.replace(EMBED_MARKER, f"{EMBED_MARKER}\n\n# %%\n{EMBED_MARKER}")),
          exc=ValueError, contains="needs exactly one `#| embed-package` cell, found 2")
test_fail(lambda: build_notebook(template.replace(SETTINGS_MARKER, "SETTINGS = {}")),
          exc=ValueError, contains="needs exactly one `#| kernel-settings` cell, found 0")

# %% [markdown]
# The notebook of a smoke run carries the same modules (the GPU check is one of them, so a push from an installed package can start a smoke run), and its settings ask for the short run and the GPU check:

# %%
from hifigan_ruslan.kaggle_session import SMOKE

# %%
smoke_nb = json.loads(build_notebook(settings=SessionSettings(kernel="alice/hifigan-ruslan-train", **SMOKE)))
sources = ["".join(c["source"]) for c in smoke_nb["cells"]]
written = [s.split('"')[1] for s in sources if s.startswith("%%writefile")]
test_eq(written, [f"{{PACKAGE_DIR}}/hifigan_ruslan/{m}" for m in mods])
namespace = {}
exec(next(s for s in sources if s.startswith("SETTINGS = {")), namespace)
smoke_settings = SessionSettings.from_dict(namespace["SETTINGS"])
test_eq((smoke_settings.smoke, smoke_settings.gpu_check, smoke_settings.session_hours), (True, True, 1.0))


# %% [markdown]
# `kernel_files` is what a build writes: the notebook and `kernel-metadata.json`, for given session settings, extra datasets, and with or without the kernel's own previous output among the inputs. `build_kernel` writes the default files into the kernel root, or, with `check=True`, only reports which of them differ from a fresh build; that is the drift check of `hifigan-ruslan kaggle build --check`.

# %%
#| export
def kernel_files(kernel: KernelSettings, session: SessionSettings | None = None, datasets=(),
                 resume: bool = True) -> dict[str, str]:
    "`{path relative to the kernel folder: text}` of the kernel notebook and its metadata."
    session = session or SessionSettings(kernel=kernel.id)
    meta = kernel_metadata(kernel, datasets=datasets, resume=resume, corpus=session.corpus_dataset)
    return {KERNEL_NOTEBOOK: build_notebook(settings=session),
            METADATA_FILE: json.dumps(meta, indent=2) + "\n"}

def write_kernel_files(folder, files: dict[str, str], check: bool = False) -> list[Path]:
    "Write `files` into `folder` where they differ; the paths that differed (`check`: write nothing)."
    paths = {Path(folder) / name: text for name, text in files.items()}
    changed = [p for p, text in paths.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if not check:
        for p in changed:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(paths[p], encoding="utf-8")
    return changed

def build_kernel(root, check: bool = False, environ=None) -> list[Path]:
    "Write the kernel notebook (a full session) and metadata into `root`; what changed (`check`: differs)."
    return write_kernel_files(root, kernel_files(kernel_settings(root, environ)), check)


# %%
show_doc(build_kernel)

# %% [markdown]
# In a scratch folder (the tests never write into the repository): an empty folder is out of date, a build brings it up to date, a stale notebook or another owner makes the check fail again. CI runs the same check on the repository's committed kernel (`.ci/check-drift`).

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    test_eq(build_kernel(scratch, check=True), [scratch / KERNEL_NOTEBOOK, scratch / METADATA_FILE])
    test_eq(list(scratch.iterdir()), [])  # the check wrote nothing
    test_eq(build_kernel(scratch, environ={}), [scratch / KERNEL_NOTEBOOK, scratch / METADATA_FILE])
    test_eq(build_kernel(scratch, check=True, environ={}), [])
    with open(scratch / KERNEL_NOTEBOOK, "a") as f:
        f.write("\n")  # a notebook edited by hand, or built from an older package
    test_eq(build_kernel(scratch, check=True, environ={}), [scratch / KERNEL_NOTEBOOK])
    test_eq(build_kernel(scratch, check=True, environ={OWNER_ENV: "alice"}),
            [scratch / KERNEL_NOTEBOOK, scratch / METADATA_FILE])
