"""Chunking: the chunk plan, the crossfade, chunked == unchunked vocoding, seams, bounded memory."""

import tracemalloc

import numpy as np
import pytest

from serve import streaming
from serve.streaming import Crossfader, fade_curves, plan_chunks

HOP = 256


@pytest.mark.parametrize("n,chunk,ctx,overlap,first", [
    (1, 16, 4, 2, None), (15, 16, 4, 2, None), (17, 16, 4, 2, None), (100, 16, 4, 2, None),
    (100, 16, 0, 0, None), (333, 64, 16, 4, 32), (64, 64, 16, 4, 32), (20, 8, 3, 3, None),
])
def test_plan_covers_frames_with_exact_overlaps(n, chunk, ctx, overlap, first):
    spans = plan_chunks(n, chunk, ctx, overlap, first)
    assert spans[0].start == 0 and spans[-1].end == n
    for a, b in zip(spans, spans[1:]):
        assert b.start == a.end - overlap  # consecutive cores overlap by exactly `overlap`
    for i, s in enumerate(spans):
        limit = (first if i == 0 and first else chunk) + chunk // 4
        assert 0 < s.frames <= limit
        assert s.ctx_start == max(0, s.start - ctx) and s.ctx_end == min(n, s.end + ctx)
        if i < len(spans) - 1:
            assert s.frames > 2 * overlap  # room for a fade-in and a fade-out
    assert plan_chunks(n, None) == [streaming.ChunkSpan(0, n, 0, n)]


def test_plan_ramps_from_a_short_first_chunk_up_to_full_chunks():
    spans = plan_chunks(1000, 128, 16, 4, 32)
    assert [s.frames for s in spans[:5]] == [32, 64, 128, 128, 128]
    assert all(s.frames == 128 for s in spans[2:-1]) and spans[-1].end == 1000  # full chunks after the ramp
    assert [s.frames for s in plan_chunks(1000, 64, 16, 4, 100)[:3]] == [100, 64, 64]  # a long first: no ramp


def test_plan_rejects_bad_arguments():
    with pytest.raises(ValueError, match="too short"):
        plan_chunks(100, 8, 4, 4)
    with pytest.raises(ValueError, match="at least one"):
        plan_chunks(0, 16)
    with pytest.raises(ValueError, match=">= 0"):
        plan_chunks(10, 16, -1)


def test_fade_curves_sum_to_one_and_are_monotone():
    fade_in, fade_out = fade_curves(64)
    np.testing.assert_allclose(fade_in + fade_out, 1.0, atol=1e-6)
    assert np.all(np.diff(fade_in) > 0) and fade_in[0] < 0.01 and fade_in[-1] > 0.99


def _stitch(signal_frames, spans, overlap, make_core):
    fader = Crossfader(overlap * HOP)
    return np.concatenate([fader.push(make_core(s), last=i == len(spans) - 1) for i, s in enumerate(spans)])


def test_crossfader_reassembles_a_signal_exactly():
    x = np.random.default_rng(0).standard_normal(100 * HOP).astype(np.float32)
    spans = plan_chunks(100, 16, 4, 3)
    out = _stitch(100, spans, 3, lambda s: x[s.start * HOP: s.end * HOP])
    assert out.shape == x.shape
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_crossfade_between_different_chunks_is_smooth():
    spans = plan_chunks(40, 16, 0, 4)
    levels = [0.0, 1.0, -0.5, 0.25, 0.8][: len(spans)]
    out = _stitch(40, spans, 4, lambda s: np.full(s.frames * HOP, levels[spans.index(s)], np.float32))
    steps = np.abs(np.diff(out))
    # a hard cut would jump by up to 1.5 in one sample; the 4-frame raised-cosine ramp moves < 2.5e-3 per sample
    assert steps.max() <= 1.01 * 1.5 * np.pi / (2 * 4 * HOP)


@pytest.fixture(scope="module")
def mel():
    rng = np.random.default_rng(1)
    smooth = np.cumsum(rng.standard_normal((80, 60)), axis=1) * 0.3
    return (smooth - 4.0).astype(np.float32)  # [80, 60], a log-mel-like random walk


@pytest.mark.parametrize("bundle", ["tiny_bundle", "tiny_wavegrad_bundle"])
def test_chunked_vocoding_equals_unchunked(bundle, mel, request):
    from serve.engine import Synthesizer

    synth = Synthesizer(request.getfixturevalue(bundle), device="cpu", threads=1)
    whole = synth.vocode(mel, seed=3)
    chunked = synth.vocode(mel, seed=3, chunk_frames=16, context_frames=12, overlap_frames=2)
    assert chunked.shape == whole.shape == (60 * HOP,)
    # tolerance: the tiny models' receptive field over all steps is under 12 frames, so only float error is left
    np.testing.assert_allclose(chunked, whole, atol=1e-4)
    # without context the chunk edges differ from the unchunked pass: the context is what makes them equal
    bare = synth.vocode(mel, seed=3, chunk_frames=16, context_frames=0, overlap_frames=2)
    assert np.max(np.abs(bare - whole)) > 100 * max(np.max(np.abs(chunked - whole)), 1e-7)


