# %% [markdown]
# # Kaggle
#
# > Build, push and watch the Kaggle training kernel: a notebook that carries the package inside itself, trains on two T4s within one session, and resumes from its previous version.

# %%
#| default_exp kaggle

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import argparse, ast, configparser, importlib.util, io, json, os, re, shutil, subprocess, sys
from dataclasses import dataclass
from pathlib import Path
from hifigan_ruslan.checkpoints import list_steps

# %% [markdown]
# Kaggle gives a free session of up to 12 hours on two NVIDIA T4s, which is enough to train a useful HiFi-GAN on RUSLAN in a few sessions. Three constraints shape how the project uses it:
#
# - **No project on the image.** The kernel runs on Kaggle's stock Python image (PyTorch, torchaudio, librosa, soundfile, matplotlib, IPython) with the internet switched off, so it cannot `pip install` this package. The kernel notebook therefore *carries* the package: `hifigan-ruslan kaggle build` turns a short literate script, `kaggle/train_kernel.py`, into `kaggle/train.ipynb` and inserts the source of the modules it needs as cells that write them to disk.
# - **Sessions end.** Whatever is in `/kaggle/working` when a session stops becomes the version's output. The kernel lists *itself* as an input (`kernel_sources`), so the next version sees the previous output under `/kaggle/input` and resumes from its newest checkpoint.
# - **One source of truth.** The notebook is generated and committed; like the nbdev modules, it must not drift from its sources. `hifigan-ruslan kaggle build --check` fails when the committed notebook differs from a fresh build, so CI catches a package change that was not rebuilt into the kernel.
#
# The workflow, in five steps (the notebook's introduction repeats them):
#
# 1. **Add the dataset**: the kernel reads RUSLAN from the Kaggle dataset `freezerainml/ruslan`, which the metadata attaches.
# 2. **Set the owner**: your Kaggle username goes in `settings.ini` (`kaggle_owner`), or in `HIFIGAN_KAGGLE_OWNER` for one command; credentials come from `~/.kaggle/kaggle.json` or `KAGGLE_USERNAME` / `KAGGLE_KEY`.
# 3. **Push**: `hifigan-ruslan kaggle push` rebuilds the kernel and runs `kaggle kernels push`.
# 4. **Watch**: `hifigan-ruslan kaggle status`.
# 5. **Download or continue**: `hifigan-ruslan kaggle output` downloads checkpoints, samples, plots and `RESULTS.md`; pushing again starts a version that resumes.

# %% [markdown]
# ## Kernel settings and metadata
#
# The kernel's identity is `owner/slug`. Both live in `settings.ini` (`kaggle_owner`, `kaggle_slug`), the one place a user edits; `HIFIGAN_KAGGLE_OWNER` overrides the owner without touching a file. The build writes them into `kernel-metadata.json`, which the `kaggle` CLI reads. The title is derived from the slug so that Kaggle's slug of the title is the slug itself (the CLI warns otherwise, and Kaggle may then give the kernel a different address).

# %%
#| export
PLACEHOLDER_OWNER = "your-kaggle-username"
DEFAULT_SLUG = "hifigan-ruslan-train"
DATASET_SOURCE = "freezerainml/ruslan"
KERNEL_SCRIPT = "kaggle/train_kernel.py"
KERNEL_NOTEBOOK = "kaggle/train.ipynb"
METADATA_FILE = "kernel-metadata.json"
OWNER_ENV = "HIFIGAN_KAGGLE_OWNER"

def find_repo_root(start=None) -> Path:
    "The source checkout holding `settings.ini` and the kernel script: above `start` (default: the current folder), else above the package."
    import hifigan_ruslan
    starts = [Path(start).resolve()] if start is not None else [Path.cwd().resolve(), Path(hifigan_ruslan.__file__).resolve().parent]
    for s in starts:
        for d in [s, *s.parents]:
            if (d / "settings.ini").is_file() and (d / KERNEL_SCRIPT).is_file(): return d
    raise FileNotFoundError(f"{starts[0]}: not inside a hifigan-ruslan source checkout (no settings.ini with {KERNEL_SCRIPT} above it); "
                            "run from the repository or pass --root")


# %%
#| export
@dataclass(frozen=True)
class KernelSettings:
    "Who owns the kernel and what it is called on Kaggle."
    owner: str
    slug: str = DEFAULT_SLUG

    @property
    def id(self) -> str: return f"{self.owner}/{self.slug}"

    @property
    def title(self) -> str:
        "A title whose Kaggle slug is `slug` (`hifigan-ruslan-train` -> `Hifigan Ruslan Train`)."
        return self.slug.replace("-", " ").title()

def kernel_settings(root, environ=None) -> KernelSettings:
    "Owner and slug from `root/settings.ini`; the environment variable `HIFIGAN_KAGGLE_OWNER` overrides the owner."
    environ = os.environ if environ is None else environ
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(Path(root) / "settings.ini", encoding="utf-8")
    cfg = ini["DEFAULT"]
    owner = environ.get(OWNER_ENV) or cfg.get("kaggle_owner", PLACEHOLDER_OWNER)
    slug = cfg.get("kaggle_slug", DEFAULT_SLUG)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", owner.strip()):
        raise ValueError(f"kaggle owner {owner!r}: not a Kaggle username (set kaggle_owner in settings.ini or {OWNER_ENV})")
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug) or not 5 <= len(slug) <= 50:
        raise ValueError(f"kaggle_slug {slug!r} in settings.ini: use 5 to 50 lowercase letters, digits and single hyphens")
    return KernelSettings(owner.strip(), slug)


