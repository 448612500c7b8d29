"""Monotonic alignment search (MAS, Glow-TTS / Grad-TTS), used only during training.

Given the log-likelihood ``log_p[b, i, j]`` of mel frame ``j`` under token ``i``, MAS finds the hard
monotonic alignment (each frame belongs to exactly one token, the token index stays or advances by one per
frame, the path starts at token 0 and ends at the last token) with the largest total log-likelihood, by
dynamic programming over frames.

The core works on numpy arrays. It is compiled with numba when numba imports; otherwise a numpy version,
vectorised over the batch and tokens, runs the same recursion. ``maximum_path_torch`` is a thin wrapper for
training code. This module is the only part of ``tts`` that imports numba.
"""

from __future__ import annotations

import numpy as np

try:  # numba is a training extra; the numpy fallback gives identical paths, only slower.
    from numba import njit as _njit

    HAS_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    _njit = None
    HAS_NUMBA = False

_NEG_INF = -np.inf


def _validate(log_p: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checks inputs and returns (log_p float64 [B, L, F], mask bool [B, L, F], t_x [B], t_y [B])."""
    log_p = np.asarray(log_p)
    mask = np.asarray(mask)
    if log_p.ndim != 3 or mask.shape != log_p.shape:
        raise ValueError(
            f"maximum_path expects log_p and mask of the same shape [B, L, F]; got {log_p.shape} and {mask.shape}"
        )
    mask = mask.astype(bool)
    t_x = mask[:, :, 0].sum(axis=1).astype(np.int64)  # [B] valid tokens
    t_y = mask[:, 0, :].sum(axis=1).astype(np.int64)  # [B] valid frames
    if np.any(t_x < 1) or np.any(t_y < t_x):
        bad = int(np.flatnonzero((t_x < 1) | (t_y < t_x))[0])
        raise ValueError(
            f"item {bad}: a monotonic alignment needs at least one token and at least as many frames as tokens "
            f"(got {int(t_x[bad])} tokens, {int(t_y[bad])} frames)"
        )
    return log_p.astype(np.float64), mask, t_x, t_y


def _maximum_path_one(value: np.ndarray, path: np.ndarray, t_x: int, t_y: int) -> None:
    """MAS for one item, in place. value: float64 [L, F] (overwritten), path: int32 [L, F] (zeros)."""
    # Forward pass: value[i, j] becomes the best score of a path that ends at (token i, frame j).
    for j in range(t_y):
        for i in range(max(0, t_x + j - t_y), min(t_x, j + 1)):
            stay = _NEG_INF if i == j else value[i, j - 1]
            if i == 0:
                advance = 0.0 if j == 0 else _NEG_INF
            else:
                advance = value[i - 1, j - 1]
            value[i, j] += max(stay, advance)
    # Backtrack from the last token at the last frame.
    i = t_x - 1
    for j in range(t_y - 1, -1, -1):
        path[i, j] = 1
        if i != 0 and (i == j or value[i, j - 1] < value[i - 1, j - 1]):
            i -= 1


if HAS_NUMBA:
    # cache=False: numba's on-disk cache breaks in read-only or shared installs.
    _maximum_path_one_jit = _njit(cache=False, nogil=True)(_maximum_path_one)

    @_njit(cache=False, nogil=True)
    def _maximum_path_batch_jit(value, path, t_x, t_y):  # pragma: no cover - compiled
        for b in range(value.shape[0]):
            _maximum_path_one_jit(value[b], path[b], t_x[b], t_y[b])


def maximum_path_numpy(log_p: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """MAS without numba: the same recursion, vectorised over batch and tokens with numpy.

    Args:
        log_p: float [B, L, F], log-likelihood of frame j under token i.
        mask: bool [B, L, F], valid (token, frame) pairs (outer product of the token and frame masks).
    Returns:
        int32 [B, L, F] 0/1 path, zero outside the mask.
    """
    log_p, mask, t_x, t_y = _validate(log_p, mask)
    n_batch, n_tok, n_frames = log_p.shape
    tok = np.arange(n_tok)[None, :]  # [1, L]
    value = np.full((n_batch, n_tok, n_frames), _NEG_INF)  # [B, L, F] best score ending at (i, j)
    value[:, 0, 0] = log_p[:, 0, 0]
    for j in range(1, n_frames):
        prev = value[:, :, j - 1]  # [B, L]
        advance = np.concatenate([np.full((n_batch, 1), _NEG_INF), prev[:, :-1]], axis=1)  # [B, L]
        best = np.maximum(prev, advance)
        # Cells with i > j are unreachable; cells past the item's tokens or frames stay -inf.
        valid = (tok <= j) & (tok < t_x[:, None]) & (j < t_y[:, None])  # [B, L]
        value[:, :, j] = np.where(valid, best + log_p[:, :, j], _NEG_INF)

    path = np.zeros((n_batch, n_tok, n_frames), dtype=np.int32)
    for b in range(n_batch):
        i = int(t_x[b]) - 1
        for j in range(int(t_y[b]) - 1, -1, -1):
            path[b, i, j] = 1
            if i != 0 and (i == j or value[b, i, j - 1] < value[b, i - 1, j - 1]):
                i -= 1
    return path


def maximum_path(log_p: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Most likely monotonic alignment of frames to tokens (numba when available).

    Args:
        log_p: float [B, L, F], log-likelihood of frame j under token i.
        mask: bool [B, L, F], valid (token, frame) pairs; item b has t_x = mask[b, :, 0].sum() tokens and
            t_y = mask[b, 0, :].sum() frames, and needs 1 <= t_x <= t_y.
    Returns:
        int32 [B, L, F] 0/1 path: every valid frame has exactly one token, token index non-decreasing by
        0 or 1 per frame, from token 0 at frame 0 to token t_x-1 at frame t_y-1; zero outside the mask.
    Raises:
        ValueError: on mismatched shapes, or an item with no tokens or fewer frames than tokens.
    """
    if not HAS_NUMBA:  # pragma: no cover
        return maximum_path_numpy(log_p, mask)
    log_p, mask, t_x, t_y = _validate(log_p, mask)
    value = np.ascontiguousarray(np.where(mask, log_p, 0.0))  # [B, L, F] float64, overwritten in place
    path = np.zeros(log_p.shape, dtype=np.int32)
    _maximum_path_batch_jit(value, path, t_x, t_y)
    return path


def maximum_path_torch(log_p, mask):
    """Torch wrapper of :func:`maximum_path`: log_p float [B, L, F], mask [B, L, F] -> path [B, L, F].

    The result has log_p's dtype and device and carries no gradient.
    """
    import torch  # local: keeps this module importable without torch

    path = maximum_path(log_p.detach().float().cpu().numpy(), mask.detach().cpu().numpy().astype(bool))
    return torch.from_numpy(path).to(device=log_p.device, dtype=log_p.dtype)
