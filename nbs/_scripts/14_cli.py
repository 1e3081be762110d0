# %% [markdown]
# # Command line
#
# > `hifigan-ruslan`: one console script whose subcommands run every job of the project.

# %%
#| default_exp cli

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %%
#| export
from __future__ import annotations
import argparse, signal, sys, traceback, warnings
from pathlib import Path
import hifigan_ruslan
from hifigan_ruslan.config import (BACKENDS, EXPORT_FORMATS, GENERATOR_PRESETS, INFERENCE_PRECISIONS,
                                   preset_names)
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.locations import atomic_write, check_no_overwrite, check_output_file, check_output_folder


# %% [markdown]
# Every subcommand, its options and its help are defined here and nowhere else; the modules they call are libraries that take ordinary arguments and return results. The command line parses, calls one library function, and prints a short summary of what was written where.
#
# Two kinds of failure are kept apart. A mistake the user can fix (a wrong path, a malformed file, a bad value) is raised as `UserError` with a one-line message naming the file or value; `main` prints that line and exits with status 2. Anything else is a bug: it propagates with its traceback, so that it can be reported and fixed rather than mistaken for bad input. A stop (Ctrl-C, or SIGTERM from a scheduler or `timeout`) ends any command as a whole, with one line on stderr and exit status 130 or 143 ([Stopping](08b_stopping.ipynb#a-stop-is-a-stop-for-every-command)); a training run finishes its step and writes its checkpoint first.
#
# Heavy imports (PyTorch, the models) happen inside the subcommands, so `hifigan-ruslan --help` answers at once.

# %% [markdown]
# ## Options shared by several subcommands
#
# The same option means the same thing everywhere: `--device` picks where the networks run, `--threads` how many CPU threads PyTorch uses (one is often faster on a CPU shared with other jobs), `--no-progress` turns off every progress bar (for logs), and `--checkpoint` takes a checkpoint file or a run folder.

# %%
#| export
def _add_device(p: argparse.ArgumentParser, default: str = "auto"):
    p.add_argument("--device", default=default, help=f"auto, cpu, cuda, cuda:1 ... (default: {default})")

def _add_threads(p: argparse.ArgumentParser):
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (default: all cores)")

def _add_progress(p: argparse.ArgumentParser):
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

def _add_checkpoint(p: argparse.ArgumentParser):
    p.add_argument("--checkpoint", required=True,
                   help="a pretrained model (universal, lj), a run folder (its generator_best.pt, else its "
                        "newest g_), a g_XXXXXXXX or generator_best.pt file, or an official g_ file")
    p.add_argument("--preset", choices=list(GENERATOR_PRESETS),
                   help="generator preset of an official checkpoint (inferred if omitted)")

def _add_vocoder_options(p: argparse.ArgumentParser):
    _add_checkpoint(p)
    _add_device(p)
    _add_threads(p)
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="inference runtime (default: OpenVINO on the CPU, else PyTorch)")
    p.add_argument("--precision", choices=INFERENCE_PRECISIONS, default="fp32",
                   help="bf16: faster where the CPU has native bf16 (AMX, AVX512-BF16), after seconds of "
                        "preparation for each new input length (for many short files of different lengths "
                        "fp32 is faster); elsewhere fp32, with a warning")


# %% [markdown]
# ## The parser
#
# One `argparse` parser with a sub-parser per command; each sets `run`, the function below that carries it out.

# %%
#| export
def _prepare_parser(sub):
    p = sub.add_parser(
        "prepare", help="check, resample and split a corpus (RUSLAN, LJSpeech, Festival, audio)",
        description="Check, resample (22,050 Hz mono 16-bit) and split a corpus. The layout is found by "
                    "itself: RUSLAN (metadata_RUSLAN_22200.csv), LJSpeech (metadata.csv, wavs/), a Festival "
                    "voice (etc/txt.done.data, wav/) or a plain folder of audio without transcripts; WAV, "
                    "FLAC or OGG at any rate and channel count.")
    p.add_argument("--data-path", required=True,
                   help="the corpus's folder, a folder above it, or its transcript file")
    p.add_argument("--out", required=True,
                   help="output folder: wavs/, train.txt, val.txt, report.json (never inside --data-path)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--val-size", type=int, default=100,
                   help="validation clips (default 100; at most a fifth of a small corpus)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the train/validation split")
    p.add_argument("--mel-dir", default=None, help="folder of cached ID.npy mels [80, frames] to check")
    _add_progress(p)
    p.set_defaults(run=_prepare)


