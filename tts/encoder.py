"""Grad-TTS text encoder and duration predictor (Popov et al. 2021, after Glow-TTS).

token ids -> embedding -> convolutional pre-net (residual) -> transformer with relative positional
self-attention -> 1x1 projection to mu [B, n_feats, L]; a small convolutional duration predictor reads the
detached encoder output and gives log durations [B, 1, L].

Masks are [B, 1, L] floats (1 = real token). Every convolution sees masked input and attention never looks
at padded keys, so the outputs for an utterance do not depend on how much padding surrounds it.
The forward pass has no data-dependent python control flow and exports to ONNX with dynamic B and L.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

# Masked attention logits; finite (not -inf) so that fp16 autocast and fully padded rows stay NaN-free.
_MASK_VALUE = -1e4


@dataclass(frozen=True)
class TextEncoderConfig:
    """Sizes of :class:`TextEncoder`; the defaults are the paper's (Grad-TTS, LJSpeech)."""

    n_vocab: int
    n_feats: int = 80  # mel bands, the size of mu
    n_channels: int = 192  # embedding / transformer width
    filter_channels: int = 768  # transformer feed-forward width
    filter_channels_dp: int = 256  # duration predictor width
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3  # feed-forward and duration predictor convolutions
    dropout: float = 0.1
    window_size: int = 4  # relative attention sees offsets -window..window
    prenet_kernel_size: int = 5
    prenet_layers: int = 3
    prenet_dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.n_vocab < 1:
            raise ValueError(f"n_vocab must be positive, got {self.n_vocab}")
        if self.n_channels % self.n_heads:
            raise ValueError(f"n_channels ({self.n_channels}) must be divisible by n_heads ({self.n_heads})")
        if self.kernel_size % 2 == 0 or self.prenet_kernel_size % 2 == 0:
            raise ValueError("convolution kernel sizes must be odd so that lengths are preserved")


def sequence_mask(lengths: torch.Tensor, max_length: int | torch.Tensor) -> torch.Tensor:
    """lengths [B] int -> bool [B, max_length], True where position < length."""
    positions = torch.arange(max_length, device=lengths.device)  # [T]
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channel axis of a channels-first tensor [B, C, T] (Glow-TTS, eps 1e-4)."""

    def __init__(self, channels: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, T] -> [B, C, T]; statistics in float32, as autocast does for nn.LayerNorm."""
        dtype = x.dtype
        x = x.float()
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return (x * self.gamma.view(1, -1, 1) + self.beta.view(1, -1, 1)).to(dtype)


class ConvReluNorm(nn.Module):
    """Pre-net: n_layers x (conv -> layer norm -> ReLU -> dropout), zero-initialised projection, residual."""

    def __init__(self, channels: int, kernel_size: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2) for _ in range(n_layers)
        )
        self.norms = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)  # starts as the identity
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, L], mask [B, 1, L] -> [B, C, L] (zero on padding)."""
        h = x
        for conv, norm in zip(self.convs, self.norms):
            h = self.dropout(torch.relu(norm(conv(h * mask))))
        return (x + self.proj(h)) * mask


def relative_position_one_hot(length: int | torch.Tensor, window: int, like: torch.Tensor) -> torch.Tensor:
    """One-hot relative offsets: [L, L, 2 window + 1], entry (i, j, r) = 1 iff j - i = r - window.

    Pairs further apart than ``window`` have an all-zero row, i.e. no relative embedding (as in Glow-TTS).
    Built from ``arange`` so that L stays dynamic in an ONNX export; dtype and device follow ``like``.
    """
    positions = torch.arange(length, device=like.device)  # [L]
    offsets = positions.unsqueeze(0) - positions.unsqueeze(1) + window  # [L, L], j - i + window
    slots = torch.arange(2 * window + 1, device=like.device)  # [2w+1]
    return (offsets.unsqueeze(-1) == slots).to(like.dtype)  # [L, L, 2w+1]


class RelativeSelfAttention(nn.Module):
    """Multi-head self-attention with relative position embeddings on keys and values (Shaw et al. 2018).

    Embeddings are shared across heads and cover offsets -window..window, as in Glow-TTS / Grad-TTS.
    """

    def __init__(self, channels: int, n_heads: int, window: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = channels // n_heads
        self.window = window
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)
        std = self.head_dim**-0.5
        self.emb_rel_k = nn.Parameter(torch.randn(2 * window + 1, self.head_dim) * std)  # [2w+1, d]
        self.emb_rel_v = nn.Parameter(torch.randn(2 * window + 1, self.head_dim) * std)  # [2w+1, d]
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, L], attn_mask [B, 1, L, L] (1 = query and key both valid) -> [B, C, L]."""
        batch, channels, length = x.shape
        heads, d = self.n_heads, self.head_dim

        def split(h: torch.Tensor) -> torch.Tensor:
            return h.reshape(batch, heads, d, length).transpose(2, 3)  # [B, H, L, d]

        q, k, v = split(self.conv_q(x)), split(self.conv_k(x)), split(self.conv_v(x))
        rel = relative_position_one_hot(length, self.window, q)  # [L, L, 2w+1]
        scale = 1.0 / math.sqrt(d)

        scores = torch.matmul(q, k.transpose(-2, -1))  # [B, H, L, L]
        q_rel = torch.matmul(q, self.emb_rel_k.t())  # [B, H, L, 2w+1] query . relative key embedding
        scores = (scores + torch.einsum("bhir,ijr->bhij", q_rel, rel)) * scale
        scores = scores.masked_fill(attn_mask == 0, _MASK_VALUE)
        weights = self.dropout(torch.softmax(scores, dim=-1))  # [B, H, L, L]

        out = torch.matmul(weights, v)  # [B, H, L, d]
        weights_rel = torch.einsum("bhij,ijr->bhir", weights, rel)  # [B, H, L, 2w+1]
        out = out + torch.matmul(weights_rel, self.emb_rel_v)  # [B, H, L, d]
        out = out.transpose(2, 3).reshape(batch, channels, length)  # [B, C, L]
        return self.conv_o(out)


