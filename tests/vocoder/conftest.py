"""Fixtures for the vocoder tests: a tiny synthetic corpus in LJSpeech layout, written to real files."""

import numpy as np
import pytest
import soundfile as sf


def write_corpus(root, n: int = 6, seconds: float = 1.0, sr: int = 22050, seed: int = 0):
    """n utterances of harmonic tones with a little noise; half WAV, half FLAC. Returns the root path."""
    rng = np.random.default_rng(seed)
    (root / "wavs").mkdir(parents=True)
    rows = []
    for i in range(n):
        t = np.arange(int(seconds * sr)) / sr
        f0 = 100 + 40 * i
        x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 0.2
        x = (x * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t)) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
        uid = f"T{i:03d}"
        sf.write(root / "wavs" / f"{uid}.{'wav' if i % 2 else 'flac'}", x, sr, subtype="PCM_16")
        rows.append(f"{uid}|Tone number {i}.|Tone number {i}.")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), n=10)