# %%
#| export
def _train_parser(sub):
    p = sub.add_parser("train", help="train (or resume) a HiFi-GAN run",
                       description="Train (or resume) a HiFi-GAN run.")
    p.add_argument("--data", required=True, help="prepared data folder (from `hifigan-ruslan prepare`)")
    p.add_argument("--out", required=True,
                   help="run folder: checkpoints/, samples/, plots/, metrics.csv (resumed if it has any)")
    p.add_argument("--preset", default=None,
                   help=f"a training preset ({', '.join(preset_names())}); default: recipe, or a resumed "
                        "run's own config")
    p.add_argument("--config", default=None, help="a YAML/JSON config file (instead of --preset)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many optimizer steps in all (default: the configured epochs)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="stop with a checkpoint before this much time has passed")
    p.add_argument("--val-every", type=int, default=None, metavar="STEPS",
                   help="validate every STEPS steps; 0 never (train.val_every_steps)")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS",
                   help="checkpoint every STEPS steps (train.checkpoint_every_steps)")
    p.add_argument("--init-from", default=None, metavar="CKPT",
                   help="start a new run from these weights: a pretrained model (universal, lj), a run "
                        "folder, or a g_ file (its do_ sibling too)")
    p.add_argument("--resume-from", default=None, metavar="PATH",
                   help="continue from a run folder, a checkpoints folder or a g_/do_ file (official too)")
    p.add_argument("--mel-dir", default=None, metavar="DIR",
                   help="train on these ID.npy mels [80, frames] (e.g. an acoustic model's) "
                        "instead of the audio's")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. train.lambda_mel=30 (repeatable)")
    p.add_argument("--stop-on-collapse", action="store_true",
                   help="stop when the health monitor reports a collapse")
    _add_device(p)
    _add_threads(p)
    _add_progress(p)
    p.set_defaults(run=_train)

