"""The :class:`serve.engine.Synthesizer` interface over torch models, for GPUs (bf16/fp16 autocast).

Imported only when asked for (it imports torch); the ONNX engine never imports this module.
:class:`TorchSynthesizer` is built from training checkpoints and runs the very same pipeline as the ONNX
engine -- sentence splitting, numpy length regulation, noise, solvers, samplers, chunking -- with the three
graphs replaced by the torch modules of :mod:`export.wrappers`. Arrays cross the numpy/torch boundary at
every graph call (a few MB per vocoder step at most), which keeps the pipeline in one place.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from export.wrappers import load_acoustic, load_vocoder
from serve.bundle import Bundle
from serve.engine import Synthesizer

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but torch sees no CUDA GPU")
    return dev


class TorchGraphs:
    """The graph functions of :class:`serve.graphs.OnnxGraphs` (numpy in, float32 numpy out) over torch."""

    def __init__(self, vocoder: torch.nn.Module, acoustic: torch.nn.Module | None, device: torch.device,
                 precision: str):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r} (expected one of {', '.join(PRECISIONS)})")
        if precision == "auto":
            precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
        self.device = device
        self.precision = precision
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.vocoder = vocoder.eval().to(device)
        self.acoustic = acoustic.eval().to(device) if acoustic is not None else None
        self.providers = [f"torch:{device}:{precision}"]

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def _run(self, fn, *arrays: np.ndarray):
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                                    enabled=self.autocast_dtype is not None):
            out = fn(*(self._tensor(a) for a in arrays))
        if isinstance(out, tuple):
            return tuple(o.float().cpu().numpy() for o in out)
        return out.float().cpu().numpy()

    def encode(self, ids: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ids int64 [B, L], lengths int64 [B] -> mu_x [B, 80, L], logw [B, 1, L], x_mask [B, 1, L]."""
        return self._run(self.acoustic.encoder, ids.astype(np.int64), lengths.astype(np.int64))

    def score(self, x: np.ndarray, t: np.ndarray, mu: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """x, mu [B, 80, F], t [B], mask [B, 1, F] -> score [B, 80, F]."""
        f32 = np.float32
        return self._run(self.acoustic.score_net, x.astype(f32), t.astype(f32), mu.astype(f32), mask.astype(f32))

    def vocoder_step(self, audio: np.ndarray, cond: np.ndarray, mel: np.ndarray) -> np.ndarray:
        """audio [B, T], cond [B], mel [B, 80, F] -> eps [B, T]."""
        f32 = np.float32
        return self._run(self.vocoder, audio.astype(f32), cond.astype(f32), mel.astype(f32))


class TorchSynthesizer(Synthesizer):
    """A :class:`serve.engine.Synthesizer` built from checkpoints and run by torch.

    acoustic_ckpt: Grad-TTS checkpoint (None: vocoder only); vocoder_ckpt: DiffWave/WaveGrad checkpoint.
    device: "auto" (CUDA when available) | "cpu" | "cuda[:i]"; precision: "auto" (bf16 autocast on a GPU
    that supports it, else fp32) | "fp32" | "bf16" | "fp16"; threads: torch CPU threads (process-wide).
    Other settings (default schedule, decoder steps, temperature, solver) as in :func:`export.onnx.voice_dict`.
    """

    def __init__(self, acoustic_ckpt: str | os.PathLike | None, vocoder_ckpt: str | os.PathLike,
                 device: str = "auto", precision: str = "auto", threads: int | None = None,
                 max_frames: int = 8192, **voice_options):
        from export.onnx import voice_dict

        if threads is not None:
            torch.set_num_threads(threads)
        vocoder = load_vocoder(vocoder_ckpt)
        acoustic = load_acoustic(acoustic_ckpt) if acoustic_ckpt is not None else None
        names = ["vocoder_step"] + (["encoder", "score_step"] if acoustic is not None else [])
        graphs = {n: {"file": "", "sha256": ""} for n in names}  # in memory: no files
        bundle = Bundle.from_dict(voice_dict(vocoder, acoustic, graphs, **voice_options))
        dev = _device(device)
        self._setup(bundle, TorchGraphs(vocoder.model, acoustic.model if acoustic else None, dev, precision),
                    max_frames)
