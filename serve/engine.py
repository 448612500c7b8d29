"""The torch-free synthesis engine: a voice bundle run by onnxruntime and numpy.

Pipeline, per sentence (:mod:`serve.streaming` cuts the text and the mel):

    text -> tts.text ids [L] -> encoder graph (mu_x [80, L], logw [1, L])
         -> durations ceil(exp(logw) / speed) -> length regulation in numpy (np.repeat) -> mu_y [80, F]
         -> z = mu_y + noise / temperature -> probability-flow ODE (tts.solvers) over the score graph
         -> mel [80, F] -> vocoder (vocoder.diffusion samplers over the vocoder-step graph), in mel chunks
         -> audio, streamed chunk by chunk.

Randomness: all noise comes from ``numpy.random.default_rng([seed, sentence, stream])`` and is drawn for
the whole sentence up front (:func:`prior_noise`, :func:`vocoder_noise`, :func:`sde_noise`), so the
result depends only on (text, settings, seed) -- not on chunking, batching or the backend -- and memory
is bounded by the longest sentence. ``export.verify`` feeds the same arrays to the torch models.

This module never imports torch (a test checks ``sys.modules``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serve import streaming
from serve.bundle import Bundle, Schedule, load_bundle
from serve.graphs import OnnxGraphs
from tts import solvers
from vocoder import diffusion
from vocoder.audio import clip_log_mel
from vocoder.postfilter import PostFilter, mel_postfilter

VOICE_ENV = "GRADWAVE_VOICE"
_PRIOR, _VOCODER, _SDE = 0, 1, 2  # noise stream ids
EDGE_FRAMES = 4  # mel frames repeated past each end of a sentence for the vocoder, then cut (edge_window)


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """A piece of streamed audio. ``audio`` is float32 ``[N]`` at ``sample_rate``."""

    audio: np.ndarray
    sample_rate: int
    sentence: int  # index of the (speakable) sentence it belongs to
    index: int  # chunk number within the utterance
    offset: int  # position of its first sample in the utterance
    sentence_end: bool  # last chunk of its sentence
    is_final: bool  # last chunk of the utterance
    compute_s: float  # seconds spent producing this chunk (front-end and acoustic model included)
    elapsed_s: float  # seconds from the start of synthesis until this chunk was ready

    @property
    def duration_s(self) -> float:
        return self.audio.shape[0] / self.sample_rate


# ----------------------------------------------------------------------------------------------------------
# noise and length regulation (shared with export.verify)
# ----------------------------------------------------------------------------------------------------------
def _rng(seed: int, sentence: int, stream: int) -> np.random.Generator:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng([int(seed), int(sentence), stream])


def prior_noise(seed: int, sentence: int, n_mels: int, n_frames: int) -> np.ndarray:
    """Standard normal start of the decoder, ``[n_mels, n_frames]`` float32."""
    return _rng(seed, sentence, _PRIOR).standard_normal((n_mels, n_frames), dtype=np.float32)


def sde_noise(seed: int, sentence: int, steps: int, n_mels: int, n_frames: int) -> np.ndarray:
    """Per-step noise of the stochastic decoder solver, ``[steps, n_mels, n_frames]`` float32."""
    return _rng(seed, sentence, _SDE).standard_normal((steps, n_mels, n_frames), dtype=np.float32)


def vocoder_noise(seed: int, sentence: int, steps: int, n_frames: int, hop: int) -> np.ndarray:
    """Vocoder noise of a sentence of ``n_frames`` mel frames and its ``EDGE_FRAMES`` on each side (see
    :func:`edge_window`): ``[K, hop (F + 2 EDGE)]`` float32; row 0 is x_T, row n the DDPM noise of step n."""
    n_samples = (n_frames + 2 * EDGE_FRAMES) * hop
    return _rng(seed, sentence, _VOCODER).standard_normal((steps, n_samples), dtype=np.float32)


def edge_window(mel: np.ndarray, noise: np.ndarray, span: streaming.ChunkSpan, hop: int,
                edge: int = EDGE_FRAMES) -> tuple[np.ndarray, np.ndarray, slice]:
    """The vocoder input of one chunk of a sentence.

    mel ``[80, F]`` (the sentence), noise ``[K, hop (F + 2 edge)]`` (drawn for the sentence plus ``edge``
    frames on each side) -> (mel window ``[80, W]``, noise window ``[K, hop W]``, the core's samples in the
    window's audio). A window that reaches an end of the sentence gets ``edge`` copies of the end frame
    beyond it, and those samples are cut away afterwards: the vocoder's convolutions then see plausible
    context at the sentence's ends instead of their zero padding, which made WaveGrad emit a click (one
    sample near full scale) at the last sample of every sentence. Noise stays indexed by absolute sample, so
    chunked and unchunked passes still see the same noise at the same samples.
    """
    n_frames = mel.shape[1]
    lo = edge if span.ctx_start == 0 else 0
    hi = edge if span.ctx_end == n_frames else 0
    window = np.pad(mel[:, span.ctx_start: span.ctx_end], ((0, 0), (lo, hi)), mode="edge")  # [80, W]
    nz = noise[:, (span.ctx_start + edge - lo) * hop: (span.ctx_end + edge + hi) * hop]  # [K, hop W]
    core = slice((span.start - span.ctx_start + lo) * hop, (span.end - span.ctx_start + lo) * hop)
    return window, nz, core


def durations(logw: np.ndarray, x_mask: np.ndarray, speed: float = 1.0) -> np.ndarray:
    """Frames per token, ``ceil(exp(logw) * x_mask / speed)`` (as ``GradTTS.durations`` with
    ``length_scale = 1 / speed``). logw, x_mask: ``[..., L]`` -> int64 ``[..., L]``."""
    if not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    return np.ceil(np.exp(logw) * x_mask * (1.0 / speed)).astype(np.int64)


def regulate_length(mu_x: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Repeat token i's column ``frames[i]`` times: mu_x ``[C, L]``, frames ``[L]`` -> ``[C, sum(frames)]``."""
    return np.repeat(mu_x, frames, axis=1)