def _demo_parser(sub):
    p = sub.add_parser(
        "demo", help="the whole pipeline on the bundled real voice, in minutes on a CPU",
        description="The whole pipeline on the bundled real voice (24 festvox-ru clips): prepare, train, "
                    "resynthesise; then the universal vocoder before and after a short fine-tune, with mel "
                    "L1, PESQ and DistillMOS.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=int, default=300, help="training steps of the tiny preset (default 300)")
    p.add_argument("--finetune-steps", type=int, default=30,
                   help="fine-tuning steps of the pretrained universal vocoder (default 30; 0: only compare)")
    _add_device(p, default="cpu")
    _add_threads(p)
    _add_progress(p)
    p.set_defaults(run=_demo)


# %%
#| export
def _files_parser(sub, name: str, summary: str, description: str, inputs: str, inputs_help: str, run):
    "A command that turns every input file into one WAV in `--out`."
    p = sub.add_parser(name, help=summary, description=description)
    _add_vocoder_options(p)
    p.add_argument(inputs, nargs="+", required=True, metavar="FILE", help=inputs_help)
    p.add_argument("--out", required=True, help="output folder (one WAV per input, named after it)")
    _add_progress(p)
    p.set_defaults(run=run)

def _inference_parsers(sub):
    _files_parser(sub, "generate", "vocode mel files (.npy / .pt) into WAVs",
                  "Vocode log-mels ([80, T] or [1, 80, T]) into 22,050 Hz WAV files.", "--mel",
                  ".npy or .pt log-mel files", _generate)
    _files_parser(sub, "resynth", "audio -> mel -> audio for WAV files",
                  "Audio (any rate, mono or stereo) -> mel -> audio through the vocoder.", "--wav",
                  "audio files", _resynth)
    p = sub.add_parser("export", help="export a generator to ONNX or TorchScript",
                       description="Export the generator (mel [B, 80, T] -> audio [B, 1, 256 T]), checked.")
    _add_checkpoint(p)
    p.add_argument("--format", choices=EXPORT_FORMATS, default="onnx",
                   help="onnx (OpenVINO, ONNX Runtime, TensorRT) or torchscript (libtorch); default: onnx")
    p.add_argument("--out", required=True, help="output model file")
    p.set_defaults(run=_export)

def _evaluate_parser(sub):
    p = sub.add_parser("evaluate", help="score a checkpoint on the validation clips",
                       description="Score a checkpoint on the validation clips of a prepared folder.")
    _add_vocoder_options(p)
    p.add_argument("--data", required=True, help="folder written by `prepare` (wavs/, val.txt)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N validation clips")
    p.add_argument("--baseline", default=None, metavar="CKPT",
                   help="also score this model and compare: a pretrained model (universal, lj), a run folder "
                        "or a checkpoint file, other than --checkpoint")
    p.add_argument("--out", required=True, help="output folder: metrics.csv, metrics.md, figures/, audio/")
    _add_progress(p)
    p.set_defaults(run=_evaluate)


# %%
#| export
def _kaggle_parser(sub):
    p = sub.add_parser("kaggle", help="build / push / watch the Kaggle training kernel",
                       description="Build, push and watch the Kaggle training kernel.",
                       epilog="The kernel is OWNER/SLUG from kernel-metadata.json or settings.ini; "
                              "HIFIGAN_KAGGLE_OWNER overrides the owner. "
                              "Credentials: ~/.kaggle/kaggle.json or KAGGLE_USERNAME / KAGGLE_KEY.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="write the kernel notebook and its metadata")
    build.add_argument("--check", action="store_true",
                       help="write nothing; exit 1 if the files on disk differ from a fresh build")
    push = actions.add_parser("push", help="build, then `kaggle kernels push` (a new version on Kaggle)")
    push.add_argument("--smoke", action="store_true",
                      help="a short version first (about 15 GPU minutes): the GPU check, a few hundred steps "
                           "on both GPUs, a checkpoint and one resume; RESULTS.md with the GPU figures")
    push.add_argument("--init-from", default=None, metavar="NAME",
                      help="a pretrained generator (universal, lj) for the first version to fine-tune; "
                           "uploaded to a private Kaggle dataset and attached")
    push.add_argument("--fresh", action="store_true",
                      help="start a new run instead of resuming the previous version's checkpoints")
    push.add_argument("--after-error", action="store_true",
                      help="push although the latest version failed, resuming from what it left")
    status = actions.add_parser("status", help="`kaggle kernels status` of the kernel")
    output = actions.add_parser("output", help="download the latest version's output")
    output.add_argument("--dir", default=None, help="where to download (default: runs/kaggle)")
    output.add_argument("--force", action="store_true", help="overwrite files that exist")
    for action in (build, push, status, output):
        action.add_argument("--root", default=None,
                            help="folder of the kernel files (default: the repository, else here)")
    for action in (status, output):
        action.add_argument("--kernel", default=None, help="OWNER/SLUG (default: from the kernel metadata)")
    p.set_defaults(run=_kaggle)


# %%
#| export
def build_parser() -> argparse.ArgumentParser:
    "The `hifigan-ruslan` parser with every subcommand."
    p = argparse.ArgumentParser(prog="hifigan-ruslan",
                                description="HiFi-GAN vocoder for Russian speech (RUSLAN).",
                                epilog="Run `hifigan-ruslan COMMAND --help` for the options of one command.")
    p.add_argument("--version", action="version", version=f"hifigan-ruslan {hifigan_ruslan.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_prepare_parser, _train_parser, _demo_parser, _inference_parsers, _evaluate_parser,
                _kaggle_parser):
        add(sub)
    return p


# %% [markdown]
# ## The subcommands
#
# Each one checks the values that only the command line can get wrong, calls the library, and prints where its output went.

# %%
#| export
def _non_negative(args, *names: str):
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 0:
            raise UserError(f"--{name.replace('_', '-')} {value}: must be 0 or more")

def _set_threads(threads: int | None):
    if threads is None:
        return
    if threads < 1:
        raise UserError(f"--threads {threads}: must be at least 1")
    import torch
    torch.set_num_threads(threads)


# %%
#| export
def _prepare(args) -> int:
    from hifigan_ruslan.prepare import prepare_corpus, format_summary
    report = prepare_corpus(args.data_path, args.out, args.workers, args.val_size, args.seed, args.mel_dir,
                            progress=not args.no_progress)
    print(format_summary(report))
    return 0


# %%
#| export
def _train(args) -> int:
    from hifigan_ruslan.stopping import TrainingDiverged
    from hifigan_ruslan.training import resolve_config, stop_exit_code, train, train_summary
    _non_negative(args, "val_every", "checkpoint_every")
    overrides = list(args.set)
    if args.val_every is not None:
        overrides.append(f"train.val_every_steps={args.val_every}")
    if args.checkpoint_every is not None:
        overrides.append(f"train.checkpoint_every_steps={args.checkpoint_every}")
    cfg = resolve_config(args.preset, args.config, overrides, args.out)
    try:
        trainer, reason = train(cfg, args.data, args.out, max_steps=args.max_steps,
                                time_budget=args.time_budget, init_from=args.init_from,
                                resume_from=args.resume_from,
                                stop_on_collapse=args.stop_on_collapse, device=args.device,
                                progress=not args.no_progress, mel_dir=args.mel_dir)
    except TrainingDiverged as e:
        print(f"hifigan-ruslan train: {e}", flush=True)
        return 1
    if trainer.dist.main:
        print(train_summary(trainer, reason))
    return stop_exit_code(reason)

def _demo(args) -> int:
    from hifigan_ruslan.demo import run_demo
    from hifigan_ruslan.training import stop_exit_code
    summary, reason = run_demo(args.out, steps=args.steps, finetune_steps=args.finetune_steps,
                               device=args.device, progress=not args.no_progress)
    print(summary)
    return 0 if reason is None else stop_exit_code(reason)


# %% [markdown]
# `generate` and `resynth` turn each input file into one WAV. Before the model is compiled they check the output
# folder and the device, name every output (never an input, the checkpoint, or an existing file beside an input:
# `check_no_overwrite`, [Locations](00c_locations.ipynb#an-output-never-replaces-an-input)), and open every input
# with the checkpoint's mel settings: a file that cannot be read (missing, a mel of other bands) gets its one-line
# error at once, a file with something `prepare` would flag (a mel of integers, float samples beyond [-1, 1], a WAV
# cut short) a one-line warning. When no input can be read, nothing is compiled and no folder is made. The others
# are processed; a bug in one file prints its traceback and the batch goes on. The exit status is 1 when any failed,
# and the last line is always the summary. Each output is written block by block as the vocoder produces it (under
# a hidden name, renamed once complete), so memory does not grow with the length of a file, and a long file shows a
# progress bar of its own. Two inputs with the same name never overwrite each other's output.

# %%
#| export
def _generator(args, checkpoint: str | None = None) -> tuple:
    "The checkpoint's file, generator and config, read but not yet compiled: its mel settings check the inputs."
    from hifigan_ruslan.checkpoints import find_generator_file, generator_from_checkpoint
    path = find_generator_file(checkpoint or args.checkpoint)
    return (path, *generator_from_checkpoint(path, args.preset))

def _vocoder(args, checkpoint: str | None = None, loaded: tuple | None = None):
    from hifigan_ruslan.devices import resolve_device
    from hifigan_ruslan.inference import Vocoder
    device = resolve_device(args.device)
    path, generator, config = loaded or _generator(args, checkpoint)
    voc = Vocoder(generator, config, device, backend=args.backend, precision=args.precision)
    print(f"{args.command}: {path.name} through {voc.backend} in {voc.precision} on {voc.device}", flush=True)
    return voc

def _unique_wav(out: Path, stem: str, used: set) -> Path:
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}_{n}"
    used.add(name)
    return out / f"{name}.wav"


def _targets(files: list[str], out: Path, checkpoint: Path, option: str) -> list[Path]:
    "The WAV each input becomes, never an input, the checkpoint, nor an existing file beside an input."
    used = set()
    targets = [_unique_wav(out, Path(f).stem, used) for f in files]
    writes = [(t, "output WAV") for t in targets]
    check_no_overwrite(writes, [(f, f"input {option}") for f in files], spare_siblings=True)
    check_no_overwrite(writes, [(checkpoint, "checkpoint")])
    return targets


# %%
#| export
LONG_FILE_SECONDS = 60.0  # a file at least this long gets a progress bar of its own
LONG_FILE_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]"

