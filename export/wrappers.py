"""The torch side of each exported graph, and loading the models they wrap from checkpoints.

One ``nn.Module`` per ONNX graph, each with a fixed signature of named inputs (no forward swapping):

* :class:`VocoderStep`: one vocoder denoising step,
  ``audio [B, T] f32, cond [B] f32, mel [B, 80, F] f32 -> eps [B, T] f32`` with ``T = 256 F``.
  ``cond`` is what the model is conditioned on: DiffWave a continuous training-step index, WaveGrad the
  noise level sqrt(alpha_bar) (the ``conds`` of a schedule record).
* :class:`GradTTSEncoder`: ``ids [B, L] i64, lengths [B] i64 -> mu_x [B, 80, L], logw [B, 1, L],
  x_mask [B, 1, L]``.
* :class:`ScoreStep`: one Grad-TTS score evaluation,
  ``x [B, 80, F], t [B], mu [B, 80, F], mask [B, 1, F] -> score [B, 80, F]`` (F a multiple of 4).

Length regulation (durations -> frame-rate ``mu_y``) is *not* a graph: it is a data-dependent repeat whose
output length is known only at run time, awkward in ONNX (a ``Range``/``CumSum``/``Gather`` construction)
and trivial in numpy (``np.repeat``), so the runtime does it in numpy between the two graphs.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

ACOUSTIC_TASK = "gradtts"
VOCODER_TASKS = ("diffwave", "wavegrad")


class PhaseConvTranspose2d(nn.Module):
    """``ConvTranspose2d(1, 1, (kh, 2s), stride=(1, s), padding=(kh // 2, s // 2))`` rewritten as a
    ``Conv2d(1, s, (kh, 3))`` whose s output channels are the s phases of the upsampled axis, interleaved.

    Equal to the transposed convolution up to float rounding (tested). It exists for onnxruntime, whose CPU
    ConvTranspose kernel is ~20x slower than its Conv on DiffWave's mel upsampler (one channel, stride 16).
    Derivation: output sample ``t = s q + p`` receives input frames ``q + d`` for ``d`` in {-1, 0, 1} with the
    kernel tap ``k = p + s // 2 - s d`` when ``0 <= k < 2s``; along the other axis a transposed convolution
    with stride 1 is a convolution with the kernel flipped.
    """

    def __init__(self, conv: nn.ConvTranspose2d):
        super().__init__()
        w = conv.weight.detach()[0, 0]  # [kh, kw]
        kh, kw = w.shape
        s, pad = conv.stride[1], conv.padding[1]
        if (conv.in_channels, conv.out_channels, conv.stride[0], conv.padding[0], kw, pad) != (1, 1, 1, kh // 2, 2 * s,
                                                                                               s // 2):
            raise ValueError("PhaseConvTranspose2d supports ConvTranspose2d(1, 1, (kh, 2s), stride=(1, s), "
                             "padding=(kh // 2, s // 2)) only")
        phases = torch.zeros(s, 1, kh, 3)  # [s, 1, kh, 3]: one output channel per phase p
        for p in range(s):
            for m in range(3):  # m = d + 1
                k = p + pad - s * (m - 1)
                if 0 <= k < kw:
                    phases[p, 0, :, m] = w.flip(0)[:, k]
        self.stride = s
        self.conv = nn.Conv2d(1, s, (kh, 3), padding=(kh // 2, 1), bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(phases)
        self.bias = nn.Parameter(conv.bias.detach().clone())  # [1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 1, H, W] -> [B, 1, H, s W]."""
        b, _, h, w = x.shape
        y = self.conv(x)  # [B, s, H, W]
        y = y.permute(0, 2, 3, 1).reshape(b, 1, h, w * self.stride)  # [B, 1, H, s W], phases interleaved
        return y + self.bias


class VocoderStep(nn.Module):
    """One vocoder denoising step: audio [B, T], cond [B], mel [B, 80, F] -> eps [B, T].

    A DiffWave model is wrapped as a copy whose mel upsampler convolutions are the equivalent
    :class:`PhaseConvTranspose2d` (same function, fast in onnxruntime); the model passed in is not changed.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        upsampler = getattr(model, "upsampler", None)
        if upsampler is not None and isinstance(getattr(upsampler, "conv1", None), nn.ConvTranspose2d):
            model = copy.deepcopy(model)
            model.upsampler.conv1 = PhaseConvTranspose2d(model.upsampler.conv1)
            model.upsampler.conv2 = PhaseConvTranspose2d(model.upsampler.conv2)
        self.model = model

    def forward(self, audio: torch.Tensor, cond: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        return self.model(audio, cond, mel)


class GradTTSEncoder(nn.Module):
    """Grad-TTS text encoder + duration predictor: ids [B, L] int64, lengths [B] int64 ->
    (mu_x [B, 80, L], logw [B, 1, L], x_mask [B, 1, L])."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.encoder = model.encoder

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.encoder(ids, lengths)


class ScoreStep(nn.Module):
    """One Grad-TTS score evaluation: x [B, 80, F], t [B], mu [B, 80, F], mask [B, 1, F] -> score [B, 80, F]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.score_net = model.score_net

    def forward(self, x: torch.Tensor, t: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.score_net(x, t, mu, mask)


# ----------------------------------------------------------------------------------------------------------
# Loading models from checkpoints (vocoder/training/checkpoint.py layout)
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedVocoder:
    """A vocoder ready for export: the EMA-weight model (eval mode, CPU) and what voice.json needs."""

    name: str  # "diffwave" | "wavegrad"
    model: nn.Module
    config: dict[str, Any]  # the model config dict
    schedules: dict[str, dict[str, list[float]]]  # named schedule records {"betas": [K], "conds": [K]}
    step: int | None


@dataclass(frozen=True)
class LoadedAcoustic:
    """A Grad-TTS model ready for export (EMA weights, eval mode, CPU) and its text settings."""

    model: nn.Module  # tts.grad_tts.GradTTS
    config: dict[str, Any]  # GradTTSConfig.to_dict()
    symbols: dict[str, Any]  # tts.text.SymbolTable.to_dict()
    text: dict[str, Any]  # keyword options of tts.text.text_to_ids
    step: int | None
    decoder: dict[str, Any] = dataclasses.field(default_factory=dict)  # n_steps, temperature, solver


def _model_config(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The model config dict of a checkpoint: ``config["model"]["model"]`` (task layout) or
    ``config["model"]`` when it is the model config itself."""
    model = ckpt["config"].get("model")
    if not isinstance(model, dict):
        raise ValueError("checkpoint config has no model config")
    return dict(model["model"]) if isinstance(model.get("model"), dict) else dict(model)


def load_vocoder(path: str | os.PathLike) -> LoadedVocoder:
    """Read a DiffWave/WaveGrad training checkpoint; ValueError if it is not a vocoder's."""
    from vocoder.inference import build_vocoder, default_schedules
    from vocoder.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, map_location="cpu")
    name = ckpt["config"].get("task")
    if name not in VOCODER_TASKS:
        raise ValueError(f"{path}: a {name!r} checkpoint, not a vocoder (expected {' or '.join(VOCODER_TASKS)})")
    config = _model_config(ckpt)
    model = build_vocoder(name, config)
    model.load_state_dict(ckpt["ema"])
    meta = ckpt.get("metadata", {})
    schedules = dict(meta.get("schedules") or {})
    if not schedules:
        if "train_betas" not in meta:
            raise ValueError(f"{path}: the checkpoint holds neither schedules nor train_betas")
        schedules = default_schedules(name, np.asarray(meta["train_betas"]))
    return LoadedVocoder(name, model.eval(), config, schedules, ckpt.get("step"))


def build_acoustic(config: dict[str, Any], state_dict: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """A Grad-TTS model from its config dict (``GradTTSConfig.to_dict()``) and optional state dict."""
    from tts.grad_tts import GradTTS, GradTTSConfig

    model = GradTTS(GradTTSConfig.from_dict(config))
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model.eval()


def load_acoustic(path: str | os.PathLike) -> LoadedAcoustic:
    """Read a Grad-TTS training checkpoint (config task ``gradtts``); the symbol table comes from its
    metadata (``symbols``), the text options from ``metadata["text"]`` (default: blanks interspersed, as
    ``tts.train.utterance_ids``), the decoder defaults from ``metadata["decoder"]`` when present."""
    from vocoder.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, map_location="cpu")
    task = ckpt["config"].get("task")
    if task != ACOUSTIC_TASK:
        raise ValueError(f"{path}: a {task!r} checkpoint, not an acoustic model ({ACOUSTIC_TASK!r})")
    config = _model_config(ckpt)
    model = build_acoustic(config, ckpt["ema"])
    meta = ckpt.get("metadata", {})
    symbols = meta.get("symbols") or meta.get("symbol_table")
    if not isinstance(symbols, dict):
        raise ValueError(f"{path}: the checkpoint metadata holds no symbol table ('symbols')")
    if len(symbols.get("symbols", ())) != config["n_vocab"]:
        raise ValueError(f"{path}: the symbol table has {len(symbols.get('symbols', ()))} symbols but the model "
                         f"{config['n_vocab']} embeddings")
    text = {"add_blank": True, "add_bos_eos": False, **dict(meta.get("text") or {})}  # as tts.train.utterance_ids
    return LoadedAcoustic(model, model.cfg.to_dict(), symbols, text, ckpt.get("step"), dict(meta.get("decoder") or {}))


def default_schedule_name(schedules: dict[str, Any]) -> str:
    """The vocoder schedule a bundle uses by default: ``searched6`` if stored, else the searched schedule with
    the fewest steps, else ``fast6``, else the shortest schedule."""
    if "searched6" in schedules:
        return "searched6"
    searched = sorted((len(s["betas"]), n) for n, s in schedules.items() if n.startswith("searched"))
    if searched:
        return searched[0][1]
    if "fast6" in schedules:
        return "fast6"
    if not schedules:
        raise ValueError("no vocoder schedule to choose from")
    return min(schedules, key=lambda n: (len(schedules[n]["betas"]), n))


def example_inputs(kind: str, batch: int = 1, frames: int = 8, tokens: int = 8, n_vocab: int = 2,
                   n_mels: int = 80, hop: int = 256, seed: int = 0) -> dict[str, torch.Tensor]:
    """Example inputs of graph ``kind`` ("vocoder_step", "encoder", "score_step") with the given sizes."""
    g = torch.Generator().manual_seed(seed)
    if kind == "vocoder_step":
        return {"audio": torch.randn(batch, frames * hop, generator=g), "cond": torch.rand(batch, generator=g),
                "mel": torch.randn(batch, n_mels, frames, generator=g) - 5.0}
    if kind == "encoder":
        return {"ids": torch.randint(0, n_vocab, (batch, tokens), generator=g),
                "lengths": torch.full((batch,), tokens, dtype=torch.int64)}
    if kind == "score_step":
        frames = math.ceil(frames / 4) * 4
        return {"x": torch.randn(batch, n_mels, frames, generator=g), "t": torch.rand(batch, generator=g),
                "mu": torch.randn(batch, n_mels, frames, generator=g),
                "mask": torch.ones(batch, 1, frames)}
    raise ValueError(f"unknown graph {kind!r}")
