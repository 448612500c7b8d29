"""Monotonic alignment search against exhaustive enumeration of all monotonic alignments."""

from itertools import combinations

import numpy as np
import pytest

from tts import alignment
from tts.alignment import maximum_path, maximum_path_numpy, maximum_path_torch

BACKENDS = [maximum_path_numpy] + ([maximum_path] if alignment.HAS_NUMBA else [])


def brute_force_best(log_p: np.ndarray, t_x: int, t_y: int) -> float:
    """Best total log-likelihood over all monotonic alignments, by enumerating where the token advances."""
    best = -np.inf
    for starts in combinations(range(1, t_y), t_x - 1):  # frames at which tokens 1..t_x-1 begin
        tokens = np.searchsorted(np.array(starts), np.arange(t_y), side="right")  # [t_y] token of each frame
        best = max(best, float(log_p[tokens, np.arange(t_y)].sum()))
    return best


def check_valid_path(path: np.ndarray, t_x: int, t_y: int) -> None:
    """path [L, F] must be a monotonic alignment of t_y frames to t_x tokens, zero elsewhere."""
    assert set(np.unique(path)) <= {0, 1}
    assert path[t_x:, :].sum() == 0 and path[:, t_y:].sum() == 0
    valid = path[:t_x, :t_y]
    assert np.all(valid.sum(axis=0) == 1), "each frame must belong to exactly one token"
    tokens = valid.argmax(axis=0)  # [t_y]
    assert tokens[0] == 0 and tokens[-1] == t_x - 1
    assert set(np.diff(tokens).tolist()) <= {0, 1}


def random_batch(rng: np.random.Generator, n_items: int):
    """Random padded batch: log_p float32 [B, L, F], mask bool [B, L, F], lengths."""
    t_x = rng.integers(1, 5, size=n_items)  # 1..4 tokens
    t_y = np.array([rng.integers(tx, 8) for tx in t_x])  # tx..7 frames
    n_tok, n_frames = int(t_x.max()) + int(rng.integers(0, 2)), int(t_y.max()) + int(rng.integers(0, 2))
    log_p = rng.normal(scale=3.0, size=(n_items, n_tok, n_frames)).astype(np.float32)
    mask = (np.arange(n_tok)[None, :, None] < t_x[:, None, None]) & (
        np.arange(n_frames)[None, None, :] < t_y[:, None, None]
    )
    return log_p, mask, t_x, t_y


@pytest.mark.parametrize("mas", BACKENDS, ids=lambda f: f.__name__)
def test_matches_brute_force_on_random_cases(mas):
    rng = np.random.default_rng(0)
    n_checked = 0
    for _ in range(120):
        log_p, mask, t_x, t_y = random_batch(rng, n_items=3)
        path = mas(log_p, mask)
        assert path.shape == log_p.shape
        for b in range(len(t_x)):
            check_valid_path(path[b], int(t_x[b]), int(t_y[b]))
            total = float((path[b] * log_p[b].astype(np.float64)).sum())
            assert total == pytest.approx(brute_force_best(log_p[b], int(t_x[b]), int(t_y[b])), abs=1e-4)
            n_checked += 1
    assert n_checked == 360


def test_numba_and_numpy_agree():
    if not alignment.HAS_NUMBA:
        pytest.skip("numba not installed")
    rng = np.random.default_rng(1)
    for _ in range(20):
        log_p, mask, _, _ = random_batch(rng, n_items=4)
        np.testing.assert_array_equal(maximum_path(log_p, mask), maximum_path_numpy(log_p, mask))


def test_diagonal_and_forced_cases():
    # Equal tokens and frames: the only alignment is the diagonal.
    log_p = np.random.default_rng(2).normal(size=(1, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(maximum_path(log_p, np.ones_like(log_p, dtype=bool))[0], np.eye(4))
    # A strongly preferred token per frame is followed when it is monotonic.
    want = np.array([0, 0, 1, 1, 1, 2])
    log_p = np.full((1, 3, 6), -10.0, dtype=np.float32)
    log_p[0, want, np.arange(6)] = 0.0
    path = maximum_path(log_p, np.ones_like(log_p, dtype=bool))
    np.testing.assert_array_equal(path[0].argmax(axis=0), want)


@pytest.mark.parametrize("mas", BACKENDS, ids=lambda f: f.__name__)
def test_rejects_fewer_frames_than_tokens(mas):
    log_p = np.zeros((1, 3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="frames"):
        mas(log_p, np.ones_like(log_p, dtype=bool))
    with pytest.raises(ValueError, match="same shape"):
        mas(log_p, np.ones((1, 3, 3), dtype=bool))


def test_torch_wrapper():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    log_p, mask, _, _ = random_batch(rng, n_items=2)
    out = maximum_path_torch(torch.from_numpy(log_p).requires_grad_(), torch.from_numpy(mask))
    assert out.dtype == torch.float32 and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), maximum_path(log_p, mask))
