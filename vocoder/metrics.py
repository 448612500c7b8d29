"""Objective metrics for vocoder copy-synthesis, and a Griffin-Lim baseline vocoder. numpy only (no torch).

Copy-synthesis: a vocoder re-synthesises a reference utterance from the reference's own mel, so the output is
time-aligned with its reference and metrics compare the two sample by sample / frame by frame (no DTW).

All waveforms are 1-D float arrays at 22,050 Hz in [-1, 1] unless a function takes ``sr``. Functions that
compare two waveforms first crop them to a common length with :func:`align`.

- :func:`log_mel_l1`  mean |log-mel(ref) - log-mel(est)| of the gradwave mel contract (natural log).
- :func:`mcd`         mel-cepstral distortion in dB, from the 80-band log-mel (see its docstring).
- :func:`pesq_wb`     wide-band PESQ (ITU-T P.862.2) at 16 kHz, via the ``pesq`` package.
- :func:`stoi`        short-time objective intelligibility, via the ``pystoi`` package.
- :func:`griffin_lim` log-mel -> waveform by filterbank pseudo-inversion + Griffin-Lim (baseline).

``pesq``, ``pystoi`` and ``librosa`` are imported lazily, only by the functions that need them.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.fft import dct
from scipy.signal import resample_poly

from vocoder.audio import F_MAX, F_MIN, HOP_LENGTH, N_FFT, N_MELS, PAD, SAMPLE_RATE, WIN_LENGTH, mel_numpy

PESQ_SAMPLE_RATE = 16000
_MCD_CONSTANT = 10.0 / math.log(10.0)  # dB per neper


def _check_wave(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D waveform [T], got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return x


def align(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop two waveforms to their common (shorter) length: ``[T1], [T2] -> [T], [T]``, T = min(T1, T2).

    Copy-synthesis outputs start at the same sample as their reference, so cropping the tail is enough.
    """
    ref = _check_wave(ref, "ref")
    est = _check_wave(est, "est")
    n = min(ref.shape[0], est.shape[0])
    return ref[:n], est[:n]


