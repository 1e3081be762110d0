# %% [markdown]
# # Datasets and loaders
#
# > The dataset that reads a prepared corpus (random training windows and their mels, whole validation clips, optional cached mels) and the data loaders that feed training.

# %%
#| default_exp data

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail, test_close, test_ne

# %%
#| export
from __future__ import annotations
import math, random
from pathlib import Path
import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from hifigan_ruslan.clips import id_variants
from hifigan_ruslan.config import Config, MelConfig
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.mel_files import MelFile
from hifigan_ruslan.mel import mel_spectrogram

# %% [markdown]
# Training reads what [`prepare`](06b_prepare.ipynb) wrote: `wavs/ID.wav` at 22,050 Hz mono 16-bit, and the fixed split `train.txt` / `val.txt`. The examples on this page prepare the 12-clip synthetic test corpus (`testing.tiny_corpus`) once and read it with the `tiny` preset (4,096-sample segments, 16 frames).

# %%
import shutil, tempfile
from hifigan_ruslan.config import preset_config
from hifigan_ruslan.prepare import prepare_corpus  # the next page's: the examples read a prepared corpus
from hifigan_ruslan.testing import tiny_corpus

# %%
work = Path(tempfile.mkdtemp())
prepare_corpus(tiny_corpus(), work / "tiny", workers=1, progress=False)
cfg = preset_config("tiny")

# %% [markdown]
# ## The dataset
#
# `VocoderDataset` reads `{split}.txt` and `wavs/ID.wav`. Each item is `(mel, audio)`:
#
# - for **training**, a random window of `segment_size` samples (8,192 in the recipe) and its input mel `[80, segment_size // 256]`. The window starts on a hop boundary so that a cached mel can be cut at exactly the same frames. Only the window is read from disk (a seek into the 16-bit file), and the mel is computed on the window in the worker process, as the reference HiFi-GAN does. A clip shorter than a segment is zero-padded (a cached mel with the log-mel of silence).
# - for **validation**, the whole utterance trimmed to a multiple of the hop: audio `[T * 256]` and mel `[80, T]`.
#
# The random windows come from the dataset's own generator, which `make_dataloader` seeds per worker, so a run is reproducible. A folder that was not prepared, a split whose WAV has gone, or a WAV that is not 22,050 Hz mono is a `UserError` naming the file: running `prepare` again fixes all of them.

# %%
#| export
LOG_MEL_FLOOR = math.log(1e-5)  # the value of silence in a log-mel (mel_spectrogram clamps at 1e-5)

def read_split(path) -> list[tuple[str, str]]:
    "`(id, text)` pairs of a `train.txt` / `val.txt` written by `prepare`."
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: split file not found (run `hifigan-ruslan prepare` first)")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        uid, sep, text = line.partition("|")
        if not sep:
            raise UserError(f"{path}:{n}: expected `ID|text`, got {line[:50]!r}")
        items.append((uid.strip(), text.strip()))
    return items


# %%
show_doc(read_split)

# %%
test_eq(len(read_split(work / "tiny/train.txt")), 10)
assert read_split(work / "tiny/val.txt")[0][0].endswith("_RUSLAN")
(work / "odd.txt").write_text("000001_RUSLAN|текст\n\nno separator\n", encoding="utf-8")
test_fail(lambda: read_split(work / "odd.txt"), exc=UserError, contains="odd.txt:3: expected `ID|text`")
test_fail(lambda: read_split(work / "none.txt"), exc=UserError, contains="none.txt: split file not found")


