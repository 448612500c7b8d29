"""The one place for chunking in the runtime: sentences, the mel chunk plan, and crossfading.

Streaming synthesis works at two granularities:

* **Sentences.** The text is cut into sentences (:func:`iter_sentences`, at most
  ``tts.text.MAX_SENTENCE_CHARS`` characters each). The Grad-TTS decoder attends over a whole sentence,
  so each sentence is decoded in one piece; memory is therefore bounded by the longest sentence, never by
  the length of the text.
* **Mel chunks.** A sentence's mel [80, F] is vocoded in chunks (:func:`plan_chunks`). Chunk i owns the
  *core* frames ``[start, end)``; the vocoder runs on the *window* ``[ctx_start, ctx_end)``, the core plus
  up to ``context_frames`` on each side, so that the core sees (almost) the receptive field it would see in
  one pass; only the core's samples are kept. Consecutive cores overlap by ``overlap_frames`` frames and
  the overlap is crossfaded (:class:`Crossfader`).

At the two ends of a sentence the vocoder window is extended by a few copies of the end frame, whose
samples are cut away again (``serve.engine.edge_window``): zero padding there made the vocoder click.

Noise is indexed by absolute sample position (the caller draws it for the whole sentence), so a window
sees exactly the noise an unchunked pass sees at the same samples; with enough context a chunked pass
equals the unchunked one up to float error (tested), and the crossfade hides what is left near the seams.

Crossfade: a raised-cosine (Hann) fade, ``fade_in = sin^2``, ``fade_out = cos^2 = 1 - fade_in``. The
weights sum to one, i.e. a *linear* (constant-gain) crossfade: the two chunks are near-identical,
correlated signals in the overlap, for which equal-power weights (sin/cos) would raise the level by up to
3 dB at the seam. The smooth ends of the Hann ramp avoid a slope discontinuity.

Pure numpy (plus ``tts.text`` for sentence splitting); never imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

DEFAULT_CHUNK_FRAMES = 64  # ~0.74 s of audio per chunk at hop 256 / 22,050 Hz
# Chunks for audio that nobody hears while it is made (``gradwave speak -o FILE``): every window adds
# 2 x DEFAULT_CONTEXT_FRAMES of vocoder work, so 256-frame chunks took the vocoder's RTF 0.70 -> 0.54 against 64
# on 8 recordings (2 threads, 2-core AMD EPYC), within 2e-7 of vocoding each mel whole. Streams keep 64: with
# 128-frame chunks, playing 6 LJ050 texts as they came stalled for 0.6 s a text against 0.2 s.
OFFLINE_CHUNK_FRAMES = 256
DEFAULT_FIRST_CHUNK_FRAMES = 32  # a shorter first chunk: lower latency to the first audio
DEFAULT_CONTEXT_FRAMES = 16  # vocoder context on each side of a chunk (~0.19 s)
DEFAULT_OVERLAP_FRAMES = 4  # crossfaded frames between consecutive chunks (~46 ms)


@dataclass(frozen=True)
class ChunkSpan:
    """One vocoder chunk, in mel frames: core ``[start, end)`` inside window ``[ctx_start, ctx_end)``."""

    start: int
    end: int
    ctx_start: int
    ctx_end: int

    @property
    def frames(self) -> int:
        """Core length in frames."""
        return self.end - self.start

    @property
    def window_frames(self) -> int:
        return self.ctx_end - self.ctx_start

    def core_samples(self, hop: int) -> slice:
        """The core's samples within the window's audio ``[window_frames * hop]``."""
        return slice((self.start - self.ctx_start) * hop, (self.end - self.ctx_start) * hop)


def plan_chunks(
    n_frames: int,
    chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
    context_frames: int = DEFAULT_CONTEXT_FRAMES,
    overlap_frames: int = DEFAULT_OVERLAP_FRAMES,
    first_chunk_frames: int | None = None,
) -> list[ChunkSpan]:
    """Cut ``n_frames`` mel frames into overlapping chunks.

    Cores are at most ``chunk_frames`` long, except that a remainder shorter than a quarter chunk is merged
    into the chunk before it (so a core never exceeds ``chunk_frames + chunk_frames // 4``). A shorter
    ``first_chunk_frames`` starts a ramp: each core after it is twice as long as the one before, up to
    ``chunk_frames`` (32, 64, 128, 128, ...), so the second chunk follows the first sooner than a full one
    would. Consecutive cores overlap by ``overlap_frames``; the first core starts at 0 and the last ends at
    ``n_frames``. ``chunk_frames=None`` (or a sentence that fits in one chunk) gives one chunk covering
    everything, without context.
    Returns the spans in order.
    """
    if n_frames < 1:
        raise ValueError(f"need at least one mel frame, got {n_frames}")
    if context_frames < 0 or overlap_frames < 0:
        raise ValueError("context_frames and overlap_frames must be >= 0")
    if chunk_frames is None:
        return [ChunkSpan(0, n_frames, 0, n_frames)]
    first = chunk_frames if first_chunk_frames is None else first_chunk_frames
    if min(chunk_frames, first) < 2 * overlap_frames + 1:
        raise ValueError(f"chunks of {min(chunk_frames, first)} frames are too short for "
                         f"{overlap_frames} overlap frames on each side (need > {2 * overlap_frames})")
    spans, start, size = [], 0, first
    while True:
        end = min(n_frames, start + size)
        if n_frames - end < chunk_frames // 4:
            end = n_frames  # merge a short remainder rather than emit a sliver
        spans.append(ChunkSpan(start, end, max(0, start - context_frames), min(n_frames, end + context_frames)))
        if end == n_frames:
            return spans
        start, size = end - overlap_frames, min(chunk_frames, 2 * size)


def fade_curves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Raised-cosine crossfade of ``n`` samples: (fade_in [n], fade_out [n]) float32, summing to one."""
    phase = (np.arange(n, dtype=np.float64) + 0.5) / max(n, 1)  # [n] in (0, 1)
    fade_in = np.sin(0.5 * np.pi * phase) ** 2
    return fade_in.astype(np.float32), (1.0 - fade_in).astype(np.float32)


class Crossfader:
    """Stitches consecutive chunk cores that overlap by ``overlap`` samples.

    :meth:`push` takes one core's audio ``[N]`` (N > 2 * overlap, except the last core: N > overlap) and
    returns the samples that are final now: the head blended with the previous core's held-back tail,
    minus this core's own tail, which waits for the next core (the last core is returned whole).
    Concatenating the outputs gives one signal of ``sum(N_i) - (chunks - 1) * overlap`` samples.
    """

    def __init__(self, overlap: int):
        self.overlap = int(overlap)
        self.fade_in, self.fade_out = fade_curves(self.overlap)
        self._tail: np.ndarray | None = None

    def push(self, core: np.ndarray, last: bool) -> np.ndarray:
        """core: ``[N]`` float -> the final samples ``[M]`` float32 (see the class docstring)."""
        core = np.asarray(core, dtype=np.float32)
        n = self.overlap
        if self._tail is not None and n:
            if core.shape[0] < n:
                raise ValueError(f"a chunk of {core.shape[0]} samples cannot take a {n}-sample crossfade")
            core = core.copy()
            core[:n] = self._tail * self.fade_out + core[:n] * self.fade_in
        if last or n == 0:
            self._tail = None
            return core
        if core.shape[0] <= n:
            raise ValueError(f"a chunk of {core.shape[0]} samples is too short for a {n}-sample overlap")
        self._tail = core[-n:].copy()
        return core[:-n]


def iter_sentences(text: str, max_chars: int | None = None) -> Iterator[str]:
    """The sentences of ``text`` in order, each at most ``max_chars`` characters (default
    ``tts.text.MAX_SENTENCE_CHARS``); see :func:`tts.text.split_sentences`."""
    from tts.text import MAX_SENTENCE_CHARS, split_sentences

    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    yield from split_sentences(text, max_chars or MAX_SENTENCE_CHARS)


def stream_stats(chunks: Iterable) -> dict[str, float]:
    """Consume a stream of :class:`serve.engine.AudioChunk` s and summarise its speed.

    Returns {"chunks", "audio_s" (seconds of audio), "first_chunk_s" (latency to the first chunk),
    "total_s" (until the last chunk), "rtf" (total_s / audio_s; < 1 is faster than real time)}.
    """
    count, samples, first, last, rate = 0, 0, 0.0, 0.0, 1
    for chunk in chunks:
        if count == 0:
            first = chunk.elapsed_s
        count, samples, last, rate = count + 1, samples + chunk.audio.shape[0], chunk.elapsed_s, chunk.sample_rate
    if count == 0:
        raise ValueError("the stream produced no audio")
    audio_s = samples / rate
    return {"chunks": count, "audio_s": audio_s, "first_chunk_s": first, "total_s": last,
            "rtf": last / audio_s if audio_s > 0 else float("inf")}