def _write_blocks(target: Path, blocks, seconds: float, rate: int, progress: bool) -> float:
    "Write float audio blocks to the 16-bit WAV `target` as they come (atomically); the seconds written."
    import numpy as np
    import soundfile as sf
    from tqdm.auto import tqdm
    written = 0
    bar = tqdm(total=seconds, desc=target.name, unit="s", leave=False, bar_format=LONG_FILE_BAR,
               disable=not progress or seconds < LONG_FILE_SECONDS)

    def write(tmp: Path):
        nonlocal written
        with sf.SoundFile(tmp, "w", rate, 1, "PCM_16") as f:
            for block in blocks:
                f.write(np.clip(block, -1, 1))
                written += len(block)
                bar.update(len(block) / rate)
    try:
        atomic_write(target, write)
        bar.refresh()  # the finished state, even when the last block came within tqdm's refresh interval
    finally:
        bar.close()
    return written / rate

def _warned(command: str, action):
    "`action()`, each warning it gives printed as one line on stderr."
    from tqdm.auto import tqdm
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return action()
        finally:
            for w in caught:
                tqdm.write(f"hifigan-ruslan {command}: warning: {w.message}", file=sys.stderr)


# %%
#| export
def _open_inputs(command: str, files: list[str], open_input) -> tuple[list, list]:
    "`open_input(path)` for each file, each failure one line on stderr: `([(index, opened)], failed paths)`."
    opened, failed = [], []
    for i, f in enumerate(files):
        try:
            opened.append((i, _warned(command, lambda: open_input(f))))
        except UserError as e:
            failed.append(f)
            print(f"hifigan-ruslan {command}: error: {e}", file=sys.stderr, flush=True)
        except Exception:  # a bug: its traceback, and the other files still done
            failed.append(f)
            traceback.print_exc()
    return opened, failed

def _write_wavs(args, files: list[str], option: str, open_input, work, what: str) -> int:
    "Open each file (`open_input(path, config)`), write `work(vocoder, opened)` to its WAV; the exit status."
    from tqdm.auto import tqdm
    from hifigan_ruslan.checkpoints import find_generator_file
    from hifigan_ruslan.devices import resolve_device
    command, progress = args.command, not args.no_progress
    out = check_output_folder(args.out)
    resolve_device(args.device)
    targets = _targets(files, out, find_generator_file(args.checkpoint), option)  # before anything is read
    _, _, config = loaded = _generator(args)  # read, not compiled: its mel settings check the inputs
    opened, failed = _open_inputs(command, files, lambda f: open_input(f, config))
    written = []
    if opened:  # the model is compiled, and the folder made, only for inputs that can be vocoded
        voc = _vocoder(args, loaded=loaded)
        out.mkdir(parents=True, exist_ok=True)
    for i, source in tqdm(opened, desc=command, unit="file", disable=not progress or len(opened) < 2):
        try:
            blocks, seconds = _warned(command, lambda: work(voc, source))
            written.append(_warned(command, lambda: _write_blocks(targets[i], blocks, seconds,
                                                                  voc.sampling_rate, progress)))
        except UserError as e:
            failed.append(files[i])
            tqdm.write(f"hifigan-ruslan {command}: error: {e}", file=sys.stderr)
        except Exception:
            failed.append(files[i])
            traceback.print_exc()
    failures = f"; {len(failed)} of {len(files)} {what} failed" if failed else ""
    print(f"{command}: wrote {len(written)} WAV file(s), {sum(written):.1f} s of audio, to {out}{failures}")
    return 1 if failed else 0


# %%
#| export
def _generate(args) -> int:
    import torch
    from hifigan_ruslan.mel_files import MelFile

    def vocode(voc, mel):
        audio = voc.stream(torch.from_numpy(block)[None] for block in mel.blocks(voc.chunk_frames))
        return (piece[0].numpy() for piece in audio), mel.frames * voc.hop_size / voc.sampling_rate
    return _write_wavs(args, args.mel, "--mel", lambda f, config: MelFile(f, config.mel.num_mels), vocode,
                       "mel files")