# %%
#| export
class VocoderDataset(Dataset):
    "`(mel, audio)` pairs of a folder written by `prepare`: random segments (`train=True`) or whole clips."
    def __init__(self, prepared_dir, split: str = "train", cfg: Config | None = None, train: bool = True,
                 mel_dir=None, seed: int | None = None):
        self.cfg = cfg or Config()
        self.root, self.split, self.train = Path(prepared_dir), split, train
        self.hop, self.segment_size = self.cfg.mel.hop_size, self.cfg.train.segment_size
        items = read_split(self.root / f"{split}.txt")
        if not items:
            raise UserError(f"{self.root / f'{split}.txt'}: no clips listed; a run needs training and "
                            "validation clips: prepare at least 2 clips, with --val-size 1 or more")
        self.ids, self.texts = [u for u, _ in items], [t for _, t in items]
        self.wav_paths = [self.root / "wavs" / f"{u}.wav" for u in self.ids]
        missing = [p for p in self.wav_paths if not p.is_file()]
        if missing:
            raise UserError(f"{missing[0]}: listed in {split}.txt but missing ({len(missing)} in all); "
                            "run prepare again")
        self.mel_dir = Path(mel_dir).expanduser() if mel_dir is not None else None
        self.mels, self.mel_frames = self._check_mels() if self.mel_dir is not None else (None, None)
        self.reseed(seed)

    def _check_mels(self) -> tuple[list[MelFile], list[int]]:
        "The cached mel of every clip (checked as for vocoding) and the frames it shares with the audio."
        if not self.mel_dir.is_dir():
            raise UserError(f"{self.mel_dir}: mel directory not found")
        mels, frames = [], []
        for uid, wav in zip(self.ids, self.wav_paths):
            path = find_mel_file(self.mel_dir, uid)
            if path is None:
                raise UserError(f"{self.mel_dir / (uid + '.npy')}: no cached mel for clip {uid}")
            mels.append(MelFile(path, self.cfg.mel.num_mels))
            frames.append(aligned_mel_frames(mels[-1], sf.info(wav).frames, self.hop))
        return mels, frames

    def reseed(self, seed: int | None):
        "Seed the generator of the random windows (done per worker by `make_dataloader`)."
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return len(self.ids)

    def _read(self, i: int) -> tuple[torch.Tensor, int, int]:
        "Audio window (float32 in [-1, 1]), its first frame, and the number of frames it spans."
        seg_frames = self.segment_size // self.hop
        with sf.SoundFile(self.wav_paths[i]) as f:
            if f.samplerate != self.cfg.mel.sampling_rate or f.channels != 1:
                raise UserError(f"{self.wav_paths[i]}: {f.samplerate} Hz, {f.channels} channel(s); expected "
                                f"{self.cfg.mel.sampling_rate} Hz mono: run prepare again")
            frames = f.frames // self.hop if self.mel_frames is None else self.mel_frames[i]
            start, count = 0, frames
            if self.train and frames >= seg_frames:
                start, count = int(self.rng.integers(0, frames - seg_frames + 1)), seg_frames
            # a short training clip is read whole and padded later,
            # unless a cached mel limits it to its frames
            short_whole = self.train and frames < seg_frames and self.mel_frames is None
            f.seek(start * self.hop)
            pcm = f.read(f.frames if short_whole else count * self.hop, dtype="int16")
        return torch.from_numpy(pcm.astype(np.float32) / 32768.0), start, count

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        audio, start, count = self._read(i)
        if self.train and len(audio) < self.segment_size:
            audio = torch.nn.functional.pad(audio, (0, self.segment_size - len(audio)))
        if self.mels is None:
            return mel_spectrogram(audio, self.cfg.mel), audio
        mel = torch.from_numpy(self.mels[i].read(start, start + count))
        want = len(audio) // self.hop
        if mel.shape[1] < want:
            mel = torch.nn.functional.pad(mel, (0, want - mel.shape[1]), value=LOG_MEL_FLOOR)
        return mel, audio


# %%
show_doc(VocoderDataset)

# %% [markdown]
# A training item is a 4,096-sample window and the mel of exactly that window; a validation item is the whole clip, cut to whole frames:

# %%
train_ds = VocoderDataset(work / "tiny", "train", cfg, seed=0)
val_ds = VocoderDataset(work / "tiny", "val", cfg, train=False)
mel, audio = train_ds[0]
print(len(train_ds), len(val_ds), train_ds.ids[:3], train_ds.texts[0], tuple(mel.shape), tuple(audio.shape))

