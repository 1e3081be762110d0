"""Training-step throughput: this project's `train_step` against a straightforward eager transcription of the reference step.

Same models (copies with identical initial weights), same batch, same optimizers and clipping, one process, run in turns.
The reference step calls each discriminator separately on real and generated audio (`mpd(y)`, `mpd(y_hat)`), builds the
mel filterbank afresh on every call, lets the generator step compute (and discard) discriminator weight gradients, and
reads every loss with `.item()` every step.

    python benchmarks/bench_training.py                 # CPU: tiny (batch 4 x 4096) and V1 (batch 1 x 8192)
    python benchmarks/bench_training.py --device cuda   # GPU: T4-like settings, batch 4 x 8192, fp16; peak memory
"""
from __future__ import annotations
import argparse, time
import torch
import torch.nn.functional as F
from hifigan_ruslan.config import apply_overrides, preset_config
from hifigan_ruslan.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from hifigan_ruslan.gpu_check import real_batch, sync
from hifigan_ruslan.generator import Generator
from hifigan_ruslan.losses import discriminator_loss, feature_loss, generator_loss
from hifigan_ruslan.trainer import Trainer


def fresh_mel(audio: torch.Tensor, cfg, for_loss: bool) -> torch.Tensor:
    "The reference mel with its filterbank and window built on every call."
    import librosa
    fmax = cfg.fmax_loss if for_loss else cfg.fmax
    basis = torch.from_numpy(librosa.filters.mel(sr=cfg.sampling_rate, n_fft=cfg.n_fft, n_mels=cfg.num_mels, fmin=cfg.fmin,
                                                 fmax=fmax)).float().to(audio.device)
    window = torch.hann_window(cfg.win_size, device=audio.device)
    pad = (cfg.n_fft - cfg.hop_size) // 2
    y = F.pad(audio.float()[:, None], (pad, pad), mode="reflect")[:, 0]
    spec = torch.stft(y, cfg.n_fft, hop_length=cfg.hop_size, win_length=cfg.win_size, window=window, center=False,
                      return_complex=True)
    return torch.log(torch.clamp(basis @ torch.sqrt(spec.real ** 2 + spec.imag ** 2 + 1e-9), min=1e-5))


class ReferenceStep:
    "The reference HiFi-GAN step, transcribed directly (plus the recipe's clipping and the same AMP settings)."
    def __init__(self, tr: Trainer):
        self.cfg, self.device, self.amp_dtype = tr.cfg, tr.device, tr.amp_dtype
        self.g = Generator(tr.cfg.generator, tr.cfg.mel.num_mels).to(tr.device)
        self.mpd = MultiPeriodDiscriminator(tr.cfg.discriminator).to(tr.device)
        self.msd = MultiScaleDiscriminator(tr.cfg.discriminator).to(tr.device)
        for mine, theirs in ((self.g, tr.generator), (self.mpd, tr.mpd), (self.msd, tr.msd)): mine.load_state_dict(theirs.state_dict())
        t = tr.cfg.train
        self.optim_g = torch.optim.AdamW(self.g.parameters(), t.lr_g, betas=t.betas, weight_decay=t.weight_decay)
        self.optim_d = torch.optim.AdamW([*self.msd.parameters(), *self.mpd.parameters()], t.lr_d, betas=t.betas,
                                         weight_decay=t.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=tr.precision == "fp16")

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def __call__(self, mel, audio) -> dict:
        t, mc = self.cfg.train, self.cfg.mel
        mel, y = mel.to(self.device), audio.to(self.device).unsqueeze(1)
        y_mel = fresh_mel(y[:, 0], mc, for_loss=True)
        with self.autocast(): y_g_hat = self.g(mel)
        y_g_hat_mel = fresh_mel(y_g_hat[:, 0], mc, for_loss=True)
        self.optim_d.zero_grad()
        with self.autocast():
            r1, _ = self.mpd(y); f1, _ = self.mpd(y_g_hat.detach())
            r2, _ = self.msd(y); f2, _ = self.msd(y_g_hat.detach())
        loss_disc_f, _, _ = discriminator_loss(r1, f1)
        loss_disc_s, _, _ = discriminator_loss(r2, f2)
        loss_disc_all = loss_disc_s + loss_disc_f
        self.scaler.scale(loss_disc_all).backward()
        self.scaler.unscale_(self.optim_d)
        if t.grad_clip > 0: torch.nn.utils.clip_grad_norm_([*self.mpd.parameters(), *self.msd.parameters()], t.grad_clip)
        self.scaler.step(self.optim_d)
        self.optim_g.zero_grad()
        loss_mel = F.l1_loss(y_mel, y_g_hat_mel) * t.lambda_mel
        with self.autocast():
            _, fr1 = self.mpd(y); sg1, fg1 = self.mpd(y_g_hat)
            _, fr2 = self.msd(y); sg2, fg2 = self.msd(y_g_hat)
        loss_fm_f, _ = feature_loss(fr1, fg1); loss_fm_s, _ = feature_loss(fr2, fg2)
        loss_gen_f, _ = generator_loss(sg1); loss_gen_s, _ = generator_loss(sg2)
        loss_gen_all = loss_gen_s + loss_gen_f + t.lambda_fm * (loss_fm_s + loss_fm_f) + loss_mel
        self.scaler.scale(loss_gen_all).backward()
        self.scaler.unscale_(self.optim_g)
        if t.grad_clip > 0: torch.nn.utils.clip_grad_norm_(self.g.parameters(), t.grad_clip)
        self.scaler.step(self.optim_g)
        self.scaler.update()
        return {"loss_d": loss_disc_all.item(), "loss_g": loss_gen_all.item(), "loss_mel": loss_mel.item() / t.lambda_mel,
                "loss_fm": (loss_fm_s + loss_fm_f).item(), "loss_adv": (loss_gen_s + loss_gen_f).item()}


