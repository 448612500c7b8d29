"""Grad-TTS acoustic model (Popov et al. 2021): text encoder + durations + score-based mel decoder.

Inference: ids -> :meth:`GradTTS.encode` (mu_x, logw) -> :meth:`GradTTS.durations` (integer frames per
token) -> :meth:`GradTTS.expand` (mu_y, one mu per mel frame) -> z = mu_y + noise / temperature ->
reverse diffusion with a solver from :mod:`tts.solvers` -> mel [B, 80, F].

Training (:meth:`GradTTS.compute_loss`): monotonic alignment search between mu_x and the target mel gives
durations (duration loss) and mu_y (prior loss, a unit-variance Gaussian NLL); the score network learns
to denoise random fixed-length mel segments (diffusion loss).

Forward process, with beta(t) = beta_min + (beta_max - beta_min) t and B(t) = int_0^t beta:
    x_t = x_0 e^{-B/2} + mu (1 - e^{-B/2}) + sqrt(1 - e^{-B}) z,   z ~ N(0, I),
target score -z / sqrt(lambda), lambda = 1 - e^{-B}, and the lambda-weighted loss
mean((s sqrt(lambda) + z)^2) over valid elements.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from tts import solvers
from tts.encoder import TextEncoder, TextEncoderConfig, sequence_mask
from tts.score_net import ScoreNet, ScoreNetConfig, is_tracing

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class GradTTSConfig:
    """All sizes and constants of a Grad-TTS model; travels inside checkpoints and export bundles."""

    n_vocab: int  # size of the symbol table (tts.text)
    n_feats: int = 80  # mel bands (vocoder/audio.py contract)
    # Text encoder
    n_channels: int = 192
    filter_channels: int = 768
    filter_channels_dp: int = 256
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    dropout: float = 0.1
    window_size: int = 4
    prenet_kernel_size: int = 5
    prenet_layers: int = 3
    prenet_dropout: float = 0.5
    # Score network (decoder)
    dec_dim: int = 64
    dec_dim_mults: tuple[int, ...] = (1, 2, 4)
    dec_groups: int = 8
    dec_attn_heads: int = 4
    dec_attn_dim_head: int = 32
    pe_scale: float = 1000.0
    # Diffusion
    beta_min: float = 0.05
    beta_max: float = 20.0
    # Training: the decoder sees random segments of this many frames (2 s at 22050 Hz / hop 256 ~= 172,
    # a multiple of 4); None trains on whole utterances.
    segment_frames: int | None = 172

    def __post_init__(self) -> None:
        self.encoder_config  # noqa: B018 - validates the encoder sizes
        multiple = self.score_net_config.length_multiple  # validates the decoder sizes
        if self.segment_frames is not None and (self.segment_frames < multiple or self.segment_frames % multiple):
            raise ValueError(f"segment_frames ({self.segment_frames}) must be a positive multiple of {multiple}")
        if not 0.0 < self.beta_min < self.beta_max:
            raise ValueError(f"need 0 < beta_min < beta_max, got {self.beta_min}, {self.beta_max}")

    @classmethod
    def base(cls, n_vocab: int) -> GradTTSConfig:
        """The paper's model (about 14.8 M parameters)."""
        return cls(n_vocab=n_vocab)

    @classmethod
    def small(cls, n_vocab: int) -> GradTTSConfig:
        """A CPU-trainable model: a 4-layer 128-channel encoder and a dim-32 decoder (about 4.3 M parameters)."""
        return cls(n_vocab=n_vocab, n_channels=128, filter_channels=512, filter_channels_dp=192, n_layers=4,
                   dec_dim=32, segment_frames=128)

    @classmethod
    def tiny(cls, n_vocab: int = 40) -> GradTTSConfig:
        """A very small model for tests (no dropout): a training step takes tens of ms on a CPU."""
        return cls(
            n_vocab=n_vocab, n_channels=32, filter_channels=64, filter_channels_dp=32, n_heads=2, n_layers=2,
            dropout=0.0, prenet_dropout=0.0, dec_dim=8, dec_groups=4, dec_attn_heads=2, dec_attn_dim_head=8,
            segment_frames=32,
        )

    @property
    def encoder_config(self) -> TextEncoderConfig:
        return TextEncoderConfig(
            n_vocab=self.n_vocab, n_feats=self.n_feats, n_channels=self.n_channels,
            filter_channels=self.filter_channels, filter_channels_dp=self.filter_channels_dp,
            n_heads=self.n_heads, n_layers=self.n_layers, kernel_size=self.kernel_size, dropout=self.dropout,
            window_size=self.window_size, prenet_kernel_size=self.prenet_kernel_size,
            prenet_layers=self.prenet_layers, prenet_dropout=self.prenet_dropout,
        )

    @property
    def score_net_config(self) -> ScoreNetConfig:
        return ScoreNetConfig(
            n_feats=self.n_feats, dim=self.dec_dim, dim_mults=tuple(self.dec_dim_mults), groups=self.dec_groups,
            attn_heads=self.dec_attn_heads, attn_dim_head=self.dec_attn_dim_head, pe_scale=self.pe_scale,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["dec_dim_mults"] = list(self.dec_dim_mults)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GradTTSConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown GradTTSConfig fields: {', '.join(unknown)}")
        d = dict(d)
        if "dec_dim_mults" in d:
            d["dec_dim_mults"] = tuple(d["dec_dim_mults"])
        return cls(**d)


def fix_len_compatibility(length: int, multiple: int = 4) -> int:
    """Smallest multiple of ``multiple`` that is >= length: the frame count the score U-Net accepts."""
    return -(-int(length) // multiple) * multiple


def generate_path(durations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hard monotonic alignment from integer durations.

    Args:
        durations: [B, L] frames per token (integer-valued, any dtype), zero on padded tokens.
        mask: [B, L, F] valid (token, frame) pairs.
    Returns:
        path: [B, L, F] with mask's dtype; path[b, i, j] = 1 iff frame j belongs to token i.
    """
    batch, n_tok, n_frames = mask.shape
    ends = torch.cumsum(durations, dim=1).long()  # [B, L] first frame after each token
    path = sequence_mask(ends.reshape(-1), n_frames).reshape(batch, n_tok, n_frames).to(mask.dtype)  # frames < end
    path = path - F.pad(path, (0, 0, 1, 0))[:, :-1]  # minus frames < previous end
    return path * mask


class GradTTS(nn.Module):
    """Text encoder + duration model + score-network decoder. ``forward`` is one score evaluation."""

    def __init__(self, cfg: GradTTSConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = TextEncoder(cfg.encoder_config)
        self.score_net = ScoreNet(cfg.score_net_config)

    @property
    def length_multiple(self) -> int:
        """Decoder frame counts are padded to a multiple of this."""
        return self.cfg.score_net_config.length_multiple

    def forward(self, x: torch.Tensor, t: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One denoising step: score [B, n_feats, F] of x [B, n_feats, F] at t [B] given mu, mask [B, 1, F]."""
        return self.score_net(x, t, mu, mask)

    # ----------------------------------------------------------------------------------------- inference
    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ids int64 [B, L], lengths int64 [B] -> mu_x [B, n_feats, L], logw [B, 1, L], x_mask [B, 1, L].

        Raises ValueError on bad shapes, lengths outside [1, L] or ids outside [0, n_vocab).
        """
        if not is_tracing():
            self._check_text(ids, lengths)
        return self.encoder(ids, lengths)

    @staticmethod
    def durations(logw: torch.Tensor, x_mask: torch.Tensor, length_scale: float = 1.0) -> torch.Tensor:
        """Integer frames per token: ceil(exp(logw) * x_mask * length_scale), [B, 1, L] -> [B, 1, L].

        length_scale > 1 slows speech down, < 1 speeds it up. Every real token gets at least one frame.
        """
        if not length_scale > 0:
            raise ValueError(f"length_scale must be positive, got {length_scale}")
        return torch.ceil(torch.exp(logw) * x_mask * length_scale)

    def expand(
        self, mu_x: torch.Tensor, w_ceil: torch.Tensor, x_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Length regulation: repeat each token's mu for its number of frames.

        Args:
            mu_x: [B, n_feats, L]; w_ceil: [B, 1, L] integer durations; x_mask: [B, 1, L].
        Returns:
            mu_y: [B, n_feats, F], F = fix_len_compatibility(max total duration), zero on padding.
            y_mask: [B, 1, F], 1 on the first sum(w_ceil[b]) frames of item b (at least 1).
        """
        y_lengths = torch.clamp_min(w_ceil.sum(dim=(1, 2)), 1).long()  # [B]
        n_frames = fix_len_compatibility(int(y_lengths.max()), self.length_multiple)
        y_mask = sequence_mask(y_lengths, n_frames).unsqueeze(1).to(mu_x.dtype)  # [B, 1, F]
        attn_mask = x_mask.transpose(1, 2) * y_mask  # [B, L, F]
        attn = generate_path(w_ceil.squeeze(1), attn_mask)  # [B, L, F]
        mu_y = torch.matmul(mu_x, attn)  # [B, n_feats, L] @ [B, L, F] -> [B, n_feats, F]
        return mu_y, y_mask

    def decode(
        self,
        z: torch.Tensor,
        mu_y: torch.Tensor,
        y_mask: torch.Tensor,
        n_timesteps: int = 10,
        solver: str = "euler",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Reverse diffusion from z at t = 1 to a mel at t = 0 over a uniform grid of n_timesteps steps.

        Args:
            z: [B, n_feats, F] start point, usually mu_y + noise / temperature.
            mu_y: [B, n_feats, F]; y_mask: [B, 1, F]; F a multiple of :attr:`length_multiple`.
            solver: "euler", "heun" or "euler_maruyama" (see :mod:`tts.solvers`).
            generator: randomness of the stochastic solver (unused by the ODE solvers).
        Returns:
            mel: [B, n_feats, F], zero on padding.
        """
        batch = z.shape[0]

        def score_fn(x: torch.Tensor, t: float) -> torch.Tensor:
            t_batch = torch.full((batch,), t, dtype=x.dtype, device=x.device)  # [B]
            return self.score_net(x, t_batch, mu_y, y_mask)

        def noise_fn(step: int) -> torch.Tensor:
            return torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)

        grid = solvers.time_grid(n_timesteps)
        return solvers.solve(
            solver, score_fn, z, mu_y, y_mask, grid, self.cfg.beta_min, self.cfg.beta_max, noise=noise_fn
        )

    @torch.no_grad()
    def synthesise(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        n_timesteps: int = 10,
        temperature: float = 1.5,
        length_scale: float = 1.0,
        solver: str = "euler",
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Text to mel, end to end in torch (call ``.eval()`` first to switch dropout off).

        Args:
            ids: int64 [B, L]; lengths: int64 [B].
            n_timesteps: solver steps; temperature: z = mu_y + noise / temperature.
            length_scale: multiplies the predicted durations.
            solver: see :meth:`decode`.
            generator: draws the starting noise (and the SDE noise); must be on the model's device.
            noise: optional standard normal [B, n_feats, F'] with F' >= the frames needed; only its first
                frames are used. Passing the same per-item noise makes batched and one-by-one synthesis
                comparable.
        Returns:
            mel: [B, n_feats, F] with F = the longest utterance's frame count; y_mask: [B, 1, F].
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        mu_x, logw, x_mask = self.encode(ids, lengths)
        mu_y, y_mask = self.expand(mu_x, self.durations(logw, x_mask, length_scale), x_mask)
        if noise is None:
            noise = torch.randn(mu_y.shape, generator=generator, dtype=mu_y.dtype, device=mu_y.device)
        elif noise.dim() != 3 or noise.shape[:2] != mu_y.shape[:2] or noise.shape[2] < mu_y.shape[2]:
            raise ValueError(
                f"noise must be [B, {self.cfg.n_feats}, >= {mu_y.shape[2]}] for this input, got {tuple(noise.shape)}"
            )
        z = mu_y + noise[:, :, : mu_y.shape[2]].to(mu_y) / temperature  # [B, n_feats, F]
        mel = self.decode(z, mu_y, y_mask, n_timesteps, solver, generator)
        n_frames = int(y_mask.sum(dim=2).max())
        return mel[:, :, :n_frames], y_mask[:, :, :n_frames]

    # ------------------------------------------------------------------------------------------ training
    def compute_loss(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        mel: torch.Tensor,
        mel_lengths: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """The three Grad-TTS losses on a padded batch.

        Args:
            ids: int64 [B, L]; lengths: int64 [B].
            mel: [B, n_feats, F] target log-mel; mel_lengths: int64 [B], lengths <= mel_lengths <= F.
            generator: source of all randomness here (segment offsets, t, z), on mel's device. Dropout
                still uses the global torch RNG.
        Returns:
            dict of scalars: dur_loss (squared error of log durations per token), prior_loss (Gaussian NLL
            of mel under N(mu_y, I) per valid element), diff_loss (lambda-weighted score matching).
        """
        self._check_mel(mel, mel_lengths, lengths)
        mu_x, logw, x_mask = self.encode(ids, lengths)
        y_mask = sequence_mask(mel_lengths, mel.shape[2]).unsqueeze(1).to(mel.dtype)  # [B, 1, F]

        attn = self._align(mu_x, x_mask, mel, y_mask)  # [B, L, F], no gradient
        logw_target = torch.log(1e-8 + attn.sum(dim=2)).unsqueeze(1) * x_mask  # [B, 1, L]
        dur_loss = ((logw - logw_target) ** 2).sum() / lengths.sum()

        mu_y = torch.matmul(mu_x, attn)  # [B, n_feats, L] @ [B, L, F] -> [B, n_feats, F]
        prior_loss = (0.5 * ((mel - mu_y) ** 2 + _LOG_2PI) * y_mask).sum() / (y_mask.sum() * self.cfg.n_feats)

        mel_seg, mu_seg, seg_mask = self._random_segments(mel, mu_y, mel_lengths, generator)
        diff_loss = self.diffusion_loss(mel_seg, mu_seg, seg_mask, generator)
        return {"dur_loss": dur_loss, "prior_loss": prior_loss, "diff_loss": diff_loss}

    def diffusion_loss(
        self,
        x0: torch.Tensor,
        mu: torch.Tensor,
        mask: torch.Tensor,
        generator: torch.Generator | None = None,
        eps: float = 1e-5,
    ) -> torch.Tensor:
        """Score-matching loss at t ~ U(eps, 1): mean((s(x_t, t) sqrt(lambda) + z)^2) over valid elements.

        x0, mu: [B, n_feats, S]; mask: [B, 1, S]; S a multiple of :attr:`length_multiple`. Returns a scalar.
        """
        batch = x0.shape[0]
        t = eps + (1.0 - eps) * torch.rand(batch, generator=generator, dtype=x0.dtype, device=x0.device)  # [B]
        cum = solvers.cumulative_beta(t, self.cfg.beta_min, self.cfg.beta_max)[:, None, None]  # [B, 1, 1]
        decay = torch.exp(-0.5 * cum)  # e^{-B/2}
        lam = 1.0 - torch.exp(-cum)  # variance of x_t given x0
        z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device) * mask
        x_t = (x0 * decay + mu * (1.0 - decay) + torch.sqrt(lam) * z) * mask
        score = self.score_net(x_t, t, mu, mask)  # [B, n_feats, S]
        return (((score * torch.sqrt(lam) + z) ** 2) * mask).sum() / (mask.sum() * self.cfg.n_feats)

    @torch.no_grad()
    def _align(self, mu_x: torch.Tensor, x_mask: torch.Tensor, mel: torch.Tensor, y_mask: torch.Tensor):
        """MAS under the unit-variance Gaussian likelihood: returns attn [B, L, F] (0/1, no gradient)."""
        from tts.alignment import maximum_path_torch  # training only: keeps numba out of inference imports

        with torch.autocast(device_type=mel.device.type, enabled=False):
            mu, y = mu_x.float(), mel.float()
            # log N(y_j; mu_i, I) = -1/2 |y_j|^2 + mu_i . y_j - 1/2 |mu_i|^2 - n_feats/2 log(2 pi)
            log_prior = (
                -0.5 * (y**2).sum(dim=1, keepdim=True)  # [B, 1, F]
                + torch.matmul(mu.transpose(1, 2), y)  # [B, L, F]
                - 0.5 * (mu**2).sum(dim=1).unsqueeze(-1)  # [B, L, 1]
                - 0.5 * _LOG_2PI * self.cfg.n_feats
            )
        attn_mask = x_mask.transpose(1, 2) * y_mask  # [B, L, F]
        return maximum_path_torch(log_prior, attn_mask).to(mu_x.dtype)

    def _random_segments(
        self, mel: torch.Tensor, mu_y: torch.Tensor, mel_lengths: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random crops of segment_frames frames (zero-padded when an utterance is shorter).

        mel, mu_y: [B, n_feats, F]; mel_lengths: [B] -> mel_seg, mu_seg [B, n_feats, S], mask [B, 1, S],
        S = segment_frames (or F rounded up to the length multiple when segment_frames is None).
        """
        n_frames = mel.shape[2]
        seg = self.cfg.segment_frames or fix_len_compatibility(n_frames, self.length_multiple)
        if n_frames < seg:  # pad so that every crop index exists
            mel, mu_y = F.pad(mel, (0, seg - n_frames)), F.pad(mu_y, (0, seg - n_frames))
        max_offset = (mel_lengths - seg).clamp_min(0)  # [B]
        u = torch.rand(mel.shape[0], generator=generator, device=mel.device)  # [B]
        offset = torch.minimum((u * (max_offset + 1)).long(), max_offset)  # uniform on 0..max_offset
        index = offset.unsqueeze(1) + torch.arange(seg, device=mel.device)  # [B, S]
        index = index.clamp(max=mel.shape[2] - 1).unsqueeze(1).expand(-1, mel.shape[1], -1)  # [B, n_feats, S]
        seg_mask = sequence_mask(mel_lengths.clamp(max=seg), seg).unsqueeze(1).to(mel.dtype)  # [B, 1, S]
        return mel.gather(2, index) * seg_mask, mu_y.gather(2, index) * seg_mask, seg_mask

    # ---------------------------------------------------------------------------------------- validation
    def _check_text(self, ids: torch.Tensor, lengths: torch.Tensor) -> None:
        if ids.dim() != 2 or ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"ids must be an integer tensor [B, L], got {ids.dtype} {tuple(ids.shape)}")
        if lengths.shape != (ids.shape[0],):
            raise ValueError(f"lengths must be [B] = ({ids.shape[0]},), got {tuple(lengths.shape)}")
        if ids.shape[1] == 0 or bool((lengths < 1).any()) or bool((lengths > ids.shape[1]).any()):
            raise ValueError(f"every length must be in [1, {ids.shape[1]}], got {lengths.tolist()}")
        valid = sequence_mask(lengths, ids.shape[1])
        if bool(((ids < 0) | (ids >= self.cfg.n_vocab))[valid].any()):
            raise ValueError(f"token ids must be in [0, {self.cfg.n_vocab}) (the model's n_vocab)")

    def _check_mel(self, mel: torch.Tensor, mel_lengths: torch.Tensor, lengths: torch.Tensor) -> None:
        if mel.dim() != 3 or mel.shape[1] != self.cfg.n_feats:
            raise ValueError(f"mel must be [B, {self.cfg.n_feats}, F], got {tuple(mel.shape)}")
        if mel_lengths.shape != (mel.shape[0],) or lengths.shape != (mel.shape[0],):
            raise ValueError("lengths and mel_lengths must be [B] with the batch size of mel")
        if bool((mel_lengths > mel.shape[2]).any()):
            raise ValueError(f"mel_lengths {mel_lengths.tolist()} exceed the mel's {mel.shape[2]} frames")
        if bool((mel_lengths < lengths).any()):
            raise ValueError(
                "every utterance needs at least as many mel frames as tokens for the alignment; got "
                f"frames {mel_lengths.tolist()} for tokens {lengths.tolist()}"
            )
