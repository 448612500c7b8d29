"""Schedule maths and samplers, checked against oracles (exact noise, and the exact denoiser of Gaussian data)."""

import numpy as np
import pytest
import torch

from vocoder import diffusion as D

SCHEDULES = {
    "diffwave_train": D.DIFFWAVE_TRAIN_BETAS,
    "diffwave_fast": D.DIFFWAVE_FAST_BETAS,
    "wavegrad_train": D.WAVEGRAD_TRAIN_BETAS,
    "wavegrad_fast": D.WAVEGRAD_FAST_BETAS,
}


def test_published_schedules_are_as_cited():
    dw = D.DIFFWAVE_TRAIN_BETAS
    assert len(dw) == 50 and dw[0] == 1e-4 and dw[-1] == 0.05
    assert list(D.DIFFWAVE_FAST_BETAS) == [1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5]
    assert len(D.WAVEGRAD_TRAIN_BETAS) == 1000 and D.WAVEGRAD_TRAIN_BETAS[-1] == 0.01
    assert D.WAVEGRAD_FAST_BETAS[-1] == 0.06 and len(D.WAVEGRAD_FAST_BETAS) == 6


@pytest.mark.parametrize("name", SCHEDULES)
def test_alpha_bar_is_strictly_decreasing_in_unit_interval(name):
    abar = D.alpha_bars(SCHEDULES[name])
    assert np.all(np.diff(abar) < 0)
    assert np.all((abar > 0) & (abar < 1))
    np.testing.assert_allclose(D.noise_levels(SCHEDULES[name]) ** 2, abar)
    np.testing.assert_allclose(abar, np.cumprod(1 - SCHEDULES[name]))


def test_bad_schedules_are_rejected():
    for bad in ([], [0.0, 0.1], [0.5, 1.0], [[0.1]], [np.nan]):
        with pytest.raises(ValueError):
            D.check_betas(np.array(bad))


def test_fast_mapping_of_the_training_schedule_is_the_identity():
    np.testing.assert_allclose(D.fast_steps(D.DIFFWAVE_TRAIN_BETAS, D.DIFFWAVE_TRAIN_BETAS), np.arange(50), atol=1e-9)


@pytest.mark.parametrize("train,fast", [("diffwave_train", "diffwave_fast"), ("wavegrad_train", "wavegrad_fast")])
def test_fast_mapping_hits_the_training_noise_levels(train, fast):
    """Interpolating the training levels at the mapped (float) steps gives back the inference levels."""
    train_levels = D.noise_levels(SCHEDULES[train])
    steps = D.fast_steps(SCHEDULES[train], SCHEDULES[fast])
    assert np.all(np.diff(steps) > 0)
    interp = np.interp(steps, np.arange(len(train_levels)), train_levels)
    fast_levels = D.noise_levels(SCHEDULES[fast])
    inside = (fast_levels <= train_levels[0]) & (fast_levels >= train_levels[-1])
    np.testing.assert_allclose(interp[inside], fast_levels[inside], rtol=1e-9)
    # levels beyond the trained range clamp to its ends
    assert np.all(steps >= 0) and np.all(steps <= len(train_levels) - 1)


def _oracle(x0, levels_of):
    """The denoiser that knows x0 and so returns the exact noise of x."""
    def denoise(x, c):
        lvl = levels_of(c)
        return (x - lvl * x0) / (1 - lvl**2) ** 0.5
    return denoise


@pytest.mark.parametrize("name", ["diffwave_fast", "diffwave_train", "wavegrad_fast"])
@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_recover_the_clean_signal_with_the_oracle_denoiser(name, sampler):
    betas = SCHEDULES[name]
    levels = D.noise_levels(betas)
    rng = np.random.default_rng(0)
    x0 = np.clip(rng.standard_normal((2, 512)) * 0.3, -1, 1)
    conds = np.arange(len(betas), dtype=float)
    denoise = _oracle(x0, lambda c: levels[int(c[0])])
    x_T = rng.standard_normal(x0.shape)
    if sampler == "ddpm":
        out = D.sample_ddpm(denoise, x_T, betas, conds, noise=lambda n: rng.standard_normal(x0.shape))
    else:
        out = D.sample_ddim(denoise, x_T, betas, conds)
    np.testing.assert_allclose(out, x0, atol=1e-9)


def test_samplers_run_on_torch_tensors_too():
    betas = D.DIFFWAVE_FAST_BETAS
    levels = torch.tensor(D.noise_levels(betas))
    x0 = torch.rand(2, 256, dtype=torch.float64) - 0.5
    conds = np.arange(len(betas), dtype=float)
    denoise = _oracle(x0, lambda c: levels[int(c[0])])
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    def noise(n):
        return torch.randn(x0.shape, generator=g, dtype=torch.float64)

    out = D.sample_ddpm(denoise, x_T, betas, conds, noise=noise)
    assert torch.is_tensor(out)
    torch.testing.assert_close(out, x0, atol=1e-9, rtol=0)


def _gaussian_denoiser(s, levels):
    """Exact E[eps | x] for data x0 ~ N(0, s^2): eps-hat = sqrt(1 - l^2) x / (l^2 s^2 + 1 - l^2)."""
    def denoise(x, c):
        lvl = levels[int(c[0])]
        return np.sqrt(1 - lvl**2) * x / (lvl**2 * s**2 + 1 - lvl**2)
    return denoise


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_reproduce_the_data_distribution_with_the_exact_denoiser(sampler):
    """Data N(0, 0.25^2): 1000-step sampling with the exact denoiser gives samples of std 0.25."""
    s, betas = 0.25, D.WAVEGRAD_TRAIN_BETAS
    levels = D.noise_levels(betas)
    rng = np.random.default_rng(1)
    shape = (2, 10000)
    denoise = _gaussian_denoiser(s, levels)
    conds = np.arange(len(betas), dtype=float)
    x_T = rng.standard_normal(shape)
    if sampler == "ddpm":
        out = D.sample_ddpm(denoise, x_T, betas, conds, noise=lambda n: rng.standard_normal(shape), clip=None)
    else:
        out = D.sample_ddim(denoise, x_T, betas, conds, clip=None)
    assert abs(out.mean()) < 0.01
    assert abs(out.std() / s - 1) < 0.03


def test_ddpm_single_step_matches_the_closed_form_posterior():
    """x_{n-1} mean = (x_n - beta_n / sqrt(1 - abar_n) eps) / sqrt(alpha_n); variance = beta-tilde_n."""
    betas = D.DIFFWAVE_TRAIN_BETAS
    abar = D.alpha_bars(betas)
    n, x, eps, z = 10, np.array([0.3]), np.array([-0.7]), np.array([1.0])
    got = D.ddpm_step(x, eps, n, betas, z)
    mean = (x - betas[n] / np.sqrt(1 - abar[n]) * eps) / np.sqrt(1 - betas[n])
    var = (1 - abar[n - 1]) / (1 - abar[n]) * betas[n]
    np.testing.assert_allclose(got, mean + np.sqrt(var) * z)


def test_q_sample_keeps_unit_variance_for_unit_data():
    rng = np.random.default_rng(2)
    x0, eps = rng.standard_normal(100000), rng.standard_normal(100000)
    assert abs(D.q_sample(x0, eps, 0.6).std() - 1) < 0.01


def test_sampler_checks_conditioning_length():
    with pytest.raises(ValueError, match="conditioning values"):
        D.sample_ddim(lambda x, c: x, np.zeros((1, 4)), D.DIFFWAVE_FAST_BETAS, np.arange(3.0))