def _resynth(args) -> int:
    from hifigan_ruslan.inference import AudioFile
    return _write_wavs(args, args.wav, "--wav", lambda f, config: AudioFile(f, config.mel.sampling_rate),
                       lambda voc, audio: (voc.resynthesis(audio.blocks()), audio.seconds), "audio files")

def _export(args) -> int:
    from hifigan_ruslan.checkpoints import find_generator_file
    from hifigan_ruslan.export import check_export, export_generator
    from hifigan_ruslan.inference import Vocoder
    suffix = "onnx" if args.format == "onnx" else "pt"
    out = check_output_file(args.out, f"{args.format} model file", f"generator.{suffix}")
    checkpoint = find_generator_file(args.checkpoint)
    check_no_overwrite([(out, f"{args.format} model file")], [(checkpoint, "checkpoint")])
    voc = Vocoder.from_checkpoint(checkpoint, args.preset, "cpu", backend="torch")
    path = export_generator(voc, args.out, args.format)
    try:
        check = f"max |{args.format} - PyTorch| = {check_export(voc, path, args.format):.1e}"
    except ImportError:
        check = "not checked (openvino is not installed)"
    print(f"export: wrote {args.format} model ({path.stat().st_size / 1e6:.1f} MB) to {path}; input mel "
          f"[B, {voc.num_mels}, T] -> audio [B, 1, {voc.config.mel.hop_size} T]; {check}")
    return 0


# %%
#| export
def _same_model(checkpoint: str, baseline: str) -> None:
    "A `UserError` when `--baseline` names the very generator file that `--checkpoint` names."
    from hifigan_ruslan.checkpoints import find_generator_file
    model = find_generator_file(checkpoint)
    if model.resolve() == find_generator_file(baseline).resolve():
        raise UserError(f"--baseline {baseline}: the same model as --checkpoint {checkpoint} ({model}): "
                        "nothing to compare; give another baseline, or none")

def _evaluation_files(out: Path, baseline: bool) -> list[tuple]:
    "What `evaluate` writes in `out`: the files and folders of each model, and the comparison."
    folders = [out, out / "baseline"] if baseline else [out]
    names = ["metrics.csv", "metrics.md", "figures", "audio"]
    compared = [out / "comparison.csv", out / "comparison.md"] if baseline else []
    return [(f / name, "evaluation output") for f in folders for name in names] + \
           [(f, "evaluation output") for f in compared]

def _evaluation_inputs(args) -> list[tuple]:
    "What `evaluate` reads: the prepared clips, each model's file and the run folder it was named by."
    from hifigan_ruslan.checkpoints import find_generator_file
    from hifigan_ruslan.pretrained import is_pretrained_name
    data = Path(args.data)
    reads = [(data / "wavs", "prepared clips"), (data / "val.txt", "validation list")]
    for option in ("checkpoint", "baseline"):
        given = getattr(args, option)
        if given is None:
            continue
        model = find_generator_file(given)
        reads.append((model, f"--{option} model"))
        if not is_pretrained_name(given) and model.parent.name == "checkpoints":  # the run it belongs to
            reads.append((model.parent.parent, f"--{option} run folder"))
        elif not is_pretrained_name(given) and Path(given).is_dir():
            reads.append((Path(given), f"--{option} folder"))
    return reads

def _evaluate(args) -> int:
    from hifigan_ruslan.evaluation import (evaluate_checkpoint, mean_row, optional_metrics, validation_clips,
                                           write_comparison)
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit}: must be at least 1")
    out = check_output_folder(args.out)
    validation_clips(args.data, args.limit)  # a folder without validation clips: before any model is loaded
    if args.baseline is not None:
        _same_model(args.checkpoint, args.baseline)
    check_no_overwrite(_evaluation_files(out, args.baseline is not None), _evaluation_inputs(args))
    for note in optional_metrics()[1]:
        print(f"note: {note}")
    models = {Path(args.checkpoint).name: (args.checkpoint, out)}
    if args.baseline is not None:
        same_name = Path(args.baseline).name in models  # two runs both called `run`: name them in full
        models = {args.checkpoint: (args.checkpoint, out)} if same_name else models
        models[args.baseline if same_name else Path(args.baseline).name] = (args.baseline, out / "baseline")
    results, failed = {}, 0
    for name, (checkpoint, folder) in models.items():
        voc = _vocoder(args, checkpoint)
        title = f"{name} on {Path(args.data).name}"
        rows, errors = evaluate_checkpoint(voc, args.data, folder, args.limit, title=title,
                                           progress=not args.no_progress)
        if not rows:
            raise UserError(f"{args.data}: none of the validation clips could be read")
        means = ", ".join(f"{k} {v:.3f}" for k, v in mean_row(rows).items() if k != "seconds")
        failures = f"; {len(errors)} clip(s) failed" if errors else ""
        print(f"evaluate: {name}: {len(rows)} clips, mean {means}{failures}")
        print(f"evaluate: wrote {folder / 'metrics.csv'}, {folder / 'metrics.md'}, {len(rows)} figures in "
              f"{folder / 'figures'}, audio in {folder / 'audio'}")
        results[name] = rows
        failed += len(errors)
    if len(results) == 2:
        _, table = write_comparison(results, out, f"{' against '.join(results)} on {Path(args.data).name}")
        print(f"evaluate: comparison in {table}")
    return 1 if failed else 0