# %%
show_doc(kernel_settings)

# %%
root = find_repo_root()
s = kernel_settings(root, environ={})
print(s, s.id, repr(s.title))
assert s == KernelSettings(PLACEHOLDER_OWNER, DEFAULT_SLUG) and s.title == "Hifigan Ruslan Train"
assert kernel_settings(root, environ={OWNER_ENV: "alice"}).id == "alice/hifigan-ruslan-train"
try: kernel_settings(root, environ={OWNER_ENV: "alice smith"}); raise AssertionError
except ValueError as e: print(e)


# %% [markdown]
# The metadata follows the `kaggle` CLI's format. Two keys deserve a comment: `enable_internet` must be given as `false` explicitly, because the CLI's default is `true`; and `kernel_sources` names the kernel itself, which attaches the previous version's output to the next one (on the very first push Kaggle may report that source as invalid, because the kernel does not exist yet; it is attached from the second version on).

# %%
#| export
def kernel_metadata(settings: KernelSettings, code_file: str = KERNEL_NOTEBOOK) -> dict:
    "The `kernel-metadata.json` of the training kernel: private, 2 x T4, no internet, RUSLAN attached, resuming from itself."
    return {"id": settings.id, "title": settings.title, "code_file": code_file,
            "language": "python", "kernel_type": "notebook", "is_private": True,
            "enable_gpu": True, "enable_tpu": False, "enable_internet": False, "machine_shape": "NvidiaTeslaT4",
            "dataset_sources": [DATASET_SOURCE], "competition_sources": [], "kernel_sources": [settings.id],
            "model_sources": [], "keywords": []}


# %%
meta = kernel_metadata(KernelSettings("alice"))
print(json.dumps(meta, indent=1))
assert meta["kernel_sources"] == ["alice/hifigan-ruslan-train"] and meta["enable_internet"] is False

# %% [markdown]
# The `kaggle` CLI slugifies titles with `python-slugify`; the derived title must come back as the slug:

# %%
from slugify import slugify

# %%
assert all(slugify(KernelSettings("x", slug).title) == slug for slug in [DEFAULT_SLUG, "hifigan-v2-run-3", "ruslan"])

# %% [markdown]
# ## Which modules the kernel carries
#
# The kernel runs two subcommands (`prepare` and `train`) through `python -m hifigan_ruslan`, and imports a few functions itself. It carries exactly the modules those need: the package's `__init__`, `__main__` and `cli`, the modules of the two subcommands, the modules the kernel script imports, and, recursively, every package module those import (found by parsing the source, including imports inside functions). Modules the kernel never touches, such as the ONNX export or the docs builder, stay out, and with them their dependencies, which Kaggle's image may lack.

# %%
#| export
KERNEL_COMMANDS = ("prepare", "train")

def package_imports(source: str) -> set[str]:
    "Names of the `hifigan_ruslan` modules that `source` imports, anywhere in the file (absolute or relative imports)."
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("hifigan_ruslan.")}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level: module = "hifigan_ruslan" + ("." + module if module else "")
            if module == "hifigan_ruslan": names |= {a.name for a in node.names}
            elif module.startswith("hifigan_ruslan."): names.add(module.split(".")[1])
    return names

def embedded_modules(root, script: str | None = None) -> list[str]:
    "File names in `root/hifigan_ruslan` that the kernel needs, sorted: CLI, the kernel's subcommands, the script's imports, and their imports."
    from hifigan_ruslan.cli import COMMANDS
    pkg = Path(root) / "hifigan_ruslan"
    script = (Path(root) / KERNEL_SCRIPT).read_text(encoding="utf-8") if script is None else script
    pending = {"__init__", "__main__", "cli", *(COMMANDS[c][0] for c in KERNEL_COMMANDS), *package_imports(script)}
    found = set()
    while pending:
        name = pending.pop()
        path = pkg / f"{name}.py"
        if name in found or not path.is_file(): continue  # a name imported from the package that is not a module
        found.add(name)
        pending |= package_imports(path.read_text(encoding="utf-8")) - found
    return sorted(f"{n}.py" for n in found)


# %%
show_doc(embedded_modules)

# %%
assert package_imports("import os\nfrom .config import Config\nfrom . import mel\nimport hifigan_ruslan.data as d\n"
                       "def f():\n    from hifigan_ruslan.training import x\nfrom hifigan_ruslan import __version__") \
       == {"config", "mel", "data", "training", "__version__"}
mods = embedded_modules(root)
print(mods)
assert {"__init__.py", "__main__.py", "cli.py", "config.py", "data.py", "kaggle.py"} <= set(mods) and "_modidx.py" not in mods

# %% [markdown]
# ## Building the notebook
#
# The kernel script is a jupytext percent script: prose in markdown cells, short code cells. The build reads it, replaces the one cell that says `#| embed-package` by one cell per module, each an IPython `%%writefile` of the module's source (the first line of the script's next cells puts that folder on the path), and writes `kaggle/train.ipynb`. The embedded cells are marked hidden for Kaggle's viewer (`_kg_hide-input`), so a reader sees the story and can still unfold the code.
#
# The build is deterministic: no timestamps, no random cell ids (they are numbered), modules in file-name order, the JSON written by `nbformat` with sorted keys. The same sources always give the same bytes, which is what makes the drift check possible.

