"""Grad-TTS score network: a small 2-D U-Net over the mel "image" (GradLogPEstimator2d in the paper's code).

The noisy mel x and the aligned encoder output mu are stacked as two channels of an [n_feats x F] image;
the U-Net (ResNet blocks with group norm and Mish, linear attention, three resolutions) predicts the score
grad_x log p_t(x | mu) [B, n_feats, F]. ``forward`` is exactly one network evaluation.

Length contract: the frame axis F must be a multiple of :attr:`ScoreNetConfig.length_multiple` (4 for
three resolutions) because it is halved twice; callers pad with :func:`tts.grad_tts.fix_len_compatibility`
and mark the padding in ``mask``. n_feats (80) must be a multiple too.

Padding invariance (a deliberate change from the official code): group norm statistics and the
linear-attention softmax over keys are taken over valid frames only, and every convolution sees masked
input, so the score on an utterance's frames does not depend on how much padding the batch adds. The
official model normalises and attends over padded frames too, which makes batched synthesis differ from
one-by-one synthesis. With a full mask both are the same computation.

The forward pass has no data-dependent python control flow and exports to ONNX with dynamic B and F.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

_MASK_VALUE = -1e4  # attention logits of padded keys; finite so fp16 stays NaN-free


@dataclass(frozen=True)
class ScoreNetConfig:
    """Sizes of :class:`ScoreNet`; the defaults are the paper's."""

    n_feats: int = 80
    dim: int = 64  # channels at the first resolution
    dim_mults: tuple[int, ...] = (1, 2, 4)  # channel multipliers per resolution
    groups: int = 8  # group norm groups
    attn_heads: int = 4
    attn_dim_head: int = 32
    pe_scale: float = 1000.0  # the sinusoidal time embedding sees pe_scale * t

    def __post_init__(self) -> None:
        if any(self.dim * m % self.groups for m in self.dim_mults):
            raise ValueError(f"every dim * dim_mult must be divisible by groups={self.groups}")
        if self.dim % self.groups or self.dim % 2:
            raise ValueError(f"dim ({self.dim}) must be even and divisible by groups ({self.groups})")
        if self.n_feats % self.length_multiple:
            raise ValueError(f"n_feats ({self.n_feats}) must be a multiple of {self.length_multiple}")

    @property
    def length_multiple(self) -> int:
        """F (and n_feats) must be divisible by this: 2 ** (number of downsamplings)."""
        return 2 ** (len(self.dim_mults) - 1)


def is_tracing() -> bool:
    """True while torch.jit / torch.onnx / torch.export / torch.compile trace the model."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)
    return bool(torch.jit.is_tracing() or torch.compiler.is_compiling() or exporting())


def mish(x: torch.Tensor) -> torch.Tensor:
    """x * tanh(softplus(x)), written out so that ONNX opset 17 (no Mish op) exports it: ``[...]`` -> ``[...]``.

    On export it is written as ``x w / (w + 2)`` with ``w = n (n + 2)``, ``n = exp(min(x, 20))``, the same
    function (``tanh(log(1 + n)) = ((1 + n)^2 - 1) / ((1 + n)^2 + 1)``; above 20 the ratio is 1 in float32):
    onnxruntime's CPU Softplus is slow (32 ms of a 109 ms score step), and with this form the step takes 84 ms
    (200 frames, 2 threads, 2-core AMD EPYC; max relative error 1e-7 against float64).
    """
    if torch.onnx.is_in_onnx_export():
        n = torch.exp(torch.clamp(x, max=20.0))
        w = n * (n + 2.0)
        return x * w / (w + 2.0)
    return x * torch.tanh(F.softplus(x))


class Mish(nn.Module):
    """Module form of :func:`mish`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mish(x)


