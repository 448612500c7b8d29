"""Grad-TTS trains on the shared loop: checkpoints carry the symbol table, resume is exact, data is cached."""

import json

import pytest
import torch

from tests.vocoder.conftest import write_corpus
from tts.text import default_table
from tts.train import TTSTask, TTSTaskConfig, collate, utterance_ids
from vocoder.training.checkpoint import load_checkpoint
from vocoder.training.loop import TrainConfig, train


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("ttscorpus"), n=10, seconds=0.8)


def _cfg(steps):
    return TrainConfig(max_steps=steps, batch_size=2, num_workers=0, log_every=1, val_every=0, ckpt_every=2,
                       lr=1e-3)


def test_utterance_ids_intersperse_blanks():
    table = default_table()
    ids = utterance_ids("Tone number one. Two.", table)
    assert len(ids) % 2 == 1 and all(ids[i] == table.blank_id for i in range(0, len(ids), 2))


def test_collate_pads():
    import numpy as np

    b = collate([np.array([1, 2, 3]), np.array([4])], [np.ones((80, 5), np.float16), np.ones((80, 2), np.float16)])
    assert b["ids"].shape == (2, 3) and b["ids"][1, 1:].eq(0).all()
    assert b["mel"].shape == (2, 80, 5) and b["mel"][1, :, 2:].eq(0).all()
    assert b["lengths"].tolist() == [3, 1] and b["mel_lengths"].tolist() == [5, 2]


def test_tts_trains_on_the_shared_loop_and_resumes_exactly(corpus, tmp_path):
    task = TTSTask(str(corpus), TTSTaskConfig(size="tiny", n_val=1), cache_dir=str(tmp_path / "a"), progress=False)
    assert (tmp_path / "a" / "phonemes.npz").exists() and (tmp_path / "a" / "mels.npz").exists()
    train(task, _cfg(4), str(tmp_path / "a"), progress=False)
    ck = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    assert ck["config"]["task"] == "gradtts" and ck["metadata"]["symbols"] == default_table().to_dict()
    assert ck["metadata"]["decoder"]["n_steps"] == 10
    task_b = TTSTask(str(corpus), TTSTaskConfig(size="tiny", n_val=1), cache_dir=str(tmp_path / "a"),
                     progress=False)  # reuses the cache
    train(task_b, _cfg(2), str(tmp_path / "b"), progress=False)
    train(task_b, _cfg(4), str(tmp_path / "b"), resume=True, progress=False)
    a = [json.loads(x) for x in open(tmp_path / "a" / "metrics.jsonl")]
    b = [json.loads(x) for x in open(tmp_path / "b" / "metrics.jsonl")]
    la = {r["step"]: r["loss"] for r in a}
    lb = {r["step"]: r["loss"] for r in b}
    assert la[3] == lb[3] and la[4] == lb[4]
    cb = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    for k in ck["ema"]:
        assert torch.equal(ck["ema"][k], cb["ema"][k]), k