# %%
#| export
EMBED_MARKER = "#| embed-package"
HIDDEN = {"_kg_hide-input": True, "_kg_hide-output": True, "jupyter": {"source_hidden": True, "outputs_hidden": True}}
KERNELSPEC = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
              "language_info": {"name": "python"}}

def build_notebook(root) -> str:
    "The kernel notebook's JSON: `kaggle/train_kernel.py` with the `#| embed-package` cell replaced by the package modules."
    try: import jupytext, nbformat
    except ImportError as e: raise ValueError(f"building the kernel needs jupytext and nbformat ({e}): pip install jupytext") from None
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    root = Path(root)
    script_path = root / KERNEL_SCRIPT
    if not script_path.is_file(): raise FileNotFoundError(f"{script_path}: kernel script not found")
    script = script_path.read_text(encoding="utf-8")
    cells, markers = [], 0
    for cell in jupytext.reads(script, fmt="py:percent").cells:
        if cell.cell_type == "code" and cell.source.strip() == EMBED_MARKER:
            markers += 1
            for name in embedded_modules(root, script):
                text = (root / "hifigan_ruslan" / name).read_text(encoding="utf-8")
                cells.append(new_code_cell(f'%%writefile "{{PACKAGE_DIR}}/hifigan_ruslan/{name}"\n{text}', metadata=HIDDEN))
        elif cell.cell_type == "markdown": cells.append(new_markdown_cell(cell.source))
        else: cells.append(new_code_cell(cell.source))
    if markers != 1: raise ValueError(f"{script_path}: needs exactly one `{EMBED_MARKER}` cell, found {markers}")
    nb = new_notebook(cells=cells, metadata=KERNELSPEC)
    for i, cell in enumerate(nb.cells): cell.id = f"cell-{i:03d}"
    return nbformat.writes(nb) + "\n"


# %%
show_doc(build_notebook)

# %%
text = build_notebook(root)
nb = json.loads(text)
print(f"{len(text) / 1024:.0f} KiB, {len(nb['cells'])} cells, of which {sum('%%writefile' in ''.join(c['source']) for c in nb['cells'])} embed modules")
assert text == build_notebook(root)  # deterministic
assert not any(c.get("outputs") for c in nb["cells"])


# %% [markdown]
# `build_kernel` writes the notebook and the metadata, or, with `check=True`, only reports which of them differ from a fresh build; that is the drift check of `hifigan-ruslan kaggle build --check`.

# %%
#| export
def built_files(root, environ=None) -> dict[Path, str]:
    "What a build writes: `{path: text}` for the kernel notebook and `kernel-metadata.json`."
    root = Path(root)
    meta = json.dumps(kernel_metadata(kernel_settings(root, environ)), indent=2) + "\n"
    return {root / KERNEL_NOTEBOOK: build_notebook(root), root / METADATA_FILE: meta}

def build_kernel(root, check: bool = False, environ=None) -> list[Path]:
    "Write the kernel notebook and metadata; returns the files that changed. With `check`, write nothing and return the files that differ."
    files = built_files(root, environ)
    changed = [p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if not check:
        for p in changed:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(files[p], encoding="utf-8")
    return changed


# %%
show_doc(build_kernel)


# %% [markdown]
# A scratch copy of the sources to show the check failing and passing (the tests never write into the repository):

# %%
def copy_sources(root, dest) -> Path:
    "Copy what a build reads (`settings.ini`, the kernel script, the package's `.py` files) from `root` into `dest`."
    root, dest = Path(root), Path(dest)
    for rel in ["settings.ini", KERNEL_SCRIPT, *(p.relative_to(root) for p in sorted((root / "hifigan_ruslan").glob("*.py")))]:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, dest / rel)
    return dest


# %%
import tempfile

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = copy_sources(root, d)
    assert build_kernel(scratch, check=True) == [scratch / KERNEL_NOTEBOOK, scratch / METADATA_FILE]
    assert build_kernel(scratch) == [scratch / KERNEL_NOTEBOOK, scratch / METADATA_FILE] and build_kernel(scratch, check=True) == []
    with open(scratch / "hifigan_ruslan/config.py", "a") as f: f.write("\n# a change not yet built into the kernel\n")
    assert build_kernel(scratch, check=True) == [scratch / KERNEL_NOTEBOOK]
    assert build_kernel(scratch, check=True, environ={OWNER_ENV: "alice"}) == [scratch / KERNEL_NOTEBOOK, scratch / METADATA_FILE]


# %% [markdown]
# ## Resuming from the previous version
#
# On Kaggle, the previous version's output appears somewhere under `/kaggle/input` (the mount name has changed over the years, so the kernel searches). A run folder is recognised by its `checkpoints/` holding a complete pair: a generator file `g_XXXXXXXX` and the optimiser file `do_XXXXXXXX` of the same step; a lone `g_` file, as left by a session killed between the two writes, is not a resume point.

# %%
#| export
def resumable_step(ckpt_dir) -> int | None:
    "Newest step for which `ckpt_dir` holds both `g_` and `do_` files, or None."
    both = set(list_steps(ckpt_dir, "g")) & set(list_steps(ckpt_dir, "do"))
    return max(both) if both else None