# %%
test_eq(tuple(mel.shape), (80, 16))
test_eq(tuple(audio.shape), (4096,))
test_eq(audio.dtype, torch.float32)
peak = audio.abs().max().item()
assert peak <= 1, peak
test_eq(mel, mel_spectrogram(audio, cfg.mel))  # the same computation on the same samples: bit-identical
vmel, vaudio = val_ds[0]
whole = sf.read(work / "tiny/wavs" / f"{val_ds.ids[0]}.wav", dtype="int16")[0]
test_eq(tuple(vaudio.shape), (len(whole) // 256 * 256,))
test_eq(tuple(vmel.shape), (80, len(whole) // 256))
test_eq(vaudio, torch.from_numpy(whole[: len(vaudio)] / 32768).float())


# %% [markdown]
# A training window is a slice of the file that starts on a hop boundary, and windows differ from draw to draw; the same seed gives the same windows:

# %%
def window_start(whole: torch.Tensor, window: torch.Tensor, step: int = 1) -> int | None:
    "Where `window` starts in `whole` (searching every `step` samples), or None."
    return next((s for s in range(0, len(whole) - len(window) + 1, step)
                 if torch.equal(whole[s:s + len(window)], window)), None)

whole = torch.from_numpy(sf.read(train_ds.wav_paths[0], dtype="int16")[0] / 32768).float()
starts = [window_start(whole, train_ds[0][1]) for _ in range(20)]
assert all(s is not None and s % 256 == 0 for s in starts), starts
assert len(set(starts)) > 3, len(set(starts))

def window_of(seed: int) -> torch.Tensor:
    return VocoderDataset(work / "tiny", "train", cfg, seed=seed)[3][1]

test_eq(window_of(5), window_of(5))
test_ne(window_of(5), window_of(6))

# %% [markdown]
# A clip shorter than a segment is zero-padded: a 0.25 s clip with the recipe's 8,192-sample segments.

# %%
short_in = work / "short_in"
(short_in / "wavs").mkdir(parents=True)
t = np.arange(int(0.25 * 22050)) / 22050
sf.write(short_in / "wavs/000000_RUSLAN.wav", 0.5 * np.sin(2 * np.pi * 220 * t), 22050, subtype="PCM_16")
(short_in / "metadata_RUSLAN_22200.csv").write_text("000000_RUSLAN|короткий\n", encoding="utf-8")
prepare_corpus(short_in, work / "short", val_size=0, progress=False)
short = VocoderDataset(work / "short", "train", preset_config("recipe"), seed=0)
samples = sf.info(short.wav_paths[0]).frames
mel, audio = short[0]
print(samples, "samples ->", tuple(audio.shape), tuple(mel.shape))
assert samples < 8192, samples
test_eq(tuple(audio.shape), (8192,))
test_eq(tuple(mel.shape), (80, 32))
assert not bool(audio[samples:].any())

# %% [markdown]
# Errors name the file: a folder that was not prepared, a split file whose WAV has gone, an empty split (with what to
# do about it). A segment size that does not fit the hop cannot get this far: the config refuses it.

# %%
test_fail(lambda: VocoderDataset(work / "nothing_here", cfg=cfg), exc=UserError,
          contains="nothing_here/train.txt: split file not found")
broken = work / "broken"
shutil.copytree(work / "tiny", broken)
(broken / "wavs" / f"{train_ds.ids[0]}.wav").unlink()
test_fail(lambda: VocoderDataset(broken, cfg=cfg), exc=UserError,
          contains=f"{train_ds.ids[0]}.wav: listed in train.txt but missing (1 in all)")
(broken / "val.txt").write_text("")
test_fail(lambda: VocoderDataset(broken, "val", cfg=cfg), exc=UserError,
          contains="val.txt: no clips listed; a run needs training and validation clips")

# %% [markdown]
# ### The mel cache
#
# To fine-tune the vocoder on an acoustic model's own (teacher-forced) mels, point `--mel-dir` at a folder of `ID.npy` files of shape `[80, frames]`. Each is read by `MelFile` of [Mel files](01a_mel_files.ipynb), with the rules `generate` applies: the same file gets the same verdict whether it is vocoded or trained on. Training adds one rule of its own, on purpose: the frame counts must agree with the audio, since the loss compares the generated audio with the recording. A clip of `N` samples at 22,050 Hz has `N // 256` frames. Acoustic models that pad their STFT differently are off by a frame or two, so up to `MEL_FRAME_TOLERANCE` frames of difference are trimmed away (both the mel and the audio keep the shorter length); more than that means the files do not belong together, and is an error naming the file. `prepare --mel-dir` checks a whole folder with the same functions ([Preparing the corpus](06b_prepare.ipynb)); the dataset uses them to find and cut the mels.

# %%
#| export
MEL_FRAME_TOLERANCE = 2

def find_mel_file(mel_dir, uid: str) -> Path | None:
    "The `.npy` mel of clip `uid` in `mel_dir` (with or without the `_RUSLAN` suffix), or None."
    return next((p for v in id_variants(uid) if (p := Path(mel_dir) / f"{v}.npy").is_file()), None)

def aligned_mel_frames(mel: MelFile, audio_samples: int, hop: int = MelConfig.hop_size,
                       tolerance: int = MEL_FRAME_TOLERANCE) -> int:
    "Frames shared by a mel file and its audio; a `UserError` if they are more than `tolerance` frames apart."
    audio_frames = audio_samples // hop
    if abs(mel.frames - audio_frames) > tolerance:
        raise UserError(f"{mel.path}: {mel.frames} mel frames but the audio has {audio_frames} "
                        f"({audio_samples} samples / hop {hop}); more than ±{tolerance} apart")
    return min(mel.frames, audio_frames)


# %%
show_doc(find_mel_file)

# %%
show_doc(aligned_mel_frames)

# %% [markdown]
# The mels below are silence (`log(1e-5)`, the floor of a log-mel): one with a frame too many, one seven frames off, one that `MelFile` refuses as it would for `generate`. Each refusal names the file and the reason, and the same file gets the same verdict from both:

# %%
mels = work / "mel_unit"
mels.mkdir()
silence = math.log(1e-5)
np.save(mels / "a.npy", np.full((80, 101), silence, np.float32))
np.save(mels / "b.npy", np.full((80, 107), silence, np.float32))
np.save(mels / "e.npy", np.zeros((80, 100), np.int16))
test_eq(aligned_mel_frames(MelFile(mels / "a.npy"), 100 * 256 + 17), 100)  # one frame too many: the mel is cut
test_eq(aligned_mel_frames(MelFile(mels / "a.npy"), 102 * 256), 101)       # one frame short: the audio is cut
test_fail(lambda: aligned_mel_frames(MelFile(mels / "b.npy"), 100 * 256), exc=UserError,
          contains="b.npy: 107 mel frames but the audio has 100")
test_fail(lambda: MelFile(mels / "e.npy"), exc=UserError,
          contains="e.npy: holds int16 values (integers), not the floats of a natural-log mel")
test_eq(find_mel_file(mels, "a_RUSLAN"), mels / "a.npy")
test_eq(find_mel_file(mels, "z_RUSLAN"), None)

# %% [markdown]
# ### Cached mels
#
# With `mel_dir`, the mel comes from `ID.npy` files instead (see the mel cache above for the frame rule). Here the "acoustic model" is played by `mel_spectrogram` itself on the whole prepared clip, saved with one frame too many (as a centred STFT would give) and under bare-number names; the dataset trims that frame and cuts each training mel at the frames of its audio window. A mel five frames off is an error that names it.

# %%
mel_dir = work / "mels"
mel_dir.mkdir()
for uid in train_ds.ids + val_ds.ids:
    clip = torch.from_numpy(sf.read(work / "tiny/wavs" / f"{uid}.wav", dtype="int16")[0] / 32768).float()
    m = mel_spectrogram(clip, cfg.mel).numpy()
    np.save(mel_dir / f"{uid.removesuffix('_RUSLAN')}.npy", np.concatenate([m, m[:, -1:]], 1))
cached = VocoderDataset(work / "tiny", "train", cfg, mel_dir=mel_dir, seed=0)
for i in range(len(cached)):
    mel, audio = cached[i]
    full_mel = np.load(find_mel_file(mel_dir, cached.ids[i]))
    whole = torch.from_numpy(sf.read(cached.wav_paths[i], dtype="int16")[0] / 32768).float()
    start = window_start(whole, audio, step=256) // 256
    test_eq(mel.numpy(), full_mel[:, start:start + 16])

# %%
vmel, vaudio = VocoderDataset(work / "tiny", "val", cfg, train=False, mel_dir=mel_dir)[0]
test_eq(vmel.shape[1] * 256, len(vaudio))
test_eq(len(vaudio), sf.info(val_ds.wav_paths[0]).frames // 256 * 256)
m = np.load(mel_dir / "000003.npy")
np.save(mel_dir / "000003.npy", np.concatenate([m] + [m[:, -1:]] * 4, 1))
test_fail(lambda: VocoderDataset(work / "tiny", "train", cfg, mel_dir=mel_dir), exc=UserError,
          contains="000003.npy: ")
test_fail(lambda: VocoderDataset(work / "tiny", "train", cfg, mel_dir=work / "no_mels"), exc=UserError,
          contains="no_mels: mel directory not found")

# %% [markdown]
# The dataset hands the generator exactly what the files hold: mels that are the audio's own mel plus a known offset come back with that offset in every frame of every window, while the audio is untouched (the loss mel is computed from the audio). Wrong bands and non-finite values are errors that name the file and the clip.

# %%
offset_dir = work / "offset_mels"
offset_dir.mkdir()
for uid in train_ds.ids:
    clip = torch.from_numpy(sf.read(work / "tiny/wavs" / f"{uid}.wav", dtype="int16")[0] / 32768).float()
    np.save(offset_dir / f"{uid}.npy", mel_spectrogram(clip, cfg.mel).numpy() + 0.5)
shifted = VocoderDataset(work / "tiny", "train", cfg, mel_dir=offset_dir, seed=0)
plain = VocoderDataset(work / "tiny", "train", cfg, seed=0)
for i in range(len(shifted)):
    (mel, audio), (own_mel, own_audio) = shifted[i], plain[i]
    assert torch.equal(audio, own_audio)  # the same window of the same clip
    test_close((mel - own_mel)[:, 2:-2].mean(), 0.5, eps=1e-4)  # two frames at each end see the reflect padding
bad_uid = train_ds.ids[0]
np.save(offset_dir / f"{bad_uid}.npy", np.full((80, 3), np.nan, np.float32))
test_fail(lambda: VocoderDataset(work / "tiny", "train", cfg, mel_dir=offset_dir), exc=UserError,
          contains=f"{bad_uid}.npy: contains 240 NaN or infinite values")
whole = torch.from_numpy(sf.read(work / "tiny/wavs" / f"{bad_uid}.wav", dtype="int16")[0] / 32768).float()
broken = mel_spectrogram(whole, cfg.mel).numpy()
broken[3, 5] = np.inf
np.save(offset_dir / f"{bad_uid}.npy", broken)
test_fail(lambda: VocoderDataset(work / "tiny", "train", cfg, mel_dir=offset_dir), exc=UserError,
          contains=f"{bad_uid}.npy: contains 1 NaN or infinite values")
np.save(offset_dir / f"{bad_uid}.npy", broken[:40])
test_fail(lambda: VocoderDataset(work / "tiny", "train", cfg, mel_dir=offset_dir), exc=UserError,
          contains="40 bands, expected 80")


# %% [markdown]
# ## Data loaders
#
# `make_dataloader` builds the loader the trainer iterates over. For training: `batch_size` clips per process, shuffled, incomplete last batch dropped. Under DDP (`world_size > 1`) a `DistributedSampler` gives each process its share; on one process `EpochShuffleSampler` shuffles with a `torch.Generator` seeded from `cfg.train.seed` and the epoch. Both have `set_epoch`, so a trainer calls `loader.sampler.set_epoch(epoch)` whatever the setup, and a resumed run replays the same order for the same epoch; `EpochShuffleSampler` also moves to the next epoch by itself, so that forgetting `set_epoch` does not repeat one order forever. Workers stay alive between epochs (`persistent_workers`), and `seed_worker` gives every worker its own deterministic seed for numpy, `random` and the dataset's windows. `mixed_seed` is the one rule for deriving a seed from several numbers: the sampler mixes the run's seed with the epoch, and a resumed run mixes it with the step and the process's rank. Validation uses one clip per batch (utterances differ in length), in order, in the main process: it is a hundred clips, not worth starting workers for.

# %%
#| export
def mixed_seed(*values: int) -> int:
    "One 32-bit seed from several integers (numpy's SeedSequence mixes them)."
    return int(np.random.SeedSequence(list(values)).generate_state(1)[0])

class EpochShuffleSampler(Sampler[int]):
    "A random order of `range(n)` fixed by `(seed, epoch)`; the epoch advances after each pass unless set."
    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(mixed_seed(self.seed, self.epoch))
        self.epoch += 1
        return iter(torch.randperm(self.n, generator=g).tolist())


# %% [markdown]
# Each loader worker gets a seed of its own, derived from torch's, for numpy, `random` and the windows its copy of the dataset draws; `make_dataloader` puts the pieces together:

# %%
#| export
def seed_worker(worker_id: int):
    "`worker_init_fn`: seed numpy, `random` and the dataset's windows from the worker's own torch seed."
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "reseed"):
        info.dataset.reseed(seed)

def make_dataloader(dataset, cfg: Config, train: bool = True, rank: int = 0,
                    world_size: int = 1) -> DataLoader:
    "The training (shuffled, `cfg.train.batch_size`, drop_last) or validation (in order, batch 1) loader."
    seed = cfg.train.seed
    if not train:
        sampler = DistributedSampler(dataset, world_size, rank, shuffle=False) if world_size > 1 else None
        return DataLoader(dataset, batch_size=1, shuffle=False, sampler=sampler, num_workers=0)
    if world_size > 1:
        sampler = DistributedSampler(dataset, world_size, rank, shuffle=True, seed=seed, drop_last=True)
    else:
        sampler = EpochShuffleSampler(len(dataset), seed)
    if len(sampler) < cfg.train.batch_size:
        raise UserError(f"{len(sampler)} training clip(s) per process, fewer than batch_size "
                        f"{cfg.train.batch_size}: lower it (--set train.batch_size={max(len(sampler), 1)}) "
                        "or prepare more clips")
    workers = cfg.train.num_workers
    if workers == 0 and hasattr(dataset, "reseed"):
        dataset.reseed(seed)  # windows drawn in this process
    return DataLoader(dataset, batch_size=cfg.train.batch_size, sampler=sampler, drop_last=True,
                      num_workers=workers, pin_memory=torch.cuda.is_available(),
                      persistent_workers=workers > 0, worker_init_fn=seed_worker,
                      generator=torch.Generator().manual_seed(seed))


# %%
show_doc(EpochShuffleSampler)

# %%
show_doc(make_dataloader)

# %% [markdown]
# Batches of `[B, 80, 16]` mels and `[B, 4096]` audio; the same seed gives the same batches (with worker processes too), the next epoch another order; two DDP ranks see disjoint clips; validation is one whole clip at a time, in order.

# %%
loader = make_dataloader(train_ds, cfg)
mel, audio = next(iter(loader))
print(len(loader), "batches:", tuple(mel.shape), tuple(audio.shape))
test_eq(tuple(mel.shape), (4, 80, 16))
test_eq(tuple(audio.shape), (4, 4096))
test_eq(len(loader), 2)


# %%
#| slow
def epoch_sums(workers: int, epochs: int = 2) -> list[list[float]]:
    c = preset_config("tiny")
    c.train.num_workers = workers
    ld = make_dataloader(VocoderDataset(work / "tiny", "train", c), c)
    return [[round(a.sum().item(), 4) for _, a in ld] for _ in range(epochs)]

with_workers = epoch_sums(2)
test_eq(epoch_sums(2), with_workers)
test_ne(with_workers[0], with_workers[1])
test_eq(epoch_sums(0), epoch_sums(0))

# %%
ranks = [make_dataloader(train_ds, cfg, rank=r, world_size=2) for r in (0, 1)]
seen = [list(ld.sampler) for ld in ranks]
test_eq([type(ld.sampler) for ld in ranks], [DistributedSampler, DistributedSampler])
test_eq(set(seen[0]) & set(seen[1]), set())
val_loader = make_dataloader(val_ds, cfg, train=False)
test_eq([tuple(a.shape) for _, a in val_loader], [(1, len(val_ds[i][1])) for i in range(len(val_ds))])
sampler = EpochShuffleSampler(10, seed=1)
sampler.set_epoch(3)
order = list(sampler)
sampler.set_epoch(3)
test_eq(list(sampler), order)
test_eq(sorted(order), list(range(10)))
test_ne(list(sampler), order)  # without set_epoch, the next pass is the next epoch
big = preset_config("tiny")
big.train.batch_size = 32
test_fail(lambda: make_dataloader(train_ds, big), exc=UserError, contains="10 training clip(s) per process, fewer")
