"""Tests for the copy-synthesis metrics and the Griffin-Lim baseline (vocoder/metrics.py)."""

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.fft import idct

from vocoder import metrics
from vocoder.audio import HOP_LENGTH, SAMPLE_RATE, load_audio, mel_numpy

CORPUS_CLIP = Path("/work/shared/corpus/joe-ljs/wavs/LJ001-0048.flac")


def _harmonic(seconds: float = 1.5) -> np.ndarray:
    """A voiced, syllable-like test signal: gliding f0 ~110-170 Hz, 1/k harmonics, 2.5 Hz envelope. [T]."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 45))
    envelope = 0.05 + 0.95 * np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    x = x * envelope
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def _noisy(x: np.ndarray, std: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (x + std * rng.standard_normal(x.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """One second of real speech from the corpus (skips if the corpus is not mounted). [22050]."""
    if not CORPUS_CLIP.exists():
        pytest.skip(f"corpus clip {CORPUS_CLIP} not available")
    return load_audio(CORPUS_CLIP)[11025: 11025 + SAMPLE_RATE]


def test_align_crops_to_shorter():
    a, b = metrics.align(np.zeros(1000), np.ones(700))
    assert a.shape == b.shape == (700,)
    assert np.all(b == 1)


@pytest.mark.parametrize(
    "bad, match", [(np.zeros((2, 100)), "1-D"), (np.zeros(0), "empty"), (np.array([0.0, np.nan]), "NaN")]
)
def test_align_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        metrics.align(bad, np.zeros(100))


def test_identical_signals_score_perfectly():
    x = _harmonic()
    assert metrics.log_mel_l1(x, x) == 0.0
    assert metrics.mcd(x, x) == 0.0
    assert metrics.pesq_wb(x, x) > 4.5  # wide-band PESQ maximum is ~4.64
    assert metrics.stoi(x, x) == pytest.approx(1.0, abs=1e-6)


def test_more_noise_scores_worse():
    x = _harmonic()
    scores = []
    for std in (0.0, 0.003, 0.03):
        y = _noisy(x, std)
        scores.append((metrics.log_mel_l1(x, y), metrics.mcd(x, y), metrics.pesq_wb(x, y), metrics.stoi(x, y)))
    for (l1_a, mcd_a, pesq_a, stoi_a), (l1_b, mcd_b, pesq_b, stoi_b) in itertools.pairwise(scores):
        assert l1_b > l1_a
        assert mcd_b > mcd_a
        assert pesq_b < pesq_a
        assert stoi_b < stoi_a
    assert scores[-1][2] < 3.0  # heavy noise: PESQ clearly degraded


def test_length_mismatch_is_cropped():
    x = _harmonic()
    assert metrics.mcd(x, np.concatenate([x, np.ones(500, np.float32)])) == 0.0


def test_mcd_excludes_c0_and_follows_formula():
    rng = np.random.default_rng(0)
    ref_mel = rng.normal(-4.0, 2.0, size=(80, 12))
    # A constant offset over all bands only changes c0, which MCD excludes.
    assert metrics.mcd_from_mels(ref_mel, ref_mel + 1.7) == pytest.approx(0.0, abs=1e-9)
    # Perturb cepstral coefficient c3 by delta in every frame: MCD = (10 / ln 10) * sqrt(2) * delta.
    delta = 0.25
    bump = np.zeros(80)
    bump[3] = delta
    est_mel = ref_mel + idct(bump, type=2, norm="ortho")[:, None]
    expected = 10 / math.log(10) * math.sqrt(2) * delta
    assert metrics.mcd_from_mels(ref_mel, est_mel) == pytest.approx(expected, rel=1e-9)
    # Beyond the kept coefficients, the same perturbation does not count.
    assert metrics.mcd_from_mels(ref_mel, est_mel, n_coeffs=2) == pytest.approx(0.0, abs=1e-9)


def test_mcd_input_errors():
    with pytest.raises(ValueError, match="same shape"):
        metrics.mcd_from_mels(np.zeros((80, 3)), np.zeros((80, 4)))
    with pytest.raises(ValueError, match="n_coeffs"):
        metrics.mcd_from_mels(np.zeros((80, 3)), np.zeros((80, 3)), n_coeffs=80)
    with pytest.raises(ValueError, match="too short"):
        metrics.mcd(np.zeros(100), np.zeros(100))


def test_pesq_of_silence_is_nan_with_warning():
    silence = np.zeros(SAMPLE_RATE, np.float32)
    with pytest.warns(UserWarning, match="no utterance"):
        assert math.isnan(metrics.pesq_wb(silence, silence))


def test_pesq_too_short_raises():
    x = _harmonic()[:1000]
    with pytest.raises(ValueError, match="too short for PESQ"):
        metrics.pesq_wb(x, x)


@pytest.mark.parametrize("frames", [1, 3, 8])
def test_griffin_lim_length(frames):
    mel = mel_numpy(_harmonic(0.2))[:, :frames]
    audio = metrics.griffin_lim(mel, n_iter=4)
    assert audio.shape == (frames * HOP_LENGTH,)
    assert audio.dtype == np.float32
    assert np.all(np.isfinite(audio))


def test_griffin_lim_rejects_bad_mel():
    with pytest.raises(ValueError, match="80"):
        metrics.griffin_lim(np.zeros((40, 10)))


def _check_griffin_lim(x: np.ndarray, l1_bound: float) -> None:
    mel = mel_numpy(x)  # [80, F]
    audio = metrics.griffin_lim(mel)
    assert audio.shape == (mel.shape[1] * HOP_LENGTH,)
    # Measured (librosa 0.11, seed 0): ~0.13 (speech), ~0.26 (harmonic signal); white noise gives ~2.5.
    assert metrics.log_mel_l1(x, audio) < l1_bound
    white = _noisy(np.zeros_like(x), 0.1, seed=1)
    assert metrics.log_mel_l1(x, white) > 4 * l1_bound
    assert metrics.pesq_wb(x, audio) > metrics.pesq_wb(x, white) + 0.5
    # The 128-sample framing shift matters: without it the mel no longer lines up.
    unshifted = np.concatenate([audio[128:], np.zeros(128, np.float32)])
    assert metrics.log_mel_l1(x, unshifted) > metrics.log_mel_l1(x, audio) + 0.05


def test_griffin_lim_reconstructs_harmonic_signal():
    _check_griffin_lim(_harmonic(1.0), l1_bound=0.4)


def test_griffin_lim_reconstructs_speech(speech):
    _check_griffin_lim(speech, l1_bound=0.3)
