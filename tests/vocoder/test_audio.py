"""The mel contract: numpy and torch agree, librosa's filterbank is matched, and bad audio is rejected."""

import warnings

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from vocoder import audio
from vocoder.audio import AudioError, load_audio, mel_numpy, mel_torch, save_audio


def _signal(n=22050, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 22050
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def test_filterbank_matches_librosa():
    ref = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0.0, fmax=8000.0, htk=False, norm="slaney")
    np.testing.assert_allclose(audio.mel_filterbank(), ref, atol=1e-7)


@pytest.mark.parametrize("n", [256, 1000, 22050, 22050 + 255])
def test_numpy_and_torch_mels_agree(n):
    x = _signal(n)
    a = mel_numpy(x)
    b = mel_torch(torch.from_numpy(x)).numpy()
    assert a.shape == b.shape == (80, n // 256)
    assert np.abs(a - b).max() < 1e-3


def test_mel_matches_librosa_stft_reference():
    """An independent reference: librosa's STFT with the same framing and the HiFi-GAN magnitude."""
    x = _signal(8000)
    padded = np.pad(x, (384, 384), mode="reflect")
    spec = librosa.stft(padded, n_fft=1024, hop_length=256, win_length=1024, window="hann", center=False)
    mag = np.sqrt(np.abs(spec) ** 2 + 1e-9)
    ref = np.log(np.maximum(audio.mel_filterbank() @ mag, 1e-5))
    np.testing.assert_allclose(mel_numpy(x), ref, atol=1e-4)


def test_batched_mel_equals_single():
    x = np.stack([_signal(5000, 1), _signal(5000, 2)])
    m = mel_numpy(x)
    assert m.shape == (2, 80, 5000 // 256)
    np.testing.assert_allclose(m[1], mel_numpy(x[1]), atol=1e-6)


def test_crop_with_context_equals_whole_utterance_frames():
    x = _signal(22050)
    full = mel_numpy(x)
    padded = np.pad(x, (384, 384), mode="reflect")
    crop = padded[256 * 7: 256 * (7 + 20) + 768]
    np.testing.assert_allclose(mel_numpy(crop, pad=False), full[:, 7:27], atol=1e-6)
    np.testing.assert_allclose(mel_torch(torch.from_numpy(crop), pad=False).numpy(), full[:, 7:27], atol=1e-3)


def test_silence_is_the_log_floor():
    m = mel_numpy(np.zeros(2048, np.float32))
    # the magnitude floor sqrt(1e-9) through the filterbank stays below the clamp
    assert np.allclose(m, np.log(1e-5))


def test_log_mel_range_bounds_full_scale_audio():
    lo, hi = audio.log_mel_range()
    assert lo == pytest.approx(np.log(1e-5)) and 2.5 < hi < 3.5
    t = np.arange(22050) / 22050
    rng = np.random.default_rng(0)
    loud = [np.sign(np.sin(2 * np.pi * f * t)) for f in (60, 150, 300, 1000, 4000)]  # full-scale squares
    loud += [np.clip(rng.standard_normal(22050) * 3, -1, 1), np.ones(22050)]
    for x in loud:
        mel = mel_numpy(x)
        assert mel.min() >= lo - 1e-6 and mel.max() <= hi, mel.max()
        assert np.array_equal(audio.clip_log_mel(mel), mel)  # real mels pass unchanged
    assert max(mel_numpy(x).max() for x in loud) > hi - 1.0  # the bound is not loose by orders of magnitude


def test_clip_log_mel_numpy_and_torch_agree():
    lo, hi = audio.log_mel_range()
    mel = np.random.default_rng(1).uniform(-60, 60, (2, 80, 7)).astype(np.float32)
    clipped = audio.clip_log_mel(mel)
    assert clipped.shape == mel.shape and clipped.min() == np.float32(lo) and clipped.max() == np.float32(hi)
    inside = (mel > lo) & (mel < hi)
    assert np.array_equal(clipped[inside], mel[inside])
    np.testing.assert_array_equal(audio.clip_log_mel(torch.from_numpy(mel)).numpy(), clipped)


def test_mel_rejects_bad_arrays():
    with pytest.raises(AudioError, match="too short"):
        mel_numpy(np.zeros(100, np.float32))
    with pytest.raises(AudioError, match="NaN"):
        mel_numpy(np.full(1024, np.nan, np.float32))
    with pytest.raises(AudioError, match="shape"):
        mel_numpy(np.zeros((2, 2, 1024), np.float32))


# --- loading -------------------------------------------------------------------------------------------
def test_load_wav_and_flac(tmp_path):
    x = _signal(22050)
    for ext in ("wav", "flac"):
        sf.write(tmp_path / f"a.{ext}", x, 22050, subtype="PCM_16")
        y = load_audio(tmp_path / f"a.{ext}")
        assert y.dtype == np.float32 and y.shape == x.shape
        assert np.abs(y - x).max() < 1e-3


def test_stereo_is_mixed_down_with_a_warning(tmp_path):
    x = _signal(4000)
    sf.write(tmp_path / "s.wav", np.stack([x, 0 * x], 1), 22050, subtype="FLOAT")
    with pytest.warns(UserWarning, match="mixed down to mono"):
        y = load_audio(tmp_path / "s.wav")
    np.testing.assert_allclose(y, x / 2, atol=1e-6)


def test_44k_is_resampled_with_a_warning(tmp_path):
    t = np.arange(44100) / 44100
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(tmp_path / "h.wav", x, 44100, subtype="FLOAT")
    with pytest.warns(UserWarning, match="resampled from 44100 Hz to 22050 Hz"):
        y = load_audio(tmp_path / "h.wav")
    assert len(y) == 22050
    # the 440 Hz tone survives: its spectral peak is at 440 Hz
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 22050 / len(y) - 440) < 2


def test_silence_loads(tmp_path):
    sf.write(tmp_path / "z.wav", np.zeros(22050, np.float32), 22050)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.all(load_audio(tmp_path / "z.wav") == 0)


def test_bad_files_give_clear_errors(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    (tmp_path / "text.wav").write_text("this is not audio at all")
    with pytest.raises(AudioError, match="not a readable audio file"):
        load_audio(tmp_path / "text.wav")
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.flac")
    sf.write(tmp_path / "nosamples.wav", np.zeros(0, np.float32), 22050)
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(tmp_path / "nosamples.wav")
    bad = _signal(1000)
    bad[10] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 22050, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(tmp_path / "nan.wav")


def test_save_audio_is_atomic_and_validates(tmp_path):
    out = tmp_path / "sub" / "o.wav"
    save_audio(out, _signal(1000))
    assert sf.info(out).samplerate == 22050 and sf.info(out).frames == 1000
    assert [p.name for p in out.parent.iterdir()] == ["o.wav"]  # no temp file left behind
    with pytest.raises(AudioError):
        save_audio(tmp_path / "n.wav", np.array([np.nan], np.float32))
    assert not (tmp_path / "n.wav").exists()
    with pytest.raises(AudioError, match="wav or .flac"):
        save_audio(tmp_path / "o.mp3", _signal(100))