def measure(fns: list, steps: int, device, rounds: int = 3) -> list[tuple[float, float]]:
    "Seconds per step (best round) and peak GPU memory (GiB) of each function, rounds alternating between them."
    best, peak = [float("inf")] * len(fns), [0.0] * len(fns)
    for fn in fns: fn()  # warm-up
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            if device.type == "cuda": torch.cuda.reset_peak_memory_stats(device)
            sync(device); t0 = time.perf_counter()
            for _ in range(steps): fn()
            sync(device); best[i] = min(best[i], (time.perf_counter() - t0) / steps)
            if device.type == "cuda": peak[i] = max(peak[i], torch.cuda.max_memory_allocated(device) / 2**30)
    return list(zip(best, peak))


def bench(preset: str, batch: int, segment: int, steps: int, device: str, precision: str):
    cfg = apply_overrides(preset_config(preset), [f"train.batch_size={batch}", f"train.segment_size={segment}",
                                                  "train.grad_accum_steps=1", f"train.precision={precision}"])
    torch.manual_seed(cfg.train.seed)
    tr = Trainer(cfg, device=device)
    with torch.no_grad():  # converge the spectral-norm power iteration, which the reference runs twice per D step and
        for _ in range(50): tr.msd.discriminators[0](torch.zeros(1, 1, 1024, device=tr.device))  # train_step once
    ref = ReferenceStep(tr)
    mel, audio = real_batch(batch, segment, cfg)
    ours_first = {k: v.item() for k, v in tr.train_step([(mel, audio)]).stats.items()}
    ref_first = ref(mel, audio)
    pinned = (mel.pin_memory(), audio.pin_memory()) if tr.device.type == "cuda" else (mel, audio)
    (ref_s, ref_mem), (ours_s, ours_mem) = measure([lambda: ref(*pinned), lambda: tr.train_step([pinned])], steps, tr.device,
                                                   rounds=3 if steps > 1 else 2)
    audio_s = batch * segment / cfg.mel.sampling_rate
    print(f"\n{preset} ({cfg.generator_preset} generator), batch {batch} x {segment} samples, {tr.precision} on {tr.device}, {steps} timed steps per round, best round")
    print("  first step, same weights and batch:  " + ", ".join(f"{k} ours {ours_first[k]:.4f} / ref {ref_first[k]:.4f}"
                                                          for k in ("loss_d", "loss_mel", "loss_fm")))
    for name, s, mem in (("reference step", ref_s, ref_mem), ("train_step", ours_s, ours_mem)):
        extra = f", peak memory {mem:.2f} GiB" if tr.device.type == "cuda" else ""
        print(f"  {name:<15} {1 / s:7.2f} steps/s  {audio_s / s:8.2f} audio-s/s  ({s * 1000:8.1f} ms/step{extra})")
    print(f"  speed-up: x{ref_s / ours_s:.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--presets", nargs="+", default=["tiny", "v1"])
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = p.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    gpu = args.device.startswith("cuda")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name(torch.device(args.device))}" if gpu else ""))
    for preset in args.presets:
        if gpu: bench(preset, 4, 8192, 10, args.device, "fp16")  # T4-like: the recipe's batch and segment in fp16
        elif preset == "tiny": bench(preset, 4, 4096, 3, args.device, "fp32")
        else: bench(preset, 1, 8192, 1, args.device, "fp32")


if __name__ == "__main__":
    main()