def find_runs(roots) -> list[tuple[int, Path]]:
    "`(step, run_dir)` for every run folder under `roots` with a resumable checkpoint, newest step first (ties: the earlier root)."
    seen, found = set(), []
    for root in map(Path, roots):
        if not root.is_dir(): continue
        for dirpath, dirnames, _ in os.walk(root, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen: dirnames[:] = []; continue
            seen.add(real)
            dirnames.sort()
            if Path(dirpath).name == "checkpoints" and (step := resumable_step(dirpath)) is not None:
                found.append((step, Path(dirpath).parent))
    return sorted(found, key=lambda t: -t[0])


# %% [markdown]
# `restore_newest_run` copies the newest run found into the run folder of this session, unless that folder already holds a checkpoint at least as new. Everything of the old run comes along (metrics, samples, plots, the best generator) except older checkpoints, which would only fill the output. Files are copied without their permissions, because inputs are read-only and the copies must be appendable.

# %%
#| export
def restore_newest_run(roots, run_dir) -> int | None:
    "Copy the newest resumable run under `roots` into `run_dir` if it is newer than `run_dir`'s own; returns the step training resumes from."
    run_dir = Path(run_dir)
    current = resumable_step(run_dir / "checkpoints")
    runs = [(s, d) for s, d in find_runs(roots) if d.resolve() != run_dir.resolve()]
    if not runs or (current is not None and current >= runs[0][0]): return current
    step, src = runs[0]
    keep = {f"g_{step:08d}", f"do_{step:08d}", "generator_best.pt"}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src)
        if rel.parts[0] == "checkpoints" and (len(rel.parts) != 2 or rel.name not in keep): continue
        (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, run_dir / rel)
    return step


# %%
show_doc(restore_newest_run)

# %%
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    old = d / "input/hifigan-ruslan-train/run"  # the previous version's output, as mounted on Kaggle
    for name in ["g_00000100", "do_00000100", "g_00000200", "do_00000200", "g_00000300", "generator_best.pt"]:
        (old / "checkpoints").mkdir(parents=True, exist_ok=True); (old / "checkpoints" / name).write_text(name)
    (old / "metrics.csv").write_text("step,loss\n200,1.0\n"); (old / "samples").mkdir(); (old / "samples/a.wav").write_text("x")
    (old / "metrics.csv").chmod(0o444)
    run = d / "working/run"
    assert find_runs([d / "input", d / "working"]) == [(200, old)]  # g_00000300 has no do_ file
    assert restore_newest_run([d / "input", d / "working"], run) == 200
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["do_00000200", "g_00000200", "generator_best.pt"]
    assert (run / "samples/a.wav").is_file() and os.access(run / "metrics.csv", os.W_OK)
    for name in ["g_00000400", "do_00000400"]: (run / "checkpoints" / name).write_text(name)  # this session got further
    assert restore_newest_run([d / "input", d / "working"], run) == 400
    assert restore_newest_run([d / "nothing"], d / "fresh") is None


# %% [markdown]
# ## The training command
#
# Both T4s are used through `torchrun` (here `python -m torch.distributed.run`, which needs no script on the path), one process per GPU, in fp16: the T4 has fast fp16 tensor cores and no bf16. Without a GPU the same launcher starts one process on the CPU, which is how the tests run the notebook, so they exercise the launch path Kaggle uses. The time budget goes to `train`, which stops when it is spent and writes a final checkpoint.

# %%
#| export
def training_command(prepared, run_dir, preset: str, gpus: int, time_budget_s: float, max_steps: int | None = None,
                     overrides=()) -> list[str]:
    "The torchrun command line that trains on `gpus` GPUs in fp16 (or, with 0, in one CPU process) within `time_budget_s`."
    if time_budget_s < 60:
        raise ValueError(f"time budget {time_budget_s:.0f} s: too little left to train; raise HIFIGAN_SESSION_HOURS or shorten preparation")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={max(gpus, 1)}",
           "-m", "hifigan_ruslan", "train", "--data", str(prepared), "--out", str(run_dir),
           "--preset", preset, "--time-budget", str(int(time_budget_s))]
    if max_steps: cmd += ["--max-steps", str(max_steps)]
    for o in (["train.precision=fp16"] if gpus else []) + list(overrides): cmd += ["--set", o]
    return cmd


# %%
show_doc(training_command)

# %%
cmd = training_command("/kaggle/temp/prepared", "/kaggle/working/run", "recipe", gpus=2, time_budget_s=38_000.4)
print(" ".join(cmd[1:]))
assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"] and "train.precision=fp16" in cmd
cpu = training_command("p", "r", "tiny", gpus=0, time_budget_s=600, max_steps=5)
assert "--nproc_per_node=1" in cpu and cpu[-2:] == ["--max-steps", "5"] and "--set" not in cpu
try: training_command("p", "r", "recipe", gpus=2, time_budget_s=30); raise AssertionError
except ValueError as e: print(e)

# %% [markdown]
# ## Results
#
# After training, the kernel shows the loss curves (the training module's `plot_metrics`), the newest validation mel comparisons and the validation clips next to the recordings, and writes `RESULTS.md`: the best validation mel error and a table of the latest validation points, read from the run's `metrics.csv`.

# %%
#| export
RESULT_COLUMNS = ("step", "epoch", "val_mel_l1", "loss_mel", "loss_d", "loss_adv", "loss_fm", "health")

def _cell(value) -> str:
    try: return f"{float(value):.4g}" if not str(value).isdigit() else str(value)
    except (TypeError, ValueError): return value or ""

