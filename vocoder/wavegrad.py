"""WaveGrad vocoder network (Chen et al. 2020, "WaveGrad: Estimating Gradients for Waveform Generation").

The layout follows the ivanvovk/WaveGrad implementation of the paper:

- an *upsampling* stream of UBlocks turns the mel spectrogram [B, n_mels, F] into a waveform-rate
  feature map [B, C, F * hop], one upsampling factor per block;
- a *downsampling* stream of DBlocks turns the noisy waveform [B, T] into feature maps at every
  intermediate rate of the upsampling stream (factors reversed);
- a FiLM module at every rate maps those features, plus a sinusoidal encoding of the noise level,
  to a (scale, shift) pair that modulates the matching UBlock.

The network is conditioned on the *continuous* noise level sqrt(alpha_bar) in (0, 1] (not on a step
index), encoded like a Transformer position after scaling by ``noise_scale`` (5000 in the paper). A model
trained this way can therefore be sampled with any noise schedule (e.g. 6 or 50 steps) without retraining.

``WaveGrad.forward`` does exactly one denoising step: it predicts the noise epsilon in the noisy audio.
It contains no Python control flow that depends on tensor shapes or values, so it exports to ONNX with
dynamic batch and length axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class WaveGradConfig:
    """Hyper-parameters of :class:`WaveGrad`.

    ``factors`` are the upsampling factors of the UBlocks, in order (mel rate -> audio rate); their product
    must equal ``hop``. The DBlocks use ``factors[1:]`` reversed, so with ``len(factors) == 5`` there are
    5 UBlocks, 4 DBlocks and 5 FiLM modules. The paper uses (5, 5, 3, 2, 2) for hop 300; our mel contract
    has hop 256, hence (4, 4, 4, 2, 2).
    """

    n_mels: int = 80
    hop: int = 256
    factors: tuple[int, ...] = (4, 4, 4, 2, 2)
    upsample_preconv_channels: int = 768
    upsample_channels: tuple[int, ...] = (512, 512, 256, 128, 128)
    # Four dilations per UBlock: first (upsampling) conv, then the three modulated convs.
    upsample_dilations: tuple[tuple[int, ...], ...] = (
        (1, 2, 1, 2),
        (1, 2, 1, 2),
        (1, 2, 4, 8),
        (1, 2, 4, 8),
        (1, 2, 4, 8),
    )
    downsample_preconv_channels: int = 32
    downsample_channels: tuple[int, ...] = (128, 128, 256, 512)
    downsample_dilations: tuple[tuple[int, ...], ...] = ((1, 2, 4), (1, 2, 4), (1, 2, 4), (1, 2, 4))
    # The noise level sqrt(alpha_bar) is multiplied by this before its sinusoidal encoding.
    noise_scale: float = 5000.0

    def __post_init__(self) -> None:
        n = len(self.factors)
        if n < 1 or any(int(f) != f or f < 1 for f in self.factors):
            raise ValueError(f"factors must be a non-empty tuple of positive integers, got {self.factors}")
        if math.prod(self.factors) != self.hop:
            raise ValueError(
                f"the upsampling factors {self.factors} multiply to {math.prod(self.factors)}, "
                f"but they must multiply to the hop length {self.hop}"
            )
        if len(self.upsample_channels) != n or len(self.upsample_dilations) != n:
            raise ValueError(
                f"upsample_channels and upsample_dilations need one entry per factor ({n}), got "
                f"{len(self.upsample_channels)} and {len(self.upsample_dilations)}"
            )
        if any(len(d) != 4 for d in self.upsample_dilations):
            raise ValueError(f"each UBlock needs exactly 4 dilations, got {self.upsample_dilations}")
        if len(self.downsample_channels) != n - 1 or len(self.downsample_dilations) != n - 1:
            raise ValueError(
                f"downsample_channels and downsample_dilations need len(factors) - 1 = {n - 1} entries, got "
                f"{len(self.downsample_channels)} and {len(self.downsample_dilations)}"
            )
        if any(len(d) < 1 for d in self.downsample_dilations):
            raise ValueError("each DBlock needs at least one dilation")
        film_channels = (self.downsample_preconv_channels, *self.downsample_channels)
        if any(c % 2 for c in film_channels):
            raise ValueError(
                f"downsampling channel sizes must be even (sin/cos noise encoding), got {film_channels}"
            )

    @classmethod
    def base(cls) -> WaveGradConfig:
        """Paper-size WaveGrad Base (~15M parameters)."""
        return cls()

    @classmethod
    def small(cls) -> WaveGradConfig:
        """A ~1.8M-parameter model that trains on a CPU."""
        return cls(
            upsample_preconv_channels=160,
            upsample_channels=(160, 160, 96, 64, 64),
            downsample_preconv_channels=16,
            downsample_channels=(64, 64, 96, 160),
        )

    @classmethod
    def tiny(cls) -> WaveGradConfig:
        """A few-thousand-parameter model for unit tests."""
        return cls(
            upsample_preconv_channels=16,
            upsample_channels=(16, 16, 16, 8, 8),
            upsample_dilations=((1, 2, 1, 2),) * 5,
            downsample_preconv_channels=8,
            downsample_channels=(8, 8, 16, 16),
            downsample_dilations=((1, 2),) * 4,
        )


def _conv(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> nn.Conv1d:
    """Length-preserving Conv1d (odd kernel) with orthogonal weight init, as in ivanvovk/WaveGrad."""
    conv = nn.Conv1d(
        in_channels, out_channels, kernel_size, padding=dilation * (kernel_size - 1) // 2, dilation=dilation
    )
    nn.init.orthogonal_(conv.weight)
    return conv


def _resample(x: torch.Tensor, factor: int, down: bool) -> torch.Tensor:
    """Linear interpolation along time: [B, C, L] -> [B, C, L * factor] (or [B, C, L // factor] if down).

    The output length is computed from the input's shape (traced as a dynamic shape on export).
    """
    length = x.shape[-1] // factor if down else x.shape[-1] * factor
    if torch.onnx.is_in_onnx_export():
        # The same interpolation as a 4-D bilinear one over a height of 1 (bit-identical in torch). onnxruntime's
        # CPU Resize is twice as fast on 4-D inputs and runs them on all its threads (3-D ones on one): the 18
        # resizes of a 112-frame step took 35 -> 9.5 ms and the step 122 -> 95 ms (2 threads, 2-core AMD EPYC).
        # Training keeps the 3-D op, which is 7% faster in torch (CPU, forward and backward).
        y = F.interpolate(x[:, :, None, :], size=(1, length), mode="bilinear", align_corners=False)
        return y[:, :, 0, :]
    return F.interpolate(x, size=length, mode="linear", align_corners=False)


class NoiseLevelEncoding(nn.Module):
    """Sinusoidal encoding of the continuous noise level, as a Transformer position encoding.

    Maps noise_level [B] (sqrt(alpha_bar) in (0, 1]) to [B, C]: the first half sin, the second half cos of
    ``noise_scale * noise_level * 10000^(-k / (C/2))`` for k = 0 .. C/2 - 1.
    """

    def __init__(self, n_channels: int, noise_scale: float):
        super().__init__()
        half = n_channels // 2
        frequencies = torch.exp(-math.log(1e4) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("frequencies", noise_scale * frequencies, persistent=False)  # [C/2]

    def forward(self, noise_level: torch.Tensor) -> torch.Tensor:
        """noise_level [B] -> encoding [B, C]."""
        phase = noise_level[:, None] * self.frequencies[None, :]  # [B, C/2]
        return torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)  # [B, C]


class FiLM(nn.Module):
    """Feature-wise linear modulation: features of the noisy audio + noise level -> (scale, shift)."""

    def __init__(self, in_channels: int, out_channels: int, noise_scale: float):
        super().__init__()
        self.input_conv = _conv(in_channels, in_channels, 3)
        self.encoding = NoiseLevelEncoding(in_channels, noise_scale)
        self.scale_conv = _conv(in_channels, out_channels, 3)
        self.shift_conv = _conv(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, C_in, L], noise_level [B] -> (scale, shift), each [B, C_out, L]."""
        h = F.leaky_relu(self.input_conv(x), 0.2)
        h = h + self.encoding(noise_level)[:, :, None]  # [B, C_in, L]
        return self.scale_conv(h), self.shift_conv(h)


class UBlock(nn.Module):
    """Upsampling block: upsample by ``factor``, then three FiLM-modulated dilated convs, two residuals."""

    def __init__(self, in_channels: int, out_channels: int, factor: int, dilations: tuple[int, ...]):
        super().__init__()
        self.factor = factor
        self.residual_conv = _conv(in_channels, out_channels, 1)
        self.upsample_conv = _conv(in_channels, out_channels, 3, dilations[0])
        self.modulated_convs = nn.ModuleList(_conv(out_channels, out_channels, 3, d) for d in dilations[1:])

    def _modulated(self, i: int, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return self.modulated_convs[i](F.leaky_relu(scale * x + shift, 0.2))

    def forward(self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """x [B, C_in, L], scale/shift [B, C_out, L * factor] -> [B, C_out, L * factor]."""
        residual = _resample(self.residual_conv(x), self.factor, down=False)  # [B, C_out, L*factor]
        h = self.upsample_conv(_resample(F.leaky_relu(x, 0.2), self.factor, down=False))
        h = self._modulated(0, h, scale, shift)
        h = h + residual
        out = self._modulated(1, h, scale, shift)
        out = self._modulated(2, out, scale, shift)
        return h + out


class DBlock(nn.Module):
    """Downsampling block: downsample by ``factor``, then leaky-ReLU + dilated convs, with a residual."""

    def __init__(self, in_channels: int, out_channels: int, factor: int, dilations: tuple[int, ...]):
        super().__init__()
        self.factor = factor
        self.residual_conv = _conv(in_channels, out_channels, 1)
        channels = [in_channels] + [out_channels] * len(dilations)
        self.convs = nn.ModuleList(
            _conv(c_in, c_out, 3, d) for c_in, c_out, d in zip(channels[:-1], channels[1:], dilations)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C_in, L] -> [B, C_out, L // factor]."""
        residual = _resample(self.residual_conv(x), self.factor, down=True)  # [B, C_out, L/factor]
        h = _resample(x, self.factor, down=True)  # [B, C_in, L/factor]
        for conv in self.convs:
            h = conv(F.leaky_relu(h, 0.2))
        return h + residual


class WaveGrad(nn.Module):
    """WaveGrad noise-prediction network: one denoising step.

    forward(audio [B, T], noise_level [B], mel [B, n_mels, F]) -> epsilon [B, T], with T == F * hop.
    """

    def __init__(self, config: WaveGradConfig | None = None):
        super().__init__()
        self.config = config = config or WaveGradConfig()
        n = len(config.factors)

        # Upsampling stream: mel [B, n_mels, F] -> [B, C, F * hop].
        self.mel_conv = _conv(config.n_mels, config.upsample_preconv_channels, 3)
        up_in = (config.upsample_preconv_channels, *config.upsample_channels[:-1])
        self.ublocks = nn.ModuleList(
            UBlock(c_in, c_out, f, d)
            for c_in, c_out, f, d in zip(
                up_in, config.upsample_channels, config.factors, config.upsample_dilations
            )
        )
        self.output_conv = _conv(config.upsample_channels[-1], 1, 3)

        # Downsampling stream: audio [B, 1, T] -> one feature map per rate of the upsampling stream.
        self.audio_conv = _conv(1, config.downsample_preconv_channels, 5)
        down_in = (config.downsample_preconv_channels, *config.downsample_channels[:-1])
        down_factors = config.factors[1:][::-1]
        self.dblocks = nn.ModuleList(
            DBlock(c_in, c_out, f, d)
            for c_in, c_out, f, d in zip(
                down_in, config.downsample_channels, down_factors, config.downsample_dilations
            )
        )

        # FiLM i reads the i-th downsampling feature map (audio rate first) and modulates UBlock n-1-i.
        film_in = (config.downsample_preconv_channels, *config.downsample_channels)
        film_out = config.upsample_channels[::-1]
        self.films = nn.ModuleList(
            FiLM(c_in, c_out, config.noise_scale) for c_in, c_out in zip(film_in, film_out)
        )
        assert len(self.films) == len(self.ublocks) == n

    def forward(self, audio: torch.Tensor, noise_level: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """Predict the noise in ``audio``.

        Args:
            audio: noisy waveform y_n, [B, T] with T == F * hop.
            noise_level: continuous noise level sqrt(alpha_bar_n) in (0, 1], [B] float.
            mel: conditioning log-mel spectrogram, [B, n_mels, F].

        Returns:
            predicted noise epsilon, [B, T].
        """
        self._check_inputs(audio, noise_level, mel)
        noise_level = noise_level.to(audio.dtype)

        # Downsampling stream + FiLM statistics, from audio rate down to 4x mel rate.
        h = self.audio_conv(audio[:, None, :])  # [B, C, T]
        statistics = [self.films[0](h, noise_level)]
        for dblock, film in zip(self.dblocks, self.films[1:]):
            h = dblock(h)  # [B, C', L / factor]
            statistics.append(film(h, noise_level))

        # Upsampling stream, modulated at each rate (lowest rate first).
        x = self.mel_conv(mel)  # [B, C, F]
        for ublock, (scale, shift) in zip(self.ublocks, reversed(statistics)):
            x = ublock(x, scale, shift)  # [B, C', L * factor]
        return self.output_conv(x)[:, 0, :]  # [B, T]

    def _check_inputs(self, audio: torch.Tensor, noise_level: torch.Tensor, mel: torch.Tensor) -> None:
        """Raise ValueError on malformed inputs. Skipped while exporting (shapes are symbolic then)."""
        if audio.dim() != 2 or mel.dim() != 3 or noise_level.dim() != 1:
            raise ValueError(
                "expected audio [B, T], noise_level [B] and mel [B, n_mels, F], got shapes "
                f"{tuple(audio.shape)}, {tuple(noise_level.shape)} and {tuple(mel.shape)}"
            )
        if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.compiler.is_compiling():
            return
        batch, n_mels, n_frames = mel.shape
        if mel.shape[1] != self.config.n_mels:
            raise ValueError(f"mel must have {self.config.n_mels} bands, got {n_mels}")
        if audio.shape[0] != batch or noise_level.shape[0] != batch:
            raise ValueError(
                f"batch sizes differ: audio {audio.shape[0]}, noise_level {noise_level.shape[0]}, mel {batch}"
            )
        if n_frames < 1 or audio.shape[1] != n_frames * self.config.hop:
            raise ValueError(
                f"audio length must be mel frames * hop = {n_frames} * {self.config.hop} = "
                f"{n_frames * self.config.hop} (with at least one frame), got {audio.shape[1]}"
            )