class MaskedGroupNorm(nn.Module):
    """Group norm whose statistics cover valid frames only. x [B, C, H, W], mask [B, 1, 1, W]."""

    def __init__(self, groups: int, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.groups = groups
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W], mask [B, 1, 1, W] -> [B, C, H, W] (padded frames normalised but not counted).

        Statistics are computed in float32 (sums over ~1e5 elements overflow float16 under autocast).
        """
        dtype = x.dtype
        x = x.float()
        mask = mask.float().expand_as(x)  # [B, C, H, W]
        xg = (x * mask).reshape(x.shape[0], self.groups, -1)  # [B, G, C/G * H * W]
        mg = mask.reshape(x.shape[0], self.groups, -1)  # [B, G, C/G * H * W]
        count = mg.sum(dim=-1, keepdim=True).clamp_min(1.0)  # [B, G, 1]
        mean = xg.sum(dim=-1, keepdim=True) / count
        var = ((xg - mean) * mg).pow(2).sum(dim=-1, keepdim=True) / count
        x = ((xg - mean) * torch.rsqrt(var + self.eps)).reshape(x.shape)  # [B, C, H, W]
        return (x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)).to(dtype)


class Block(nn.Module):
    """conv 3x3 -> masked group norm -> Mish, on masked input; output masked."""

    def __init__(self, dim: int, dim_out: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim_out, 3, padding=1)
        self.norm = MaskedGroupNorm(groups, dim_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, dim, H, W], mask [B, 1, 1, W] -> [B, dim_out, H, W]."""
        return mish(self.norm(self.conv(x * mask), mask)) * mask


class ResnetBlock(nn.Module):
    """Two Blocks with the time embedding added in between, plus a (1x1 conv) residual."""

    def __init__(self, dim: int, dim_out: int, time_dim: int, groups: int) -> None:
        super().__init__()
        self.time_proj = nn.Linear(time_dim, dim_out)
        self.block_1 = Block(dim, dim_out, groups)
        self.block_2 = Block(dim_out, dim_out, groups)
        self.res_conv = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        """x [B, dim, H, W], mask [B, 1, 1, W], t_emb [B, time_dim] -> [B, dim_out, H, W]."""
        h = self.block_1(x, mask)
        h = h + self.time_proj(mish(t_emb))[:, :, None, None]  # [B, dim_out, 1, 1] broadcast
        h = self.block_2(h, mask)
        return h + self.res_conv(x * mask)


class LinearAttention(nn.Module):
    """Linear attention (softmax over keys along positions), keys restricted to valid frames.

    Wrapped as x + g * attention(x) with g initialised to 0 (ReZero), as in Grad-TTS.
    """

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        hidden = heads * dim_head
        self.to_qkv = nn.Conv2d(dim, 3 * hidden, 1, bias=False)
        self.to_out = nn.Conv2d(hidden, dim, 1)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W], mask [B, 1, 1, W] -> x + g * attention(x) [B, C, H, W]."""
        batch, _, height, width = x.shape
        hidden = self.heads * self.dim_head
        qkv = self.to_qkv(x)  # [B, 3 hidden, H, W]
        q, k, v = qkv[:, :hidden], qkv[:, hidden : 2 * hidden], qkv[:, 2 * hidden :]  # (slices, not Split)
        k = k.masked_fill(mask == 0, _MASK_VALUE)  # padded frames get no key weight

        def heads(h: torch.Tensor) -> torch.Tensor:
            return h.reshape(batch, self.heads, self.dim_head, -1)  # [B, heads, d, H*W]

        q, k, v = heads(q), heads(k).softmax(dim=-1), heads(v)
        context = torch.matmul(k, v.transpose(-2, -1))  # [B, heads, d_k, d_v]: sum_n k[d, n] v[e, n]
        out = torch.matmul(context.transpose(-2, -1), q)  # [B, heads, d_v, H*W]
        out = out.reshape(batch, self.heads * self.dim_head, height, width)  # [B, hidden, H, W]
        return x + self.gate * self.to_out(out)


def sinusoidal_embedding(t: torch.Tensor, dim: int, scale: float) -> torch.Tensor:
    """t [B] -> [B, dim]: sin and cos of scale * t at dim / 2 geometric frequencies from 1 to 1/10000."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(10000.0) / (half - 1)))
    args = scale * t.float().unsqueeze(1) * freqs.unsqueeze(0)  # [B, half]
    return torch.cat([args.sin(), args.cos()], dim=-1)  # [B, dim]


