"""Schedule search: the coordinate search improves a known objective, and the CLI stores its result as data."""

import numpy as np

from serve.cli import main
from vocoder.schedule_search import coordinate_search, initial_betas
from vocoder.train import VocoderTask, VocoderTaskConfig
from vocoder.training.checkpoint import load_checkpoint
from vocoder.training.loop import TrainConfig, train


def test_coordinate_search_moves_towards_the_optimum_and_keeps_betas_sorted():
    target = np.array([1e-4, 3e-3, 0.02, 0.3])

    def score(b):
        return float(np.abs(np.log(b) - np.log(target)).sum())

    start = np.geomspace(1e-4, 0.5, 4)
    best, best_score, start_score = coordinate_search(score, start, sweeps=5)
    assert best_score < 0.5 * start_score
    assert np.all(np.diff(best) > 0) and np.all(best > 0) and np.all(best <= 0.9)


def test_initial_betas():
    assert list(initial_betas("diffwave", 6)) == [1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5]
    b = initial_betas("wavegrad", 4)
    assert len(b) == 4 and np.isclose(b[0], 1e-6) and np.isclose(b[-1], 0.06)


def test_cli_stores_the_searched_schedule_in_the_checkpoint(tiny_corpus, tmp_path):
    task = VocoderTask(str(tiny_corpus), VocoderTaskConfig(size="tiny", segment_frames=8, val_items=1), progress=False)
    train(task, TrainConfig(max_steps=2, batch_size=2, num_workers=0, val_every=0, ckpt_every=2), str(tmp_path),
          progress=False)
    ckpt_path = tmp_path / "checkpoints" / "last.pt"
    rc = main(["schedule", "search", "--checkpoint", str(ckpt_path), "--steps", "3", "--data", str(tiny_corpus),
               "--items", "1", "--seconds", "0.3", "--iters", "1"])
    assert rc == 0
    ck = load_checkpoint(ckpt_path)
    sched = ck["metadata"]["schedules"]["searched3"]
    assert len(sched["betas"]) == len(sched["conds"]) == 3
    assert np.all(np.diff(sched["betas"]) > 0)
    assert "fast6" in ck["metadata"]["schedules"]  # existing schedules are kept
    info = ck["metadata"]["schedule_search"]["searched3"]
    assert info["logmel_l1"] <= info["start_logmel_l1"]
    assert ck["step"] == 2 and ck["ema"]  # the weights are untouched
