"""The one mel contract of gradwave, in numpy (runtime, data preparation) and in torch (training).

The HiFi-GAN / Grad-TTS convention, so that models of that ecosystem are interchangeable:

* 22,050 Hz mono audio in [-1, 1];
* STFT with n_fft 1024, a periodic Hann window of 1024, hop 256;
* the signal is reflect-padded by (n_fft - hop) / 2 = 384 samples on each side and framed with
  ``center=False``, so an audio of T samples gives exactly ``T // 256`` frames and frame i is centred
  on sample ``256 * i + 128``;
* magnitude spectrum ``sqrt(re^2 + im^2 + 1e-9)``;
* 80 Slaney-normalised mel bands (Slaney mel scale) from 0 to 8,000 Hz;
* natural log of the mel, clamped below at 1e-5.

This module imports numpy, scipy and soundfile only; torch is imported inside :func:`mel_torch`, so the
torch-free runtime (``serve/``) can use the numpy half.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 22050
N_FFT = 1024
WIN_LENGTH = 1024
HOP_LENGTH = 256
N_MELS = 80
F_MIN = 0.0
F_MAX = 8000.0
LOG_CLAMP = 1e-5
PAD = (N_FFT - HOP_LENGTH) // 2  # 384 samples of reflect padding on each side


@dataclass(frozen=True)
class MelConfig:
    """The mel contract as data; it travels inside every checkpoint and voice bundle."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = N_FFT
    win_length: int = WIN_LENGTH
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS
    f_min: float = F_MIN
    f_max: float = F_MAX
    log_clamp: float = LOG_CLAMP
    center: bool = False
    pad: int = PAD
    norm: str = "slaney"
    power: float = 1.0


MEL = MelConfig()


class AudioError(ValueError):
    """Raised for audio that cannot be used (empty, unreadable, non-finite)."""


# ----------------------------------------------------------------------------------------------------------
# Mel filterbank (Slaney), identical to librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False,
# norm="slaney"); a test checks the two agree.
# ----------------------------------------------------------------------------------------------------------
def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    freq = np.asarray(freq, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = freq / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    log_region = freq >= min_log_hz
    mels = np.where(log_region, min_log_mel + np.log(np.maximum(freq, 1e-10) / min_log_hz) / logstep, mels)
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), freqs)


@functools.lru_cache(maxsize=4)
def mel_filterbank(
    sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS, f_min: float = F_MIN,
    f_max: float = F_MAX,
) -> np.ndarray:
    """Slaney-normalised triangular mel filters. Returns ``[n_mels, n_fft // 2 + 1]`` float32 (read-only)."""
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_pts = _mel_to_hz(np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]  # [n_mels + 2, n_freq]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))  # [n_mels, n_freq]
    weights *= (2.0 / (mel_pts[2: n_mels + 2] - mel_pts[:n_mels]))[:, None]
    out = weights.astype(np.float32)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=1)
def _filterbank64() -> np.ndarray:
    """The contract's filterbank in float64, ``[80, 513]`` (read-only)."""
    out = mel_filterbank().astype(np.float64)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=4)
def _hann(n: int) -> np.ndarray:
    """Periodic Hann window, as ``torch.hann_window(n)``. ``[n]`` float64."""
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    w.setflags(write=False)
    return w


def num_frames(num_samples: int) -> int:
    """Frames the contract gives for ``num_samples`` samples: ``num_samples // 256``."""
    return num_samples // HOP_LENGTH


@functools.lru_cache(maxsize=1)
def log_mel_range() -> tuple[float, float]:
    """``(lo, hi)``: the interval every log-mel of audio in [-1, 1] lies in.

    ``lo = log(1e-5)`` (the clamp); ``hi = log(sum(hann) * max_m sum_k W[m, k])`` (about 3.23), because a
    frame of samples in [-1, 1] has ``|X_k| <= sum(hann) = 512`` in every bin. Loud real speech reaches about 2.
    """
    hi = math.log(float(_hann(WIN_LENGTH).sum()) * float(mel_filterbank().astype(np.float64).sum(axis=1).max()))
    return math.log(LOG_CLAMP), hi


def clip_log_mel(mel):
    """Clip a log-mel ``[..., 80, F]`` (numpy array or torch tensor) to :func:`log_mel_range`; same shape.

    A vocoder is only defined on mels that audio can produce; an undertrained acoustic model can emit values
    far outside (40 and more), which overflow an fp16 vocoder graph into NaN. Real mels pass unchanged.
    """
    lo, hi = log_mel_range()
    if isinstance(mel, np.ndarray):
        return np.clip(mel, lo, hi)
    return mel.clamp(lo, hi)


# ----------------------------------------------------------------------------------------------------------
# numpy mel
# ----------------------------------------------------------------------------------------------------------
def _check_wave(audio: np.ndarray, pad: bool) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim not in (1, 2):
        raise AudioError(f"expected audio of shape [T] or [B, T], got {audio.shape}")
    need = HOP_LENGTH if pad else N_FFT
    if audio.shape[-1] < need:
        raise AudioError(f"audio is too short for one mel frame ({audio.shape[-1]} < {need} samples)")
    if not np.all(np.isfinite(audio)):
        raise AudioError("audio contains NaN or infinite samples")
    return audio