def write_results(run_dir, path, last: int = 10) -> Path:
    "Write `path`: a markdown summary of the run in `run_dir` with its latest `last` validation points."
    from hifigan_ruslan.training import read_metrics
    run_dir, path = Path(run_dir), Path(path)
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file(): raise FileNotFoundError(f"{metrics}: no metrics written; did training run?")
    rows = read_metrics(metrics)
    val = [r for r in rows if r.get("val_mel_l1")]
    steps = max(list_steps(run_dir / "checkpoints"), default=0)
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").glob("*") if not p.name.startswith("."))
    lines = ["# Training results", "", f"Run folder `{run_dir.name}`: {steps} steps, checkpoints {', '.join(ckpts) or 'none'}."]
    if val:
        best = min(val, key=lambda r: float(r["val_mel_l1"]))
        lines.append(f"Best validation mel L1: {float(best['val_mel_l1']):.4f} at step {best['step']} (`checkpoints/generator_best.pt`).")
        lines += ["", "| " + " | ".join(RESULT_COLUMNS) + " |", "|" + "---|" * len(RESULT_COLUMNS)]
        lines += ["| " + " | ".join(_cell(r.get(c)) for c in RESULT_COLUMNS) + " |" for r in val[-last:]]
    else: lines.append("No validation point yet.")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# %%
#| export
def newest_samples(run_dir) -> list[tuple[Path, Path | None]]:
    "`(generated, real)` WAV pairs of the newest validation step in `run_dir/samples` (real is None when missing)."
    found = [(m.group(1), m.group(2), p) for p in Path(run_dir, "samples").glob("step_*.wav")
             if (m := re.fullmatch(r"step_(\d{8})_(.+)\.wav", p.name))]
    if not found: return []
    last = max(step for step, _, _ in found)
    return [(p, real if (real := p.with_name(f"{uid}_real.wav")).is_file() else None)
            for step, uid, p in sorted(found) if step == last]

def show_results(run_dir):
    "Display the loss curves, the newest validation mel comparisons and audio players (generated, then real) of `run_dir`."
    from IPython.display import Audio, Image, display
    from hifigan_ruslan.training import plot_metrics
    run_dir = Path(run_dir)
    if (run_dir / "metrics.csv").is_file():  # rendered to PNG here: a bare Figure only displays where pyplot is set up
        png = io.BytesIO()
        plot_metrics(run_dir / "metrics.csv").savefig(png, format="png", dpi=80)
        display(Image(data=png.getvalue()))
    for generated, real in newest_samples(run_dir):
        print(generated.stem)
        if generated.with_suffix(".png").is_file(): display(Image(filename=str(generated.with_suffix(".png"))))
        for wav in filter(None, (generated, real)): display(Audio(filename=str(wav)))


# %%
show_doc(write_results)
show_doc(show_results)

# %% [markdown]
# A run folder as training leaves it (two validation points, samples of both steps):

# %%
import numpy as np, soundfile as sf

# %%
with tempfile.TemporaryDirectory() as d:
    run = Path(d) / "run"
    (run / "checkpoints").mkdir(parents=True); (run / "samples").mkdir()
    for name in ["g_00000040", "do_00000040", "generator_best.pt"]: (run / "checkpoints" / name).touch()
    (run / "metrics.csv").write_text("step,epoch,loss_g,loss_d,loss_adv,loss_fm,loss_mel,val_mel_l1,health\n"
                                     "0,0,,,,,,2.91,ok\n20,1,80.1,4.9,3.1,1.2,1.71,2.12,ok\n40,2,71.0,4.5,3.4,1.5,1.43,1.64,ok\n")
    t = np.arange(4410) / 22050
    for stem, f in [("step_00000020_000003", 150), ("step_00000040_000003", 200), ("000003_real", 220)]:
        sf.write(run / "samples" / f"{stem}.wav", 0.3 * np.sin(2 * np.pi * f * t), 22050)
    assert [(g.name, r.name) for g, r in newest_samples(run)] == [("step_00000040_000003.wav", "000003_real.wav")]
    text = write_results(run, Path(d) / "RESULTS.md").read_text()
    print(text)
    assert "`run`: 40 steps" in text and "Best validation mel L1: 1.6400 at step 40" in text and "| 40 | 2 | 1.64 | 1.43 | 4.5 | 3.4 | 1.5 | ok |" in text
    show_results(run)


# %% [markdown]
# ## Command line
#
# `hifigan-ruslan kaggle build|push|status|output`. `push`, `status` and `output` run the real `kaggle` CLI (as `python -m kaggle`, so that it is the one installed with this Python), which finds the credentials itself in `~/.kaggle/kaggle.json` or `KAGGLE_USERNAME` / `KAGGLE_KEY`; this module never reads, prints or writes them. `push` refuses to run while the owner is still the placeholder, and fails when Kaggle answers with an error (the `kaggle` CLI prints it but exits with status 0).

