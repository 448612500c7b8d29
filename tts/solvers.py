"""Reverse-time solvers for the Grad-TTS diffusion, as pure functions over any array type.

The forward process of Grad-TTS (Popov et al. 2021, eq. 1 with Sigma = I) is

    dX_t = 1/2 (mu - X_t) beta(t) dt + sqrt(beta(t)) dW_t,     beta(t) = beta_min + (beta_max - beta_min) t,

so that, with B(t) = int_0^t beta(s) ds, X_t | X_0 ~ N(X_0 e^{-B/2} + mu (1 - e^{-B/2}), (1 - e^{-B}) I).
Sampling runs it backwards from X_1 ~ N(mu, I / temperature^2) to t = 0, given a score estimate
``score_fn(x, t) ~ grad_x log p_t(x)``.

Everything here uses only arithmetic operators, python floats and the callables passed in, so the same
functions run on numpy arrays (the torch-free runtime, where ``score_fn`` calls an ONNX session) and on
torch tensors (training and validation). This module must never import torch.

Shapes: ``x_T``, ``mu`` and the score are [B, n_feats, F]; ``mask`` is [B, 1, F] (1 = valid frame) and is
re-applied after every step. A schedule is a numpy array ``grid`` [n_steps + 1] of decreasing times from 1
to 0 (see :func:`time_grid`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Array = Any  # a numpy array or a torch tensor: anything with +, -, * and / by python floats
ScoreFn = Callable[[Array, float], Array]  # (x [B, n_feats, F], t) -> score [B, n_feats, F]
NoiseFn = Callable[[int], Array]  # step index -> standard normal array [B, n_feats, F]


def beta(t: float, beta_min: float, beta_max: float) -> float:
    """Noise rate beta(t) = beta_min + (beta_max - beta_min) t (also works elementwise on arrays)."""
    return beta_min + (beta_max - beta_min) * t


def cumulative_beta(t: float, beta_min: float, beta_max: float) -> float:
    """B(t) = int_0^t beta(s) ds = beta_min t + (beta_max - beta_min) t^2 / 2 (elementwise on arrays)."""
    return beta_min * t + 0.5 * (beta_max - beta_min) * t * t


def time_grid(n_steps: int, kind: str = "uniform", rho: float = 2.0) -> np.ndarray:
    """Decreasing times for the reverse process.

    Args:
        n_steps: number of solver steps (>= 1).
        kind: "uniform" (t_i = 1 - i / n, the Grad-TTS grid) or "quadratic" (t_i = (1 - i / n)^rho, denser
            near t = 0 where the score changes fastest).
        rho: exponent of the "quadratic" grid.
    Returns:
        float64 [n_steps + 1], grid[0] = 1, grid[-1] = 0, strictly decreasing.
    """
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    u = 1.0 - np.arange(n_steps + 1, dtype=np.float64) / n_steps  # [n_steps + 1], 1 -> 0
    if kind == "uniform":
        return u
    if kind == "quadratic":
        if rho <= 0:
            raise ValueError(f"rho must be positive, got {rho}")
        return u**rho
    raise ValueError(f"unknown time grid kind {kind!r}; use 'uniform' or 'quadratic'")


def _check_grid(grid: np.ndarray) -> np.ndarray:
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 2 or np.any(np.diff(grid) >= 0) or grid[0] > 1.0 or grid[-1] < 0.0:
        raise ValueError("grid must be a 1-D array of at least 2 strictly decreasing times within [0, 1]")
    return grid


def ode_drift(score_fn: ScoreFn, x: Array, mu: Array, t: float, beta_min: float, beta_max: float) -> Array:
    """dx/dt of the probability-flow ODE: 1/2 (mu - x - score(x, t)) beta(t). Shapes as x [B, n_feats, F]."""
    return 0.5 * (mu - x - score_fn(x, t)) * beta(t, beta_min, beta_max)


def euler_ode(
    score_fn: ScoreFn, x_T: Array, mu: Array, mask: Array, grid: np.ndarray, beta_min: float, beta_max: float
) -> Array:
    """Euler steps of the probability-flow ODE (the Grad-TTS sampler), one score evaluation per step.

    x_{t-h} = x_t - h * 1/2 (mu - x_t - score(x_t, t)) beta(t). (The official code evaluates the field at
    the middle of each interval; here it is evaluated at the interval's start, the textbook Euler rule.)

    Args:
        score_fn: (x [B, n_feats, F], t float) -> score [B, n_feats, F].
        x_T: [B, n_feats, F] start at grid[0], usually mu + noise / temperature.
        mu: [B, n_feats, F] the terminal mean (the aligned encoder output).
        mask: [B, 1, F] valid frames.
        grid: [n_steps + 1] decreasing times (see :func:`time_grid`).
        beta_min, beta_max: the linear noise schedule.
    Returns:
        x_0: [B, n_feats, F], zero on masked frames.
    """
    grid = _check_grid(grid)
    x = x_T * mask
    for i in range(grid.size - 1):
        t, t_next = float(grid[i]), float(grid[i + 1])
        x = (x + (t_next - t) * ode_drift(score_fn, x, mu, t, beta_min, beta_max)) * mask
    return x


def heun_ode(
    score_fn: ScoreFn, x_T: Array, mu: Array, mask: Array, grid: np.ndarray, beta_min: float, beta_max: float
) -> Array:
    """Heun (explicit trapezoidal, 2nd order) steps of the probability-flow ODE, two score evaluations per step.

    Unlike EDM-style samplers, the last step is corrected too, which evaluates the score at t = 0: here the
    drift is scaled by beta(0) = beta_min, so a bounded learned score is harmless there, and replacing the
    last step by an Euler step would cost most of the accuracy on a uniform grid. Arguments and shapes as
    :func:`euler_ode`.
    """
    grid = _check_grid(grid)
    x = x_T * mask
    for i in range(grid.size - 1):
        t, t_next = float(grid[i]), float(grid[i + 1])
        h = t_next - t  # negative: time runs backwards
        d = ode_drift(score_fn, x, mu, t, beta_min, beta_max)
        x_euler = (x + h * d) * mask
        d_next = ode_drift(score_fn, x_euler, mu, t_next, beta_min, beta_max)
        x = (x + 0.5 * h * (d + d_next)) * mask
    return x


def euler_maruyama_sde(
    score_fn: ScoreFn,
    x_T: Array,
    mu: Array,
    mask: Array,
    grid: np.ndarray,
    beta_min: float,
    beta_max: float,
    noise: NoiseFn,
) -> Array:
    """Euler-Maruyama steps of the reverse-time SDE, one score evaluation and one noise draw per step.

    dx = [1/2 (mu - x) - score(x, t)] beta(t) dt + sqrt(beta(t)) dW-bar, integrated from grid[0] down to
    grid[-1]: x_{t-h} = x_t - h [1/2 (mu - x_t) - score] beta(t) + sqrt(beta(t) h) z_i.

    Args:
        noise: step index i -> standard normal array shaped like x [B, n_feats, F]; the caller owns the
            randomness (a seeded numpy Generator, a torch.Generator, ...).
        Others as :func:`euler_ode`.
    Returns:
        x_0: [B, n_feats, F], zero on masked frames.
    """
    grid = _check_grid(grid)
    x = x_T * mask
    for i in range(grid.size - 1):
        t, t_next = float(grid[i]), float(grid[i + 1])
        h = t - t_next  # positive step size
        b = beta(t, beta_min, beta_max)
        drift = (0.5 * (mu - x) - score_fn(x, t)) * b
        x = (x - h * drift + float(np.sqrt(b * h)) * noise(i)) * mask
    return x


SOLVER_NAMES = ("euler", "heun", "euler_maruyama")


def solve(
    name: str,
    score_fn: ScoreFn,
    x_T: Array,
    mu: Array,
    mask: Array,
    grid: np.ndarray,
    beta_min: float,
    beta_max: float,
    noise: NoiseFn | None = None,
) -> Array:
    """Runs the solver called ``name`` (one of :data:`SOLVER_NAMES`); ``noise`` is needed by the SDE only.

    Shapes as :func:`euler_ode`; returns x_0 [B, n_feats, F].
    """
    if name == "euler":
        return euler_ode(score_fn, x_T, mu, mask, grid, beta_min, beta_max)
    if name == "heun":
        return heun_ode(score_fn, x_T, mu, mask, grid, beta_min, beta_max)
    if name == "euler_maruyama":
        if noise is None:
            raise ValueError("the 'euler_maruyama' solver needs a noise(step) callable")
        return euler_maruyama_sde(score_fn, x_T, mu, mask, grid, beta_min, beta_max, noise)
    raise ValueError(f"unknown solver {name!r}; choose one of {', '.join(SOLVER_NAMES)}")
