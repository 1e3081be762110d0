# %% [markdown]
# # Kaggle
#
# > Build, push and watch the Kaggle training kernel: a notebook that carries the package inside itself, trains on two T4s within one session, and resumes from its previous version.

# %%
#| default_exp kaggle

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail, test_ne

# %%
#| export
from __future__ import annotations
import ast, configparser, importlib.util, io, json, os, re, shutil, subprocess, sys, tempfile, time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from hifigan_ruslan.config import UserError
from hifigan_ruslan.kaggle_session import check_manifest
from hifigan_ruslan.pretrained import PRETRAINED, pretrained_path

# %% [markdown]
# Kaggle gives a free session of up to 12 hours on two NVIDIA T4s, which is enough to train a useful HiFi-GAN on RUSLAN in a few sessions. Three constraints shape how the project uses it:
#
# - **No project on the image.** The kernel runs on Kaggle's stock Python image (PyTorch, torchaudio, librosa, soundfile, matplotlib, IPython) with the internet switched off, so it cannot `pip install` this package. The kernel notebook therefore *carries* the package: `hifigan-ruslan kaggle build` turns a short literate script, the kernel template shipped inside the package (`hifigan_ruslan/assets/kaggle_kernel.py.txt`), into `kaggle/train.ipynb` and inserts the source of the modules it needs as cells that write them to disk. Both come from the installed package, so the build works from a wheel as well as from a checkout.
# - **Sessions end.** Whatever is in `/kaggle/working` when a session stops becomes the version's output. The kernel lists *itself* as an input (`kernel_sources`), so the next version sees the previous output under `/kaggle/input` and resumes from its newest checkpoint.
# - **One source of truth.** The notebook is generated and committed in the repository; like the nbdev modules, it must not drift from its sources. `hifigan-ruslan kaggle build --check` fails when the committed notebook differs from a fresh build, so CI catches a package change that was not rebuilt into the kernel.
#
# The workflow, in five steps (the notebook's introduction repeats them):
#
# 1. **Add the dataset**: the kernel reads RUSLAN from the Kaggle dataset `freezerainml/ruslan`, which the metadata attaches.
# 2. **Set the owner**: your Kaggle username goes in `settings.ini` (`kaggle_owner`) in a checkout, or in `kernel-metadata.json` of the kernel folder, or in `HIFIGAN_KAGGLE_OWNER` for one command; credentials come from `~/.kaggle/kaggle.json` or `KAGGLE_USERNAME` / `KAGGLE_KEY`.
# 3. **Push**: `hifigan-ruslan kaggle push` rebuilds the kernel and runs `kaggle kernels push`; with `--init-from universal`, the first version fine-tunes the official universal generator, which the push uploads to a private dataset of yours.
# 4. **Watch**: `hifigan-ruslan kaggle status`.
# 5. **Download or continue**: `hifigan-ruslan kaggle output` downloads checkpoints, samples, plots and `RESULTS.md` and checks them against the version's manifest; pushing again starts a version that resumes.
#
# What the kernel does in a session (resume, fine-tune, train, report, list its output) is the [Kaggle session](11_kaggle_session.ipynb) module; this one builds the kernel and talks to Kaggle.

# %% [markdown]
# ## Where the kernel files live
#
# `build` and `push` work in one folder, the **kernel root**: it receives `kaggle/train.ipynb` and `kernel-metadata.json`, and `kaggle kernels push -p ROOT` uploads from it. In a source checkout (a folder whose `settings.ini` builds this package, found above the current folder) that is the repository itself, whose committed kernel is what CI checks; anywhere else it is the current folder. Downloads go to `runs/kaggle` under the kernel root.

# %%
#| export
PLACEHOLDER_OWNER = "your-kaggle-username"
DEFAULT_SLUG = "hifigan-ruslan-train"
DATASET_SOURCE = "freezerainml/ruslan"
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
# The metadata follows the `kaggle` CLI's format. Two keys deserve a comment: `enable_internet` must be given as `false` explicitly, because the CLI's default is `true`; and `kernel_sources` names the kernel itself, which attaches the previous version's output to the next one (on the very first push the kernel does not exist yet; how `push_kernel` deals with that is below). `datasets` adds inputs to RUSLAN, such as the pretrained generator that a first version fine-tunes from.