# %%
#| export
def run_kaggle_cli(args: list[str], error_prefix: str | None = None) -> int:
    "Run `python -m kaggle ARGS`, passing its output through; status 1 also when a line starts with `error_prefix`."
    if importlib.util.find_spec("kaggle") is None:
        raise ValueError("the kaggle CLI is not installed: pip install kaggle")
    failed = False
    with subprocess.Popen([sys.executable, "-m", "kaggle", *args], stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            failed |= bool(error_prefix) and line.startswith(error_prefix)
    return proc.returncode or int(failed)

def _kernel_id(args) -> str:
    if getattr(args, "kernel", None):
        if not re.fullmatch(r"[^/\s]+/[^/\s]+", args.kernel): raise ValueError(f"--kernel {args.kernel!r}: expected OWNER/SLUG")
        return args.kernel
    settings = kernel_settings(find_repo_root(args.root))
    if settings.owner == PLACEHOLDER_OWNER:
        raise ValueError(f"the kaggle owner is still the placeholder {PLACEHOLDER_OWNER!r}: set kaggle_owner in settings.ini or {OWNER_ENV}")
    return settings.id

def main_kaggle(argv: list[str] | None = None) -> int:
    "`hifigan-ruslan kaggle build|push|status|output`."
    p = argparse.ArgumentParser(prog="hifigan-ruslan kaggle", description="Build, push and watch the Kaggle training kernel.",
                                epilog=f"The kernel is OWNER/SLUG from settings.ini (kaggle_owner, kaggle_slug); {OWNER_ENV} overrides the owner. "
                                       "Credentials: ~/.kaggle/kaggle.json or KAGGLE_USERNAME / KAGGLE_KEY.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = sub.add_parser("build", help=f"write {KERNEL_NOTEBOOK} and {METADATA_FILE} from {KERNEL_SCRIPT} and the package")
    build.add_argument("--check", action="store_true", help="write nothing; exit 1 if the committed files differ from a fresh build")
    push = sub.add_parser("push", help="build, then `kaggle kernels push` (starts a new version on Kaggle)")
    status = sub.add_parser("status", help="`kaggle kernels status` of the kernel")
    output = sub.add_parser("output", help="download the latest version's output")
    output.add_argument("--dir", default=None, help="where to download (default: runs/kaggle in the repository, or ./kaggle-output)")
    output.add_argument("--force", action="store_true", help="overwrite files that exist")
    for sp in (build, push, status, output):
        sp.add_argument("--root", default=None, help="repository root (default: found above the current folder)")
    for sp in (status, output): sp.add_argument("--kernel", default=None, help="OWNER/SLUG (default: from settings.ini)")
    args = p.parse_args(argv)

    if args.action == "build":
        root = find_repo_root(args.root)
        changed = build_kernel(root, check=args.check)
        names = ", ".join(str(c.relative_to(root)) for c in changed)
        if args.check:
            if changed:
                print(f"out of date with {KERNEL_SCRIPT} and the package: {names}; run `hifigan-ruslan kaggle build`", file=sys.stderr)
                return 1
            print(f"{KERNEL_NOTEBOOK} and {METADATA_FILE} are up to date")
        else: print(f"wrote {names}" if changed else f"{KERNEL_NOTEBOOK} and {METADATA_FILE} already up to date")
        return 0
    if args.action == "push":
        root = find_repo_root(args.root)
        kernel = _kernel_id(args)
        build_kernel(root)
        print(f"pushing {kernel} ({KERNEL_NOTEBOOK}, {len(embedded_modules(root))} embedded modules)", flush=True)
        return run_kaggle_cli(["kernels", "push", "-p", str(root)], error_prefix="Kernel push error")
    kernel = _kernel_id(args)
    if args.action == "status": return run_kaggle_cli(["kernels", "status", kernel])
    if args.dir: out = Path(args.dir)
    else:
        try: out = find_repo_root(args.root) / "runs" / "kaggle"
        except FileNotFoundError: out = Path("kaggle-output")
    out.mkdir(parents=True, exist_ok=True)
    rc = run_kaggle_cli(["kernels", "output", kernel, "-p", str(out), *(["-o"] if args.force else [])])
    if rc == 0: print(f"output of {kernel} in {out}")
    return rc


# %%
show_doc(main_kaggle)


# %% [markdown]
# `build --check` is the drift check for CI: silent success when the files match a fresh build, a one-line message and status 1 when they do not. `push` refuses the placeholder owner before doing anything. (Shown on a scratch copy; CI runs the check on the repository itself.)

# %%
def kaggle_cmd(*args, env=None):
    return subprocess.run([sys.executable, "-m", "hifigan_ruslan", "kaggle", *args], capture_output=True, text=True, env=env)

with tempfile.TemporaryDirectory() as d:
    scratch = copy_sources(root, d)
    stale = kaggle_cmd("build", "--check", "--root", str(scratch))
    print(stale.stderr.strip())
    assert stale.returncode == 1 and stale.stderr.count("\n") == 1 and "kaggle/train.ipynb" in stale.stderr
    assert kaggle_cmd("build", "--root", str(scratch)).returncode == 0
    assert kaggle_cmd("build", "--check", "--root", str(scratch)).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != OWNER_ENV}
    push = kaggle_cmd("push", "--root", str(scratch), env=env)
    print(push.stderr.strip())
    assert push.returncode == 2 and "placeholder" in push.stderr and push.stderr.count("\n") == 1
    bad = kaggle_cmd("status", "--kernel", "hifigan-ruslan-train")
    print(bad.stderr.strip())
    assert bad.returncode == 2 and "OWNER/SLUG" in bad.stderr

# %% [markdown]
# ### Pushing to a stand-in for Kaggle
#
# The tests run the real `kaggle` CLI, but against a small HTTP server on the loopback interface: with `KAGGLE_API_ENVIRONMENT=LOCALHOST` the CLI sends its requests to `http://localhost`. For a push, the CLI validates the folder first (title, code file, language, kernel type, source names), so a push that reaches the server has passed Kaggle's own checks; the server then records what Kaggle would have received. `status` and `output` get canned answers (and `output` a file to download). Credentials are fakes in the environment, with `HOME` and the Kaggle config folder pointed at an empty temporary folder, so no real credentials are read or touched.

# %%
import http.server, threading
from contextlib import contextmanager


# %%
def stub_env(home, owner: str) -> dict:
    "An environment for the kaggle CLI with fake credentials, an empty home and the API pointed at http://localhost."
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_") and "proxy" not in k.lower()}
    env.update(HOME=str(home), KAGGLE_CONFIG_DIR=str(Path(home) / ".kaggle"), XDG_CONFIG_HOME=str(home), NO_PROXY="*",
               KAGGLE_USERNAME=owner, KAGGLE_KEY="stub-key-0123456789", KAGGLE_API_ENVIRONMENT="LOCALHOST", **{OWNER_ENV: owner})
    return env

@contextmanager
def kaggle_stub(replies: dict[str, dict], files: dict[str, bytes] | None = None, port: int = 80):
    "A stand-in Kaggle API on 127.0.0.1:`port`: answers a POST to `.../NAME` with `replies[NAME]` and a GET of `/files/X` with `files[X]`; yields the requests."
    received, files = [], files or {}
    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, data: bytes, status: int = 200):
            self.send_response(status); self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"path": self.path, "body": json.loads(body or b"{}"), "authorization": self.headers.get("Authorization")})
            name = self.path.rsplit("/", 1)[-1]
            self.answer(json.dumps(replies[name]).encode()) if name in replies else self.answer(b"{}", 404)
        def do_GET(self):
            name = self.path.removeprefix("/files/")
            self.answer(files[name]) if name in files else self.answer(b"", 404)
        def log_message(self, *args): pass
    http.server.ThreadingHTTPServer.allow_reuse_address = True  # a re-run right after this one can bind again
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try: yield received
    finally:
        server.shutdown(); server.server_close(); thread.join()

