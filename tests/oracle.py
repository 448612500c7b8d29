"""A memorising oracle vocoder for end-to-end sampling tests (numpy only, so the torch-free runtime tests
can use it too).

:class:`OracleDenoiser` has the vocoder graphs' call signature ``(audio [B, T], cond [B], mel [B, 80, F])``.
It knows one clean waveform and its mel. It finds where the ``mel`` it is given sits in that mel (a
chunk's window when the runtime vocodes in chunks; any other mel is an error), and it reads the noise level
*only* from the conditioning value (DiffWave: a float training-step index, read as the training schedule's
level at that index, interpolated; WaveGrad: the level itself), exactly as a trained model would have to.
It then returns the exact noise of ``audio`` around the clean waveform. If the inference code passed a wrong
step, a wrong schedule, or misaligned mel and audio, its noise would be wrong and the sample would not come
back to the clean waveform.

With a one-point oracle only the last step decides the output, so the oracle also records, at every call,
the level it was told and the spread of ``audio - level * clean``; :func:`expected_spreads` says what that
spread must be at every step when each step is told its own level.
"""

from __future__ import annotations

import numpy as np

from vocoder import diffusion as D
from vocoder.audio import mel_numpy

TRAIN_BETAS = {"diffwave": D.DIFFWAVE_TRAIN_BETAS, "wavegrad": D.WAVEGRAD_TRAIN_BETAS}


def clean_wave(frames: int = 24, seed: int = 0) -> np.ndarray:
    """A speech-like test signal ``[256 frames]`` in [-0.8, 0.8]: a gliding harmonic tone plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames * 256) / 22050.0
    f0 = 110 + 60 * t / t[-1]
    phase = 2 * np.pi * np.cumsum(f0) / 22050.0
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * 0.3 + 0.02 * rng.standard_normal(t.shape)
    return (0.8 * x / np.abs(x).max()).astype(np.float32)


def level_of_cond(model: str, cond: np.ndarray) -> np.ndarray:
    """The noise level sqrt(abar) a model is told by its conditioning values ``[B]`` -> ``[B]`` float64."""
    cond = np.asarray(cond, dtype=np.float64)
    if model == "wavegrad":
        return cond
    levels = D.noise_levels(TRAIN_BETAS[model])  # [N]
    c = np.clip(cond, 0, len(levels) - 1)
    lo = np.minimum(np.floor(c).astype(int), len(levels) - 2)
    frac = c - lo
    return levels[lo] * (1 - frac) + levels[lo + 1] * frac


def expected_spreads(betas: np.ndarray, sampler: str, first: float) -> np.ndarray:
    """Std of ``x_n - l_n x0`` at each step ``[K]`` (noisiest first) under an exact one-point denoiser.

    x_T ~ N(0, I) is not on the forward process (DiffWave's schedules do not reach pure noise), so the
    first value is measured; after it, DDPM is the posterior q(x_{n-1} | x_n, x0) (Ho et al. 2020, eq. 7):
    the deviation shrinks by ``c_n = sqrt(alpha_n)(1 - abar_{n-1}) / (1 - abar_n)`` and gains the posterior
    variance ``beta_n (1 - abar_{n-1}) / (1 - abar_n)``; DDIM keeps the predicted noise, so the deviation
    scales with ``sqrt(1 - abar)``.
    """
    betas = np.asarray(betas, dtype=np.float64)
    abar = D.alpha_bars(betas)
    out = [first]
    for n in range(len(betas) - 1, 0, -1):
        if sampler == "ddim":
            out.append(out[-1] * np.sqrt((1 - abar[n - 1]) / (1 - abar[n])))
        else:
            c = np.sqrt(1 - betas[n]) * (1 - abar[n - 1]) / (1 - abar[n])
            out.append(np.sqrt(c**2 * out[-1] ** 2 + betas[n] * (1 - abar[n - 1]) / (1 - abar[n])))
    return np.array(out)


class OracleDenoiser:
    """See the module docstring. ``calls`` holds (frame offset, told level, spread) per call and item."""

    def __init__(self, model: str, clean: np.ndarray, edge: int = 0):
        """``edge``: the caller repeats the end frames of the mel this many times past each end (the
        runtime's ``serve.engine.EDGE_FRAMES``); the clean audio under those frames is taken as silence."""
        self.model = model
        self.mel = mel_numpy(np.asarray(clean, dtype=np.float32))  # [80, F]
        self.padded_mel = np.pad(self.mel, ((0, 0), (edge, edge)), mode="edge")  # [80, F + 2 edge]
        self.clean = np.pad(np.asarray(clean, dtype=np.float64), edge * 256)  # [256 (F + 2 edge)]
        self.calls: list[tuple[int, float, float]] = []

    def window(self, mel: np.ndarray) -> int:
        """The frame offset of ``mel`` ``[80, W]`` in the (edge-padded) clean mel; raises if it is not there."""
        w = mel.shape[-1]
        for f in range(self.padded_mel.shape[1] - w + 1):
            if np.allclose(self.padded_mel[:, f: f + w], mel, atol=1e-5):
                return f
        raise AssertionError(f"a {w}-frame mel that is not a window of the clean waveform's mel")

    def __call__(self, audio: np.ndarray, cond: np.ndarray, mel: np.ndarray) -> np.ndarray:
        """audio ``[B, T]``, cond ``[B]``, mel ``[B, 80, F]`` -> eps ``[B, T]`` float64."""
        audio, mel = np.asarray(audio, dtype=np.float64), np.asarray(mel, dtype=np.float32)
        assert audio.shape[-1] == 256 * mel.shape[-1], "audio and mel lengths disagree"
        level = level_of_cond(self.model, cond)  # [B]
        eps = np.empty_like(audio)
        for b in range(audio.shape[0]):
            f = self.window(mel[b])
            x0 = self.clean[f * 256: f * 256 + audio.shape[-1]]
            self.calls.append((f, float(level[b]), float((audio[b] - level[b] * x0).std())))
            eps[b] = (audio[b] - level[b] * x0) / np.sqrt(1 - level[b] ** 2)
        return eps

    def trace(self, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(told levels [K], spreads [K]) of the calls on the window at ``offset``, in call order."""
        rows = [(lvl, s) for f, lvl, s in self.calls if f == offset]
        return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
