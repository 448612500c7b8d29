"""The Gradio demo, served for real on 127.0.0.1 and called through ``gradio_client`` (offline).

One server for the module (the session's tiny random voice bundle, one onnxruntime thread); every call
goes through ``submit(...).result(timeout=...)`` so that a hang fails the test instead of blocking it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")
sf = pytest.importorskip("soundfile")

from serve import app  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60  # seconds for any one request
TEXT = "Dr. Smith paid $5.50 for 3 apples on May 5th, 2024."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_bundle):
    """(url, local Synthesizer of the same bundle) while a real demo server runs."""
    from serve.engine import Synthesizer

    port = _free_port()
    demo = app.launch(tiny_bundle, host="127.0.0.1", port=port, threads=1, block=False)
    try:
        yield f"http://127.0.0.1:{port}/", Synthesizer(tiny_bundle, device="cpu", threads=1)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    from gradio_client import Client

    return Client(server[0], verbose=False, analytics_enabled=False,
                  download_files=str(tmp_path_factory.mktemp("downloads")))


def _call(client, *args, api_name="/synthesize"):
    return client.submit(*args, api_name=api_name).result(timeout=TIMEOUT)


def _engine_audio(synth, text, **kw) -> np.ndarray:
    return np.concatenate([c.audio for c in synth.synthesize(text, **kw)])


def test_import_and_build_without_torch(tiny_bundle):
    code = ("import sys; import serve.app as a; from serve.engine import Synthesizer; "
            "a.build_demo(Synthesizer(sys.argv[1], device='cpu', threads=1)); "
            "assert 'torch' not in sys.modules, 'serve.app imported torch'")
    proc = subprocess.run([sys.executable, "-c", code, str(tiny_bundle)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_synthesize_returns_the_engines_audio_and_timings(server, client):
    _, synth = server
    path, timings = _call(client, TEXT, 10, "fast6", 1.5, 1.0, 3)
    audio, sr = sf.read(path, dtype="int16")
    assert sr == 22050 and audio.ndim == 1
    # exactly what the engine makes for these settings: no normalisation, nothing lost at chunk seams
    expected = app.to_int16(_engine_audio(synth, TEXT, steps=10, vocoder_steps="fast6", temperature=1.5,
                                          speed=1.0, seed=3))
    assert audio.shape == expected.shape and audio.shape[0] % 256 == 0
    assert np.array_equal(audio, expected)
    assert np.sqrt(np.mean((audio / 32768.0) ** 2)) > 1e-3  # not silent
    assert timings["audio_s"] == pytest.approx(audio.shape[0] / sr, abs=1e-3)
    assert 0 < timings["first_audio_s"] <= timings["seconds"]["total"]
    for stage in ("encoder", "decoder", "vocoder", "total"):
        assert timings["seconds"][stage] > 0
        rtf = timings["seconds"][stage] / timings["audio_s"]
        assert timings["rtf"][stage] == pytest.approx(rtf, rel=0.01, abs=1e-3)
    assert timings["settings"] == {"steps": 10, "vocoder_schedule": "fast6", "vocoder_steps": 6,
                                   "temperature": 1.5, "speed": 1.0, "seed": 3}
    assert timings["sentences"] == 1 and timings["characters"] == len(TEXT)


def test_speed_and_schedule_change_the_result(server, client):
    text = "Hello! Nice to meet you."
    slow, _ = _call(client, text, 10, "fast6", 1.5, 1.0, 0)
    fast, t_fast = _call(client, text, 10, "train", 1.5, 2.0, 0)
    assert t_fast["settings"]["vocoder_steps"] == 50
    assert sf.info(fast).frames < 0.75 * sf.info(slow).frames  # twice the speed: about half the frames


def test_speak_streams_progress_then_audio_mel_and_table(client):
    job = client.submit("Hello there. How are you today?", api_name="/speak")
    final = job.result(timeout=TIMEOUT)
    updates = job.outputs()
    assert any("Synthesizing" in str(u[3]) for u in updates[:-1])  # progress while it runs
    wav, timings, picture, table = final[:4]
    audio, sr = sf.read(wav)
    assert sr == 22050 and np.abs(audio).max() > 1e-3
    assert timings["sentences"] == 2 and timings["audio_s"] == pytest.approx(len(audio) / sr, abs=1e-3)
    from PIL import Image

    with Image.open(picture) as im:
        assert im.size[0] > 400 and im.size[1] > 150
    assert "First audio after" in table and "Vocoder (fast6, 6 steps)" in table


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="gradio streams audio through ffmpeg")
def test_speak_has_a_live_stream_when_ffmpeg_is_installed(client):
    final = _call(client, "Hello.", api_name="/speak")
    assert len(final) == 5 and final[4]  # the live stream's playlist


def test_demo_without_live_stream(server, tmp_path):
    """What a machine without ffmpeg gets: no live player, the same four outputs of /speak."""
    from gradio_client import Client

    demo = app.build_demo(server[1], stream=False)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.launch_options())
    try:
        c = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False,
                   download_files=str(tmp_path))
        final = _call(c, "Hello.", api_name="/speak")
        assert len(final) == 4 and sf.info(final[0]).samplerate == 22050
        assert "First audio after" in final[3]
    finally:
        demo.close()


def test_eight_concurrent_requests_all_succeed(server, client):
    texts = [f"Request number {i} says hello." for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: _call(client, texts[i], 4, "fast6", 1.5, 1.0, i), range(8)))
    audios = []
    for (path, timings), text in zip(results, texts):
        audio, sr = sf.read(path, dtype="int16")
        assert sr == 22050 and np.abs(audio).max() > 30 and timings["characters"] == len(text)
        audios.append(audio)
    _, synth = server  # requests do not mix: each matches the engine's output for its own text and seed
    assert np.array_equal(audios[5], app.to_int16(_engine_audio(synth, texts[5], steps=4, seed=5)))


@pytest.mark.parametrize("text, message", [
    ("", "enter some text"),
    ("  \n\t  ", "only spaces or line breaks"),
    ("a" * 20_000, "too long: 20,000 characters (the limit is 5,000)"),
    ("!!! ???", "no speakable text"),
])
def test_bad_text_gives_a_clear_error(client, text, message):
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")):
        _call(client, text)
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)")):
        _call(client, text, api_name="/speak")


def test_server_still_answers_after_errors(client):
    path, _ = _call(client, "Still here.")
    assert sf.info(path).frames > 0


# ----------------------------------------------------------------------------------------------------------
# helpers, without a server
# ----------------------------------------------------------------------------------------------------------
def test_text_limit_is_inclusive():
    assert app.check_text("a" * app.MAX_CHARS) == "a" * app.MAX_CHARS
    with pytest.raises(Exception, match="too long"):
        app.check_text("a" * (app.MAX_CHARS + 1))


def test_wav_bytes_round_trip_without_normalising():
    import io

    audio = np.array([0.0, 0.25, -0.5, 2.0, -2.0], dtype=np.float32)  # out-of-range samples are clipped
    back, sr = sf.read(io.BytesIO(app.wav_bytes(audio, 22050)), dtype="int16")
    assert sr == 22050 and back.tolist() == [0, 8191, -16383, 32767, -32767]


def test_render_mel_gives_an_rgb_picture_of_the_requested_size():
    mel = np.random.default_rng(0).normal(size=(80, 50)).astype(np.float32)
    picture = app.render_mel(mel, 22050, 256, width=600, height=200)
    assert picture.shape == (200, 600, 3) and picture.dtype == np.uint8 and picture.std() > 10


def test_build_demo_refuses_a_vocoder_only_voice():
    synth = SimpleNamespace(bundle=SimpleNamespace(acoustic=None))
    with pytest.raises(ValueError, match="vocoder only"):
        app.build_demo(synth)