def test_no_clicks_at_seams(tiny_synth, mel):
    audio = tiny_synth.vocode(mel, seed=5, chunk_frames=16, context_frames=12, overlap_frames=2)
    jumps = np.abs(np.diff(audio))
    spans = plan_chunks(mel.shape[1], 16, 12, 2)
    seam = np.zeros(jumps.shape, bool)
    for s in spans[1:]:
        seam[s.start * HOP - 8: (s.start + 2) * HOP + 8] = True  # each crossfade region, with margin
    assert seam.any() and (~seam).any()
    assert jumps[seam].max() <= 1.1 * jumps[~seam].max()


def test_long_text_streams_in_bounded_chunks_and_memory(tiny_synth):
    sentence = "We walk home. "
    kwargs = dict(steps=2, chunk_frames=16, first_chunk_frames=8, context_frames=4, overlap_frames=2)
    list(tiny_synth.synthesize(sentence, **kwargs))  # warm up (the phonemizer loads its lexicon once)

    def run(n):
        tracemalloc.start()
        count, biggest, total = 0, 0, 0
        for chunk in tiny_synth.synthesize(sentence * n, **kwargs):
            count, biggest, total = count + 1, max(biggest, chunk.audio.size), total + chunk.audio.size
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return count, biggest, total, peak

    # two sentences against eight: both hold one sentence's work plus the next one's look-ahead
    short, long = run(2), run(8)
    assert long[0] >= 3 * short[0]  # chunk count grows with the text ...
    assert long[2] >= 3 * short[2]  # ... and so does the audio,
    assert max(short[1], long[1]) <= (16 + 16 // 4) * HOP  # while each chunk stays bounded,
    assert long[3] <= 1.25 * short[3]  # and so does the peak memory (one sentence at a time)


def test_stream_stats_summarises_a_stream(tiny_synth):
    stats = streaming.stream_stats(tiny_synth.synthesize("Hi there.", steps=2, chunk_frames=16, overlap_frames=2))
    assert stats["chunks"] >= 2 and 0 < stats["first_chunk_s"] <= stats["total_s"]
    assert stats["audio_s"] > 0 and stats["rtf"] == pytest.approx(stats["total_s"] / stats["audio_s"])
    with pytest.raises(ValueError, match="no audio"):
        streaming.stream_stats([])


def test_edge_window_repeats_the_sentence_ends_and_keeps_noise_absolute():
    from serve.engine import EDGE_FRAMES as E
    from serve.engine import edge_window

    rng = np.random.default_rng(0)
    f, hop = 50, HOP
    mel = rng.normal(size=(80, f)).astype(np.float32)  # [80, F]
    noise = rng.normal(size=(3, (f + 2 * E) * hop)).astype(np.float32)  # [K, hop (F + 2 E)]
    plan = plan_chunks(f, 16, 4, 2)
    assert len(plan) >= 3
    first, middle, last = plan[0], plan[1], plan[-1]
    window, nz, core = edge_window(mel, noise, first, hop)
    assert window.shape[1] == first.window_frames + E and nz.shape == (3, window.shape[1] * hop)
    np.testing.assert_array_equal(window[:, :E], np.repeat(mel[:, :1], E, axis=1))  # the first frame, repeated
    np.testing.assert_array_equal(window[:, E:], mel[:, : first.ctx_end])
    np.testing.assert_array_equal(nz, noise[:, : (first.ctx_end + E) * hop])  # noise at absolute samples
    assert core == slice(E * hop, (first.end + E) * hop)
    window, nz, core = edge_window(mel, noise, middle, hop)  # touches no end: no padding
    np.testing.assert_array_equal(window, mel[:, middle.ctx_start: middle.ctx_end])
    np.testing.assert_array_equal(nz, noise[:, (middle.ctx_start + E) * hop: (middle.ctx_end + E) * hop])
    assert core == middle.core_samples(hop)
    window, nz, core = edge_window(mel, noise, last, hop)
    np.testing.assert_array_equal(window[:, -E:], np.repeat(mel[:, -1:], E, axis=1))  # the last frame, repeated
    np.testing.assert_array_equal(nz, noise[:, (last.ctx_start + E) * hop:])
    assert core.stop - core.start == last.frames * hop and core.stop == (last.end - last.ctx_start) * hop
    whole = streaming.ChunkSpan(0, f, 0, f)  # one window for the sentence: padded on both sides
    window, nz, core = edge_window(mel, noise, whole, hop)
    assert window.shape[1] == f + 2 * E and nz.shape[1] == noise.shape[1] and core == slice(E * hop, (f + E) * hop)
