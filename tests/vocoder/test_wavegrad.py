"""Tests for the WaveGrad network (vocoder/wavegrad.py)."""

import math

import numpy as np
import pytest
import torch

from vocoder.wavegrad import WaveGrad, WaveGradConfig

HOP = 256


def _inputs(batch: int, frames: int, seed: int = 0):
    """Random (audio [B, T], noise_level [B], mel [B, 80, F])."""
    g = torch.Generator().manual_seed(seed)
    audio = torch.randn(batch, frames * HOP, generator=g)
    noise_level = torch.rand(batch, generator=g) * 0.9 + 0.05
    mel = torch.randn(batch, 80, frames, generator=g) - 5.0
    return audio, noise_level, mel


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Run torch on one thread: on a loaded 2-core machine, multi-threaded ops spin and slow down ~30x."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_model() -> WaveGrad:
    torch.manual_seed(0)
    return WaveGrad(WaveGradConfig.tiny()).eval()


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("frames", [1, 3, 7])
def test_output_shape(tiny_model, batch, frames):
    audio, noise_level, mel = _inputs(batch, frames)
    with torch.no_grad():
        eps = tiny_model(audio, noise_level, mel)
    assert eps.shape == (batch, frames * HOP)
    assert torch.isfinite(eps).all()


def test_configs_are_consistent():
    for config in (WaveGradConfig.base(), WaveGradConfig.small(), WaveGradConfig.tiny()):
        assert math.prod(config.factors) == config.hop == HOP
        assert config.n_mels == 80


def test_parameter_counts():
    def count(config):
        return sum(p.numel() for p in WaveGrad(config).parameters())

    assert 14e6 <= count(WaveGradConfig.base()) <= 17e6  # paper: WaveGrad Base ~15M
    assert 1e6 <= count(WaveGradConfig.small()) <= 2e6
    assert count(WaveGradConfig.tiny()) < 100_000


def test_bad_config_raises():
    with pytest.raises(ValueError, match="multiply to"):
        WaveGradConfig(factors=(5, 5, 3, 2, 2))
    with pytest.raises(ValueError, match="one entry per factor"):
        WaveGradConfig(upsample_channels=(512, 512, 256, 128))


def test_bad_inputs_raise(tiny_model):
    audio, noise_level, mel = _inputs(2, 3)
    with pytest.raises(ValueError, match="audio length"):
        tiny_model(audio[:, :-1], noise_level, mel)
    with pytest.raises(ValueError, match="bands"):
        tiny_model(audio, noise_level, mel[:, :40])
    with pytest.raises(ValueError, match="batch"):
        tiny_model(audio, noise_level[:1], mel)
    with pytest.raises(ValueError, match="expected"):
        tiny_model(audio[0], noise_level, mel)


def test_output_depends_on_noise_level(tiny_model):
    audio, _, mel = _inputs(1, 3)
    with torch.no_grad():
        outs = [tiny_model(audio, torch.tensor([level]), mel) for level in (0.1, 0.5, 0.9, 0.9001)]
    for a in range(len(outs)):
        for b in range(a + 1, len(outs)):
            assert (outs[a] - outs[b]).abs().max() > 1e-4


def test_batch_items_are_independent(tiny_model):
    audio, noise_level, mel = _inputs(2, 3)
    with torch.no_grad():
        both = tiny_model(audio, noise_level, mel)
        first = tiny_model(audio[:1], noise_level[:1], mel[:1])
    torch.testing.assert_close(both[:1], first, atol=1e-4, rtol=1e-4)


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = WaveGrad(WaveGradConfig.tiny())
    batch, frames = 2, 4
    t = torch.arange(frames * HOP) / 22050
    x0 = 0.5 * torch.sin(2 * math.pi * 220 * t).repeat(batch, 1)  # [B, T]
    mel = torch.randn(batch, 80, frames)
    eps = torch.randn(batch, frames * HOP)
    level = torch.full((batch,), 0.5)
    noisy = level[:, None] * x0 + (1 - level[:, None] ** 2).sqrt() * eps

    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        loss = (model(noisy, level, mel) - eps).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] <= losses[0] / 5
    # Also much better than the trivial prediction eps_hat = 0 (L1 = mean |eps| ~ 0.8).
    assert losses[-1] < 0.25 * eps.abs().mean().item()


def test_onnx_export_parity(tiny_model, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "wavegrad.onnx"
    # The TorchScript exporter (dynamo=False) works on torch 2.11 and 2.13 and takes well under a second;
    # the dynamo exporter also works but takes ~10 s for this model.
    torch.onnx.export(
        tiny_model,
        _inputs(2, 3),
        str(path),
        input_names=["audio", "noise_level", "mel"],
        output_names=["epsilon"],
        dynamic_axes={
            "audio": {0: "batch", 1: "samples"},
            "noise_level": {0: "batch"},
            "mel": {0: "batch", 2: "frames"},
            "epsilon": {0: "batch", 1: "samples"},
        },
        opset_version=17,
        dynamo=False,
    )
    # Every Resize of the graph interpolates a 4-D tensor (onnxruntime threads only those; see _resample).
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in graph.value_info}
    resizes = [n for n in graph.node if n.op_type == "Resize"]
    assert len(resizes) == 2 * (len(tiny_model.ublocks) + len(tiny_model.dblocks))
    assert {ranks[n.input[0]] for n in resizes} == {4}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, frames in [(1, 1), (2, 7), (3, 4)]:  # other shapes than the export example
        audio, noise_level, mel = _inputs(batch, frames, seed=batch * 10 + frames)
        with torch.no_grad():
            expected = tiny_model(audio, noise_level, mel).numpy()
        (got,) = session.run(None, {"audio": audio.numpy(), "noise_level": noise_level.numpy(), "mel": mel.numpy()})
        assert got.shape == (batch, frames * HOP)
        # The untrained net's outputs reach |eps| ~ 50, so allow float32 relative rounding as well.
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)