# %%
#| export
def _kaggle(args) -> int:
    from hifigan_ruslan import kaggle_client as client, kaggle_kernel as kernel
    if args.action == "output":
        kernel_id = kernel.resolve_kernel_id(args.kernel, args.root)
        out = Path(args.dir) if args.dir else kernel.default_output_dir(args.root)
        return client.download_output(kernel_id, out, force=args.force)
    if args.action == "status":
        return client.kernel_status(kernel.resolve_kernel_id(args.kernel, args.root))
    root = kernel.default_kernel_root(args.root)
    if args.action == "push":
        return client.push_kernel(root, init_from=args.init_from, smoke=args.smoke, fresh=args.fresh,
                                  after_error=args.after_error)
    changed = kernel.build_kernel(root, check=args.check)
    names = ", ".join(str(path) for path in changed)
    if args.check and changed:
        print(f"out of date: {names}; run `hifigan-ruslan kaggle build`", file=sys.stderr)
        return 1
    if args.check:
        print(f"the kernel files in {root} are up to date")
    else:
        print(f"wrote {names}" if changed else f"the kernel files in {root} are already up to date")
    return 0


# %% [markdown]
# ## The entry point

# %%
#| export
def main(argv: list[str] | None = None) -> int:
    "Entry point of the `hifigan-ruslan` console script (and of `python -m hifigan_ruslan`)."
    from hifigan_ruslan.stopping import stop_signals
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        with stop_signals():
            _set_threads(getattr(args, "threads", None))
            return int(args.run(args) or 0)
    except UserError as e:
        print(f"hifigan-ruslan {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # `Stopped` by SIGINT or SIGTERM, or a Ctrl-C before the handler was set
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"hifigan-ruslan {args.command}: stopped by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum


# %%
show_doc(main)

# %% [markdown]
# ## Tests
#
# The console script answers `--help` and `--version`, and refuses an unknown command, without importing PyTorch:

# %%
import contextlib, io, os, shutil, subprocess, tempfile
import numpy as np


# %%
def cli(*argv: str) -> subprocess.CompletedProcess:
    "Run the real console entry point in a fresh process."
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "hifigan_ruslan", *argv]
    return subprocess.run(command, capture_output=True, text=True, env=env)

def run(*argv: str) -> tuple[int, str, str]:
    "`main(argv)` in this process: `(exit status, stdout, stderr)`."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as e:
            status = e.code
    return status, out.getvalue(), err.getvalue()


# %%
helped = cli("--help")
print(helped.stdout)
test_eq(helped.returncode, 0)
test_eq([c for c in ("prepare", "train", "demo", "generate", "resynth", "export", "evaluate", "kaggle")
         if c not in helped.stdout], [])
test_eq(cli("--version").stdout.strip(), f"hifigan-ruslan {hifigan_ruslan.__version__}")
unknown = cli("fly")
test_eq(unknown.returncode, 2)
assert "invalid choice" in unknown.stderr, unknown.stderr

# %% [markdown]
# The help names what a user can pick: every training preset (`finetune` among them), and the pretrained models by name wherever a checkpoint is taken.

# %%
from hifigan_ruslan.cli import build_parser

# %%
assert "finetune" in run("train", "--help")[1], run("train", "--help")[1]
subparsers = next(a for a in build_parser()._actions if a.choices and "train" in a.choices).choices
kaggle_actions = next(a for a in subparsers["kaggle"]._actions if a.choices and "push" in a.choices).choices
parsers = [*subparsers.items(), ("kaggle push", kaggle_actions["push"])]
takes_checkpoint = {f"{name} {a.option_strings[0]}": a.help for name, parser in parsers for a in parser._actions
                    if {"--checkpoint", "--init-from", "--baseline"} & set(a.option_strings)}
print(sorted(takes_checkpoint))
test_eq(len(takes_checkpoint), 7)  # generate, resynth, export, evaluate (and its --baseline), train, kaggle push
test_eq({k for k, text in takes_checkpoint.items() if "(universal, lj)" not in text}, set())


# %% [markdown]
# A mistake is one line on stderr and exit status 2, and nothing is written; a bug keeps its traceback:

# %%
def refused(*argv: str, contains: str = "") -> str:
    "Check that `argv` is refused with exit status 2 and one line on stderr containing `contains`."
    status, _, err = run(*argv)
    test_eq(status, 2)
    test_eq(len(err.strip().splitlines()), 1)
    assert contains in err, err
    return err.strip()


