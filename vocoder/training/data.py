"""LJSpeech-layout corpora: ``metadata.csv`` (``id|text|normalized_text``) and ``wavs/<id>.wav|flac``.

Batches are a pure function of ``(seed, step, rank)`` (see :func:`step_rng`), which is what makes
``--resume`` exact and DDP ranks draw different data without any sampler state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from vocoder.audio import PAD, load_audio


@dataclass(frozen=True)
class Utterance:
    id: str
    text: str
    normalized: str
    path: str


def read_metadata(root: str | os.PathLike) -> list[Utterance]:
    """Read an LJSpeech-layout corpus. Rows whose audio file is missing are an error."""
    root = os.fspath(root)
    meta = os.path.join(root, "metadata.csv")
    if not os.path.isfile(meta):
        raise FileNotFoundError(f"{root}: no metadata.csv (expected LJSpeech layout: metadata.csv + wavs/)")
    items, missing = [], []
    with open(meta, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("|")
            if not parts[0].strip():
                continue
            uid = parts[0].strip()
            text = parts[1] if len(parts) > 1 else ""
            norm = parts[2] if len(parts) > 2 and parts[2] else text
            path = next((os.path.join(root, "wavs", uid + ext) for ext in (".wav", ".flac")
                         if os.path.isfile(os.path.join(root, "wavs", uid + ext))), None)
            if path is None:
                missing.append(uid)
                continue
            items.append(Utterance(uid, text, norm, path))
    if missing:
        raise FileNotFoundError(f"{root}: {len(missing)} rows have no wavs/<id>.wav|flac (first: {missing[0]})")
    if not items:
        raise ValueError(f"{root}: metadata.csv lists no utterances")
    return items


def split(items: list[Utterance], n_val: int, seed: int = 1234) -> tuple[list[Utterance], list[Utterance]]:
    """Deterministic held-out split: ``n_val`` utterances chosen by a seeded permutation of the sorted ids."""
    items = sorted(items, key=lambda u: u.id)
    if n_val <= 0:
        return items, []
    if n_val >= len(items):
        raise ValueError(f"cannot hold out {n_val} of {len(items)} utterances")
    perm = np.random.default_rng(seed).permutation(len(items))
    val = sorted((items[i] for i in perm[:n_val]), key=lambda u: u.id)
    train = sorted((items[i] for i in perm[n_val:]), key=lambda u: u.id)
    return train, val


def step_rng(seed: int, step: int, rank: int = 0, stream: int = 0) -> np.random.Generator:
    """The generator for one step of one rank: a pure function of its arguments."""
    return np.random.default_rng([int(seed), int(step), int(rank), int(stream)])


class AudioBank:
    """All utterances of a corpus in memory as int16, reflect-padded by the mel contract's 384 samples.

    ``segment(i, start_frame, n_frames)`` returns the audio for mel frames ``[s, s + n)`` with its STFT
    context, so that the mel of the crop (computed with ``padded=True``) equals those frames of the whole
    utterance's mel exactly.
    """

    def __init__(self, items: list[Utterance], progress: bool = False):
        self.items = list(items)
        self.audio: list[np.ndarray] = []
        it = self.items
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc="loading audio", unit="file", leave=False)
        for u in it:
            wave = load_audio(u.path, quiet=True)
            padded = np.pad(wave, (PAD, PAD), mode="reflect")
            self.audio.append(np.round(padded * 32767.0).astype(np.int16))

    def __len__(self) -> int:
        return len(self.items)

    def frames(self, i: int) -> int:
        """Mel frames of utterance i."""
        return (len(self.audio[i]) - 2 * PAD) // 256

    def wave(self, i: int) -> np.ndarray:
        """The whole utterance i, ``[frames * 256]`` float32 (trailing partial frame dropped)."""
        return self.audio[i][PAD: PAD + self.frames(i) * 256].astype(np.float32) / 32767.0

    def segment(self, i: int, start: int, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Audio with context ``[n*256 + 768]`` and the target audio ``[n*256]``, both float32.

        Segments that run past the end of the utterance are zero-padded.
        """
        a = self.audio[i]
        lo, hi = start * 256, start * 256 + n_frames * 256 + 2 * PAD
        ctx = a[lo:hi]
        if len(ctx) < hi - lo:
            ctx = np.pad(ctx, (0, hi - lo - len(ctx)))
        ctx = ctx.astype(np.float32) / 32767.0
        return ctx, ctx[PAD: PAD + n_frames * 256]
