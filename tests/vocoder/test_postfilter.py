"""The mel-envelope post-filter: its STFT pair, its fixed point, its convergence and its settings."""

import numpy as np
import pytest

from vocoder.audio import HOP_LENGTH, mel_numpy, stft_numpy
from vocoder.postfilter import OFF, PostFilter, _spread, istft_numpy, mel_postfilter


def _harmonic(frames: int, f0: float, seed: int) -> np.ndarray:
    """A voiced-like test signal: 20 harmonics of f0 with a 1/k envelope, plus a little noise. ``[256 F]``."""
    t = np.arange(frames * HOP_LENGTH) / 22050
    x = sum(np.sin(2 * np.pi * k * f0 * t + k) / k for k in range(1, 21))
    return (0.2 * x / np.abs(x).max() + 0.01 * np.random.default_rng(seed).standard_normal(t.shape)).astype(np.float32)


def test_istft_inverts_the_contract_stft():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 40 * HOP_LENGTH + 100))
    spec = stft_numpy(x)  # [2, 513, 40]
    assert spec.shape == (2, 513, 40)
    np.testing.assert_allclose(istft_numpy(spec, x.shape[1])[:, : 40 * HOP_LENGTH], x[:, : 40 * HOP_LENGTH],
                               atol=1e-12)


def test_mel_of_the_stft_is_the_contract_mel():
    x = _harmonic(30, 140.0, 1)
    from vocoder.audio import mel_of_spectrum

    np.testing.assert_allclose(np.log(np.maximum(mel_of_spectrum(stft_numpy(x)), 1e-5)), mel_numpy(x), atol=1e-5)


def test_spread_rows_are_weights():
    s = _spread()  # [513, 80]
    assert s.shape == (513, 80) and np.all(s >= 0)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, atol=1e-12)
    assert s[-1].argmax() == 79 and s[0].argmax() == 0  # above 8 kHz the top band, at DC the first


def test_audio_already_on_its_mel_passes_unchanged():
    x = _harmonic(32, 120.0, 2)[None]  # [1, T]
    out = mel_postfilter(x, mel_numpy(x), PostFilter(iterations=3))
    np.testing.assert_allclose(out, x, atol=1e-5)


def test_passes_pull_the_audio_onto_the_target_mel():
    target = mel_numpy(_harmonic(48, 110.0, 3))[None]  # [1, 80, 48]: what the audio should sound like
    wrong = _harmonic(48, 110.0, 4)
    wrong = (np.convolve(wrong, [1.0, -0.95], mode="same") * 3.0)[None].astype(np.float32)  # tilted, louder
    errors = [float(np.abs(mel_numpy(mel_postfilter(wrong, target, PostFilter(n))) - target).mean())
              for n in (0, 1, 3, 8)]
    assert errors[0] > 0.5
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[3] < 0.25 * errors[0]


def test_one_pass_respects_the_gain_limits():
    x = 0.5 * _harmonic(32, 150.0, 5)[None]  # 4 x stays within [-1, 1]
    loud = mel_numpy(x) + np.log(100.0)  # asks for +40 dB everywhere
    quiet = mel_numpy(x) - np.log(100.0)  # asks for -40 dB
    up = mel_postfilter(x, loud, PostFilter(1, gain_floor=0.1, gain_ceiling=4.0))
    down = mel_postfilter(x, quiet, PostFilter(1, gain_floor=0.1, gain_ceiling=4.0))
    np.testing.assert_allclose(up, 4.0 * x, rtol=1e-4, atol=1e-5)  # a uniform gain is exact
    np.testing.assert_allclose(down, 0.1 * x, rtol=1e-4, atol=1e-6)


def test_output_stays_in_the_audio_range():
    x = _harmonic(16, 150.0, 7)[None]
    out = mel_postfilter(x, mel_numpy(x) + 5.0, PostFilter(iterations=4))  # asks for far beyond full scale
    assert np.abs(out).max() == 1.0 and out.dtype == np.float32


def test_off_is_the_identity_and_settings_are_checked():
    x = _harmonic(8, 200.0, 6)[None]
    np.testing.assert_array_equal(mel_postfilter(x, mel_numpy(x) + 1.0, OFF), x)
    assert not OFF.enabled and PostFilter().enabled
    for bad in (dict(iterations=-1), dict(iterations=1.5), dict(gain_floor=0.0), dict(gain_ceiling=0.5),
                dict(gain_floor=2.0, gain_ceiling=4.0), dict(gain_ceiling=float("inf"))):
        with pytest.raises(ValueError, match="post-filter"):
            PostFilter(**bad)
    with pytest.raises(ValueError, match=r"audio \[B, 256 F\]"):
        mel_postfilter(x, mel_numpy(x)[:, :, :-1])