# %%
tmp = Path(tempfile.mkdtemp())
print(refused("prepare", "--data-path", str(tmp / "nowhere"), "--out", str(tmp / "prepared"), contains="nowhere"))
assert not (tmp / "prepared").exists()
refused("prepare", "--data-path", str(tmp), "--out", str(tmp / "p"), "--workers", "0", contains="workers 0")
refused("prepare", "--data-path", str(tmp), "--out", str(tmp / "p"), "--val-size", "-1", contains="val_size -1")
refused("train", "--data", str(tmp), "--out", str(tmp / "run"), "--val-every", "-1", contains="--val-every -1")
refused("train", "--data", str(tmp), "--out", str(tmp / "run"), "--preset", "v9", contains="v9")
refused("train", "--data", str(tmp), "--out", str(tmp / "run"), "--set", "train.lamda=1", contains="lamda")
refused("train", "--data", str(tmp), "--out", str(tmp / "run"), "--init-from", "vctk", contains="vctk")
refused("demo", "--out", str(tmp / "demo"), "--steps", "0", contains="steps 0")
refused("demo", "--out", str(tmp / "demo"), "--finetune-steps", "-1", contains="-1")
refused("generate", "--checkpoint", str(tmp), "--mel", "x.npy", "--out", str(tmp), "--threads", "0",
        contains="--threads 0")
refused("generate", "--checkpoint", "universal", "--mel", "x.npy", "--out", str(tmp), "--device", "cuda",
        contains="CUDA")
refused("evaluate", "--checkpoint", "universal", "--data", str(tmp / "nowhere"), "--out", str(tmp / "e"),
        contains="nowhere")
refused("evaluate", "--checkpoint", "universal", "--data", str(tmp), "--out", str(tmp / "e"), "--limit", "0",
        contains="--limit 0")
refused("export", "--checkpoint", "universal", "--preset", "v3", "--out", str(tmp / "x.onnx"), contains="v1")
test_eq(run("docs")[0], 2)  # the documentation builder is development tooling, not a subcommand
test_eq(run("generate", "--checkpoint", "universal", "--mel", "x.npy", "--out", str(tmp), "--precision", "fp16")[0], 2)

# %%
import hifigan_ruslan.prepare as prepare_module


# %%
def broken(*args, **kwargs):
    raise RuntimeError("a bug deep inside")
original, prepare_module.prepare_corpus = prepare_module.prepare_corpus, broken
try:
    test_fail(lambda: main(["prepare", "--data-path", str(tmp), "--out", str(tmp / "p")]), contains="deep inside")
finally:
    prepare_module.prepare_corpus = original

# %% [markdown]
# A stop, wherever it reaches a command, is one line and the signal's exit status (the real signals, sent to the
# real console script, are in [Bad input](15_bad_input.ipynb#a-stop-is-a-stop)):

# %%
from hifigan_ruslan.stopping import Stopped


# %%
def stopped(*args, **kwargs):
    raise Stopped(signal.SIGTERM)  # as the handler raises it when a SIGTERM arrives
prepare_module.prepare_corpus = stopped
try:
    test_eq(run("prepare", "--data-path", str(tmp), "--out", str(tmp / "p")),
            (143, "", "hifigan-ruslan prepare: stopped by SIGTERM\n"))
finally:
    prepare_module.prepare_corpus = original

# %% [markdown]
# The Kaggle commands: `build --check` on a folder without the kernel files says which are out of date; a build writes them; `push` with the owner still at its placeholder, and a kernel name without an owner, are refused.

# %%
kernel = tmp / "kernel"
kernel.mkdir()
status, _, err = run("kaggle", "build", "--check", "--root", str(kernel))
test_eq(status, 1)
assert "kaggle/train.ipynb" in err, err
test_eq(run("kaggle", "build", "--root", str(kernel))[0], 0)
test_eq(run("kaggle", "build", "--check", "--root", str(kernel))[0], 0)
owner = os.environ.pop("HIFIGAN_KAGGLE_OWNER", None)
try:
    refused("kaggle", "push", "--root", str(kernel), contains="placeholder")
finally:
    if owner is not None:
        os.environ["HIFIGAN_KAGGLE_OWNER"] = owner
refused("kaggle", "status", "--kernel", "hifigan-ruslan-train", contains="OWNER/SLUG")
os.environ["HIFIGAN_KAGGLE_OWNER"] = "someone"
try:
    refused("kaggle", "push", "--root", str(kernel), "--init-from", "vctk", contains="'vctk' is not a pretrained")
finally:
    os.environ.pop("HIFIGAN_KAGGLE_OWNER")
    if owner is not None:
        os.environ["HIFIGAN_KAGGLE_OWNER"] = owner

# %% [markdown]
# ## End to end on the bundled corpus
#
# On the real voice bundled with the package (a Festival voice, found as such): `prepare`, a two-step `train` with the tiny preset (no validation), then `generate`, `resynth` and `evaluate` through the run folder itself (its newest `g_`, since no validation wrote a `generator_best.pt`). Of three mels, one has the wrong number of bands and one does not exist: each gets its one-line error, the good one is still vocoded, and the status is 1.

# %%
from hifigan_ruslan.clips import bundled_corpus

# %%
status, summary, _ = run("prepare", "--data-path", str(bundled_corpus()), "--out", str(tmp / "prepared"),
                         "--val-size", "2", "--no-progress")
test_eq(status, 0)
print(summary.splitlines()[0].replace(str(bundled_corpus()), "ASSETS/festvox_ru"))
assert "kept 24 of 24 clips" in summary and "from the Festival voice layout" in summary, summary
status, out, _ = run("train", "--data", str(tmp / "prepared"), "--out", str(tmp / "run"), "--preset", "tiny",
                     "--max-steps", "2", "--val-every", "0", "--no-progress", "--threads", "1")
