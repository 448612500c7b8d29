"""DiffWave (Kong et al. 2021), after lmnt-com/diffwave: a non-causal WaveNet that predicts the noise.

``DiffWave.forward(audio, step, mel)`` is one denoising step: it maps the noisy waveform ``[B, T]`` at a
diffusion step ``[B]`` and the conditioning mel ``[B, 80, F]`` (``T == 256 F``) to the predicted noise
``[B, T]``. The step is a float, so a few-step inference schedule can use the continuous step indices of
:func:`vocoder.diffusion.fast_steps` (DiffWave Appendix B); the sinusoidal embedding is evaluated at that
float directly rather than interpolated between the integer rows of a table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from vocoder.audio import HOP_LENGTH, N_MELS


@dataclass(frozen=True)
class DiffWaveConfig:
    residual_layers: int = 30
    residual_channels: int = 64
    dilation_cycle: int = 10
    n_mels: int = N_MELS
    hop_length: int = HOP_LENGTH  # the two transposed convs upsample by 16 x 16 = 256
    embed_dim: int = 128  # sinusoidal step embedding (64 sin + 64 cos)
    embed_hidden: int = 512

    @classmethod
    def base(cls) -> DiffWaveConfig:
        """The paper's DiffWave BASE: 30 layers, 64 channels, dilation cycle 10 (2.64M parameters)."""
        return cls()

    @classmethod
    def small(cls) -> DiffWaveConfig:
        """A CPU-trainable configuration: 10 layers of 48 channels, one dilation cycle (0.8M parameters)."""
        return cls(residual_layers=10, residual_channels=48, dilation_cycle=10)

    @classmethod
    def tiny(cls) -> DiffWaveConfig:
        """For tests: 4 layers of 16 channels."""
        return cls(residual_layers=4, residual_channels=16, dilation_cycle=2, embed_hidden=64)

    def __post_init__(self):
        if self.hop_length != 256:
            raise ValueError("DiffWave's mel upsampler is built for hop 256 (16 x 16)")


def step_embedding(step: torch.Tensor, dim: int = 128) -> torch.Tensor:
    """DiffWave's sinusoidal embedding of a (float) step: ``[B]`` -> ``[B, dim]``."""
    half = dim // 2
    freqs = 10.0 ** (torch.arange(half, device=step.device, dtype=torch.float32) * 4.0 / (half - 1))  # [half]
    table = step.float()[:, None] * freqs[None, :]  # [B, half]
    return torch.cat([torch.sin(table), torch.cos(table)], dim=1)  # [B, dim]


class StepEmbedding(nn.Module):
    def __init__(self, cfg: DiffWaveConfig):
        super().__init__()
        self.dim = cfg.embed_dim
        self.proj1 = nn.Linear(cfg.embed_dim, cfg.embed_hidden)
        self.proj2 = nn.Linear(cfg.embed_hidden, cfg.embed_hidden)

    def forward(self, step: torch.Tensor) -> torch.Tensor:
        """``[B]`` -> ``[B, embed_hidden]``."""
        x = step_embedding(step, self.dim)
        return F.silu(self.proj2(F.silu(self.proj1(x))))


class MelUpsampler(nn.Module):
    """Two 2-D transposed convolutions, 16x each in time: ``[B, 80, F]`` -> ``[B, 80, 256 F]``."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.ConvTranspose2d(1, 1, (3, 32), stride=(1, 16), padding=(1, 8))
        self.conv2 = nn.ConvTranspose2d(1, 1, (3, 32), stride=(1, 16), padding=(1, 8))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel.unsqueeze(1)  # [B, 1, 80, F]
        x = F.leaky_relu(self.conv1(x), 0.4)  # [B, 1, 80, 16 F]
        x = F.leaky_relu(self.conv2(x), 0.4)  # [B, 1, 80, 256 F]
        return x.squeeze(1)  # [B, 80, 256 F]


class ResidualBlock(nn.Module):
    def __init__(self, cfg: DiffWaveConfig, dilation: int):
        super().__init__()
        c = cfg.residual_channels
        self.dilated_conv = nn.Conv1d(c, 2 * c, 3, padding=dilation, dilation=dilation)
        self.step_proj = nn.Linear(cfg.embed_hidden, c)
        self.cond_proj = nn.Conv1d(cfg.n_mels, 2 * c, 1)
        self.out_proj = nn.Conv1d(c, 2 * c, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x ``[B, C, T]``, emb ``[B, E]``, cond ``[B, 80, T]`` -> (residual out ``[B, C, T]``, skip ``[B, C, T]``)."""
        y = x + self.step_proj(emb).unsqueeze(-1)  # [B, C, T]
        y = self.dilated_conv(y) + self.cond_proj(cond)  # [B, 2C, T]
        gate, filt = torch.chunk(y, 2, dim=1)
        y = self.out_proj(torch.sigmoid(gate) * torch.tanh(filt))  # [B, 2C, T]
        residual, skip = torch.chunk(y, 2, dim=1)
        return (x + residual) / math.sqrt(2.0), skip


class DiffWave(nn.Module):
    def __init__(self, cfg: DiffWaveConfig = DiffWaveConfig()):
        super().__init__()
        self.cfg = cfg
        c = cfg.residual_channels
        self.input_proj = nn.Conv1d(1, c, 1)
        self.embedding = StepEmbedding(cfg)
        self.upsampler = MelUpsampler()
        self.layers = nn.ModuleList(
            ResidualBlock(cfg, 2 ** (i % cfg.dilation_cycle)) for i in range(cfg.residual_layers)
        )
        self.skip_proj = nn.Conv1d(c, c, 1)
        self.output_proj = nn.Conv1d(c, 1, 1)
        nn.init.kaiming_normal_(self.input_proj.weight)
        nn.init.kaiming_normal_(self.skip_proj.weight)
        nn.init.zeros_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, audio: torch.Tensor, step: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """One denoising step: noisy audio ``[B, T]``, step ``[B]`` float, mel ``[B, 80, F]`` -> eps ``[B, T]``.

        ``T`` must equal ``256 F``.
        """
        x = F.relu(self.input_proj(audio.unsqueeze(1)))  # [B, C, T]
        emb = self.embedding(step)  # [B, E]
        cond = self.upsampler(mel)  # [B, 80, T]
        skip = torch.zeros_like(x)
        for layer in self.layers:
            x, s = layer(x, emb, cond)
            skip = skip + s
        x = skip / math.sqrt(len(self.layers))  # [B, C, T]
        x = F.relu(self.skip_proj(x))
        return self.output_proj(x).squeeze(1)  # [B, T]