class ScoreNet(nn.Module):
    """U-Net score estimator s(x, t | mu) for Grad-TTS; see the module docstring for the length contract."""

    def __init__(self, cfg: ScoreNetConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ScoreNetConfig()
        self.cfg = cfg
        dim, groups = cfg.dim, cfg.groups
        self.time_mlp = nn.Sequential(nn.Linear(dim, 4 * dim), Mish(), nn.Linear(4 * dim, dim))

        dims = [2, *(dim * m for m in cfg.dim_mults)]  # input has 2 channels: x and mu
        in_out = list(itertools.pairwise(dims))  # (channels in, channels out) per level
        n_levels = len(in_out)
        self.downs = nn.ModuleList()
        for level, (d_in, d_out) in enumerate(in_out):
            last = level == n_levels - 1
            self.downs.append(
                nn.ModuleList([
                    ResnetBlock(d_in, d_out, dim, groups),
                    ResnetBlock(d_out, d_out, dim, groups),
                    LinearAttention(d_out, cfg.attn_heads, cfg.attn_dim_head),
                    nn.Identity() if last else nn.Conv2d(d_out, d_out, 3, stride=2, padding=1),
                ])
            )
        mid = dims[-1]
        self.mid_block_1 = ResnetBlock(mid, mid, dim, groups)
        self.mid_attn = LinearAttention(mid, cfg.attn_heads, cfg.attn_dim_head)
        self.mid_block_2 = ResnetBlock(mid, mid, dim, groups)
        self.ups = nn.ModuleList()
        for d_in, d_out in reversed(in_out[1:]):
            self.ups.append(
                nn.ModuleList([
                    ResnetBlock(2 * d_out, d_in, dim, groups),
                    ResnetBlock(d_in, d_in, dim, groups),
                    LinearAttention(d_in, cfg.attn_heads, cfg.attn_dim_head),
                    nn.ConvTranspose2d(d_in, d_in, 4, stride=2, padding=1),
                ])
            )
        self.final_block = Block(dim, dim, groups)
        self.final_conv = nn.Conv2d(dim, 1, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One evaluation of the score.

        Args:
            x: [B, n_feats, F] noisy mel x_t, F a multiple of ``cfg.length_multiple``.
            t: [B] diffusion time in (0, 1].
            mu: [B, n_feats, F] aligned encoder output (the prior mean).
            mask: [B, 1, F] float, 1 on valid frames.
        Returns:
            score: [B, n_feats, F], zero on padded frames.
        """
        if not is_tracing():
            self._check_inputs(x, t, mu, mask)
        t_emb = self.time_mlp(sinusoidal_embedding(t, self.cfg.dim, self.cfg.pe_scale))  # [B, dim]
        h = torch.stack([x, mu], dim=1)  # [B, 2, n_feats, F]
        mask = mask.unsqueeze(1)  # [B, 1, 1, F]
        masks = [mask]  # one per resolution: frame j of level l is valid iff j * 2**l < length
        for _ in range(len(self.downs) - 1):
            masks.append(masks[-1][:, :, :, ::2])

        skips = []
        for (res_1, res_2, attn, down), m in zip(self.downs, masks):
            h = attn(res_2(res_1(h, m, t_emb), m, t_emb), m)
            skips.append(h)
            h = down(h * m)  # [B, C, H/2, W/2] except at the last level

        m = masks[-1]
        h = self.mid_block_2(self.mid_attn(self.mid_block_1(h, m, t_emb), m), m, t_emb)

        for (res_1, res_2, attn, up), m in zip(self.ups, reversed(masks[1:])):
            h = torch.cat([h, skips.pop()], dim=1)  # [B, 2C, H, W]
            h = attn(res_2(res_1(h, m, t_emb), m, t_emb), m)
            h = up(h * m)  # [B, C, 2H, 2W]

        h = self.final_block(h, mask)  # [B, dim, n_feats, F]
        return self.final_conv(h * mask).squeeze(1) * masks[0].squeeze(1)  # [B, n_feats, F]

    def _check_inputs(self, x: torch.Tensor, t: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor) -> None:
        n_feats, multiple = self.cfg.n_feats, self.cfg.length_multiple
        if x.dim() != 3 or x.shape[1] != n_feats:
            raise ValueError(f"x must be [B, {n_feats}, F], got {tuple(x.shape)}")
        if mu.shape != x.shape:
            raise ValueError(f"mu must have the shape of x {tuple(x.shape)}, got {tuple(mu.shape)}")
        if mask.shape != (x.shape[0], 1, x.shape[2]):
            raise ValueError(f"mask must be [B, 1, F] = {(x.shape[0], 1, x.shape[2])}, got {tuple(mask.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be [B] = ({x.shape[0]},), got {tuple(t.shape)}")
        if x.shape[2] % multiple:
            raise ValueError(
                f"the frame count F={x.shape[2]} must be a multiple of {multiple}; pad x, mu and mask with "
                "tts.grad_tts.fix_len_compatibility"
            )
