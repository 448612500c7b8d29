"""Discrete-time diffusion for the vocoders: schedules are arrays, samplers are pure functions.

A *schedule* is a 1-D numpy array of betas ``[N]``; everything else (alphas, alpha-bar, noise levels) is
derived from it by the functions below. A *sampler* takes a denoiser callable and arrays, and only uses
arithmetic on its inputs, so the same code runs on torch tensors (training, validation) and on numpy
arrays (the torch-free ONNX runtime). This module imports numpy only.

Conventions (DDPM, Ho et al. 2020): ``x_n = sqrt(abar_n) x_0 + sqrt(1 - abar_n) eps`` for n = 0..N-1,
where ``abar_n = prod_{i<=n} (1 - beta_i)``. The denoiser predicts ``eps``.

Published schedules (the models are trained on the first, sampled with the second):

* DiffWave BASE (Kong et al. 2021, "DiffWave: A Versatile Diffusion Model for Audio Synthesis", Table 1
  and Appendix B): trained on ``linspace(1e-4, 0.05, 50)``; 6-step inference schedule
  ``[1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5]``.
* WaveGrad (Chen et al. 2021, "WaveGrad: Estimating Gradients for Waveform Generation"; the values of the
  ivanvovk/WaveGrad implementation): trained on ``linspace(1e-6, 0.01, 1000)``; 6 iterations
  ``[1e-6, 1.8929e-5, 1.1943e-4, 1.0048e-3, 1.1094e-2, 0.06]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Array = Any  # a numpy array or a torch tensor: the samplers only use arithmetic on it
Denoiser = Callable[[Array, Array], Array]  # (x [B, T], c [B]) -> eps [B, T]

# --- published schedules (data) ---------------------------------------------------------------------------
DIFFWAVE_TRAIN_BETAS = np.linspace(1e-4, 0.05, 50)
DIFFWAVE_FAST_BETAS = np.array([1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5])
WAVEGRAD_TRAIN_BETAS = np.linspace(1e-6, 0.01, 1000)
WAVEGRAD_FAST_BETAS = np.array([1e-6, 1.8929e-5, 1.1943e-4, 1.0048e-3, 1.1094e-2, 0.06])


# --- derived quantities --------------------------------------------------------------------------------
def check_betas(betas: np.ndarray) -> np.ndarray:
    """Validate a schedule: 1-D, finite, each beta in (0, 1). Returns it as float64 ``[N]``."""
    betas = np.asarray(betas, dtype=np.float64)
    if betas.ndim != 1 or betas.size == 0:
        raise ValueError(f"a schedule is a non-empty 1-D array of betas, got shape {betas.shape}")
    if not np.all(np.isfinite(betas)) or np.any(betas <= 0) or np.any(betas >= 1):
        raise ValueError("every beta of a schedule must lie in (0, 1)")
    return betas


def alphas(betas: np.ndarray) -> np.ndarray:
    """``1 - beta``: ``[N]``."""
    return 1.0 - check_betas(betas)


def alpha_bars(betas: np.ndarray) -> np.ndarray:
    """Cumulative product of the alphas, strictly decreasing in (0, 1): ``[N]``."""
    return np.cumprod(alphas(betas))


def noise_levels(betas: np.ndarray) -> np.ndarray:
    """``sqrt(alpha_bar)``, the signal scale WaveGrad is conditioned on: ``[N]``, decreasing."""
    return np.sqrt(alpha_bars(betas))


def q_sample(x0: Array, eps: Array, level: Array) -> Array:
    """Forward process at a noise level ``l = sqrt(alpha_bar)``: ``l x0 + sqrt(1 - l^2) eps``.

    x0, eps: ``[B, T]``; level: ``[B, 1]`` (or broadcastable). Returns ``[B, T]``.
    """
    return level * x0 + (1.0 - level**2) ** 0.5 * eps


def fast_steps(train_betas: np.ndarray, infer_betas: np.ndarray) -> np.ndarray:
    """Map a K-step inference schedule onto continuous training step indices (DiffWave Appendix B).

    For each inference step s, find the training step t (a float in [0, N-1]) whose noise level
    ``sqrt(abar_train)`` equals ``sqrt(abar_infer[s])``, interpolating linearly between the two training
    steps that bracket it. A model conditioned on its (float) step index then sees the noise level it was
    trained on. Levels outside the trained range are clamped to its ends.
    Returns ``[K]`` float64.
    """
    train_levels = noise_levels(train_betas)  # [N] decreasing
    infer_levels = noise_levels(infer_betas)  # [K]
    steps = np.empty(len(infer_levels))
    n = len(train_levels)
    for s, lvl in enumerate(infer_levels):
        if lvl >= train_levels[0]:
            steps[s] = 0.0
        elif lvl <= train_levels[-1]:
            steps[s] = n - 1.0
        else:
            t = int(np.searchsorted(-train_levels, -lvl))  # train_levels[t-1] > lvl >= train_levels[t]
            hi, lo = train_levels[t - 1], train_levels[t]
            steps[s] = (t - 1) + (hi - lvl) / (hi - lo)
    return steps


# --- samplers (pure; numpy or torch) ---------------------------------------------------------------------
def _cond(c: float, x: Array) -> Array:
    """A per-batch conditioning vector ``[B]`` holding c, of x's kind (numpy array or torch tensor)."""
    if isinstance(x, np.ndarray):
        return np.full((x.shape[0],), c, dtype=x.dtype)
    return x.new_full((x.shape[0],), float(c))


