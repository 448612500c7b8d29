"""The ONNX engine: bundle reading, streaming synthesis, determinism, batching, options, errors, torch backend."""

import json
import shutil

import numpy as np
import pytest

from serve.bundle import BundleError, load_bundle
from serve.engine import Synthesizer, default_voice, durations, regulate_length
from serve.graphs import select_providers

TEXT = "Hi there. We go now!"
FAST = dict(steps=3)  # fewer decoder steps keep the tests quick; the pipeline is the same


def _audio(chunks):
    return np.concatenate([c.audio for c in chunks])


def _edit_json(voice, edit):
    d = json.loads((voice / "voice.json").read_text())
    edit(d)
    (voice / "voice.json").write_text(json.dumps(d))


# --- bundle -----------------------------------------------------------------------------------------------
def test_load_bundle_reads_typed_fields(tiny_bundle):
    b = load_bundle(tiny_bundle)
    assert b.sample_rate == 22050 and b.hop_length == 256 and b.n_mels == 80 and b.precision == "fp32"
    assert b.vocoder.model == "diffwave" and b.vocoder.default_schedule == "fast6"
    assert b.vocoder.schedule(6)[0] == "fast6" and b.vocoder.schedule("train")[1].steps == 50
    assert b.acoustic.decoder.steps == 10 and b.acoustic.decoder.temperature == 1.5
    assert b.graph_path("encoder").is_file()
    with pytest.raises(AttributeError):
        b.sample_rate = 16000  # frozen
    assert load_bundle(tiny_bundle).to_dict() == json.loads((tiny_bundle / "voice.json").read_text())