class FeedForward(nn.Module):
    """conv(k) -> ReLU -> dropout -> conv(k), with masked inputs."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, L], mask [B, 1, L] -> [B, C, L]."""
        h = self.dropout(torch.relu(self.conv_1(x * mask)))
        return self.conv_2(h * mask) * mask


class TransformerEncoder(nn.Module):
    """Post-norm transformer: n_layers x (relative self-attention, feed-forward), each residual + norm."""

    def __init__(self, cfg: TextEncoderConfig) -> None:
        super().__init__()
        c = cfg.n_channels
        self.attn = nn.ModuleList(
            RelativeSelfAttention(c, cfg.n_heads, cfg.window_size, cfg.dropout) for _ in range(cfg.n_layers)
        )
        self.ffn = nn.ModuleList(
            FeedForward(c, cfg.filter_channels, cfg.kernel_size, cfg.dropout) for _ in range(cfg.n_layers)
        )
        self.norm_1 = nn.ModuleList(ChannelLayerNorm(c) for _ in range(cfg.n_layers))
        self.norm_2 = nn.ModuleList(ChannelLayerNorm(c) for _ in range(cfg.n_layers))
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, L], mask [B, 1, L] -> [B, C, L] (zero on padding)."""
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)  # [B, 1, L, L]
        for attn, norm_1, ffn, norm_2 in zip(self.attn, self.norm_1, self.ffn, self.norm_2):
            x = x * mask
            x = norm_1(x + self.dropout(attn(x, attn_mask)))
            x = norm_2(x + self.dropout(ffn(x, mask)))
        return x * mask


class DurationPredictor(nn.Module):
    """2 x (conv -> ReLU -> layer norm -> dropout) -> 1x1 conv: log durations per token."""

    def __init__(self, in_channels: int, filter_channels: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_1 = ChannelLayerNorm(filter_channels)
        self.conv_2 = nn.Conv1d(filter_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_2 = ChannelLayerNorm(filter_channels)
        self.proj = nn.Conv1d(filter_channels, 1, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, L], mask [B, 1, L] -> log durations [B, 1, L] (zero on padding)."""
        x = self.dropout(self.norm_1(torch.relu(self.conv_1(x * mask))))
        x = self.dropout(self.norm_2(torch.relu(self.conv_2(x * mask))))
        return self.proj(x * mask) * mask


class TextEncoder(nn.Module):
    """Token ids -> (mu [B, n_feats, L], log durations [B, 1, L], mask [B, 1, L])."""

    def __init__(self, cfg: TextEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.n_vocab, cfg.n_channels)
        nn.init.normal_(self.embedding.weight, 0.0, cfg.n_channels**-0.5)
        self.prenet = ConvReluNorm(cfg.n_channels, cfg.prenet_kernel_size, cfg.prenet_layers, cfg.prenet_dropout)
        self.encoder = TransformerEncoder(cfg)
        self.proj_mu = nn.Conv1d(cfg.n_channels, cfg.n_feats, 1)
        self.duration_predictor = DurationPredictor(
            cfg.n_channels, cfg.filter_channels_dp, cfg.kernel_size, cfg.dropout
        )

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encodes a padded batch of token ids.

        Args:
            ids: int64 [B, L] token ids (anything on padded positions; they are masked out).
            lengths: int64 [B] number of real tokens, 1 <= lengths <= L (not checked here; see
                :meth:`tts.grad_tts.GradTTS.encode`).
        Returns:
            mu: [B, n_feats, L] per-token mean of the mel frames, zero on padding.
            logw: [B, 1, L] predicted log durations (in frames), zero on padding; computed from the
                detached encoder output, so the duration loss does not train the encoder.
            mask: [B, 1, L] float, 1 on real tokens.
        """
        x = self.embedding(ids) * math.sqrt(self.cfg.n_channels)  # [B, L, C]
        x = x.transpose(1, 2)  # [B, C, L]
        mask = sequence_mask(lengths, ids.shape[1]).unsqueeze(1).to(x.dtype)  # [B, 1, L]
        x = self.prenet(x, mask)
        x = self.encoder(x, mask)  # [B, C, L]
        mu = self.proj_mu(x) * mask  # [B, n_feats, L]
        logw = self.duration_predictor(x.detach(), mask)  # [B, 1, L]
        return mu, logw, mask