test_eq(status, 0)
print(out.strip().splitlines()[-1])
test_eq(sorted(p.name for p in (tmp / "run" / "checkpoints").glob("g_*")), ["g_00000002"])

# %%
from hifigan_ruslan.mel import mel_spectrogram
import soundfile as sf, torch

# %%
wav = sorted((tmp / "prepared" / "wavs").glob("*.wav"))[0]
audio, rate = sf.read(wav, dtype="float32")
np.save(tmp / "good.npy", mel_spectrogram(torch.from_numpy(audio)).numpy())
np.save(tmp / "bad.npy", np.zeros((40, 10), np.float32))  # 40 bands: not a mel this vocoder reads
mels = [str(tmp / name) for name in ("good.npy", "bad.npy", "missing.npy")]
status, out, err = run("generate", "--checkpoint", str(tmp / "run"), "--mel", *mels, "--out", str(tmp / "generated"),
                       "--backend", "torch", "--no-progress")
print(out.strip())
print(err.strip())
test_eq(status, 1)
test_eq(len(err.strip().splitlines()), 2)
assert "bad.npy" in err, err
assert "missing.npy" in err, err
test_eq([p.name for p in (tmp / "generated").iterdir()], ["good.wav"])
test_eq(sf.info(tmp / "generated" / "good.wav").frames, len(audio) // 256 * 256)

# %% [markdown]
# `train --mel-dir` trains on mels from files (here the clips' own mels plus a small offset, standing in for an acoustic model's); a clip without its mel is refused before anything is written:

# %%
from hifigan_ruslan.data import read_split

# %%
mel_dir = tmp / "mels"
mel_dir.mkdir()
clips = read_split(tmp / "prepared" / "train.txt") + read_split(tmp / "prepared" / "val.txt")
for uid, _ in clips:
    clip, _ = sf.read(tmp / "prepared" / "wavs" / f"{uid}.wav", dtype="float32")
    np.save(mel_dir / f"{uid}.npy", mel_spectrogram(torch.from_numpy(clip)).numpy() + 0.1)
common = ("--data", str(tmp / "prepared"), "--preset", "tiny", "--max-steps", "1", "--val-every", "0",
          "--no-progress", "--mel-dir", str(mel_dir))
test_eq(run("train", "--out", str(tmp / "run_mels"), *common)[0], 0)
(mel_dir / f"{clips[0][0]}.npy").unlink()
refused("train", "--out", str(tmp / "run_mels2"), *common, contains=f"no cached mel for clip {clips[0][0]}")
assert not (tmp / "run_mels2" / "checkpoints").exists()

# %% [markdown]
# A long file (here 70 seconds of mel) shows a progress bar of its own, in seconds of audio, while it is written:

# %%
np.save(tmp / "long.npy", np.tile(np.load(tmp / "good.npy"), 70 * 22050 // len(audio) + 1))
done = cli("generate", "--checkpoint", str(tmp / "run"), "--mel", str(tmp / "long.npy"),
           "--out", str(tmp / "long"), "--backend", "torch", "--threads", "1")
test_eq(done.returncode, 0)
assert "long.wav: 100%" in done.stderr, done.stderr[-300:]
assert sf.info(tmp / "long" / "long.wav").duration > 70, sf.info(tmp / "long" / "long.wav").duration

# %% [markdown]
# Two inputs with the same name never overwrite each other's output:

# %%
status, out, _ = run("resynth", "--checkpoint", str(tmp / "run"), "--wav", str(wav), str(wav),
                     "--out", str(tmp / "resynth"), "--backend", "torch", "--no-progress")
test_eq(status, 0)
test_eq(sorted(p.name for p in (tmp / "resynth").iterdir()), [f"{wav.stem}.wav", f"{wav.stem}_2.wav"])

# %% [markdown]
# `evaluate` with a baseline scores both models on the validation clips and writes the comparison table. Here the run
# trained on the audio's mels is compared with the one trained on the cached mels; in practice the baseline is the
# model a fine-tune started from (`--baseline universal`). A baseline that is the checkpoint itself (here the run
# folder and its checkpoints folder, which lead to the same file) is refused before any model is loaded.

# %%
refused("evaluate", "--checkpoint", str(tmp / "run"), "--baseline", str(tmp / "run" / "checkpoints"),
        "--data", str(tmp / "prepared"), "--out", str(tmp / "same"), contains="the same model as")

# %%
#| slow
status, out, _ = run("evaluate", "--checkpoint", str(tmp / "run"), "--baseline", str(tmp / "run_mels"),
                     "--data", str(tmp / "prepared"), "--out", str(tmp / "eval"), "--backend", "torch",
                     "--no-progress")
print(out.replace(str(tmp), "TMP"))
test_eq(status, 0)
test_eq(sorted(p.name for p in (tmp / "eval").glob("*.md")), ["comparison.md", "metrics.md"])
assert (tmp / "eval" / "baseline" / "metrics.md").is_file()

# %%
shutil.rmtree(tmp)
