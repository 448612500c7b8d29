"""Torch-side vocoder inference: rebuild a model from a checkpoint and vocode mels with a named schedule.

Never imports training code. The ONNX runtime (``serve/``) runs the same samplers from
:mod:`vocoder.diffusion` in numpy with the same schedule arrays.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch

from vocoder import diffusion
from vocoder.audio import clip_log_mel

MODELS = ("diffwave", "wavegrad")


def build_vocoder(name: str, config: dict[str, Any]) -> torch.nn.Module:
    """Rebuild a vocoder from its name and config dict (as stored in checkpoints and bundles)."""
    if name == "diffwave":
        from vocoder.diffwave import DiffWave, DiffWaveConfig

        return DiffWave(DiffWaveConfig(**config))
    if name == "wavegrad":
        from vocoder.wavegrad import WaveGrad, WaveGradConfig

        return WaveGrad(WaveGradConfig(**_tuples(config)))
    raise ValueError(f"unknown vocoder {name!r} (expected one of {', '.join(MODELS)})")


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists; frozen configs want tuples back (nested too)."""
    def conv(v):
        return tuple(conv(x) for x in v) if isinstance(v, list) else v
    return {k: conv(v) for k, v in d.items()}


def config_dict(cfg: Any) -> dict[str, Any]:
    """A frozen config dataclass as a JSON-able dict."""
    return dataclasses.asdict(cfg)


def schedule_conds(model: str, train_betas: np.ndarray, infer_betas: np.ndarray) -> np.ndarray:
    """The per-step conditioning values for a model: DiffWave takes continuous training-step indices
    (:func:`diffusion.fast_steps`), WaveGrad the noise level ``sqrt(abar)`` of the inference schedule.
    ``[K]`` float64."""
    if model == "diffwave":
        return diffusion.fast_steps(train_betas, infer_betas)
    if model == "wavegrad":
        return diffusion.noise_levels(infer_betas)
    raise ValueError(f"unknown vocoder {model!r}")


def default_schedules(model: str, train_betas: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """The named schedules every vocoder checkpoint starts with: the published 6-step one (``fast6``),
    and, for DiffWave, the full training schedule (``train``)."""
    fast = diffusion.DIFFWAVE_FAST_BETAS if model == "diffwave" else diffusion.WAVEGRAD_FAST_BETAS
    out = {"fast6": make_schedule(model, train_betas, fast)}
    if len(train_betas) <= 100:
        out["train"] = make_schedule(model, train_betas, train_betas)
    return out


def make_schedule(model: str, train_betas: np.ndarray, infer_betas: np.ndarray) -> dict[str, list[float]]:
    """A schedule record as stored in checkpoint metadata and voice.json: betas and conds, ``[K]`` each."""
    infer_betas = diffusion.check_betas(infer_betas)
    return {"betas": [float(b) for b in infer_betas],
            "conds": [float(c) for c in schedule_conds(model, train_betas, infer_betas)]}


class Vocoder:
    """A vocoder checkpoint ready to sample: the EMA weights, its name and its named schedules."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu", use_ema: bool = True):
        from vocoder.training.checkpoint import load_checkpoint  # plain file IO; no training logic

        ckpt = load_checkpoint(path, map_location="cpu")
        self.name = ckpt["config"]["task"]
        if self.name not in MODELS:
            raise ValueError(f"{path}: a {self.name} checkpoint, not a vocoder")
        self.config = ckpt["config"]
        self.metadata = ckpt.get("metadata", {})
        self.model = build_vocoder(self.name, ckpt["config"]["model"]["model"])
        self.model.load_state_dict(ckpt["ema" if use_ema else "model"])
        self.model.eval().to(device)
        self.device = torch.device(device)
        self.step = ckpt["step"]
        self.train_betas = np.asarray(self.metadata["train_betas"])

    @property
    def schedules(self) -> dict[str, dict[str, list[float]]]:
        return self.metadata.get("schedules", {})

    def schedule(self, name: str) -> dict[str, list[float]]:
        if name not in self.schedules:
            raise ValueError(f"no schedule {name!r} in this checkpoint (have: {', '.join(self.schedules)})")
        return self.schedules[name]

    @torch.no_grad()
    def vocode(self, mel: np.ndarray | torch.Tensor, schedule: str | dict = "fast6", sampler: str = "ddpm",
               seed: int = 0) -> np.ndarray:
        """Mel ``[80, F]`` or ``[B, 80, F]`` -> audio ``[256 F]`` or ``[B, 256 F]`` float32."""
        return vocode(self.model, mel, self.schedule(schedule) if isinstance(schedule, str) else schedule,
                      sampler=sampler, seed=seed, device=self.device)


@torch.no_grad()
def vocode(model: torch.nn.Module, mel: np.ndarray | torch.Tensor, schedule: dict, sampler: str = "ddpm",
           seed: int = 0, device: torch.device | str = "cpu") -> np.ndarray:
    """Sample a waveform from a mel with a schedule record ({"betas": [K], "conds": [K]}).

    mel: ``[80, F]`` or ``[B, 80, F]``. Noise comes from ``torch.Generator`` seeded with ``seed``.
    Returns ``[256 F]`` or ``[B, 256 F]`` float32 numpy.
    """
    mel = torch.as_tensor(np.asarray(mel) if not torch.is_tensor(mel) else mel, dtype=torch.float32)
    squeeze = mel.dim() == 2
    mel = clip_log_mel((mel[None] if squeeze else mel).to(device))  # [B, 80, F], in log_mel_range()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    shape = (mel.shape[0], mel.shape[-1] * 256)

    def randn() -> torch.Tensor:
        return torch.randn(shape, generator=gen).to(device)

    betas, conds = np.asarray(schedule["betas"]), np.asarray(schedule["conds"])
    x_T = randn()

    def denoise(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return model(x, c, mel)

    if sampler == "ddpm":
        out = diffusion.sample_ddpm(denoise, x_T, betas, conds, noise=lambda n: randn())
    elif sampler == "ddim":
        out = diffusion.sample_ddim(denoise, x_T, betas, conds)
    else:
        raise ValueError(f"unknown sampler {sampler!r} (expected one of {', '.join(diffusion.SAMPLERS)})")
    out = out.float().cpu().numpy()
    return out[0] if squeeze else out
