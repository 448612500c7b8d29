"""The command line: real files on disk, one-line errors with exit status 2, no half-written outputs."""

import subprocess
import sys

import numpy as np
import soundfile as sf

from serve.cli import main


def test_speak_writes_a_wav_and_streams_pcm(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "a.wav"
    assert main(["speak", "Hello there. Second sentence.", "-o", str(out), "--voice", str(tiny_bundle)]) == 0
    info = sf.info(out)
    assert info.samplerate == 22050 and info.frames > 0
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]
    r = subprocess.run([sys.executable, "-m", "serve.cli", "speak", "-", "--stream", "--voice", str(tiny_bundle)],
                       input=b"Piped text.", capture_output=True, check=True)
    pcm = np.frombuffer(r.stdout, dtype="<i2")
    assert len(pcm) > 0 and len(pcm) % 256 == 0


def test_speak_vocodes_files_in_offline_chunks_and_streams_in_small_ones(tiny_bundle, tmp_path, monkeypatch,
                                                                       capsysbinary):
    from serve.engine import Synthesizer
    from serve.streaming import OFFLINE_CHUNK_FRAMES

    seen = []
    real = Synthesizer.synthesize

    def spy(self, text, **kwargs):
        seen.append(kwargs)
        return real(self, text, **kwargs)

    monkeypatch.setattr(Synthesizer, "synthesize", spy)
    assert main(["speak", "Hello there.", "-o", str(tmp_path / "a.wav"), "--voice", str(tiny_bundle)]) == 0
    assert seen[-1]["chunk_frames"] == OFFLINE_CHUNK_FRAMES and seen[-1]["first_chunk_frames"] is None
    assert main(["speak", "Hello there.", "--stream", "--voice", str(tiny_bundle)]) == 0
    assert "chunk_frames" not in seen[-1] and "first_chunk_frames" not in seen[-1]  # the streaming defaults
    assert len(capsysbinary.readouterr().out) > 0


def test_user_mistakes_are_one_line_errors(tiny_bundle, tmp_path, capsys):
    cases = [
        ["speak", "", "-o", str(tmp_path / "x.wav"), "--voice", str(tiny_bundle)],
        ["speak", "hi", "-o", str(tmp_path / "x.mp3"), "--voice", str(tiny_bundle)],
        ["speak", "hi", "--voice", str(tiny_bundle)],
        ["speak", "hi", "-o", str(tmp_path / "x.wav"), "--voice", str(tmp_path / "nope")],
        ["speak", "hi", "-o", str(tmp_path / "x.wav"), "--voice", str(tiny_bundle), "--vocoder-steps", "99"],
        ["speak", "hi", "-o", str(tmp_path / "x.wav"), "--voice", str(tiny_bundle), "--postfilter-iterations", "-1"],
        ["vocode", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "y.wav"), "--voice", str(tiny_bundle)],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("gradwave: error:"), (argv, err)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_vocode_with_a_bundle(tiny_bundle, tmp_path):
    t = np.arange(22050) / 22050
    sf.write(tmp_path / "in.wav", (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 22050)
    assert main(["vocode", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav"), "--voice", str(tiny_bundle)]) == 0
    assert sf.info(tmp_path / "out.wav").frames == 22050 // 256 * 256


def test_tts_from_checkpoints_writes_audio_and_mel(tiny_checkpoints, tmp_path):
    ck = tiny_checkpoints
    rc = main(["tts", "Hello there.", "--acoustic", str(ck["acoustic"]), "--vocoder", str(ck["diffwave"]),
               "-o", str(tmp_path / "t.wav"), "--mel", str(tmp_path / "t.npy"), "--steps", "4", "--device", "cpu"])
    assert rc == 0
    mel = np.load(tmp_path / "t.npy")
    assert mel.shape[0] == 80 and mel.shape[1] > 0 and np.isfinite(mel).all()
    assert sf.info(tmp_path / "t.wav").frames == mel.shape[1] * 256