def ddpm_step(x: Array, eps: Array, n: int, betas: np.ndarray, noise: Array | None) -> Array:
    """One ancestral step ``x_n -> x_{n-1}`` of DDPM given the predicted noise.

    x, eps, noise: ``[B, T]``; n: index into ``betas`` ``[N]``. ``noise`` is ignored at n == 0.
    Returns ``[B, T]`` of x's dtype.
    """
    betas = check_betas(betas)
    abar = alpha_bars(betas)
    # Python-float coefficients keep x's dtype (a numpy float64 scalar would promote float32 arrays)
    x = (x - float(betas[n] / np.sqrt(1.0 - abar[n])) * eps) * float(1.0 / np.sqrt(1.0 - betas[n]))
    if n > 0:
        sigma = np.sqrt((1.0 - abar[n - 1]) / (1.0 - abar[n]) * betas[n])
        x = x + float(sigma) * noise
    return x


def ddim_step(x: Array, eps: Array, n: int, betas: np.ndarray) -> Array:
    """One deterministic DDIM step (eta = 0) ``x_n -> x_{n-1}``; at n == 0 it returns the x_0 estimate.

    x, eps: ``[B, T]``. Returns ``[B, T]``.
    """
    abar = alpha_bars(betas)
    x0 = (x - float(np.sqrt(1.0 - abar[n])) * eps) * float(1.0 / np.sqrt(abar[n]))
    if n == 0:
        return x0
    return float(np.sqrt(abar[n - 1])) * x0 + float(np.sqrt(1.0 - abar[n - 1])) * eps


def sample_ddpm(
    denoise: Denoiser, x_T: Array, betas: np.ndarray, conds: np.ndarray,
    noise: Callable[[int], Array], clip: float | None = 1.0,
) -> Array:
    """DDPM ancestral sampling over a (possibly few-step) schedule.

    denoise(x [B, T], c [B]) -> eps [B, T]; x_T: ``[B, T]`` standard normal; betas: ``[K]``;
    conds: ``[K]`` the value passed to the denoiser at each step (DiffWave: :func:`fast_steps`;
    WaveGrad: :func:`noise_levels`); noise(n) -> ``[B, T]`` standard normal for step n (n = K-1 .. 1).
    Returns x_0 ``[B, T]``, clipped to [-clip, clip] unless clip is None.
    """
    betas = check_betas(betas)
    if len(conds) != len(betas):
        raise ValueError(f"{len(conds)} conditioning values for a {len(betas)}-step schedule")
    x = x_T
    for n in range(len(betas) - 1, -1, -1):
        eps = denoise(x, _cond(conds[n], x))
        x = ddpm_step(x, eps, n, betas, noise(n) if n > 0 else None)
    return _clip(x, clip)


def sample_ddim(
    denoise: Denoiser, x_T: Array, betas: np.ndarray, conds: np.ndarray, clip: float | None = 1.0,
) -> Array:
    """Deterministic DDIM sampling (eta = 0). Same arguments as :func:`sample_ddpm` without noise.

    Returns x_0 ``[B, T]``.
    """
    betas = check_betas(betas)
    if len(conds) != len(betas):
        raise ValueError(f"{len(conds)} conditioning values for a {len(betas)}-step schedule")
    x = x_T
    for n in range(len(betas) - 1, -1, -1):
        x = ddim_step(x, denoise(x, _cond(conds[n], x)), n, betas)
    return _clip(x, clip)


def _clip(x: Array, clip: float | None) -> Array:
    if clip is None:
        return x
    if isinstance(x, np.ndarray):
        return np.clip(x, -clip, clip)
    return x.clamp(-clip, clip)


SAMPLERS = ("ddpm", "ddim")
