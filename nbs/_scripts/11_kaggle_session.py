# %% [markdown]
# # Kaggle session
#
# > What the Kaggle kernel runs in one session: find the run to resume (or the weights to start from), train within the session's budget, report, and list the output in a manifest.

# %%
#| default_exp kaggle_session

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import hashlib, io, json, os, re, shutil, sys
from dataclasses import dataclass
from pathlib import Path
from hifigan_ruslan.checkpoints import list_steps, resumable_step
from hifigan_ruslan.config import UserError

# %% [markdown]
# The kernel notebook (built by [Kaggle](11_kaggle.ipynb)) is a short story; the decisions it makes live here, in functions that the kernel imports and that this notebook tests on small folders. The module needs nothing but the standard library and the package's training code, because it is one of the modules the kernel carries.

# %%
import tempfile


# %% [markdown]
# ## Resuming from the previous version
#
# On Kaggle, the previous version's output appears somewhere under `/kaggle/input` (the mount name has changed over the years, so the kernel searches). A run folder is recognised by its `checkpoints/` holding a complete pair (`resumable_step` of the checkpoints module): a generator file `g_XXXXXXXX` and the optimiser file `do_XXXXXXXX` of the same step; a lone `g_` file, as left by a session killed between the two writes, is not a resume point.

# %%
#| export
def find_runs(roots) -> list[tuple[int, Path]]:
    "`(step, run_dir)` of every run folder under `roots` with a resumable checkpoint, newest first."
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
            step = resumable_step(dirpath) if Path(dirpath).name == "checkpoints" else None
            if step is not None:
                found.append((step, Path(dirpath).parent))
    return sorted(found, key=lambda t: -t[0])  # stable: on a tie the earlier root first


# %% [markdown]
# `restore_newest_run` copies the newest run found into the run folder of this session, unless that folder already holds a checkpoint at least as new. Everything of the old run comes along (metrics, samples, plots, the best generator) except older checkpoints, which would only fill the output. Files are copied without their permissions, because inputs are read-only and the copies must be appendable.

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
    old = d / "input/hifigan-ruslan-train/run"  # the previous version's output, as mounted on Kaggle
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
# A first version has no run to resume. It can still start from a pretrained generator instead of from random weights: `hifigan-ruslan kaggle push --init-from universal` uploads the official universal generator to a private dataset of the owner's and attaches it (see [Kaggle](11_kaggle.ipynb)), and the kernel passes the file to `train --init-from`. Fine-tuning only happens when nothing is resumed: a later version resumes from its own output, which has moved on from those weights.
#
# The kernel finds the file by its name, `generator_*.pth.tar` (the official files' naming), anywhere under its inputs, because Kaggle decides where a dataset is mounted. Two different candidates are ambiguous and stop the kernel with a message: the parameter `HIFIGAN_INIT_FROM` then names the file.

# %%
#| export
INIT_GLOB = "generator_*.pth.tar"  # the official generators' file names; the pretrained dataset keeps them

def find_init_weights(roots) -> Path | None:
    "The one `generator_*.pth.tar` file under `roots` (None if there is none); several are an error."
    found = sorted({p.resolve() for root in map(Path, roots) if root.is_dir()
                    for p in root.rglob(INIT_GLOB) if p.is_file()})
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise UserError(f"several pretrained generators in the inputs ({names}): "
                        "set HIFIGAN_INIT_FROM to one")
    return found[0] if found else None


# %%
show_doc(find_init_weights)

# %%
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    test_eq(find_init_weights([d / "input"]), None)
    (d / "input/owner-hifigan-universal").mkdir(parents=True)
    (d / "input/owner-hifigan-universal/generator_universal.pth.tar").write_bytes(b"weights")
    (d / "input/ruslan").mkdir()
    (d / "input/ruslan/generator_notes.txt").write_text("not a checkpoint")
    universal = d / "input/owner-hifigan-universal/generator_universal.pth.tar"
    test_eq(find_init_weights([d / "input"]), universal.resolve())
    (d / "input/ruslan/generator_LJSpeech.pth.tar").write_bytes(b"other weights")
    test_fail(lambda: find_init_weights([d / "input"]), exc=UserError, contains="HIFIGAN_INIT_FROM to one")