# %%
#| export
def kernel_metadata(settings: KernelSettings, code_file: str = KERNEL_NOTEBOOK, datasets=()) -> dict:
    "The `kernel-metadata.json`: private, 2 x T4, no internet, RUSLAN (and `datasets`), resuming from itself."
    return {"id": settings.id, "title": settings.title, "code_file": code_file,
            "language": "python", "kernel_type": "notebook", "is_private": True,
            "enable_gpu": True, "enable_tpu": False, "enable_internet": False,
            "machine_shape": "NvidiaTeslaT4",
            "dataset_sources": [DATASET_SOURCE, *datasets], "competition_sources": [],
            "kernel_sources": [settings.id],
            "model_sources": [], "keywords": []}


# %%
meta = kernel_metadata(KernelSettings("alice"))
print(json.dumps(meta, indent=1))
test_eq(meta["kernel_sources"], ["alice/hifigan-ruslan-train"])
assert not meta["enable_internet"]
with_weights = kernel_metadata(KernelSettings("alice"), datasets=["alice/x"])
test_eq(with_weights["dataset_sources"], [DATASET_SOURCE, "alice/x"])

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

def _check_kernel_id(kernel: str) -> str:
    if not _KERNEL_ID.fullmatch(kernel):
        raise UserError(f"kernel {kernel!r}: expected OWNER/SLUG")
    return kernel

def resolve_kernel_id(kernel: str | None, root=None, environ=None) -> str:
    "`kernel` (checked: `OWNER/SLUG`), else the kernel of `default_kernel_root(root)`, never the placeholder."
    if kernel:
        return _check_kernel_id(kernel)
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
# The kernel runs `train` through `python -m hifigan_ruslan` and imports a few functions itself. It carries exactly the modules those need: the package's `__init__` and `__main__`, the command line (`cli`), the module of `train`, the modules the kernel template imports, and, recursively, every package module those import (found by parsing the source, including imports inside functions). The command line is the exception to "inside functions": each of its subcommands imports its own module when it runs, and following them all would carry the ONNX export and the Kaggle client, which the kernel never runs (with dependencies that Kaggle's image may lack), so for `cli` only its module-level imports count.
#
# Sources are read from the installed package through `importlib.resources`, never from a repository: the build works the same from a wheel.

# %%
#| export
KERNEL_MODULES = ("__init__", "__main__", "training")  # with `cli`: `python -m hifigan_ruslan train`

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
mods = embedded_modules()
print(mods)
needed = {"__init__.py", "__main__.py", "cli.py", "config.py", "data.py", "prepare.py", "kaggle_session.py",
          "training.py"}
test_eq(needed - set(mods), set())
test_eq([m for m in ["_modidx.py", "kaggle.py"] if m in mods], [])  # building and pushing stay here

# %% [markdown]
# Every embedded module's own imports are embedded too, except the subcommand modules that `cli` imports when another subcommand runs:

# %%
pkg = package_dir()
imported = set().union(*(package_imports(pkg.joinpath(m).read_text()) for m in mods if m != "cli.py"))
test_eq([n for n in sorted(imported) if pkg.joinpath(f"{n}.py").is_file() and f"{n}.py" not in mods], [])

# %% [markdown]
# ## Building the notebook
#
# The kernel template is a jupytext percent script: prose in markdown cells, short code cells. The build reads it, replaces the one cell that says `#| embed-package` by one cell per module, each an IPython `%%writefile` of the module's source (the first line of the template's next cells puts that folder on the path), and writes `kaggle/train.ipynb`. The embedded cells are marked hidden for Kaggle's viewer (`_kg_hide-input`), so a reader sees the story and can still unfold the code.
#
# The build is deterministic: no timestamps, no random cell ids (they are numbered), modules in file-name order, the JSON written by `nbformat` with sorted keys. The same sources always give the same bytes, which is what makes the drift check possible.

# %%
#| export
EMBED_MARKER = "#| embed-package"
HIDDEN = {"_kg_hide-input": True, "_kg_hide-output": True,
          "jupyter": {"source_hidden": True, "outputs_hidden": True}}
KERNELSPEC = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
              "language_info": {"name": "python"}}

