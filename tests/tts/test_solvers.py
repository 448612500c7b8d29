"""Reverse-time solvers checked against the closed-form score of Gaussian data.

For data x0 ~ N(m0, s0^2) the Grad-TTS forward process has Gaussian marginals
p_t = N(m_t, v_t), m_t = m0 a + mu (1 - a), v_t = s0^2 a^2 + 1 - a^2, a = exp(-B(t) / 2),
so the exact score is -(x - m_t) / v_t and the exact probability-flow map is affine:
x_0 = m0 + (x_1 - m_1) * s0 / sqrt(v_1).
"""

import subprocess
import sys

import numpy as np
import pytest

from tts.solvers import (
    SOLVER_NAMES,
    cumulative_beta,
    euler_maruyama_sde,
    euler_ode,
    heun_ode,
    solve,
    time_grid,
)

BETA_MIN, BETA_MAX = 0.05, 20.0
SHAPE = (4, 80, 64)  # [B, n_feats, F]: 20480 samples per run


class GaussianOracle:
    """Exact marginals and score of the forward process started from N(m0, s0^2) (scalars or arrays)."""

    def __init__(self, m0, s0, mu):
        self.m0, self.s0, self.mu = m0, s0, mu

    def marginal(self, t):
        a = np.exp(-0.5 * cumulative_beta(t, BETA_MIN, BETA_MAX))
        return self.m0 * a + self.mu * (1 - a), self.s0**2 * a * a + 1 - a * a

    def score(self, x, t):
        m_t, v_t = self.marginal(t)
        return -(x - m_t) / v_t

    def exact_flow(self, x_1):
        m_1, v_1 = self.marginal(1.0)
        return self.m0 + (x_1 - m_1) * self.s0 / np.sqrt(v_1)


def ode_error(solver, oracle, x_1, mu, n_steps):
    mask = np.ones((x_1.shape[0], 1, x_1.shape[2]))
    x_0 = solver(oracle.score, x_1, mu, mask, time_grid(n_steps), BETA_MIN, BETA_MAX)
    return float(np.abs(x_0 - oracle.exact_flow(x_1)).mean())


def test_time_grid():
    for kind in ("uniform", "quadratic"):
        g = time_grid(7, kind)
        assert g.shape == (8,) and g[0] == 1.0 and g[-1] == 0.0 and np.all(np.diff(g) < 0)
    np.testing.assert_allclose(time_grid(4), [1, 0.75, 0.5, 0.25, 0])
    with pytest.raises(ValueError):
        time_grid(0)
    with pytest.raises(ValueError):
        time_grid(4, "cosine")


def test_ode_solvers_converge_at_their_order_per_feature():
    rng = np.random.default_rng(0)
    m0 = rng.normal(size=(1, 80, 1))  # per-feature data mean
    s0 = rng.uniform(0.3, 1.0, size=(1, 80, 1))  # per-feature data std
    mu = m0 + rng.normal(size=(1, 80, 1))  # imperfect encoder output
    oracle = GaussianOracle(m0, s0, mu)
    x_1 = mu + rng.standard_normal(SHAPE)
    mu_full = np.broadcast_to(mu, SHAPE)

    err = {s.__name__: [ode_error(s, oracle, x_1, mu_full, n) for n in (10, 20, 40)] for s in (euler_ode, heun_ode)}
    order = {name: np.log2(e[1] / e[2]) for name, e in err.items()}
    assert 0.7 < order["euler_ode"] < 1.3, err
    assert order["heun_ode"] > 1.7, err
    assert all(h < e for h, e in zip(err["heun_ode"], err["euler_ode"])), err
    assert err["heun_ode"][1] < 0.5 * err["euler_ode"][1], err
    assert err["heun_ode"][-1] < 0.01, err


def sample_stats(x):
    return float(x.mean()), float(x.std())