# %% [markdown]
# ## The training command
#
# Both T4s are used through `torchrun` (here `python -m torch.distributed.run`, which needs no script on the path), one process per GPU, in fp16: the T4 has fast fp16 tensor cores and no bf16. Without a GPU the same launcher starts one process on the CPU, which is how the tests run the notebook, so they exercise the launch path Kaggle uses. The time budget goes to `train`, which stops when it is spent and writes a final checkpoint. Two optional inputs pass straight through: `init_from`, the pretrained generator of a first version (above), and `mel_dir`, a folder of mels predicted by an acoustic model, for fine-tuning the vocoder on the features it will be given at synthesis time.

# %%
#| export
def training_command(prepared, run_dir, preset: str | None, gpus: int, time_budget_s: float,
                     max_steps: int | None = None, overrides=(), init_from=None, mel_dir=None) -> list[str]:
    "The torchrun command line that trains on `gpus` GPUs in fp16 (0: one CPU process) within the budget."
    if time_budget_s < 60:
        raise UserError(f"time budget {time_budget_s:.0f} s: too little left to train; "
                        "raise HIFIGAN_SESSION_HOURS or shorten preparation")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={max(gpus, 1)}",
           "-m", "hifigan_ruslan", "train", "--data", str(prepared), "--out", str(run_dir)]
    if preset:  # without one, a resumed run keeps the config it saved
        cmd += ["--preset", preset]
    cmd += ["--time-budget", str(int(time_budget_s))]
    if max_steps:
        cmd += ["--max-steps", str(max_steps)]
    if init_from:
        cmd += ["--init-from", str(init_from)]
    if mel_dir:
        cmd += ["--mel-dir", str(mel_dir)]
    for override in (["train.precision=fp16"] if gpus else []) + list(overrides):
        cmd += ["--set", override]
    return cmd


# %%
show_doc(training_command)

# %%
cmd = training_command("/kaggle/temp/prepared", "/kaggle/working/run", "recipe", gpus=2,
                       time_budget_s=38_000.4)
