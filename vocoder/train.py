"""The vocoder training task (DiffWave or WaveGrad) on the shared loop of :mod:`vocoder.training.loop`.

Batches are random fixed-length segments of the training split: the audio crop ``[B, 256 n]`` and the
same crop with its STFT context ``[B, 256 n + 768]``, whose mel (``pad=False``) equals the whole
utterance's mel on those n frames. The loss is the L1 between the true and predicted noise:

* DiffWave: a uniform integer step ``t`` of the training schedule, ``x_t = sqrt(abar_t) x0 + sqrt(1-abar_t) e``;
* WaveGrad: a continuous noise level ``l ~ U(sqrt(abar_s), sqrt(abar_{s-1}))`` for a uniform segment s
  (Chen et al. 2021, Sec. 3), ``x = l x0 + sqrt(1 - l^2) e``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vocoder import diffusion
from vocoder.audio import mel_numpy, mel_torch, save_audio
from vocoder.inference import build_vocoder, default_schedules, vocode
from vocoder.metrics import log_mel_l1
from vocoder.training.data import AudioBank, read_metadata, split, step_rng
from vocoder.training.plots import save_spectrogram_png


@dataclasses.dataclass(frozen=True)
class VocoderTaskConfig:
    model: str = "diffwave"  # or "wavegrad"
    size: str = "base"  # base | small | tiny
    segment_frames: int = 62  # 62 * 256 = 15,872 samples (DiffWave used 16,000)
    n_val: int = 16
    val_items: int = 3  # utterances vocoded at each validation
    val_seconds: float = 4.0


def model_config(model: str, size: str):
    if model == "diffwave":
        from vocoder.diffwave import DiffWaveConfig as C
    elif model == "wavegrad":
        from vocoder.wavegrad import WaveGradConfig as C
    else:
        raise ValueError(f"unknown vocoder {model!r} (expected diffwave or wavegrad)")
    if size not in ("base", "small", "tiny"):
        raise ValueError(f"unknown size {size!r} (expected base, small or tiny)")
    return getattr(C, size)()


def train_betas(model: str) -> np.ndarray:
    return diffusion.DIFFWAVE_TRAIN_BETAS if model == "diffwave" else diffusion.WAVEGRAD_TRAIN_BETAS


class VocoderTask:
    static_shapes = True  # fixed-length segments: cudnn.benchmark pays off on CUDA

    def __init__(self, data_dir: str, cfg: VocoderTaskConfig = VocoderTaskConfig(), progress: bool = True):
        self.cfg = cfg
        self.name = cfg.model
        self.model_cfg = model_config(cfg.model, cfg.size)
        self.betas = train_betas(cfg.model)
        self.levels = diffusion.noise_levels(self.betas)  # [N]
        items = read_metadata(data_dir)
        n_val = min(cfg.n_val, len(items) // 10)  # small corpora keep at least 90% for training
        train_items, val_items = split(items, n_val)
        self.train = AudioBank(train_items, progress=progress)
        self.val = AudioBank(val_items[: cfg.val_items], progress=False) if val_items else None
        self._level_t = torch.tensor(self.levels, dtype=torch.float32)
        self._bounds = torch.tensor(np.concatenate([[1.0], self.levels]), dtype=torch.float32)

    # --- Task protocol ------------------------------------------------------------------------------------
    def build_model(self) -> torch.nn.Module:
        return build_vocoder(self.cfg.model, dataclasses.asdict(self.model_cfg))

    def config_dict(self) -> dict[str, Any]:
        return {"model": dataclasses.asdict(self.model_cfg), "task": dataclasses.asdict(self.cfg)}

    def metadata(self) -> dict[str, Any]:
        return {"train_betas": [float(b) for b in self.betas],
                "schedules": default_schedules(self.cfg.model, self.betas)}

    def batch(self, step: int, rank: int, seed: int, batch_size: int) -> dict[str, torch.Tensor]:
        rng = step_rng(seed, step, rank)
        n = self.cfg.segment_frames
        ctx, audio = [], []
        for _ in range(batch_size):
            i = int(rng.integers(len(self.train)))
            start = int(rng.integers(max(1, self.train.frames(i) - n + 1)))
            c, a = self.train.segment(i, start, n)
            ctx.append(c)
            audio.append(a)
        return {"ctx": torch.from_numpy(np.stack(ctx)), "audio": torch.from_numpy(np.stack(audio))}

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        x0 = batch["audio"]  # [B, T]
        with torch.autocast(x0.device.type, enabled=False):
            mel = mel_torch(batch["ctx"].float(), pad=False)  # [B, 80, F]
        b = x0.shape[0]
        eps = torch.randn_like(x0)
        if self.cfg.model == "diffwave":
            t = torch.randint(0, len(self.betas), (b,), device=x0.device)
            level = self._level_t.to(x0.device)[t]  # [B]
            cond = t.float()
        else:
            s = torch.randint(1, len(self.betas) + 1, (b,), device=x0.device)
            bounds = self._bounds.to(x0.device)
            lo, hi = bounds[s], bounds[s - 1]
            level = lo + (hi - lo) * torch.rand(b, device=x0.device)  # [B]
            cond = level
        x_t = diffusion.q_sample(x0, eps, level[:, None])
        pred = model(x_t, cond, mel)
        loss = F.l1_loss(pred.float(), eps)
        return loss, {}

    @torch.no_grad()
    def validate(self, model: torch.nn.Module, step: int, out_dir: str) -> dict[str, float]:
        if self.val is None:
            return {}
        os.makedirs(out_dir, exist_ok=True)
        device = next(model.parameters()).device
        sched = default_schedules(self.cfg.model, self.betas)["fast6"]
        max_frames = int(self.cfg.val_seconds * 22050 / 256)
        l1s = []
        for i in range(len(self.val)):
            ref = self.val.wave(i)[: max_frames * 256]
            mel = mel_numpy(ref)  # [80, F]
            audio = vocode(model, mel, sched, sampler="ddpm", seed=i, device=device)
            l1s.append(log_mel_l1(ref, audio))
            if i == 0:
                save_audio(os.path.join(out_dir, f"step{step:08d}.wav"), audio)
                save_spectrogram_png(os.path.join(out_dir, f"step{step:08d}.png"), mel, mel_numpy(audio),
                                     f"{self.name} step {step}: reference (top) / fast6 (bottom)")
        return {"logmel_l1_fast6": float(np.mean(l1s))}
