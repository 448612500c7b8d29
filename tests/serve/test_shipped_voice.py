"""The voice shipped in the package (serve/voices/joe): intact, within its size budget, set up as documented,
and speaking: a short sentence comes out as audible, finite audio whose mel follows the decoder's."""

from pathlib import Path

import numpy as np
import pytest

from serve.bundle import load_bundle
from serve.engine import Synthesizer, default_voice
from vocoder.audio import mel_numpy
from vocoder.postfilter import OFF, PostFilter

VOICE = Path(__file__).resolve().parents[2] / "serve" / "voices" / "joe"


@pytest.fixture(scope="module")
def shipped():
    if not (VOICE / "voice.json").is_file():
        pytest.skip("no shipped voice in this checkout")
    return Synthesizer(VOICE, device="cpu", threads=1)


def test_shipped_voice_is_intact_and_small(monkeypatch):
    monkeypatch.delenv("GRADWAVE_VOICE", raising=False)
    assert default_voice().resolve() == VOICE
    bundle = load_bundle(VOICE)  # every graph's SHA-256 checked against voice.json
    assert bundle.precision == "fp16" and bundle.acoustic is not None
    assert bundle.acoustic.decoder.steps == 4 and bundle.vocoder.default_schedule == "searched6"
    assert bundle.vocoder.postfilter == PostFilter(iterations=3)
    assert sum(p.stat().st_size for p in VOICE.iterdir()) < 60e6


def test_shipped_voice_speaks(shipped):
    audio = np.concatenate([c.audio for c in shipped.synthesize("Hello there.", seed=0)])
    seconds = audio.size / shipped.sample_rate
    assert 0.4 < seconds < 3.0 and np.all(np.isfinite(audio)) and np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio**2)) > 0.02  # speech, not near-silence


def test_shipped_post_filter_brings_the_audio_onto_the_decoder_mel(shipped):
    mel = shipped.tts_mel("The quick brown fox.", seed=1)  # [80, F]
    raw = Synthesizer(VOICE, device="cpu", threads=1, postfilter=OFF).vocode(mel, seed=1)
    filtered = shipped.vocode(mel, seed=1)
    err_raw, err = (float(np.abs(mel_numpy(a) - mel).mean()) for a in (raw, filtered))
    assert err < 0.6 * err_raw, (err, err_raw)