print(" ".join(cmd[1:]))
test_eq(cmd[1:6], ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"])
test_eq(cmd[-4:], ["--time-budget", "38000", "--set", "train.precision=fp16"])
cpu = training_command("p", "r", "tiny", gpus=0, time_budget_s=600, max_steps=5)
assert "--nproc_per_node=1" in cpu, cpu
test_eq(cpu[-2:], ["--max-steps", "5"])
assert "--set" not in cpu, cpu
test_fail(lambda: training_command("p", "r", "recipe", gpus=2, time_budget_s=30), exc=UserError,
          contains="time budget 30 s: too little left to train")
transfer = training_command("p", "r", "recipe", gpus=2, time_budget_s=600, init_from="/in/g.pth.tar",
                            mel_dir="/in/mels")
test_eq(transfer[-8:-2], ["--time-budget", "600", "--init-from", "/in/g.pth.tar", "--mel-dir", "/in/mels"])
assert "--preset" not in training_command("p", "r", None, gpus=2, time_budget_s=600)  # resume: saved config

# %% [markdown]
# ## Results
#
# After training, the kernel shows the loss curves (`plot_metrics` of the metrics module), the newest validation mel comparisons and the validation clips next to the recordings, and writes `RESULTS.md`: the best validation mel error and a table of the latest validation points, read from the run's `metrics.csv`.

# %%
#| export
RESULT_COLUMNS = ("step", "epoch", "val_mel_l1", "loss_mel", "loss_d", "loss_adv", "loss_fm", "health")

def _cell(value) -> str:
    "A metrics value as a table cell: integers as they are, other numbers to 4 significant digits."
    if value is None or str(value).isdigit():
        return "" if value is None else str(value)
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return str(value)

def write_results(run_dir, path, last: int = 10) -> Path:
    "Write `path`: a markdown summary of the run in `run_dir` with its latest `last` validation points."
    from hifigan_ruslan.evaluation import markdown_table
    from hifigan_ruslan.metrics import read_metrics
    run_dir, path = Path(run_dir), Path(path)
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        raise UserError(f"{metrics}: no metrics written; did training run?")
    val = [r for r in read_metrics(metrics) if r.get("val_mel_l1")]
    steps = max(list_steps(run_dir / "checkpoints"), default=0)
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").glob("*") if not p.name.startswith("."))
    lines = ["# Training results", "",
             f"Run folder `{run_dir.name}`: {steps} steps, checkpoints {', '.join(ckpts) or 'none'}.",
             "Licence: weights trained on RUSLAN (CC BY-NC-SA 4.0) are a derived work: non-commercial use only, "
             "shared under CC BY-NC-SA 4.0, crediting RUSLAN."]
    if val:
        best = min(val, key=lambda r: float(r["val_mel_l1"]))
        lines.append(f"Best validation mel L1: {float(best['val_mel_l1']):.4f} at step {best['step']} "
                     "(`checkpoints/generator_best.pt`).")
        rows = [[_cell(r.get(c)) for c in RESULT_COLUMNS] for r in val[-last:]]
        lines += ["", markdown_table(list(RESULT_COLUMNS), rows).rstrip("\n")]
    else:
        lines.append("No validation point yet.")
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
    test_fail(lambda: write_results(Path(d) / "empty", Path(d) / "R.md"), exc=UserError,
              contains="empty/metrics.csv: no metrics written")
    show_results(run)

# %% [markdown]
# ## The output manifest
#
# `kaggle kernels output` downloads only the first 500 files of a version's output, without a word about the rest, and a download can be cut short. So the kernel's last step lists its output in `MANIFEST.json`: every file's path relative to `/kaggle/working`, its size and its SHA-256. After a download, `check_manifest` compares the folder with that list; files the manifest does not name (Kaggle adds its log) are not its concern.

# %%
#| export
MANIFEST_FILE = "MANIFEST.json"

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

def write_manifest(folder) -> Path:
    "Write `folder/MANIFEST.json`: the relative path, size and SHA-256 of every other file under `folder`."
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / MANIFEST_FILE)
    entries = [{"path": p.relative_to(folder).as_posix(), "size": p.stat().st_size, "sha256": _sha256(p)}
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

def read_manifest(folder) -> list[dict]:
    "The file entries of `folder/MANIFEST.json`."
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise UserError(f"{path}: no manifest in the download (a version older than the manifest, "
                        "or an output of more than 500 files); its completeness cannot be checked")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["files"]
        return [{"path": str(e["path"]), "size": int(e["size"]), "sha256": str(e["sha256"])} for e in entries]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not a manifest (a JSON object with a list `files` of path, size, sha256); "
                        "download it again with --force") from None

def check_manifest(folder) -> ManifestCheck:
    "Compare the files under `folder` with its manifest: which are missing, which differ in size or SHA-256."
    folder = Path(folder)
    entries = read_manifest(folder)
    missing, differ = [], []
    for entry in entries:
        path = folder / entry["path"]
        if not path.is_file():
            missing.append(f"missing: {entry['path']} ({entry['size']} bytes)")
        elif path.stat().st_size != entry["size"]:
            differ.append(f"differs: {entry['path']} ({path.stat().st_size} bytes, expected {entry['size']})")
        elif _sha256(path) != entry["sha256"]:
            differ.append(f"differs: {entry['path']} (SHA-256 {_sha256(path)[:12]}..., "
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
    manifest = json.loads(write_manifest(working).read_text())
    print(json.dumps(manifest["files"][0]))
    test_eq([e["path"] for e in manifest["files"]],
            ["RESULTS.md", "run/checkpoints/g_00000010", "run/metrics.csv"])
    test_eq(check_manifest(working), ManifestCheck(3))
    shutil.copytree(working, download)
    (download / "run/metrics.csv").unlink()
    (download / "run/checkpoints/g_00000010").write_bytes(bytes(256))
    (download / "hifigan-ruslan-train.log").write_text("[]")  # added by Kaggle, not in the manifest
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