def stub_kaggle_cmd(*args, owner: str = "stub-user") -> subprocess.CompletedProcess:
    "`hifigan-ruslan kaggle ARGS` with fake credentials in an empty home, talking to http://localhost."
    with tempfile.TemporaryDirectory() as home:
        return subprocess.run([sys.executable, "-m", "hifigan_ruslan", "kaggle", *map(str, args)],
                              capture_output=True, text=True, env=stub_env(home, owner), timeout=120)

SAVED = {"SaveKernel": {"ref": "/code/stub-user/hifigan-ruslan-train", "url": "https://www.kaggle.com/code/stub-user/hifigan-ruslan-train",
                        "versionNumber": 1, "kernelId": 1}}

# %%
import base64

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = copy_sources(root, d)
    with kaggle_stub(SAVED) as received: proc = stub_kaggle_cmd("push", "--root", scratch)
    print(proc.stdout.strip())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stub-key-0123456789" not in proc.stdout + proc.stderr  # the key is never printed
    [req] = [r for r in received if r["path"].endswith("/kernels.KernelsApiService/SaveKernel")]
    body = req["body"]
    print({k: v for k, v in body.items() if k != "text"})
    assert base64.b64decode(req["authorization"].split()[1]).decode() == "stub-user:stub-key-0123456789"
    assert body["slug"] == "stub-user/hifigan-ruslan-train" and body["newTitle"] == "Hifigan Ruslan Train"
    assert (body["language"], body["kernelType"], body["machineShape"]) == ("python", "notebook", "NvidiaTeslaT4")
    assert body["enableGpu"] is True and body["enableInternet"] is False and body["isPrivate"] is True
    assert body["datasetDataSources"] == ["freezerainml/ruslan"] and body["kernelDataSources"] == ["stub-user/hifigan-ruslan-train"]
    sent = json.loads(body["text"])
    built = json.loads((scratch / KERNEL_NOTEBOOK).read_text())
    assert [c["source"] for c in sent["cells"]] == ["".join(c["source"]) for c in built["cells"]]  # the notebook, as built
    assert json.loads((scratch / METADATA_FILE).read_text())["id"] == "stub-user/hifigan-ruslan-train"

    # Kaggle refusing the kernel: the CLI prints the error and exits with 0, `push` exits with 1
    with kaggle_stub({"SaveKernel": {"error": "Notebook not found"}}) as received: proc = stub_kaggle_cmd("push", "--root", scratch)
    print(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 1 and "Kernel push error: Notebook not found" in proc.stdout and len(received) == 1

    # status and output of the kernel named by the settings
    with kaggle_stub({"GetKernelSessionStatus": {"status": "COMPLETE"}}) as received:
        proc = stub_kaggle_cmd("status", "--root", scratch)
    print(proc.stdout.strip())
    assert proc.returncode == 0 and "COMPLETE" in proc.stdout.upper() and received[0]["body"]["kernelSlug"] == "hifigan-ruslan-train"
    listing = {"ListKernelSessionOutput": {"files": [{"fileName": "RESULTS.md", "url": "http://localhost/files/RESULTS.md"}], "log": "[]"}}
    with kaggle_stub(listing, files={"RESULTS.md": b"# Training results\n"}):
        proc = stub_kaggle_cmd("output", "--root", scratch, "--dir", Path(d) / "out")
    print(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and (Path(d) / "out/RESULTS.md").read_bytes() == b"# Training results\n"

# %% [markdown]
# The CLI's own validation is what guards the push: metadata it rejects never reaches a server (none is listening here).

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = copy_sources(root, d)
    build_kernel(scratch, environ={OWNER_ENV: "stub-user"})
    good = json.loads((scratch / METADATA_FILE).read_text())
    for change, message in [({"title": "HiFi"}, "Title must be at least five characters"),
                            ({"dataset_sources": ["ruslan"]}, "Dataset must be specified in the form"),
                            ({"code_file": "kaggle/missing.ipynb"}, "Source file not found")]:
        (scratch / METADATA_FILE).write_text(json.dumps({**good, **change}))
        proc = subprocess.run([sys.executable, "-m", "kaggle", "kernels", "push", "-p", str(scratch)],
                              capture_output=True, text=True, env=stub_env(d, "stub-user"), timeout=60)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, (change, proc.stdout, proc.stderr)
    print("rejected:", (proc.stdout + proc.stderr).strip().splitlines()[-1])

# %% [markdown]
# The kernel script must hold exactly one place for the package:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = copy_sources(root, d)
    script = scratch / KERNEL_SCRIPT
    script.write_text(script.read_text().replace(EMBED_MARKER, f"{EMBED_MARKER}\n\n# %%\n{EMBED_MARKER}"))
    try: build_kernel(scratch); raise AssertionError
    except ValueError as e: print(e)

# %% [markdown]
# ## The kernel, end to end
#
# The generated notebook runs here as it would on Kaggle, with the Kaggle folders redirected to temporary ones through its parameter cell's environment variables, on the bundled small corpus with the `tiny` preset and a few steps (on the CPU, as a single process). The second execution plays the next version of the kernel: the first one's output is mounted among its inputs, as `kernel_sources` does on Kaggle, and it has to resume from it.
#
# The same variables run the notebook on any machine: `HIFIGAN_CORPUS` (a corpus folder or its metadata file; default: search `HIFIGAN_KAGGLE_INPUT`), `HIFIGAN_KAGGLE_INPUT`, `HIFIGAN_KAGGLE_WORKING`, `HIFIGAN_KAGGLE_TEMP`, `HIFIGAN_PRESET`, `HIFIGAN_SESSION_HOURS`, `HIFIGAN_REPORT_MINUTES`, `HIFIGAN_MAX_STEPS`, `HIFIGAN_VAL_SIZE` and `HIFIGAN_TRAIN_SET` (extra `key=value` overrides, separated by spaces). A run downloaded with `hifigan-ruslan kaggle output` also continues locally: `hifigan-ruslan train --data PREPARED --out runs/kaggle/run` resumes from its newest checkpoint.

# %%
#| slow
import nbformat
from hifigan_ruslan.data import bundled_corpus


# %%
#| slow
def run_kernel(notebook, input_root, session, max_steps: int, **env) -> tuple[str, list[str]]:
    "Execute the kernel `notebook` as one Kaggle session kept under `session` (working/, temp/); returns what it printed and displayed."
    session = Path(session)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HIFIGAN_")},
           "HIFIGAN_KAGGLE_INPUT": str(input_root), "HIFIGAN_KAGGLE_WORKING": str(session / "working"),
           "HIFIGAN_KAGGLE_TEMP": str(session / "temp"), "HIFIGAN_PRESET": "tiny", "HIFIGAN_MAX_STEPS": str(max_steps),
           "HIFIGAN_VAL_SIZE": "2", **env}
    proc = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--output-dir", str(session),
                           "--output", "executed", "--ExecutePreprocessor.timeout=300", str(notebook)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = nbformat.read(session / "executed.ipynb", as_version=4).cells
    outputs = [o for c in cells for o in c.get("outputs", [])]
    return "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream"), [m for o in outputs for m in o.get("data", {})]