@pytest.mark.parametrize("damage,message", [
    (lambda d: shutil.rmtree(d), "no such voice bundle"),
    (lambda d: (d / "voice.json").unlink(), "not a voice bundle"),
    (lambda d: (d / "voice.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "voice.json").write_text(json.dumps({"format": "gradwave-voice", "format_version": 99})),
     "newer gradwave"),
    (lambda d: (d / "voice.json").write_text(json.dumps({"format": "gradwave-voice", "format_version": 1})),
     "malformed"),
    (lambda d: (d / "score_step.onnx").unlink(), "missing"),
    (lambda d: _edit_json(d, lambda j: j["vocoder"].update(postfilter={"iterations": "three"})), "post-filter"),
    (lambda d: _edit_json(d, lambda j: j["vocoder"].update(postfilter={"passes": 3})), "malformed"),
    (lambda d: (d / "encoder.onnx").write_bytes((d / "encoder.onnx").read_bytes()[:1000]), "corrupt"),
])
def test_damaged_bundles_give_clear_errors(tiny_bundle, tmp_path, damage, message):
    copy = tmp_path / "voice"
    shutil.copytree(tiny_bundle, copy)
    damage(copy)
    with pytest.raises(BundleError, match=message):
        Synthesizer(copy, device="cpu")


# --- synthesis --------------------------------------------------------------------------------------------
def test_stream_chunks_are_consistent(tiny_synth):
    chunks = list(tiny_synth.synthesize(TEXT, **FAST, chunk_frames=16, first_chunk_frames=8, overlap_frames=2))
    assert len(chunks) > 3 and [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.is_final for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert {c.sentence for c in chunks} == {0, 1}
    ends = [c.sentence_end for c in chunks]
    assert sum(ends) == 2 and ends[-1]
    assert all(c.audio.dtype == np.float32 and c.audio.ndim == 1 and c.sample_rate == 22050 for c in chunks)
    offsets = np.cumsum([0] + [c.audio.size for c in chunks[:-1]])
    assert [c.offset for c in chunks] == offsets.tolist()
    assert all(0 <= c.compute_s <= c.elapsed_s for c in chunks)
    assert all(a.elapsed_s <= b.elapsed_s for a, b in zip(chunks, chunks[1:]))
    mel = tiny_synth.tts_mel(TEXT, **FAST)
    assert _audio(chunks).size == mel.shape[1] * 256  # the streamed audio covers the mel exactly


def test_deterministic_for_a_seed(tiny_synth):
    a = _audio(tiny_synth.synthesize(TEXT, **FAST, seed=1))
    b = _audio(tiny_synth.synthesize(TEXT, **FAST, seed=1))
    c = _audio(tiny_synth.synthesize(TEXT, **FAST, seed=2))
    np.testing.assert_array_equal(a, b)
    assert a.shape == c.shape and np.max(np.abs(a - c)) > 1e-2


def test_chunked_stream_equals_unchunked(tiny_synth):
    whole = _audio(tiny_synth.synthesize(TEXT, **FAST, chunk_frames=None))
    chunked = _audio(tiny_synth.synthesize(TEXT, **FAST, chunk_frames=12, first_chunk_frames=10, context_frames=12,
                                           overlap_frames=2))
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_vocode_of_tts_mel_equals_synthesis(tiny_synth):
    mel = tiny_synth.tts_mel("Hi there.", **FAST, seed=4)
    assert mel.shape[0] == 80 and mel.dtype == np.float32 and np.all(np.isfinite(mel))
    audio = tiny_synth.vocode(mel, seed=4)
    np.testing.assert_allclose(audio, _audio(tiny_synth.synthesize("Hi there.", **FAST, seed=4, chunk_frames=None)),
                               atol=1e-6)


def test_vocoder_input_is_clipped_to_the_mel_range(tiny_synth, tiny_checkpoints):
    """An undertrained decoder can emit log-mels of 40 and more, which overflow an fp16 vocoder into NaN:
    the vocoder sees them clipped to the range real audio can produce, in the runtime and in torch alike."""
    from vocoder.audio import log_mel_range
    from vocoder.inference import Vocoder, vocode

    lo, hi = log_mel_range()
    wild = np.random.default_rng(3).uniform(-60, 60, (80, 20)).astype(np.float32)
    out = tiny_synth.vocode(wild, seed=2)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, tiny_synth.vocode(np.clip(wild, lo, hi), seed=2))
    ckpt = Vocoder(tiny_checkpoints["diffwave"])
    np.testing.assert_array_equal(vocode(ckpt.model, wild, ckpt.schedule("fast6"), seed=1),
                                  vocode(ckpt.model, np.clip(wild, lo, hi), ckpt.schedule("fast6"), seed=1))


def test_post_filter_brings_the_audio_onto_its_mel(tiny_bundle, tiny_synth, tmp_path):
    """The voice's post-filter (on by default in new exports) makes the vocoder's output's mel closer to the
    mel it was given; switched off, the raw vocoder output comes back; old bundles without it run unfiltered."""
    from vocoder.audio import mel_numpy
    from vocoder.postfilter import OFF, PostFilter

    assert tiny_synth.postfilter == PostFilter() and tiny_synth.bundle.vocoder.postfilter == PostFilter()
    raw = Synthesizer(tiny_bundle, device="cpu", threads=1, postfilter=OFF)
    t = np.arange(40 * 256) / 22050
    speechlike = sum(0.1 * np.sin(2 * np.pi * k * 130 * t) / k for k in range(1, 15)) * np.hanning(t.size)
    mel = mel_numpy(speechlike.astype(np.float32))  # [80, 40]: a mel audio in [-1, 1] can have
    filtered, plain = tiny_synth.vocode(mel, seed=1), raw.vocode(mel, seed=1)
    assert filtered.shape == plain.shape == (256 * mel.shape[1],) and np.abs(filtered).max() <= 1.0
    error_plain, error = (float(np.abs(mel_numpy(a) - mel).mean()) for a in (plain, filtered))
    assert error < 0.5 * error_plain, (error, error_plain)  # the random tiny vocoder is far off; 3 passes help
    np.testing.assert_allclose(tiny_synth.vocode(mel, seed=1, chunk_frames=16), filtered, atol=1e-4)
    old = tmp_path / "old"
    shutil.copytree(tiny_bundle, old)
    _edit_json(old, lambda j: j["vocoder"].pop("postfilter"))
    np.testing.assert_array_equal(Synthesizer(old, device="cpu", threads=1).vocode(mel, seed=1), plain)


def test_speed_temperature_steps_and_schedules_change_the_output(tiny_synth):
    base = tiny_synth.tts_mel("Hi there.", **FAST)
    fast = tiny_synth.tts_mel("Hi there.", **FAST, speed=2.0)
    assert 0.4 * base.shape[1] <= fast.shape[1] <= 0.7 * base.shape[1]
    assert tiny_synth.tts_mel("Hi there.", steps=3, temperature=5.0).shape == base.shape
    assert not np.allclose(tiny_synth.tts_mel("Hi there.", steps=3, temperature=5.0), base)
    assert not np.allclose(tiny_synth.tts_mel("Hi there.", steps=5), base)
    sde = tiny_synth.tts_mel("Hi there.", steps=3, solver="euler_maruyama")
    np.testing.assert_array_equal(sde, tiny_synth.tts_mel("Hi there.", steps=3, solver="euler_maruyama"))
    mel = base[:, :20]
    np.testing.assert_array_equal(tiny_synth.vocode(mel, steps=6), tiny_synth.vocode(mel, steps="fast6"))
    assert not np.allclose(tiny_synth.vocode(mel, steps="fast6"), tiny_synth.vocode(mel, steps="fast6", sampler="ddim"))


def test_batch_equals_one_by_one(tiny_synth):
    texts = ["Hi there.", TEXT, "Okay."]
    batch = tiny_synth.synthesize_batch(texts, **FAST, chunk_frames=16, seed=3)
    assert len(batch) == 3
    for text, audio in zip(texts, batch):
        single = _audio(tiny_synth.synthesize(text, **FAST, chunk_frames=16, seed=3))
        assert audio.shape == single.shape
        np.testing.assert_allclose(audio, single, atol=1e-4 * max(1.0, float(np.abs(single).max())))


def test_length_regulation_repeats_columns():
    mu = np.arange(6, dtype=np.float32).reshape(2, 3)  # [C=2, L=3]
    frames = durations(np.log(np.array([[1.0, 2.5, 0.2]], np.float32)), np.ones((1, 3), np.float32))
    assert frames.tolist() == [[1, 3, 1]]
    assert regulate_length(mu, frames[0]).tolist() == [[0, 1, 1, 1, 2], [3, 4, 4, 4, 5]]
    assert durations(np.zeros((1, 3), np.float32), np.ones((1, 3), np.float32), speed=0.5).tolist() == [[2, 2, 2]]


@pytest.mark.parametrize("call,message", [
    (lambda s: list(s.synthesize("")), "speakable"),
    (lambda s: list(s.synthesize("?!  ...")), "speakable"),
    (lambda s: list(s.synthesize("Hi.", speed=0)), "speed"),
    (lambda s: list(s.synthesize("Hi.", temperature=0)), "temperature"),
    (lambda s: list(s.synthesize("Hi.", seed=-1)), "seed"),
    (lambda s: list(s.synthesize("Hi.", vocoder_steps="nope")), "no vocoder schedule"),
    (lambda s: list(s.synthesize("Hi.", vocoder_steps=3)), "no 3-step"),
    (lambda s: list(s.synthesize("Hi.", solver="rk4")), "unknown solver"),
    (lambda s: s.vocode(np.zeros((80, 5, 2), np.float32)), r"\[80, F\]"),
    (lambda s: s.vocode(np.full((80, 5), np.nan, np.float32)), "NaN"),
    (lambda s: s.vocode(np.zeros((80, 5), np.float32), sampler="euler"), "sampler"),
    (lambda s: s.synthesize_batch("Hi."), "list"),
])
def test_bad_input_raises_value_error(tiny_synth, call, message):
    with pytest.raises(ValueError, match=message):
        call(tiny_synth)


def test_vocoder_only_bundle(tiny_wavegrad_bundle):
    synth = Synthesizer(tiny_wavegrad_bundle, device="cpu", threads=1)
    audio = synth.vocode(np.full((80, 6), -5.0, np.float32))
    assert audio.shape == (6 * 256,) and np.all(np.isfinite(audio)) and np.all(np.abs(audio) <= 1)
    with pytest.raises(ValueError, match="vocoder only"):
        list(synth.synthesize("Hello."))


def test_providers_and_threads(tiny_bundle, monkeypatch):
    assert select_providers("cpu") == ["CPUExecutionProvider"]
    assert select_providers("auto")[-1] == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="unknown device"):
        select_providers("tpu")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(ValueError, match="onnxruntime-gpu"):
            Synthesizer(tiny_bundle, device="cuda")
    with pytest.raises(ValueError, match="threads"):
        Synthesizer(tiny_bundle, device="cpu", threads=0)
    synth = Synthesizer(tiny_bundle, device="cpu", threads=2)
    assert synth.providers == ["CPUExecutionProvider"]
    for name, session in synth.graphs.sessions.items():  # every graph's session, as onnxruntime holds it
        opts = session.get_session_options()
        assert opts.intra_op_num_threads == 2, name
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0", name


def test_default_voice(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADWAVE_VOICE", str(tmp_path))
    assert default_voice() == tmp_path


def test_torch_backend_matches_onnx(tiny_checkpoints, tiny_synth):
    from serve.torch_backend import TorchSynthesizer

    torch_synth = TorchSynthesizer(tiny_checkpoints["acoustic"], tiny_checkpoints["diffwave"], device="cpu")
    assert torch_synth.providers == ["torch:cpu:fp32"]
    assert torch_synth.bundle.to_dict()["vocoder"] == tiny_synth.bundle.to_dict()["vocoder"]
    a = _audio(torch_synth.synthesize(TEXT, **FAST, chunk_frames=16))
    b = _audio(tiny_synth.synthesize(TEXT, **FAST, chunk_frames=16))
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=1e-3)