def test_ode_maps_prior_samples_to_data_distribution():
    m0, s0, mu = 1.5, 0.4, -1.0
    oracle = GaussianOracle(m0, s0, mu)
    rng = np.random.default_rng(1)
    x_1 = mu + rng.standard_normal(SHAPE)  # samples of the N(mu, I) prior, as Grad-TTS starts
    mu_full, mask = np.full(SHAPE, mu), np.ones((SHAPE[0], 1, SHAPE[2]))

    def stat_error(solver, n_steps):
        mean, std = sample_stats(solver(oracle.score, x_1, mu_full, mask, time_grid(n_steps), BETA_MIN, BETA_MAX))
        return abs(mean - m0) + abs(std - s0)

    assert stat_error(heun_ode, 10) < 0.5 * stat_error(euler_ode, 10)
    assert stat_error(heun_ode, 20) < 0.03
    assert stat_error(euler_ode, 100) < 0.03  # Euler gets there too, with many more steps
    assert stat_error(euler_ode, 5) > 0.1  # ... and the checks above can fail


def test_euler_maruyama_approaches_data_distribution():
    m0, s0, mu = 1.5, 0.4, -1.0
    oracle = GaussianOracle(m0, s0, mu)
    rng = np.random.default_rng(2)
    x_1 = mu + rng.standard_normal(SHAPE)
    mu_full, mask = np.full(SHAPE, mu), np.ones((SHAPE[0], 1, SHAPE[2]))

    def stat_error(n_steps):
        noise_rng = np.random.default_rng(3)
        x_0 = euler_maruyama_sde(
            oracle.score, x_1, mu_full, mask, time_grid(n_steps), BETA_MIN, BETA_MAX,
            noise=lambda i: noise_rng.standard_normal(SHAPE),
        )
        mean, std = sample_stats(x_0)
        return abs(mean - m0) + abs(std - s0)

    coarse, fine = stat_error(10), stat_error(1000)
    assert fine < 0.02
    assert fine < 0.5 * coarse


def test_mask_and_torch_tensors():
    torch = pytest.importorskip("torch")
    oracle = GaussianOracle(0.5, 0.7, -0.5)
    rng = np.random.default_rng(4)
    x_1 = -0.5 + rng.standard_normal((2, 80, 12))
    mu = np.full_like(x_1, -0.5)
    mask = np.ones((2, 1, 12))
    mask[1, :, 7:] = 0.0
    grid = time_grid(6)

    def torch_score(x, t):
        return torch.from_numpy(oracle.score(x.numpy(), t))

    def noise_np(i):
        return np.random.default_rng(i).standard_normal(x_1.shape)

    def noise_torch(i):
        return torch.from_numpy(noise_np(i))

    for name in SOLVER_NAMES:
        out_np = solve(name, oracle.score, x_1, mu, mask, grid, BETA_MIN, BETA_MAX, noise=noise_np)
        assert np.all(out_np[1, :, 7:] == 0.0) and np.all(out_np[1, :, :7] != 0.0)
        out_t = solve(
            name, torch_score, torch.from_numpy(x_1), torch.from_numpy(mu), torch.from_numpy(mask), grid,
            BETA_MIN, BETA_MAX, noise=noise_torch,
        )
        assert isinstance(out_t, torch.Tensor)
        np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-10, atol=1e-12)


def test_bad_arguments():
    x = np.zeros((1, 80, 4))
    mask = np.ones((1, 1, 4))
    with pytest.raises(ValueError, match="solver"):
        solve("rk4", lambda x, t: x, x, x, mask, time_grid(2), BETA_MIN, BETA_MAX)
    with pytest.raises(ValueError, match="noise"):
        solve("euler_maruyama", lambda x, t: x, x, x, mask, time_grid(2), BETA_MIN, BETA_MAX)
    with pytest.raises(ValueError, match="decreasing"):
        euler_ode(lambda x, t: x, x, x, mask, np.array([0.0, 1.0]), BETA_MIN, BETA_MAX)


def test_module_does_not_import_torch():
    code = "import sys, tts.solvers; assert 'torch' not in sys.modules, 'tts.solvers imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