# %%
#| slow
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    notebook = d / "train.ipynb"
    notebook.write_text(build_notebook(root))
    shutil.copytree(bundled_corpus(), d / "input/ruslan")
    first, _ = run_kernel(notebook, d / "input", d / "v1", max_steps=1)
    step1 = resumable_step(d / "v1/working/run/checkpoints")
    assert "no previous checkpoint" in first and step1 is not None and (d / "v1/working/RESULTS.md").is_file()
    for name in embedded_modules(root):  # the kernel ran the package's own source, byte for byte
        assert (d / "v1/temp/src/hifigan_ruslan" / name).read_bytes() == (root / "hifigan_ruslan" / name).read_bytes(), name

    shutil.copytree(d / "v1/working", d / "input/hifigan-ruslan-train")  # the next version sees this one's output
    # this time with the corpus given explicitly, as when running the notebook on a local corpus
    second, shown = run_kernel(notebook, d / "input", d / "v2", max_steps=2, HIFIGAN_CORPUS=str(d / "input/ruslan"))
    step2 = resumable_step(d / "v2/working/run/checkpoints")
    print("\n".join(l for l in second.splitlines() if l.startswith(("resuming", "done"))))
    assert f"resuming from step {step1}" in second and step2 > step1, (step1, step2)
    assert shown.count("image/png") >= 2 and shown.count("text/html") >= 2  # loss curves, mel comparisons, audio players
    print((d / "v2/working/RESULTS.md").read_text())
