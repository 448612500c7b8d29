"""Shared fixtures: tiny, randomly initialised checkpoints and voice bundles exported from them.

Built once per test session under ``tmp_path_factory`` (a few seconds on a CPU). torch is imported inside
the fixtures only, so collecting the torch-free tests does not import it.
"""

from __future__ import annotations

import pytest


def make_vocoder_checkpoint(path, model: str = "diffwave", seed: int = 0):
    """Write a checkpoint of a tiny random DiffWave or WaveGrad (with its default schedules) to ``path``.

    DiffWave zero-initialises its output projection (eps == 0 at init); it is re-drawn here so that the
    vocoder's output actually depends on its inputs. WaveGrad's output layer is scaled down to |eps| ~ 1.
    """
    import dataclasses

    import torch

    from vocoder.inference import build_vocoder, default_schedules
    from vocoder.train import model_config, train_betas
    from vocoder.training.checkpoint import atomic_torch_save

    torch.manual_seed(seed)
    cfg = dataclasses.asdict(model_config(model, "tiny"))
    net = build_vocoder(model, cfg)
    with torch.no_grad():
        if model == "diffwave":
            torch.nn.init.normal_(net.output_proj.weight, std=0.3)
        else:  # a random WaveGrad predicts |eps| ~ 100, which the few-step sampler amplifies to inf
            net.output_conv.weight.mul_(0.01)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    betas = train_betas(model)
    atomic_torch_save({
        "version": 1, "model": state, "ema": state, "optimizer": {}, "step": 7, "rng": None,
        "config": {"task": model, "model": {"model": cfg, "task": {"model": model, "size": "tiny"}}},
        "metadata": {"train_betas": [float(b) for b in betas], "schedules": default_schedules(model, betas)},
    }, path)
    return path


def make_acoustic_checkpoint(path, seed: int = 0, log_duration: float = 0.5):
    """Write a checkpoint of a tiny random Grad-TTS over the default symbol table to ``path``.

    The duration predictor's bias is set to ``log_duration`` (about 2 frames per token), so short
    texts give mels long enough to be cut into several vocoder chunks.
    """
    import torch

    from tts.grad_tts import GradTTS, GradTTSConfig
    from tts.text import default_table
    from vocoder.training.checkpoint import atomic_torch_save

    torch.manual_seed(seed)
    table = default_table()
    cfg = GradTTSConfig.tiny(n_vocab=len(table))
    net = GradTTS(cfg)
    with torch.no_grad():
        net.encoder.duration_predictor.proj.bias.fill_(log_duration)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    atomic_torch_save({
        "version": 1, "model": state, "ema": state, "optimizer": {}, "step": 3, "rng": None,
        "config": {"task": "gradtts", "model": {"model": cfg.to_dict(), "task": {"size": "tiny"}}},
        "metadata": {"symbols": table.to_dict(), "decoder": {"n_steps": 10, "temperature": 1.5, "solver": "euler"}},
    }, path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """Paths of tiny random checkpoints: {"acoustic", "diffwave", "wavegrad"}."""
    root = tmp_path_factory.mktemp("ckpt")
    return {
        "acoustic": make_acoustic_checkpoint(root / "gradtts.pt"),
        "diffwave": make_vocoder_checkpoint(root / "diffwave.pt", "diffwave"),
        "wavegrad": make_vocoder_checkpoint(root / "wavegrad.pt", "wavegrad"),
    }


@pytest.fixture(scope="session")
def tiny_bundle(tiny_checkpoints, tmp_path_factory):
    """A TTS voice bundle (tiny Grad-TTS + tiny DiffWave, fp32) exported once per session."""
    from export.onnx import export_bundle

    out = tmp_path_factory.mktemp("voices") / "tiny"
    return export_bundle(tiny_checkpoints["acoustic"], tiny_checkpoints["diffwave"], out)


@pytest.fixture(scope="session")
def tiny_wavegrad_bundle(tiny_checkpoints, tmp_path_factory):
    """A vocoder-only bundle (tiny WaveGrad) with fp16 weights, exported once per session."""
    from export.onnx import export_bundle

    out = tmp_path_factory.mktemp("voices") / "wavegrad16"
    return export_bundle(None, tiny_checkpoints["wavegrad"], out, fp16=True)


@pytest.fixture(scope="session")
def tiny_synth(tiny_bundle):
    """A CPU Synthesizer over ``tiny_bundle`` (one onnxruntime thread: the tests share two cores)."""
    from serve.engine import Synthesizer

    return Synthesizer(tiny_bundle, device="cpu", threads=1)