def fix_length(n_frames: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` >= n_frames (the decoder's frame-count contract)."""
    return -(-int(n_frames) // multiple) * multiple


def default_voice() -> Path:
    """The voice used when none is given: ``$GRADWAVE_VOICE``, else the first bundle (by name) shipped in
    ``serve/voices/<name>/``. FileNotFoundError if there is none."""
    env = os.environ.get(VOICE_ENV)
    if env:
        return Path(env)
    root = Path(__file__).resolve().parent / "voices"
    found = sorted(p.parent for p in root.glob("*/voice.json")) if root.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no voice bundle installed in {root}; pass --voice DIR (made by `gradwave "
                                f"export`) or set {VOICE_ENV}")
    return found[0]


# ----------------------------------------------------------------------------------------------------------
# the synthesizer
# ----------------------------------------------------------------------------------------------------------
class Synthesizer:
    """Text (or mel) to speech from a voice bundle, streamed in chunks; see the module docstring.

    ``device``: "auto" | "cpu" | "cuda" | "tensorrt"; ``threads``: onnxruntime intra-op threads
    (default: one per core). ``max_frames`` bounds one sentence's mel (a guard against runaway durations).
    ``postfilter``: the vocoder's mel-envelope post-filter (:mod:`vocoder.postfilter`; default: the voice's,
    ``vocoder.postfilter.OFF`` switches it off).
    """

    def __init__(self, voice_dir: str | os.PathLike, device: str = "auto", threads: int | None = None,
                 max_frames: int = 8192, postfilter: PostFilter | None = None):
        bundle = load_bundle(voice_dir)
        self._setup(bundle, OnnxGraphs(bundle, device, threads), max_frames, postfilter)

    def _setup(self, bundle: Bundle, graphs: Any, max_frames: int = 8192,
               postfilter: PostFilter | None = None) -> None:
        self.bundle = bundle
        self.postfilter = bundle.vocoder.postfilter if postfilter is None else postfilter
        self.graphs = graphs
        self.max_frames = int(max_frames)
        self.sample_rate = bundle.sample_rate
        self.hop = bundle.hop_length
        self.n_mels = bundle.n_mels
        self._table = None

    @property
    def providers(self) -> list[str]:
        return list(getattr(self.graphs, "providers", []))

    # --- text -------------------------------------------------------------------------------------------
    def _need_acoustic(self):
        if self.bundle.acoustic is None:
            raise ValueError("this voice bundle has a vocoder only (no acoustic model): it can vocode mels "
                             "but not speak text; export it with an acoustic checkpoint")
        return self.bundle.acoustic

    def sentence_ids(self, text: str) -> Iterator[list[int]]:
        """Token ids of each speakable sentence of ``text``, lazily, in order ``[S][L_s]``."""
        from tts.text import SymbolTable, text_to_ids

        acoustic = self._need_acoustic()
        if self._table is None:
            self._table = SymbolTable.from_dict(dict(acoustic.symbols))
        options = dict(acoustic.text)
        found = False
        for sentence in streaming.iter_sentences(text):
            try:
                pieces = text_to_ids(sentence, self._table, **options)
            except ValueError:  # nothing speakable in this sentence (e.g. only punctuation)
                continue
            for ids in pieces:
                found = True
                yield ids
        if not found:
            raise ValueError(f"no speakable text in the input ({text[:60]!r})")

    # --- acoustic model ---------------------------------------------------------------------------------
    def _mels(self, batch: list[list[int]], sentences: list[int], seed: int, steps: int | None,
              temperature: float | None, speed: float, solver: str | None) -> list[np.ndarray]:
        """Decode sentences together: ids ``[B][L_b]`` -> mels ``[B][80, F_b]``; item b uses the noise of
        (seed, sentences[b]). Padding does not change any item's result (masked encoder and decoder)."""
        dec = self._need_acoustic().decoder
        steps = dec.steps if steps is None else int(steps)
        temperature = dec.temperature if temperature is None else float(temperature)
        solver = solver or dec.solver
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        n_tok = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), n_tok), dtype=np.int64)  # [B, L]
        for b, row in enumerate(batch):
            ids[b, : len(row)] = row
        lengths = np.array([len(row) for row in batch], dtype=np.int64)  # [B]
        mu_x, logw, x_mask = self.graphs.encode(ids, lengths)
        frames = durations(logw[:, 0], x_mask[:, 0], speed)  # [B, L]
        n_frames = [max(1, int(frames[b, : lengths[b]].sum())) for b in range(len(batch))]
        if max(n_frames) > self.max_frames:
            raise ValueError(f"a sentence would last {max(n_frames)} mel frames (limit {self.max_frames}); "
                             "split the text into shorter sentences or raise the speed")
        f_pad = fix_length(max(n_frames), dec.length_multiple)
        mu = np.zeros((len(batch), self.n_mels, f_pad), dtype=np.float32)  # [B, 80, F]
        mask = np.zeros((len(batch), 1, f_pad), dtype=np.float32)  # [B, 1, F]
        z = np.zeros_like(mu)
        noise = np.zeros((steps, *mu.shape), dtype=np.float32) if solver == "euler_maruyama" else None
        for b, f in enumerate(n_frames):
            expanded = regulate_length(mu_x[b, :, : lengths[b]], frames[b, : lengths[b]])  # [80, <= f]
            mu[b, :, : expanded.shape[1]] = expanded
            mask[b, :, :f] = 1.0
            z[b, :, :f] = mu[b, :, :f] + prior_noise(seed, sentences[b], self.n_mels, f) / temperature
            if noise is not None:
                noise[:, b, :, :f] = sde_noise(seed, sentences[b], steps, self.n_mels, f)

        def score_fn(x: np.ndarray, t: float) -> np.ndarray:
            return self.graphs.score(x, np.full((x.shape[0],), t, dtype=np.float32), mu, mask)

        mel = solvers.solve(solver, score_fn, z, mu, mask, solvers.time_grid(steps), dec.beta_min, dec.beta_max,
                            noise=None if noise is None else (lambda i: noise[i]))
        return [np.ascontiguousarray(mel[b, :, :f], dtype=np.float32) for b, f in enumerate(n_frames)]

    def tts_mel(self, text: str, steps: int | None = None, temperature: float | None = None, speed: float = 1.0,
                seed: int = 0, solver: str | None = None) -> np.ndarray:
        """Text -> mel ``[80, F]`` (the sentences' mels concatenated)."""
        mels = [self._mels([ids], [s], seed, steps, temperature, speed, solver)[0]
                for s, ids in enumerate(self.sentence_ids(text))]
        return np.concatenate(mels, axis=1)

    # --- vocoder ----------------------------------------------------------------------------------------
    def _schedule(self, vocoder_steps: str | int | None) -> Schedule:
        return self.bundle.vocoder.schedule(vocoder_steps)[1]

    def _sample(self, mel: np.ndarray, noise: np.ndarray, schedule: Schedule, sampler: str) -> np.ndarray:
        """mel [B, 80, F], noise [K, B, T] -> audio [B, T] float32 (T = hop F): the vocoder's samples, then its
        post-filter (on this window: the window's context frames absorb the filter's edges)."""
        betas, conds = schedule.arrays()
        mel = clip_log_mel(mel)  # values no audio can produce (an undertrained decoder's) would overflow fp16

        def denoise(x: np.ndarray, c: np.ndarray) -> np.ndarray:
            return self.graphs.vocoder_step(x, c, mel)

        if sampler == "ddpm":
            out = diffusion.sample_ddpm(denoise, noise[0], betas, conds, noise=lambda n: noise[n])
        elif sampler == "ddim":
            out = diffusion.sample_ddim(denoise, noise[0], betas, conds)
        else:
            raise ValueError(f"unknown sampler {sampler!r} (expected one of {', '.join(diffusion.SAMPLERS)})")
        out = np.asarray(out, dtype=np.float32)
        if not np.all(np.isfinite(out)):  # never hand NaN to a player or a file
            raise RuntimeError(f"the vocoder ({', '.join(self.providers)}) produced non-finite audio; "
                               "export the voice without --fp16, or try another --vocoder-steps schedule")
        return mel_postfilter(out, mel, self.postfilter)  # finite in, finite out (clipped to [-1, 1])

    def _vocode_chunks(self, mel: np.ndarray, noise: np.ndarray, schedule: Schedule, sampler: str,
                       plan: list[streaming.ChunkSpan], overlap_frames: int) -> Iterator[np.ndarray]:
        """mel [80, F], noise [K, hop (F + 2 EDGE_FRAMES)] -> the stitched audio of each chunk of ``plan``."""
        fader = streaming.Crossfader(overlap_frames * self.hop)
        for i, span in enumerate(plan):
            window, nz, core = edge_window(mel, noise, span, self.hop)
            audio = self._sample(window[None], nz[:, None], schedule, sampler)
            yield fader.push(audio[0, core], last=i == len(plan) - 1)

    def vocode(self, mel: np.ndarray, steps: str | int | None = None, seed: int = 0, sampler: str | None = None,
               chunk_frames: int | None = None, context_frames: int = streaming.DEFAULT_CONTEXT_FRAMES,
               overlap_frames: int = streaming.DEFAULT_OVERLAP_FRAMES) -> np.ndarray:
        """Mel ``[80, F]`` -> audio ``[hop F]`` float32. ``steps``: a schedule name or a step count K (default:
        the bundle's default schedule); ``chunk_frames`` vocodes in chunks (as streaming does)."""
        mel = np.asarray(mel, dtype=np.float32)
        if mel.ndim != 2 or mel.shape[0] != self.n_mels or mel.shape[1] < 1:
            raise ValueError(f"mel must be [{self.n_mels}, F] with F >= 1, got {mel.shape}")
        if not np.all(np.isfinite(mel)):
            raise ValueError("mel contains NaN or infinite values")
        schedule = self._schedule(steps)
        noise = vocoder_noise(seed, 0, schedule.steps, mel.shape[1], self.hop)
        plan = streaming.plan_chunks(mel.shape[1], chunk_frames, context_frames, overlap_frames)
        sampler = sampler or self.bundle.vocoder.sampler
        return np.concatenate(list(self._vocode_chunks(mel, noise, schedule, sampler, plan, overlap_frames)))

    # --- text to speech ---------------------------------------------------------------------------------
    def synthesize(
        self, text: str, steps: int | None = None, vocoder_steps: str | int | None = None,
        temperature: float | None = None, speed: float = 1.0, seed: int = 0,
        chunk_frames: int | None = streaming.DEFAULT_CHUNK_FRAMES,
        first_chunk_frames: int | None = streaming.DEFAULT_FIRST_CHUNK_FRAMES,
        context_frames: int = streaming.DEFAULT_CONTEXT_FRAMES,
        overlap_frames: int = streaming.DEFAULT_OVERLAP_FRAMES,
        solver: str | None = None, sampler: str | None = None,
    ) -> Iterator[AudioChunk]:
        """Stream speech for ``text`` as :class:`AudioChunk` s (float32 ``[N]`` each).

        steps: decoder steps (default: the bundle's); vocoder_steps: schedule name or K; temperature:
        z = mu + noise / temperature (default 1.5); speed: > 1 is faster; seed: all randomness.
        Sentences are decoded one at a time; each mel is vocoded in chunks of ``chunk_frames`` (the first
        chunk of the utterance ``first_chunk_frames``), so the first chunk is ready after one sentence's
        decoder and one small vocoder chunk. ``chunk_frames=None`` vocodes each sentence in one piece.
        """
        self._need_acoustic()
        schedule = self._schedule(vocoder_steps)
        sampler = sampler or self.bundle.vocoder.sampler
        start = time.perf_counter()
        sentences = self.sentence_ids(text)
        nxt = next(sentences)  # raises ValueError at once for text with nothing to say
        sentence, index, offset = 0, 0, 0
        while nxt is not None:
            ids, nxt = nxt, next(sentences, None)
            t0 = time.perf_counter()
            mel = self._mels([ids], [sentence], seed, steps, temperature, speed, solver)[0]  # [80, F]
            noise = vocoder_noise(seed, sentence, schedule.steps, mel.shape[1], self.hop)  # [K, hop (F + 2 EDGE)]
            plan = streaming.plan_chunks(mel.shape[1], chunk_frames, context_frames, overlap_frames,
                                         first_chunk_frames if sentence == 0 else None)
            for i, audio in enumerate(self._vocode_chunks(mel, noise, schedule, sampler, plan, overlap_frames)):
                now = time.perf_counter()
                last = i == len(plan) - 1
                yield AudioChunk(audio, self.sample_rate, sentence, index, offset, last, last and nxt is None,
                                 now - t0, now - start)
                index, offset = index + 1, offset + audio.shape[0]
                t0 = time.perf_counter()
            sentence += 1

    def synthesize_batch(
        self, texts: list[str], steps: int | None = None, vocoder_steps: str | int | None = None,
        temperature: float | None = None, speed: float = 1.0, seed: int = 0,
        chunk_frames: int | None = streaming.DEFAULT_CHUNK_FRAMES,
        first_chunk_frames: int | None = streaming.DEFAULT_FIRST_CHUNK_FRAMES,
        context_frames: int = streaming.DEFAULT_CONTEXT_FRAMES,
        overlap_frames: int = streaming.DEFAULT_OVERLAP_FRAMES,
        solver: str | None = None, sampler: str | None = None, max_batch: int = 16,
    ) -> list[np.ndarray]:
        """Speech for several texts, batched for throughput: float32 ``[T_i]`` per text.

        Item i equals the concatenated chunks of ``synthesize(texts[i], ..., seed=seed)`` up to float error:
        sentences are decoded in padded batches (padding-invariant graphs), and the vocoder runs the same
        chunk windows, batching windows of equal length.
        """
        if isinstance(texts, str):
            raise ValueError("synthesize_batch takes a list of texts; use synthesize for one text")
        schedule = self._schedule(vocoder_steps)
        sampler = sampler or self.bundle.vocoder.sampler
        items = [(i, s, ids) for i, text in enumerate(texts) for s, ids in enumerate(self.sentence_ids(text))]
        order = sorted(range(len(items)), key=lambda j: len(items[j][2]))  # similar lengths share a batch
        mels: dict[int, np.ndarray] = {}
        for k in range(0, len(order), max_batch):
            group = order[k: k + max_batch]
            out = self._mels([items[j][2] for j in group], [items[j][1] for j in group], seed, steps,
                             temperature, speed, solver)
            mels.update(zip(group, out))
        windows = []  # (item, chunk, span, noise slice) for every chunk of every sentence
        plans = {}
        for j, (_, s, _) in enumerate(items):
            f = mels[j].shape[1]
            noise = vocoder_noise(seed, s, schedule.steps, f, self.hop)
            plans[j] = streaming.plan_chunks(f, chunk_frames, context_frames, overlap_frames,
                                             first_chunk_frames if s == 0 else None)
            for c, span in enumerate(plans[j]):
                windows.append((j, c, *edge_window(mels[j], noise, span, self.hop)))
        cores: dict[tuple[int, int], np.ndarray] = {}
        by_len: dict[int, list] = {}
        for w in windows:
            by_len.setdefault(w[2].shape[1], []).append(w)
        for group in by_len.values():
            for k in range(0, len(group), max_batch):
                part = group[k: k + max_batch]
                mel = np.stack([window for _, _, window, _, _ in part])  # [B, 80, W]
                noise = np.stack([nz for _, _, _, nz, _ in part], axis=1)  # [K, B, hop W]
                audio = self._sample(mel, noise, schedule, sampler)
                for (j, c, _, _, core), a in zip(part, audio):
                    cores[(j, c)] = a[core]
        out: list[list[np.ndarray]] = [[] for _ in texts]
        for j, (i, _, _) in enumerate(items):
            fader = streaming.Crossfader(overlap_frames * self.hop)
            n = len(plans[j])
            out[i].extend(fader.push(cores[(j, c)], last=c == n - 1) for c in range(n))
        return [np.concatenate(parts) for parts in out]