def build_notebook(script: str | None = None, package=None) -> str:
    "The kernel notebook's JSON: the template, its `#| embed-package` cell replaced by the package modules."
    try:
        import jupytext, nbformat
    except ImportError as e:
        raise UserError(f"building the kernel needs jupytext and nbformat ({e}): install jupytext") from None
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    package = package or package_dir()
    script = kernel_template(package) if script is None else script
    cells, markers = [], 0
    for cell in jupytext.reads(script, fmt="py:percent").cells:
        if cell.cell_type == "markdown":
            cells.append(new_markdown_cell(cell.source))
        elif cell.source.strip() != EMBED_MARKER:
            cells.append(new_code_cell(cell.source))
        else:
            markers += 1
            for name in embedded_modules(script, package):
                text = package.joinpath(name).read_text(encoding="utf-8")
                source = f'%%writefile "{{PACKAGE_DIR}}/hifigan_ruslan/{name}"\n{text}'
                cells.append(new_code_cell(source, metadata=HIDDEN))
    if markers != 1:
        raise ValueError(f"the kernel template needs exactly one `{EMBED_MARKER}` cell, found {markers}")
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
template = kernel_template()
test_fail(lambda: build_notebook(template.replace(EMBED_MARKER, f"{EMBED_MARKER}\n\n# %%\n{EMBED_MARKER}")),
          exc=ValueError, contains="needs exactly one `#| embed-package` cell, found 2")


# %% [markdown]
# `build_kernel` writes the notebook and the metadata into the kernel root, or, with `check=True`, only reports which of them differ from a fresh build; that is the drift check of `hifigan-ruslan kaggle build --check`.

# %%
#| export
def built_files(root, environ=None, datasets=()) -> dict[Path, str]:
    "What a build writes: `{path: text}` for the kernel notebook and `kernel-metadata.json` in `root`."
    root = Path(root)
    meta = json.dumps(kernel_metadata(kernel_settings(root, environ), datasets=datasets), indent=2) + "\n"
    return {root / KERNEL_NOTEBOOK: build_notebook(), root / METADATA_FILE: meta}

