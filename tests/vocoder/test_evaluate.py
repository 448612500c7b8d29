"""``gradwave eval vocoder`` and ``gradwave bench vocoder`` end to end on a tiny trained checkpoint."""

import json
import math
import mmap
import shutil
import time

import numpy as np
import pytest

from serve.cli import main
from vocoder import diffusion
from vocoder.bench import PeakRSS, bench_betas, bench_schedule
from vocoder.train import VocoderTask, VocoderTaskConfig
from vocoder.training.data import read_metadata, split
from vocoder.training.loop import TrainConfig, train


@pytest.fixture(scope="module")
def checkpoint(tiny_corpus, tmp_path_factory):
    """A tiny DiffWave trained for 2 steps by the real loop (so: an almost untrained model)."""
    out = tmp_path_factory.mktemp("run")
    task = VocoderTask(str(tiny_corpus), VocoderTaskConfig(size="tiny", segment_frames=8, val_items=1),
                       progress=False)
    train(task, TrainConfig(max_steps=2, batch_size=2, num_workers=0, val_every=0, ckpt_every=2), str(out),
          progress=False)
    return out / "checkpoints" / "last.pt"


@pytest.fixture(scope="module")
def eval_run(checkpoint, tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    rc = main(["eval", "vocoder", "--checkpoint", str(checkpoint), "--data", str(tiny_corpus),
               "--held-out", "2", "--out", str(out), "--device", "cpu"])
    assert rc == 0
    return out


def test_eval_table_has_every_schedule_and_both_baselines(eval_run, tiny_corpus):
    report = json.loads((eval_run / "table.json").read_text())
    rows = {(r["kind"], r["schedule"]): r for r in report["rows"]}
    expected = {("vocoder", "fast6"), ("vocoder", "train"), ("griffin_lim", None), ("ground_truth", None)}
    assert set(rows) == expected
    # the held-out utterances are those of the training split
    assert report["utterances"] == [u.id for u in split(read_metadata(tiny_corpus), 2)[1]]
    assert all(r["n"] == 2 and len(r["utterances"]) == 2 for r in report["rows"])
    assert rows[("vocoder", "fast6")]["steps"] == 6 and rows[("vocoder", "train")]["steps"] == 50

    truth, gl = rows[("ground_truth", None)], rows[("griffin_lim", None)]
    assert truth["pesq_wb"] > 4.4 and truth["mcd"] == 0.0 and truth["logmel_l1"] == 0.0
    assert truth["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert truth["rtf"] is None
    for kind in ("fast6", "train"):
        voc = rows[("vocoder", kind)]
        assert truth["logmel_l1"] < gl["logmel_l1"] < voc["logmel_l1"]
        assert voc["mcd"] > gl["mcd"] > 0
        assert math.isfinite(voc["rtf"]) and voc["rtf"] > 0
    assert math.isfinite(gl["rtf"]) and gl["rtf"] > 0

    # the run held out 1 of its 10 utterances, so one of these 2 was trained on: a note says so
    assert any("were in its training set" in n for n in report["notes"])
    hw = report["hardware"]
    assert hw["cpu"] and hw["torch"] and hw["device"] == "cpu"
    assert report["arguments"]["held_out"] == 2 and report["arguments"]["data"] == str(tiny_corpus)

    md = (eval_run / "table.md").read_text()
    assert "MCD: 80-band log-mel DCT cepstrum c1-c24, no DTW, dB" in md
    assert sum(line.startswith("| ") for line in md.splitlines()) == 1 + 4  # header + 4 rows
    assert not [p for p in eval_run.iterdir() if ".tmp" in p.name]


def test_eval_two_checkpoints_skips_missing_schedules_and_uses_fixed_seeds(checkpoint, tiny_corpus, tmp_path,
                                                                         capsys):
    copy = tmp_path / "copy" / "last.pt"
    copy.parent.mkdir()
    shutil.copy(checkpoint, copy)
    rc = main(["eval", "vocoder", "--checkpoint", str(checkpoint), "--checkpoint", str(copy),
               "--data", str(tiny_corpus), "--schedules", "fast6,searched6", "--limit", "1",
               "--device", "cpu", "--out", str(tmp_path / "eval")])
    captured = capsys.readouterr()
    assert rc == 0
    assert "no schedule 'searched6'" in captured.err
    assert "| diffwave copy/last.pt (step 2) | fast6 | 6 |" in captured.out
    assert "| train |" not in captured.out
    rows = json.loads((tmp_path / "eval" / "table.json").read_text())["rows"]
    a, b = [r for r in rows if r["kind"] == "vocoder"]
    assert a["schedule"] == b["schedule"] == "fast6" and a["checkpoint"] != b["checkpoint"]
    assert a["utterances"][0]["id"] == "T000"  # --limit 1 of the whole corpus, sorted by id
    for key in ("pesq_wb", "stoi", "mcd", "logmel_l1"):  # same weights, same per-utterance seed
        assert a[key] == b[key]

    rc = main(["eval", "vocoder", "--checkpoint", str(checkpoint), "--data", str(tiny_corpus),
               "--schedules", "searched6", "--device", "cpu"])
    assert rc == 2 and "none of the requested schedules" in capsys.readouterr().err


def test_eval_scores_the_post_filtered_twin_of_each_vocoder_row(checkpoint, tiny_corpus, tmp_path, capsys):
    rc = main(["eval", "vocoder", "--checkpoint", str(checkpoint), "--data", str(tiny_corpus), "--schedules",
               "fast6", "--limit", "2", "--device", "cpu", "--postfilter-iterations", "3", "--out", str(tmp_path)])
    assert rc == 0
    rows = json.loads((tmp_path / "table.json").read_text())["rows"]
    assert [r["kind"] for r in rows] == ["vocoder", "vocoder", "griffin_lim", "ground_truth"]
    plain, filtered = rows[:2]
    assert filtered["system"] == plain["system"] + " + post-filter (3 passes)" and filtered["postfilter"] == 3
    # the filter pulls the (nearly untrained) vocoder's audio onto the reference's mel; it costs extra time
    assert filtered["logmel_l1"] < 0.7 * plain["logmel_l1"]
    assert filtered["rtf"] > plain["rtf"]
    assert main(["eval", "vocoder", "--checkpoint", str(checkpoint), "--data", str(tiny_corpus), "--limit", "1",
                 "--device", "cpu", "--postfilter-iterations", "-1"]) == 2
    assert "post-filter iterations must be" in capsys.readouterr().err


def test_eval_rejects_a_held_out_set_as_large_as_the_corpus(checkpoint, tiny_corpus, capsys):
    rc = main(["eval", "vocoder", "--checkpoint", str(checkpoint), "--data", str(tiny_corpus),
               "--held-out", "10"])
    assert rc == 2 and "cannot hold out 10 of 10" in capsys.readouterr().err


def test_bench_schedules():
    assert np.array_equal(bench_betas("wavegrad", 6), diffusion.WAVEGRAD_FAST_BETAS)
    assert np.array_equal(bench_betas("diffwave", 50), diffusion.DIFFWAVE_TRAIN_BETAS)
    np.testing.assert_allclose(bench_schedule("diffwave", 50)["conds"], np.arange(50), atol=1e-6)
    for model, (lo, hi) in [("diffwave", (1e-4, 0.5)), ("wavegrad", (1e-6, 0.06))]:
        betas = bench_betas(model, 12)
        assert len(betas) == 12 and betas[0] == pytest.approx(lo) and betas[-1] == pytest.approx(hi)
        ratios = betas[1:] / betas[:-1]
        np.testing.assert_allclose(ratios, ratios[0])  # geometric
    with pytest.raises(ValueError, match=">= 1"):
        bench_betas("diffwave", 0)


def test_peak_rss_sees_a_transient_allocation():
    # a fresh anonymous mapping, touched page by page: it raises the RSS whatever malloc has cached
    with PeakRSS() as rss:
        block = mmap.mmap(-1, 64 * 1024 * 1024)
        np.frombuffer(block, dtype=np.uint8)[::4096] = 1
        time.sleep(0.05)
        block.close()
        time.sleep(0.01)
    assert rss.increase > 48 * 1024 * 1024, (rss.exact, rss.start, rss.peak)


def test_bench_cli_tiny(tmp_path, capsys):
    rc = main(["bench", "vocoder", "--sizes", "tiny", "--steps", "2", "--seconds", "0.5", "--repeats", "1",
               "--out", str(tmp_path)])
    assert rc == 0
    report = json.loads((tmp_path / "table.json").read_text())
    cpu_rows = [r for r in report["rows"] if r["device"] == "cpu"]
    assert sorted(r["model"] for r in cpu_rows) == ["diffwave", "wavegrad"]
    for r in report["rows"]:
        assert r["size"] == "tiny" and r["steps"] == 2 and r["params"] > 0
        assert math.isfinite(r["rtf"]) and r["rtf"] > 0 and len(r["rtf_runs"]) == 1
        assert r["peak_mem_mib"] >= 0
        assert r["audio_seconds"] == pytest.approx(0.5, abs=256 / 22050)
    assert report["hardware"]["cpu"] and "cpu" in report["hardware"]["devices"]
    assert report["arguments"]["sizes"] == "tiny"
    assert "| diffwave | tiny |" in capsys.readouterr().out
    assert (tmp_path / "table.md").read_text().startswith("| Model |")


def test_bench_rejects_bad_arguments(capsys):
    assert main(["bench", "vocoder", "--sizes", "huge"]) == 2
    assert "unknown size 'huge'" in capsys.readouterr().err
    assert main(["bench", "vocoder", "--steps", "6,x"]) == 2
    assert "comma-separated integers" in capsys.readouterr().err
