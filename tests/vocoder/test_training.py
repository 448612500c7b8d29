"""The shared training loop: it learns, checkpoints atomically, resumes exactly (also after SIGKILL), and runs DDP."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from vocoder.train import VocoderTask, VocoderTaskConfig
from vocoder.training.checkpoint import compact_checkpoint, load_checkpoint
from vocoder.training.loop import TrainConfig, train

TASK = VocoderTaskConfig(model="diffwave", size="tiny", segment_frames=8, val_items=1, val_seconds=0.5)


def _cfg(**kw):
    base = dict(max_steps=4, batch_size=2, num_workers=0, log_every=1, val_every=0, ckpt_every=2, lr=1e-3)
    base.update(kw)
    return TrainConfig(**base)


def _losses(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.fixture(scope="module")
def task(tiny_corpus):
    return VocoderTask(str(tiny_corpus), TASK, progress=False)


@pytest.fixture(scope="module")
def reference_run(task, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    train(task, _cfg(max_steps=6), str(out), progress=False)
    return out


def test_run_writes_checkpoint_log_and_samples(task, tmp_path):
    summary = train(task, _cfg(max_steps=2, val_every=2), str(tmp_path), progress=False)
    assert summary["step"] == 2
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert ckpt["step"] == 2 and ckpt["config"]["task"] == "diffwave"
    assert set(ckpt) >= {"model", "ema", "optimizer", "rng", "config", "metadata"}
    assert "fast6" in ckpt["metadata"]["schedules"] and len(ckpt["metadata"]["train_betas"]) == 50
    samples = sorted(os.listdir(tmp_path / "samples"))
    assert samples == ["step00000002.png", "step00000002.wav"]
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert any("val/logmel_l1_fast6" in r for r in rows)
    assert not [f for f in os.listdir(tmp_path / "checkpoints") if ".tmp" in f]


def test_refuses_to_overwrite_a_run_without_resume(task, reference_run):
    with pytest.raises(FileExistsError, match="--resume"):
        train(task, _cfg(), str(reference_run), progress=False)


def test_resume_continues_exactly(task, reference_run, tmp_path):
    train(task, _cfg(max_steps=3), str(tmp_path), progress=False)
    train(task, _cfg(max_steps=6), str(tmp_path), resume=True, progress=False)
    ref, got = _losses(reference_run), _losses(tmp_path)
    assert sorted(got) == [1, 2, 3, 4, 5, 6]  # no duplicated or missing log rows
    for step in (4, 5, 6):
        assert got[step] == ref[step], (step, got[step], ref[step])
    a = load_checkpoint(reference_run / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k


def test_compact_checkpoint_resumes_closely(task, reference_run, tmp_path):
    run = tmp_path / "run"
    train(task, _cfg(max_steps=3), str(run), progress=False)
    last = run / "checkpoints" / "last.pt"
    compact_checkpoint(last, last)
    ck = load_checkpoint(last)
    assert ck["compact"] and ck["rng"] is None
    train(task, _cfg(max_steps=4), str(run), resume=True, progress=False)
    ref, got = _losses(reference_run), _losses(run)
    assert abs(got[4] - ref[4]) < 1e-3 * abs(ref[4]) + 1e-4  # bf16 moments: close, not bit-exact


def test_sigkill_leaves_a_loadable_checkpoint_and_resume_reproduces_the_next_step(tiny_corpus, reference_run, tmp_path):
    run = tmp_path / "killed"
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"log_every": 1, "val_every": 0, "ckpt_every": 1, "lr": 1e-3, "num_workers": 0,
                                    "batch_size": 2}))
    cmd = [sys.executable, "-m", "serve.cli", "train", "vocoder", "--size", "tiny", "--segment-frames", "8",
           "--data", str(tiny_corpus), "--out", str(run), "--config", str(cfg_file), "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(cmd + ["--steps", "100000"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = run / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), "no checkpoint was written before the kill"
    step = load_checkpoint(last)["step"]  # loadable: the write was atomic
    if step >= 6:
        pytest.skip("the run outpaced the kill; nothing left to compare against")
    # the task config must match the reference's for the losses to be comparable
    subprocess.run(cmd + ["--steps", str(step + 1), "--resume"], env=env, check=True, capture_output=True)
    got, ref = _losses(run), _losses(reference_run)
    assert got[step + 1] == ref[step + 1]


def test_ddp_two_processes_on_cpu(tiny_corpus, tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(f"""
        import os, torch
        torch.set_num_threads(1)
        from vocoder.train import VocoderTask, VocoderTaskConfig
        from vocoder.training.loop import TrainConfig, train
        task = VocoderTask({str(tiny_corpus)!r}, VocoderTaskConfig(size="tiny", segment_frames=8, val_items=1),
                           progress=False)
        cfg = TrainConfig(max_steps=3, batch_size=2, num_workers=0, log_every=1, val_every=0, ckpt_every=3)
        out = {str(tmp_path / "run")!r}
        summary = train(task, cfg, out, progress=False)
        rank = int(os.environ["RANK"])
        torch.save({{"summary": summary}}, os.path.join(out, f"rank{{rank}}.pt"))
    """))
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["step"] == 3
    s0 = torch.load(tmp_path / "run" / "rank0.pt")["summary"]
    s1 = torch.load(tmp_path / "run" / "rank1.pt")["summary"]
    assert s0["step"] == s1["step"] == 3
    assert s0["param_checksum"] == s1["param_checksum"]  # the replicas stayed in sync
    # and they trained on different data: a single process on rank 0's batches ends elsewhere
    from vocoder.train import VocoderTask as T
    single = train(T(str(tiny_corpus), VocoderTaskConfig(size="tiny", segment_frames=8, val_items=1), progress=False),
                   TrainConfig(max_steps=3, batch_size=2, num_workers=0, log_every=1, val_every=0, ckpt_every=3),
                   str(tmp_path / "single"), progress=False)
    assert single["param_checksum"] != s0["param_checksum"]


def test_ema_warmup_follows_the_weights_early_and_the_decay_later():
    from vocoder.training.loop import ema_decay_at

    assert ema_decay_at(0, 0.999) == 0.1
    assert ema_decay_at(100, 0.999) < 0.95
    assert ema_decay_at(100_000, 0.999) == 0.999


def _resumes_to_step_4(task, checkpoint, tmp_path):
    """A fresh run directory holding ``checkpoint`` (of step 3) as its last.pt resumes and trains one step."""
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy(checkpoint, resumed / "checkpoints" / "last.pt")
    assert train(task, _cfg(max_steps=4), str(resumed), resume=True, progress=False)["step"] == 4


def test_compact_stores_the_ema_exactly_and_the_weights_as_an_fp16_offset(task, tmp_path):
    run = tmp_path / "run"
    train(task, _cfg(max_steps=3), str(run), progress=False)
    last, small = run / "checkpoints" / "last.pt", tmp_path / "small.pt"
    full = load_checkpoint(last)
    assert any(not torch.equal(full["ema"][k], v) for k, v in full["model"].items())  # the offset path is taken
    compact_checkpoint(last, small, drop_optimizer=True)
    raw = torch.load(small, weights_only=False)
    assert raw["model"] == "ema+offset"
    assert all(v.dtype == torch.float16 for v in raw["model_offset"].values() if v.is_floating_point())
    back = load_checkpoint(small)
    assert "model_offset" not in back
    for k, w in full["model"].items():
        assert torch.equal(back["ema"][k], full["ema"][k]), k  # what ships is exact
        assert back["model"][k].dtype == w.dtype
        err = (back["model"][k] - w).abs()
        assert torch.all(err <= (w - full["ema"][k]).abs() * 2**-10 + 1e-7), k
    stored = sum(v.numel() * v.element_size() for v in raw["model_offset"].values() if v.is_floating_point())
    assert stored == sum(v.numel() * 2 for v in full["model"].values() if v.is_floating_point())  # half of fp32
    _resumes_to_step_4(task, small, tmp_path)


def test_compact_without_optimizer_resumes_with_a_warm_restart(task, tmp_path):
    run = tmp_path / "run"
    train(task, _cfg(max_steps=2), str(run), progress=False)
    last = run / "checkpoints" / "last.pt"
    ck = load_checkpoint(last)
    ck["ema"] = {k: v.clone() for k, v in ck["model"].items()}
    torch.save(ck, last)
    compact_checkpoint(last, last, drop_optimizer=True)
    raw = torch.load(last, weights_only=False)
    assert raw["ema"] == "model" and raw["optimizer"] is None  # stored once, no moments
    assert torch.equal(load_checkpoint(last)["ema"][next(iter(ck["model"]))], next(iter(ck["model"].values())))
    assert train(task, _cfg(max_steps=3), str(run), resume=True, progress=False)["step"] == 3


def test_compact_from_ema_stores_only_the_ema_and_resumes_from_it(task, tmp_path):
    run = tmp_path / "run"
    train(task, _cfg(max_steps=3), str(run), progress=False)
    last, small = run / "checkpoints" / "last.pt", tmp_path / "ema.pt"
    full = load_checkpoint(last)
    assert any(not torch.equal(full["ema"][k], v) for k, v in full["model"].items())
    compact_checkpoint(last, small, weights_from_ema=True)
    raw = torch.load(small, weights_only=False)
    assert raw["ema"] == "model" and raw["optimizer"] is None and "model_offset" not in raw
    assert small.stat().st_size < last.stat().st_size / 2  # one fp32 copy of the weights, no moments
    back = load_checkpoint(small)
    for k, v in full["ema"].items():
        assert torch.equal(back["ema"][k], v) and torch.equal(back["model"][k], v), k
    _resumes_to_step_4(task, small, tmp_path)


def test_compact_half_stores_the_ema_in_fp16_and_resumes_from_it(task, tmp_path):
    run = tmp_path / "run"
    train(task, _cfg(max_steps=3), str(run), progress=False)
    last, ema32, ema16 = run / "checkpoints" / "last.pt", tmp_path / "ema32.pt", tmp_path / "ema16.pt"
    with pytest.raises(ValueError, match="weights_from_ema"):
        compact_checkpoint(last, ema16, half=True)
    compact_checkpoint(last, ema32, weights_from_ema=True)
    compact_checkpoint(last, ema16, weights_from_ema=True, half=True)
    raw = torch.load(ema16, weights_only=False)
    assert raw["half"] is True and raw["ema"] == "model" and raw["optimizer"] is None
    floats = [v for v in raw["model"].values() if v.is_floating_point()]
    assert any(v.dim() >= 2 for v in floats) and any(v.dim() < 2 for v in floats)
    assert all(v.dtype == (torch.float16 if v.dim() >= 2 else torch.float32) for v in floats)
    assert ema16.stat().st_size < 0.6 * ema32.stat().st_size
    full, back = load_checkpoint(last), load_checkpoint(ema16)
    for k, v in full["ema"].items():
        assert back["ema"][k].dtype == v.dtype and torch.equal(back["model"][k], back["ema"][k]), k
        if v.is_floating_point():  # exactly fp16's rounding of the EMA's weights; 1-D tensors exact
            assert torch.equal(back["ema"][k], v.half().float() if v.dim() >= 2 else v), k
    _resumes_to_step_4(task, ema16, tmp_path)