def build_kernel(root, check: bool = False, environ=None, datasets=()) -> list[Path]:
    "Write the kernel notebook and metadata (`datasets`: extra inputs); what changed (`check`: what differs)."
    files = built_files(root, environ, datasets)
    changed = [p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if not check:
        for p in changed:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(files[p], encoding="utf-8")
    return changed


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

# %% [markdown]
# ### From an installed wheel
#
# The build needs nothing but the installed package: a wheel built from this checkout, installed into a folder of its own and imported from there, builds the same kernel in an empty folder, with every module the kernel needs.

# %%
#| slow
import nbformat


# %%
#| slow
def install_wheel(checkout: Path, dest: Path) -> Path:
    "Build a wheel of a copy of `checkout`'s package and install it (no dependencies) into `dest/site`."
    src = dest / "src"
    for name in ["setup.py", "settings.ini", "MANIFEST.in", "README.md"]:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkout / name, src / name)
    shutil.copytree(checkout / "hifigan_ruslan", src / "hifigan_ruslan",
                    ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run(pip + ["wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(dest / "wheel")],
                   check=True, capture_output=True, cwd=dest)
    [wheel] = (dest / "wheel").glob("*.whl")
    subprocess.run(pip + ["install", "--no-deps", "--target", str(dest / "site"), str(wheel)],
                   check=True, capture_output=True)
    return dest / "site"

BUILD_ELSEWHERE = """
import json, sys
from pathlib import Path
import hifigan_ruslan
from hifigan_ruslan.kaggle import build_kernel, embedded_modules
written = build_kernel(Path.cwd(), environ={})
print(json.dumps({"package": hifigan_ruslan.__file__, "written": [str(p) for p in written],
                  "modules": embedded_modules()}))
"""

# %%
#| slow
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    site = install_wheel(repo, d)
    (d / "work").mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env = {k: v for k, v in env.items() if k not in (OWNER_ENV, SLUG_ENV)}
    proc = subprocess.run([sys.executable, "-c", BUILD_ELSEWHERE], capture_output=True, text=True,
                          cwd=d / "work", env=env, timeout=120)
    test_eq(proc.returncode, 0)
    result = json.loads(proc.stdout)
    print(result["package"], [Path(p).relative_to(d / "work").as_posix() for p in result["written"]])
    test_eq(Path(result["package"]).parent, site / "hifigan_ruslan")  # from the wheel, not the checkout
    test_eq(result["modules"], mods)
    test_eq((d / "work" / KERNEL_NOTEBOOK).read_text(), text)  # the same kernel, byte for byte
    test_eq((d / "work" / METADATA_FILE).read_text(), (repo / METADATA_FILE).read_text())
    cells = nbformat.read(d / "work" / KERNEL_NOTEBOOK, as_version=4).cells
    sent = {c["source"].split('"')[1].rsplit("/", 1)[1]: c["source"].split("\n", 1)[1]
            for c in cells if "%%writefile" in c["source"]}
    test_eq(sent, {m: (site / "hifigan_ruslan" / m).read_text() for m in mods})

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
    kernel = _check_kernel_id(kernel)
    check_credentials(environ)
    kaggle_call(["kernels", "status", kernel], f"kaggle kernels status {kernel}", environ)
    return 0

def download_output(kernel: str, out, force: bool = False, environ=None) -> int:
    "Download the latest output of `kernel` into `out`, check it against its manifest; 0 if intact, else 1."
    kernel = _check_kernel_id(kernel)
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

# %% [markdown]
# ### A stand-in for Kaggle
#
# The tests run the real `kaggle` CLI, but against a small HTTP server on the loopback interface: with `KAGGLE_API_ENVIRONMENT=LOCALHOST` the CLI sends its requests to `http://localhost`. For a push, the CLI validates the folder first (title, code file, language, kernel type, source names), so a push that reaches the server has passed Kaggle's own checks; the server then records what Kaggle would have received. Each API method gets a canned answer: a JSON object, an HTTP status, or a list of them answered in turn (the last one repeats), which is how a first push can be refused and the second accepted. Uploads (`PUT`) are recorded by size and SHA-256, and `GET /files/X` downloads `files[X]`. Credentials are fakes in the environment, with `HOME` and the Kaggle config folder pointed at an empty temporary folder, so no real credentials are read or touched.

# %%
import base64, contextlib, hashlib, http.server, threading
from unittest import mock
from hifigan_ruslan.kaggle_session import MANIFEST_FILE, write_manifest
from hifigan_ruslan.pretrained import PRETRAINED, pretrained_path

# %%
STUB_KEY = "stub-key-0123456789"

def stub_env(home, owner: str) -> dict:
    "An environment for the kaggle CLI with fake credentials, an empty home and the API pointed at localhost."
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_") and "proxy" not in k.lower()}
    env.update(HOME=str(home), KAGGLE_CONFIG_DIR=str(Path(home) / ".kaggle"), XDG_CONFIG_HOME=str(home),
               NO_PROXY="*", KAGGLE_USERNAME=owner, KAGGLE_KEY=STUB_KEY,
               KAGGLE_API_ENVIRONMENT="LOCALHOST", **{OWNER_ENV: owner})
    return env

class StubKaggle(http.server.BaseHTTPRequestHandler):
    "Answers `.../METHOD` from `replies[METHOD]` and `PUT PATH` from `replies['PUT PATH']`; records requests."
    replies, files, received = {}, {}, []

    def answer(self, reply):
        if isinstance(reply, list):
            reply = reply.pop(0) if len(reply) > 1 else reply[0]
        status, data = (reply, b"{}") if isinstance(reply, int) else (200, json.dumps(reply).encode())
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().strip(), 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()
        return b"".join(chunks)

    def do_POST(self):
        body = self.body()
        self.received.append({"path": self.path, "body": json.loads(body or b"{}"),
                              "authorization": self.headers.get("Authorization")})
        self.answer(self.replies.get(self.path.rsplit("/", 1)[-1], 404))

    def do_PUT(self):
        data = self.body()
        self.received.append({"path": f"PUT {self.path}", "size": len(data),
                              "sha256": hashlib.sha256(data).hexdigest()})
        self.answer(self.replies.get(f"PUT {self.path}", 404))

    def do_GET(self):
        data = self.files.get(self.path.removeprefix("/files/"))
        self.send_response(404 if data is None else 200)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, *args):
        pass

@contextlib.contextmanager
def kaggle_stub(replies: dict, files: dict | None = None, owner: str = "stub-user", port: int = 80):
    "A stand-in Kaggle API on 127.0.0.1:`port`, the stub environment in `os.environ`; yields the requests."
    handler = type("Handler", (StubKaggle,), {"replies": replies, "files": files or {}, "received": []})
    http.server.ThreadingHTTPServer.allow_reuse_address = True  # a re-run right after this one can bind again
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory() as home:
            with mock.patch.dict(os.environ, stub_env(home, owner), clear=True):
                yield handler.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

def printed(f) -> tuple[object, str]:
    "`(f(), what it printed)`; an exception's message is the result when `f` raises a `UserError`."
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            result = f()
        except UserError as e:
            result = e
    return result, out.getvalue()

def sent(received, method: str) -> list[dict]:
    "The bodies of the recorded requests of one API method."
    return [r["body"] for r in received if r["path"].endswith("/" + method)]

KERNEL = "stub-user/hifigan-ruslan-train"
SAVED = {"ref": f"/code/{KERNEL}", "versionNumber": 1, "kernelId": 1,
         "url": f"https://www.kaggle.com/code/{KERNEL}"}

# %% [markdown]
# A push that Kaggle accepts, self-reference included:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    with kaggle_stub({"SaveKernel": SAVED}) as received:
        rc, log = printed(lambda: push_kernel(scratch))
    print(log.strip())
    test_eq(rc, 0)
    test_eq(log.splitlines()[0], push_message(KERNEL, len(embedded_modules())))
    [req] = [r for r in received if r["path"].endswith("/kernels.KernelsApiService/SaveKernel")]
    body = req["body"]
    print({k: v for k, v in body.items() if k != "text"})
    test_eq(base64.b64decode(req["authorization"].split()[1]).decode(), f"stub-user:{STUB_KEY}")
    test_eq(body["slug"], KERNEL)
    test_eq(body["newTitle"], "Hifigan Ruslan Train")
    test_eq(body["language"], "python")
    test_eq(body["kernelType"], "notebook")
    test_eq(body["machineShape"], "NvidiaTeslaT4")
    assert body["enableGpu"]
    assert not body["enableInternet"]
    assert body["isPrivate"]
    test_eq(body["datasetDataSources"], ["freezerainml/ruslan"])
    test_eq(body["kernelDataSources"], [KERNEL])
    built = json.loads((scratch / KERNEL_NOTEBOOK).read_text())
    cells = [c["source"] for c in json.loads(body["text"])["cells"]]
    test_eq(cells, ["".join(c["source"]) for c in built["cells"]])  # the notebook, as built
    test_eq(json.loads((scratch / METADATA_FILE).read_text())["id"], KERNEL)

# %% [markdown]
# The first push, both ways Kaggle may answer it. It accepts the version but not the self-reference (a warning), or it refuses the push; the kernel does not exist (status 404), so the push goes once more without the self-reference, and the kernel root keeps its metadata with it for the next push:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    warned = {**SAVED, "invalidKernelSources": [KERNEL]}
    with kaggle_stub({"SaveKernel": warned}) as received:
        rc, log = printed(lambda: push_kernel(scratch))
    print(log.strip().splitlines()[-1])
    test_eq(rc, 0)
    assert f"first version of {KERNEL}: it runs without" in log, log
    test_eq(len(sent(received, "SaveKernel")), 1)

    refused = {"error": f"Kernel source {KERNEL} not found"}
    with kaggle_stub({"SaveKernel": [refused, SAVED], "GetKernelSessionStatus": 404}) as received:
        rc, log = printed(lambda: push_kernel(scratch))
    print(log.strip())
    pushes = sent(received, "SaveKernel")
    test_eq(rc, 0)
    test_eq([p.get("kernelDataSources", []) for p in pushes], [[KERNEL], []])
    test_eq(pushes[1]["text"], pushes[0]["text"])  # the same notebook
    test_eq(json.loads((scratch / METADATA_FILE).read_text())["kernel_sources"], [KERNEL])

    # a refusal of a kernel that exists is not about the self-reference: it is the error, and not retried
    with kaggle_stub({"SaveKernel": {"error": "Notebook not found"},
                      "GetKernelSessionStatus": {"status": "COMPLETE"}}) as received:
        error, log = printed(lambda: push_kernel(scratch))
    print(error)
    test_eq(str(error), f"kaggle kernels push {KERNEL}: Kernel push error: Notebook not found")
    test_eq(len(sent(received, "SaveKernel")), 1)

# %% [markdown]
# `status`, and `output` with its manifest check: a complete download, then one that lost a file and received another corrupted. The check names each, ends with a summary, and the status is 1:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    with kaggle_stub({"GetKernelSessionStatus": {"status": "COMPLETE"}}) as received:
        rc, log = printed(lambda: kernel_status(KERNEL))
    print(log.strip())
    test_eq(rc, 0)
    assert "COMPLETE" in log.upper()
    test_eq(received[0]["body"]["kernelSlug"], "hifigan-ruslan-train")
    working = scratch / "working"
    (working / "run").mkdir(parents=True)
    (working / "RESULTS.md").write_text("# Training results\n")
    (working / "run/metrics.csv").write_text("step,val_mel_l1\n10,1.5\n")
    (working / "run/g_00000010").write_bytes(bytes(range(256)))
    write_manifest(working)
    files = {p.relative_to(working).as_posix(): p.read_bytes() for p in working.rglob("*") if p.is_file()}
    listed = [{"fileName": name, "url": f"http://localhost/files/{name}"} for name in files]
    listing = {"ListKernelSessionOutput": {"log": "[]", "files": listed}}
    with kaggle_stub(listing, files=files):
        rc, log = printed(lambda: download_output(KERNEL, scratch / "out"))
    print(log.strip().splitlines()[-2:])
    test_eq(rc, 0)
    test_eq(log.strip().splitlines()[-1], output_message(KERNEL, scratch / "out"))
    test_eq((scratch / "out/run/metrics.csv").read_bytes(), files["run/metrics.csv"])

    damaged = {**files, "RESULTS.md": b"# Training resultz\n"}
    del damaged["run/metrics.csv"]
    listed = [f for f in listed if f["fileName"] in damaged]
    listing = {"ListKernelSessionOutput": {"log": "[]", "files": listed}}
    with kaggle_stub(listing, files=damaged):
        rc, log = printed(lambda: download_output(KERNEL, scratch / "out2"))
    print("\n".join(log.strip().splitlines()[-3:]))
    problems = log.strip().splitlines()[-3:]
    test_eq(rc, 1)
    test_eq(problems[0], "missing: run/metrics.csv (23 bytes)")
    test_eq(problems[2], "1 of 3 files of MANIFEST.json intact, 1 missing, 1 differ")
    assert problems[1].startswith("differs: RESULTS.md (SHA-256")

# %% [markdown]
# ### Transfer through the stand-in
#
# `push --init-from universal` on a new dataset: the CLI asks whether the dataset exists (404), starts a blob upload, uploads the weights, creates the private dataset with the upload's token, waits for it to be ready, and the kernel is pushed with the dataset attached. The weights arrive byte for byte (size and SHA-256 as the server received them):

# %%
weights = pretrained_path("universal")
DATASET = "stub-user/hifigan-ruslan-universal"
upload = {"StartBlobUpload": {"token": "blob-1", "createUrl": "http://localhost/upload/1"},
          "PUT /upload/1": {}}
created = {"ref": DATASET, "url": f"https://www.kaggle.com/datasets/{DATASET}", "status": "ok"}

with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    replies = {**upload, "GetDatasetStatus": [404, {"status": "READY"}], "CreateDataset": created,
               "SaveKernel": SAVED}
    with kaggle_stub(replies) as received:
        rc, log = printed(lambda: push_kernel(scratch, init_from="universal"))
    print("\n".join(line for line in log.splitlines() if "%|" not in line))
    test_eq(rc, 0)
    order = [r["path"].rsplit("/", 1)[-1] for r in received]
    test_eq(order, ["GetDatasetStatus", "StartBlobUpload", "1", "CreateDataset", "GetDatasetStatus",
                    "SaveKernel"])
    [put] = [r for r in received if r["path"] == "PUT /upload/1"]
    test_eq(put["size"], weights.stat().st_size)
    test_eq(put["sha256"], PRETRAINED["universal"].sha256)
    [start], [create] = sent(received, "StartBlobUpload"), sent(received, "CreateDataset")
    test_eq(start["name"], "generator_universal.pth.tar")
    test_eq(start["type"], "DATASET")
    test_eq(create["ownerSlug"], "stub-user")
    test_eq(create["slug"], "hifigan-ruslan-universal")
    assert create["isPrivate"]
    test_eq(create["title"], "HiFi-GAN universal generator")
    test_eq(create["licenseName"], "other")
    test_eq(create["files"], [{"token": "blob-1"}])
    [push] = sent(received, "SaveKernel")
    test_eq(push["datasetDataSources"], ["freezerainml/ruslan", DATASET])
    test_eq(json.loads((scratch / METADATA_FILE).read_text())["dataset_sources"], push["datasetDataSources"])
    assert STUB_KEY not in log, log  # the key is never printed

    # the dataset exists: Kaggle refuses the create before any upload, and the file becomes a new version
    replies = {**upload, "GetDatasetStatus": {"status": "READY"}, "CreateDatasetVersion": created,
               "SaveKernel": SAVED}
    with kaggle_stub(replies) as received:
        rc, log = printed(lambda: push_kernel(scratch, init_from="universal"))
    order = [r["path"].rsplit("/", 1)[-1] for r in received]
    test_eq((rc, order), (0, ["GetDatasetStatus", "StartBlobUpload", "1", "CreateDatasetVersion",
                              "GetDatasetStatus", "SaveKernel"]))
    [version] = sent(received, "CreateDatasetVersion")
    test_eq(version["ownerSlug"], "stub-user")
    test_eq(version["datasetSlug"], "hifigan-ruslan-universal")
    test_eq(version["body"]["files"], [{"token": "blob-1"}])

# %% [markdown]
# Kaggle failing at each step is one line that names the step, and what is left on Kaggle: a refused dataset (nothing pushed), a failed upload (no dataset), a push that fails after the dataset was created (the dataset stays, and says so). The key appears in none of the output:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    quota = {"status": "error", "error": "Quota exceeded"}
    failures = [({**upload, "GetDatasetStatus": 404, "CreateDataset": quota},
                 f"kaggle datasets create {DATASET}: Dataset creation error: Quota exceeded; nothing was"),
                ({**upload, "GetDatasetStatus": 404, "PUT /upload/1": 500},
                 f"kaggle datasets create {DATASET}: Upload unsuccessful: generator_universal.pth.tar"),
                ({**upload, "GetDatasetStatus": [404, {"status": "READY"}], "CreateDataset": created,
                  "SaveKernel": {"error": "Invalid machine shape"},
                  "GetKernelSessionStatus": {"status": "COMPLETE"}},
                 f"kaggle kernels push {KERNEL}: Kernel push error: Invalid machine shape; "
                 f"the dataset {DATASET} stays on Kaggle (a later --init-from push versions it)")]
    for replies, message in failures:
        with kaggle_stub(replies) as received:
            error, log = printed(lambda: push_kernel(scratch, init_from="universal"))
        print(error)
        test_eq(type(error), UserError)
        assert str(error).startswith(message)
        assert STUB_KEY not in log, log
        assert STUB_KEY not in str(error), STUB_KEY
    test_eq(len(sent(received, "SaveKernel")), 1)

# %% [markdown]
# The CLI's own validation is what guards the push: metadata it rejects never reaches a server (none is listening here).

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    build_kernel(scratch, environ={OWNER_ENV: "stub-user"})
    good = json.loads((scratch / METADATA_FILE).read_text())
    for change, message in [({"title": "HiFi"}, "Title must be at least five characters"),
                            ({"dataset_sources": ["ruslan"]}, "Dataset must be specified in the form"),
                            ({"code_file": "kaggle/missing.ipynb"}, "Source file not found")]:
        (scratch / METADATA_FILE).write_text(json.dumps({**good, **change}))
        proc = subprocess.run([sys.executable, "-m", "kaggle", "kernels", "push", "-p", str(scratch)],
                              capture_output=True, text=True, env=stub_env(d, "stub-user"), timeout=60)
        test_ne(proc.returncode, 0)
        assert message in proc.stdout + proc.stderr, message
    print("rejected:", (proc.stdout + proc.stderr).strip().splitlines()[-1])

# %% [markdown]
# ## The kernel, end to end
#
# The generated notebook runs here as it would on Kaggle, with the Kaggle folders redirected to temporary ones through its parameter cell's environment variables, on the bundled small corpus with the `tiny` preset and a few steps (on the CPU, as a single process). The second execution plays the next version of the kernel: the first one's output is mounted among its inputs, as `kernel_sources` does on Kaggle, and it has to resume from it, although a pretrained generator is attached too. The third plays a first version with that generator attached (here the first version's `g_` file under an official file name, since the official generator is a V1 and the test trains `tiny`): it has to fine-tune from it. Every version's output must match its manifest.
#
# The same variables run the notebook on any machine: `HIFIGAN_CORPUS` (a corpus folder or its metadata file; default: search `HIFIGAN_KAGGLE_INPUT`), `HIFIGAN_KAGGLE_INPUT`, `HIFIGAN_KAGGLE_WORKING`, `HIFIGAN_KAGGLE_TEMP`, `HIFIGAN_PRESET`, `HIFIGAN_SESSION_HOURS`, `HIFIGAN_REPORT_MINUTES`, `HIFIGAN_MAX_STEPS`, `HIFIGAN_VAL_SIZE`, `HIFIGAN_TRAIN_SET` (extra `key=value` overrides, separated by spaces), `HIFIGAN_INIT_FROM` (the generator a first version fine-tunes from; default: the `generator_*.pth.tar` among the inputs) and `HIFIGAN_MEL_DIR` (mels of an acoustic model, passed to `train --mel-dir`). A run downloaded with `hifigan-ruslan kaggle output` also continues locally: `hifigan-ruslan train --data PREPARED --out runs/kaggle/run` resumes from its newest checkpoint.

# %%
#| slow
from hifigan_ruslan.checkpoints import resumable_step
from hifigan_ruslan.kaggle_session import check_manifest, ManifestCheck
from hifigan_ruslan.clips import bundled_corpus


# %%
#| slow
def run_kernel(notebook, input_root, session, max_steps: int, **env) -> tuple[str, list[str]]:
    "Execute `notebook` as one Kaggle session under `session` (working/, temp/): what it printed and showed."
    session = Path(session)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HIFIGAN_")},
           "HIFIGAN_KAGGLE_INPUT": str(input_root), "HIFIGAN_KAGGLE_WORKING": str(session / "working"),
           "HIFIGAN_KAGGLE_TEMP": str(session / "temp"), "HIFIGAN_PRESET": "tiny",
           "HIFIGAN_MAX_STEPS": str(max_steps), "HIFIGAN_VAL_SIZE": "2", **env}
    convert = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--output-dir",
               str(session), "--output", "executed", "--ExecutePreprocessor.timeout=300", str(notebook)]
    proc = subprocess.run(convert, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
    test_eq(proc.returncode, 0)
    cells = nbformat.read(session / "executed.ipynb", as_version=4).cells
    outputs = [o for c in cells for o in c.get("outputs", [])]
    printed_text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    return printed_text, [mime for o in outputs for mime in o.get("data", {})]


# %%
#| slow
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    notebook = d / "train.ipynb"
    notebook.write_text(build_notebook())
    shutil.copytree(bundled_corpus(), d / "input/ruslan")
    first, _ = run_kernel(notebook, d / "input", d / "v1", max_steps=1)
    step1 = resumable_step(d / "v1/working/run/checkpoints")
    assert "no previous checkpoint: training from scratch" in first, first
    assert step1 is not None
    assert (d / "v1/working/RESULTS.md").is_file()
    assert check_manifest(d / "v1/working").ok
    ran = {m: (d / "v1/temp/src/hifigan_ruslan" / m).read_bytes() for m in mods}
    test_eq(ran, {m: pkg.joinpath(m).read_bytes() for m in mods})  # the package's own source, byte for byte

    shutil.copytree(d / "v1/working", d / "input/hifigan-ruslan-train")  # the next version sees this output
    (d / "input/universal").mkdir()  # and a pretrained generator is attached as well
    pretrained = d / "input/universal/generator_tiny.pth.tar"
    shutil.copyfile(d / f"v1/working/run/checkpoints/g_{step1:08d}", pretrained)
    # this time with the corpus given explicitly, as when running the notebook on a local corpus
    second, shown = run_kernel(notebook, d / "input", d / "v2", max_steps=2,
                               HIFIGAN_CORPUS=str(d / "input/ruslan"))
    step2 = resumable_step(d / "v2/working/run/checkpoints")
    print("\n".join(line for line in second.splitlines() if line.startswith(("resuming", "done"))))
    assert f"resuming from step {step1}" in second, second
    assert step2 > step1, step2
    assert "--init-from" not in second, second  # resuming wins over the pretrained generator
    assert shown.count("image/png") >= 2, shown.count("image/png")
    assert shown.count("text/html") >= 2, shown.count("text/html")  # plots, players
    output = [p for p in (d / "v2/working").rglob("*") if p.is_file() and p.name != MANIFEST_FILE]
    test_eq(check_manifest(d / "v2/working"), ManifestCheck(len(output)))
    print((d / "v2/working/RESULTS.md").read_text())

    # a first version with the pretrained generator attached, and no previous output: it fine-tunes from it
    shutil.rmtree(d / "input/hifigan-ruslan-train")
    third, _ = run_kernel(notebook, d / "input", d / "v3", max_steps=1)
    print("\n".join(line for line in third.splitlines() if "fine-tuning" in line or "Initialised" in line))
    assert "no previous checkpoint: fine-tuning from" in third, third
    inits = [line.split()[3] for line in third.splitlines() if line.startswith("Initialised generator from")]
    test_eq([Path(path).name for path in inits], [pretrained.name])
    assert check_manifest(d / "v3/working").ok