def stft_numpy(audio: np.ndarray, pad: bool = True) -> np.ndarray:
    """The contract's complex STFT (periodic Hann 1024, hop 256, ``center=False`` after reflect padding).

    audio: ``[T]`` or ``[B, T]`` float in [-1, 1]. Returns complex128 ``[513, T // 256]`` or
    ``[B, 513, T // 256]``; frame i is centred on sample ``256 i + 128``. ``pad=False`` as in :func:`mel_numpy`.
    """
    audio = _check_wave(audio, pad)
    squeeze = audio.ndim == 1
    x = np.atleast_2d(audio).astype(np.float64)  # [B, T]
    if pad:
        x = np.pad(x, ((0, 0), (PAD, PAD)), mode="reflect")  # [B, T + 768]
    n_frames = (x.shape[-1] - N_FFT) // HOP_LENGTH + 1
    idx = np.arange(N_FFT)[None, :] + HOP_LENGTH * np.arange(n_frames)[:, None]  # [F, n_fft]
    frames = x[:, idx] * _hann(WIN_LENGTH)  # [B, F, n_fft]
    spec = np.fft.rfft(frames, n=N_FFT, axis=-1).transpose(0, 2, 1)  # [B, n_fft/2 + 1, F]
    return spec[0] if squeeze else spec


def mel_of_spectrum(spec: np.ndarray) -> np.ndarray:
    """Linear mel energies (before the log) of an STFT from :func:`stft_numpy`: complex ``[..., 513, F]`` ->
    float64 ``[..., 80, F]``, with the contract's magnitude ``sqrt(re^2 + im^2 + 1e-9)``."""
    mag = np.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    return _filterbank64() @ mag


def mel_numpy(audio: np.ndarray, pad: bool = True) -> np.ndarray:
    """Log-mel of a waveform in numpy.

    audio: ``[T]`` or ``[B, T]`` float in [-1, 1] at 22,050 Hz.
    Returns ``[80, T // 256]`` or ``[B, 80, T // 256]`` float32.
    With ``pad=False`` the input already carries its 384 samples of context on each side (a crop of a
    reflect-padded utterance) and ``[..., (T - 768) // 256]`` frames come back.
    """
    mel = mel_of_spectrum(stft_numpy(audio, pad))  # [(B,) 80, F]
    return np.log(np.maximum(mel, LOG_CLAMP)).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _reflect_index(n: int, pad: int) -> np.ndarray:
    """Indices of ``np.pad(x, pad, mode="reflect")`` for a signal of n samples: ``[n + 2 pad]`` int64."""
    idx = np.arange(-pad, n + pad)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.abs(idx) % period
    return np.where(idx > n - 1, period - idx, idx).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------
# torch mel (training); imported lazily so that numpy users never import torch
# ----------------------------------------------------------------------------------------------------------
def mel_torch(audio, pad: bool = True):
    """Log-mel of a waveform in torch, equal to :func:`mel_numpy` (tested).

    audio: ``[B, T]`` (or ``[T]``) float tensor at 22,050 Hz, on any device.
    Returns ``[B, 80, T // 256]`` (or ``[80, T // 256]``) float32; ``pad=False`` as in :func:`mel_numpy`.
    """
    import torch

    squeeze = audio.dim() == 1
    x = audio.reshape(1, -1) if squeeze else audio  # [B, T]
    need = HOP_LENGTH if pad else N_FFT
    if x.shape[-1] < need:
        raise AudioError(f"audio is too short for one mel frame ({x.shape[-1]} < {need} samples)")
    x = x.float()
    if pad:  # reflect padding by index, which also covers T <= 384 (where F.pad's reflect refuses)
        idx = torch.from_numpy(_reflect_index(x.shape[-1], PAD)).to(x.device)
        x = x[:, idx]  # [B, T + 768]
    window = torch.hann_window(WIN_LENGTH, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window=window,
                      center=False, normalized=False, onesided=True, return_complex=True)  # [B, 513, F]
    mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
    fb = torch.from_numpy(np.array(mel_filterbank())).to(device=x.device, dtype=x.dtype)  # [80, 513]
    mel = torch.matmul(fb, mag)  # [B, 80, F]
    out = torch.log(torch.clamp(mel, min=LOG_CLAMP))
    return out[0] if squeeze else out


# ----------------------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------------------
def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited polyphase resampling. ``[T]`` -> ``[round(T * target / orig)]`` float32."""
    if orig_sr == target_sr:
        return audio.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = math.gcd(int(orig_sr), int(target_sr))
    return resample_poly(audio.astype(np.float64), target_sr // g, orig_sr // g).astype(np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, quiet: bool = False) -> np.ndarray:
    """Read a WAV or FLAC file as mono float32 at ``sample_rate`` (22,050 Hz by default).

    Multi-channel audio is mixed down to mono and other rates are resampled; both conversions are
    reported with a warning unless ``quiet``. Empty, unreadable, non-audio or non-finite files raise
    :class:`AudioError` with the path in the message. Returns ``[T]`` float32.
    """
    import soundfile as sf

    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: the file is empty")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)  # [T, C]
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError for non-audio files
        raise AudioError(f"{path}: not a readable audio file (WAV or FLAC expected): {e}") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{path}: the audio contains NaN or infinite samples")
    if data.shape[1] > 1:
        if not quiet:
            warnings.warn(f"{path}: {data.shape[1]} channels mixed down to mono", stacklevel=2)
        data = data.mean(axis=1, keepdims=True)
    audio = data[:, 0]
    if sr != sample_rate:
        if not quiet:
            warnings.warn(f"{path}: resampled from {sr} Hz to {sample_rate} Hz", stacklevel=2)
        audio = resample(audio, sr, sample_rate)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def save_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write ``[T]`` float audio as 16-bit PCM (WAV or FLAC by extension), atomically (temp file + rename)."""
    import soundfile as sf

    path = os.fspath(path)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(audio)):
        raise AudioError("refusing to write audio with NaN or infinite samples")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    ext = os.path.splitext(path)[1].lower()
    fmt = {".wav": "WAV", ".flac": "FLAC"}.get(ext)
    if fmt is None:
        raise AudioError(f"{path}: output must end in .wav or .flac")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        sf.write(tmp, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format=fmt)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