def _mels(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Aligned waveforms [T1], [T2] -> their log-mels, each [80, min(T1, T2) // 256]."""
    ref, est = align(ref, est)
    if ref.shape[0] < HOP_LENGTH:
        raise ValueError(f"signals are too short for one mel frame ({ref.shape[0]} < {HOP_LENGTH} samples)")
    return mel_numpy(ref), mel_numpy(est)


def log_mel_l1(ref: np.ndarray, est: np.ndarray) -> float:
    """Mean absolute difference of the log-mels (gradwave mel contract, natural log) of two waveforms.

    ref, est: ``[T1]``, ``[T2]`` at 22,050 Hz (cropped to the shorter). Returns a float (nepers; 0 = equal).
    """
    ref_mel, est_mel = _mels(ref, est)  # [80, F] each
    return float(np.mean(np.abs(ref_mel.astype(np.float64) - est_mel)))


def mel_cepstrum(log_mel: np.ndarray, n_coeffs: int = 24) -> np.ndarray:
    """Cepstrum of a natural-log mel: orthonormal DCT-II over the mel bands, coefficients 1..n_coeffs.

    log_mel: ``[n_mels, F]``. Returns ``[n_coeffs, F]`` (c0, the frame energy, is dropped).
    """
    log_mel = np.asarray(log_mel, dtype=np.float64)
    if log_mel.ndim != 2:
        raise ValueError(f"log_mel must be [n_mels, F], got shape {log_mel.shape}")
    if not 1 <= n_coeffs < log_mel.shape[0]:
        raise ValueError(f"n_coeffs must be between 1 and {log_mel.shape[0] - 1}, got {n_coeffs}")
    cepstrum = dct(log_mel, type=2, norm="ortho", axis=0)  # [n_mels, F]
    return cepstrum[1: n_coeffs + 1]  # [n_coeffs, F]


def mcd_from_mels(ref_mel: np.ndarray, est_mel: np.ndarray, n_coeffs: int = 24) -> float:
    """MCD in dB between two time-aligned natural-log mels ``[n_mels, F]`` (see :func:`mcd`)."""
    ref_mel = np.asarray(ref_mel)
    est_mel = np.asarray(est_mel)
    if ref_mel.shape != est_mel.shape:
        raise ValueError(f"mels must have the same shape, got {ref_mel.shape} and {est_mel.shape}")
    diff = mel_cepstrum(ref_mel, n_coeffs) - mel_cepstrum(est_mel, n_coeffs)  # [n_coeffs, F]
    per_frame = _MCD_CONSTANT * np.sqrt(2.0 * np.sum(diff**2, axis=0))  # [F]
    return float(np.mean(per_frame))


def mcd(ref: np.ndarray, est: np.ndarray, n_coeffs: int = 24) -> float:
    """Mel-cepstral distortion in dB between two time-aligned waveforms (copy-synthesis; no DTW).

    Reported as "MCD (80-band log-mel DCT cepstrum, c1-c24, no DTW)". Implementation:

    1. both waveforms ``[T1], [T2]`` (22,050 Hz) are cropped to the shorter and turned into the gradwave
       80-band natural-log mel ``[80, F]`` (:func:`vocoder.audio.mel_numpy`);
    2. the cepstrum of each frame is the orthonormal DCT-II of its 80 log-mel values (``scipy.fft.dct``,
       ``norm="ortho"``); coefficients c_1 .. c_n_coeffs are kept, c_0 (overall level) is excluded;
    3. per frame, ``MCD = (10 / ln 10) * sqrt(2 * sum_k (c_k - c'_k)^2)``; the result is the mean over all
       frames (silent frames included; frames are paired one-to-one, no dynamic time warping).

    This is *not* the classic MCD over SPTK mel-generalised cepstra (e.g. order 24 at alpha 0.455): the
    orthonormal DCT over N = 80 bands gives coefficients about sqrt(2 N) ~ 13 times those of a
    1/N-normalised real cepstrum of the same log spectrum, so values are much larger than published
    MCDs and are only comparable with other numbers computed by this function.
    Returns a float >= 0 (0 for identical signals).
    """
    ref_mel, est_mel = _mels(ref, est)  # [80, F] each
    return mcd_from_mels(ref_mel, est_mel, n_coeffs)


def _to_16k(x: np.ndarray, sr: int) -> np.ndarray:
    """Resample ``[T]`` from ``sr`` to 16 kHz with a polyphase filter. Returns ``[~T * 16000 / sr]`` float64."""
    g = math.gcd(int(sr), PESQ_SAMPLE_RATE)
    return resample_poly(x.astype(np.float64), PESQ_SAMPLE_RATE // g, int(sr) // g)


def pesq_wb(ref: np.ndarray, est: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Wide-band PESQ (MOS-LQO, about 1.0 .. 4.64) of ``est`` against ``ref``.

    ref, est: ``[T1]``, ``[T2]`` at ``sr`` Hz; cropped to the shorter, resampled to 16 kHz with
    ``scipy.signal.resample_poly``, scored with ``pesq.pesq(16000, ref, est, "wb")``.
    Returns nan (with a warning) when PESQ finds no speech in the reference (``NoUtterancesError``).
    Raises ValueError for signals shorter than PESQ accepts (about 1/4 s).
    """
    from pesq import BufferTooShortError, NoUtterancesError, pesq

    ref, est = align(ref, est)
    ref16, est16 = _to_16k(ref, sr), _to_16k(est, sr)
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # pesq divides by the peak; 0 for silence
            return float(pesq(PESQ_SAMPLE_RATE, ref16, est16, "wb"))
    except NoUtterancesError:
        warnings.warn("PESQ found no utterance in the reference signal; returning nan", stacklevel=2)
        return float("nan")
    except BufferTooShortError:
        raise ValueError(
            f"signals are too short for PESQ ({ref.shape[0] / sr:.3f} s; at least ~0.25 s needed)"
        ) from None


def stoi(ref: np.ndarray, est: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """STOI (Taal et al. 2011, 0 .. 1, higher is better) of ``est`` against ``ref`` via ``pystoi``.

    ref, est: ``[T1]``, ``[T2]`` at ``sr`` Hz, cropped to the shorter (pystoi resamples to 10 kHz itself).
    """
    from pystoi import stoi as _pystoi

    ref, est = align(ref, est)
    return float(_pystoi(ref.astype(np.float64), est.astype(np.float64), int(sr), extended=False))


def griffin_lim(mel: np.ndarray, n_iter: int = 32, seed: int = 0) -> np.ndarray:
    """Baseline vocoder: gradwave log-mel ``[80, F]`` -> waveform ``[F * 256]`` float32 at 22,050 Hz.

    1. ``exp`` undoes the natural log (values at the 1e-5 clamp stay at 1e-5, i.e. near silence);
    2. ``librosa.feature.inverse.mel_to_stft`` inverts the Slaney filterbank (0..8 kHz, 80 bands,
       n_fft 1024) by non-negative least squares, with ``power=1.0`` since our mel is of the magnitude;
    3. ``librosa.griffinlim`` (``n_iter`` iterations, momentum 0.99, random initial phase seeded by
       ``seed``) with n_fft 1024, periodic Hann window 1024, hop 256, as in the mel contract.

    Framing: librosa uses ``center=True``, so its frame i is centred on sample 256 * i, whereas the
    contract's frame i (reflect pad 384, ``center=False``) is centred on sample 256 * i + 128. The
    Griffin-Lim output is therefore delayed by 128 samples (zeros prepended) and cut to F * 256 samples,
    so that the mel of the result lines up frame by frame with the input mel. The magnitude gets one
    extra copy of its last frame so that librosa's re-analysis of the F * 256 samples (F + 1 frames with
    ``center=True``) matches its shape. librosa pads the signal ends with zeros where the contract uses
    reflection, so the first and last frame or two are reproduced less exactly than the rest.
    """
    import librosa

    mel = np.asarray(mel, dtype=np.float64)
    if mel.ndim != 2 or mel.shape[0] != N_MELS or mel.shape[1] < 1:
        raise ValueError(f"mel must be [{N_MELS}, F] with F >= 1, got shape {mel.shape}")
    if not np.all(np.isfinite(mel)):
        raise ValueError("mel contains NaN or infinite values")
    if n_iter < 1:
        raise ValueError(f"n_iter must be at least 1, got {n_iter}")
    n_frames = mel.shape[1]
    n_samples = n_frames * HOP_LENGTH
    magnitude = librosa.feature.inverse.mel_to_stft(
        np.exp(mel), sr=SAMPLE_RATE, n_fft=N_FFT, power=1.0, norm="slaney", htk=False, fmin=F_MIN, fmax=F_MAX
    )  # [n_fft / 2 + 1, F]
    # One extra (repeated) last frame so that the centre=True signal of F * 256 samples, re-analysed by
    # librosa inside each iteration, has as many frames (F + 1) as the magnitude.
    magnitude = np.concatenate([magnitude, magnitude[:, -1:]], axis=1)  # [n_fft / 2 + 1, F + 1]
    with warnings.catch_warnings():  # librosa warns that n_fft > signal length for F <= 3; that is fine
        warnings.filterwarnings("ignore", message="n_fft=.* is too large", category=UserWarning)
        audio = librosa.griffinlim(
            magnitude,
            n_iter=n_iter,
            hop_length=HOP_LENGTH,
            win_length=WIN_LENGTH,
            n_fft=N_FFT,
            window="hann",
            center=True,
            length=n_samples,
            random_state=seed,
        )  # [F * 256], frame i centred on sample 256 * i
    shift = N_FFT // 2 - PAD  # 512 - 384 = 128: contract frame centre minus librosa frame centre
    audio = np.concatenate([np.zeros(shift), audio])[:n_samples]  # [F * 256]
    return np.clip(audio, -1.0, 1.0).astype(np.float32)
