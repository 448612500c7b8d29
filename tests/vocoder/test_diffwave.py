"""DiffWave: the paper's size, any mel length, one denoising step per call, and that it can learn."""

import numpy as np
import pytest
import torch

from vocoder import diffusion as D
from vocoder.diffwave import DiffWave, DiffWaveConfig


def test_base_configuration_matches_the_paper():
    cfg = DiffWaveConfig.base()
    assert (cfg.residual_layers, cfg.residual_channels, cfg.dilation_cycle) == (30, 64, 10)
    n = sum(p.numel() for p in DiffWave(cfg).parameters())
    assert 2.55e6 < n < 2.7e6  # the paper reports 2.64M; lmnt-com/diffwave's layout gives 2.62M


@pytest.mark.parametrize("frames", [1, 3, 7, 10])
@pytest.mark.parametrize("batch", [1, 2])
def test_any_mel_length_gives_256_samples_per_frame(frames, batch):
    torch.manual_seed(0)
    m = DiffWave(DiffWaveConfig.tiny())
    torch.nn.init.normal_(m.output_proj.weight)  # the zero init would hide shape bugs behind zeros
    out = m(torch.randn(batch, frames * 256), torch.full((batch,), 3.5), torch.randn(batch, 80, frames))
    assert out.shape == (batch, frames * 256)
    assert torch.isfinite(out).all() and out.abs().sum() > 0


def test_step_conditioning_matters_and_batches_are_independent():
    torch.manual_seed(0)
    m = DiffWave(DiffWaveConfig.tiny())
    torch.nn.init.normal_(m.output_proj.weight)
    x, mel = torch.randn(2, 5 * 256), torch.randn(2, 80, 5)
    a = m(x, torch.tensor([1.0, 1.0]), mel)
    b = m(x, torch.tensor([1.0, 30.0]), mel)
    torch.testing.assert_close(a[0], b[0])
    assert (a[1] - b[1]).abs().max() > 1e-4
    single = m(x[1:], torch.tensor([30.0]), mel[1:])
    torch.testing.assert_close(single[0], b[1], atol=1e-5, rtol=1e-5)


def test_tiny_model_overfits_one_batch():
    """Fixed clean audio, noise and steps: the L1 noise-prediction loss falls at least 5x."""
    torch.manual_seed(0)
    m = DiffWave(DiffWaveConfig.tiny())
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    t = torch.linspace(0, 1, 4 * 256)
    x0 = 0.5 * torch.sin(2 * np.pi * 30 * t)[None].repeat(2, 1)
    mel = torch.randn(2, 80, 4)
    eps = torch.randn(2, 4 * 256)
    steps = torch.tensor([5, 40])
    levels = torch.tensor(D.noise_levels(D.DIFFWAVE_TRAIN_BETAS), dtype=torch.float32)[steps]
    x_t = D.q_sample(x0, eps, levels[:, None])
    losses = []
    for _ in range(150):
        loss = (m(x_t, steps.float(), mel) - eps).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5, (losses[0], losses[-1])
