"""The runtime's sampling loop, end to end, with a memorising oracle in place of the vocoder graph.

:class:`serve.engine.Synthesizer` vocodes a mel in chunk windows (context on each side, crossfaded overlap),
each window sampled with the bundle's schedule from its slice of one noise array. With the oracle of
:mod:`tests.oracle` as the vocoder graph, every window must be given its own mel and its own audio, every
step its own noise level, and the stitched result must be the clean waveform, whole or in chunks. Torch-free.
"""

import numpy as np
import pytest

from serve.bundle import load_bundle
from serve.engine import EDGE_FRAMES, Synthesizer
from tests.oracle import OracleDenoiser, clean_wave, expected_spreads
from vocoder import diffusion as D
from vocoder.postfilter import OFF


class OracleGraphs:
    """The vocoder part of :class:`serve.graphs.OnnxGraphs` with the oracle behind it."""

    providers = ["oracle"]

    def __init__(self, oracle: OracleDenoiser):
        self.oracle = oracle

    def vocoder_step(self, audio: np.ndarray, cond: np.ndarray, mel: np.ndarray) -> np.ndarray:
        """audio ``[B, T]`` float32, cond ``[B]``, mel ``[B, 80, F]`` -> eps ``[B, T]`` float32."""
        assert audio.dtype == np.float32 and mel.dtype == np.float32
        return self.oracle(audio, cond, mel).astype(np.float32)


def oracle_synth(bundle_dir, model: str, clean: np.ndarray) -> tuple[Synthesizer, OracleDenoiser]:
    synth = Synthesizer.__new__(Synthesizer)
    oracle = OracleDenoiser(model, clean, edge=EDGE_FRAMES)
    # the sampling loop alone: the oracle's mel tags windows, it is not the clean waveform's mel to filter onto
    synth._setup(load_bundle(bundle_dir), OracleGraphs(oracle), postfilter=OFF)
    return synth, oracle


@pytest.mark.parametrize("bundle, model", [("tiny_bundle", "diffwave"), ("tiny_wavegrad_bundle", "wavegrad")])
@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
@pytest.mark.parametrize("chunk_frames", [None, 24])
def test_runtime_vocoding_returns_the_clean_waveform(request, bundle, model, sampler, chunk_frames):
    clean = clean_wave(frames=90, seed=3)
    synth, oracle = oracle_synth(request.getfixturevalue(bundle), model, clean)
    for name, schedule in synth.bundle.vocoder.schedules.items():
        if schedule.steps > 50:  # WaveGrad's 1000-step training schedule: slow, and no different here
            continue
        oracle.calls.clear()
        out = synth.vocode(oracle.mel, steps=name, sampler=sampler, chunk_frames=chunk_frames,
                           context_frames=8, overlap_frames=4)
        assert out.shape == clean.shape and out.dtype == np.float32
        np.testing.assert_allclose(out, clean, atol=1e-3, err_msg=f"{model} {name} {sampler} {chunk_frames}")
        betas, _ = schedule.arrays()
        windows = sorted({f for f, _, _ in oracle.calls})
        assert len(windows) == 1 if chunk_frames is None else len(windows) >= 3
        for f in windows:  # every window: one call per step, each at its own level
            told, spread = oracle.trace(f)
            np.testing.assert_allclose(told, D.noise_levels(betas)[::-1], rtol=1e-5)
            np.testing.assert_allclose(spread, expected_spreads(betas, sampler, spread[0]), rtol=0.05)


def test_runtime_vocoding_catches_a_misaligned_mel(tiny_bundle):
    clean = clean_wave(frames=40, seed=3)
    synth, oracle = oracle_synth(tiny_bundle, "diffwave", clean)
    with pytest.raises(AssertionError, match="not a window"):
        synth.vocode(oracle.mel[:, ::-1].copy(), chunk_frames=16, context_frames=4, overlap_frames=2)
