"""The one training loop of gradwave, shared by the vocoders and Grad-TTS.

A :class:`Task` says what to train (model, batches, loss, validation); :func:`train` does the rest:
Adam, gradient clipping, EMA weights, bf16 autocast on CUDA, DistributedDataParallel under ``torchrun``,
a tqdm progress bar (loss, it/s), a JSONL metrics log, periodic validation and atomic checkpoints with
exact resume.

Exact resume: the batch of a step is a pure function of ``(seed, step, rank)``, and the global torch RNG
(dropout, the diffusion noise drawn in the loss) is re-seeded from the same triple at every step, so a run
resumed from the checkpoint of step n computes the same step n + 1 as a run that never stopped. Data
loading runs in DataLoader workers over the step indices, which keeps that property.

Kill safety: checkpoints are written atomically; SIGINT/SIGTERM finish the current step, write a
checkpoint and return.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import signal
import time
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from vocoder.audio import MEL
from vocoder.training.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint, set_rng_state
from vocoder.training.data import step_rng


@dataclass(frozen=True)
class TrainConfig:
    max_steps: int = 1_000_000
    batch_size: int = 16  # per process
    lr: float = 2e-4
    adam_betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    amp: str = "bf16"  # "bf16" or "none"; autocast is used on CUDA only
    num_workers: int = 2
    log_every: int = 20
    val_every: int = 2000
    ckpt_every: int = 1000
    keep_checkpoints: int = 2  # numbered checkpoints kept besides last.pt
    max_minutes: float = 0.0  # stop (with a checkpoint) after this wall time; 0 = no limit


class Task(Protocol):
    """What a training run needs from a model family."""

    name: str  # "diffwave", "wavegrad", "gradtts"
    # Whether every batch has the same tensor shapes. On CUDA this turns on cudnn.benchmark, which times the
    # convolution algorithms once per new input shape: a win for fixed segments (the vocoders), a loss for
    # padded variable-length batches (Grad-TTS), where each new length would be timed again.
    static_shapes: bool

    def build_model(self) -> torch.nn.Module: ...

    def config_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the model (JSON-able); stored in every checkpoint."""

    def metadata(self) -> dict[str, Any]:
        """Task data for the checkpoint (schedules, symbol table...)."""

    def batch(self, step: int, rank: int, seed: int, batch_size: int) -> dict[str, torch.Tensor]:
        """The CPU batch of one step of one rank, a pure function of the arguments."""

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss and the named scalars to log. Random draws use the global torch RNG."""

    def validate(self, model: torch.nn.Module, step: int, out_dir: str) -> dict[str, float]:
        """Evaluate the EMA model, write samples/plots under out_dir, return metrics to log."""


class _StepBatches(Dataset):
    """Map-style view over the step indices: item ``i`` is the batch of step ``start + i``."""

    def __init__(self, task: Task, start: int, stop: int, rank: int, seed: int, batch_size: int):
        self.task, self.start, self.stop, self.rank, self.seed, self.bs = task, start, stop, rank, seed, batch_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.task.batch(self.start + i, self.rank, self.seed, self.bs)


def _worker_init(_: int) -> None:
    """Data workers leave SIGINT/SIGTERM to the main process, which stops cleanly and checkpoints
    (a terminal's Ctrl-C or a process-group SIGTERM reaches the workers too)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _seed_step(seed: int, step: int, rank: int) -> None:
    s = int(step_rng(seed, step, rank, stream=7).integers(0, 2**63 - 1))
    torch.manual_seed(s)


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay with warm-up, ``min(decay, (1 + step) / (10 + step))``: early in a run the average follows
    the weights closely instead of remembering the random initialisation for thousands of steps."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` over parameters; buffers are copied."""
    ema_p = [p for p in ema.parameters()]
    mod_p = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_p, mod_p, 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


class _StopFlag:
    def __init__(self):
        self.stop = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.stop:  # a second signal: stop now
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train(task: Task, cfg: TrainConfig, out_dir: str, resume: bool = False, device: str | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Train ``task`` into ``out_dir`` (``checkpoints/``, ``metrics.jsonl``, ``samples/``).

    With ``resume``, continue from ``out_dir/checkpoints/last.pt`` exactly. Under ``torchrun`` each process
    trains one replica with DDP (NCCL on CUDA, gloo on CPU); rank 0 logs, validates and checkpoints.
    Returns a summary dict (final step, last losses, steps per second).
    """
    world, rank, local = _dist_info()
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = bool(getattr(task, "static_shapes", True))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    is_main = rank == 0
    ckpt_dir = os.path.join(out_dir, "checkpoints")
    os.makedirs(ckpt_dir, exist_ok=True)

    torch.manual_seed(cfg.seed)
    model = task.build_model().to(dev)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)
    config = {"task": task.name, "model": task.config_dict(), "train": dataclasses.asdict(cfg),
              "mel": dataclasses.asdict(MEL)}
    step = 0
    last = os.path.join(ckpt_dir, "last.pt")
    if resume:
        if not os.path.isfile(last):
            raise FileNotFoundError(f"--resume: no checkpoint at {last}")
        ckpt = load_checkpoint(last, map_location="cpu")
        if ckpt["config"]["task"] != task.name or ckpt["config"]["model"] != task.config_dict():
            raise ValueError(f"{last}: checkpoint is for {ckpt['config']['task']} with another model config; "
                             "resume with the same --model/--config")
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        if ckpt.get("optimizer") is not None:
            optimizer.load_state_dict(ckpt["optimizer"])
        else:  # a compact checkpoint that dropped the optimizer: Adam restarts warm from these weights
            print(f"note: {last} has no optimizer state; Adam restarts from zero moments", flush=True)
        for g in optimizer.param_groups:  # the new run's config wins for the learning rate
            g["lr"] = cfg.lr
        step = ckpt["step"]
        if ckpt.get("rng"):
            set_rng_state(ckpt["rng"])
        metadata = dict(ckpt.get("metadata", {}))
        metadata.update(task.metadata())
        if is_main:
            _truncate_log(os.path.join(out_dir, "metrics.jsonl"), step)
    else:
        if os.path.isfile(last):
            raise FileExistsError(f"{out_dir} already holds a run (checkpoints/last.pt): pass --resume to "
                                  "continue it, or choose another --out")
        metadata = task.metadata()

    # The module whose forward the task's loss calls; DDP must wrap that one so that gradient sync sees
    # the forward (Grad-TTS trains through a loss module, the vocoders through the model's own forward).
    net = task.training_module(model) if hasattr(task, "training_module") else model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)

    def checkpoint(at: int) -> None:
        if not is_main:
            return
        ck = make_checkpoint(model, ema, optimizer, at, config, metadata)
        save_checkpoint(last, ck)
        if cfg.keep_checkpoints > 0 and at % cfg.ckpt_every == 0:
            save_checkpoint(os.path.join(ckpt_dir, f"step-{at:08d}.pt"), ck)
            numbered = sorted(f for f in os.listdir(ckpt_dir) if f.startswith("step-") and f.endswith(".pt"))
            for f in numbered[: -cfg.keep_checkpoints]:
                os.unlink(os.path.join(ckpt_dir, f))

    loader = DataLoader(
        _StepBatches(task, step, cfg.max_steps, rank, cfg.seed, cfg.batch_size),
        batch_size=None, shuffle=False, num_workers=cfg.num_workers,
        persistent_workers=False, pin_memory=dev.type == "cuda",
        prefetch_factor=4 if cfg.num_workers > 0 else None, worker_init_fn=_worker_init,
    )
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" and cfg.amp == "bf16"
                else contextlib.nullcontext())
    log_path = os.path.join(out_dir, "metrics.jsonl")
    bar = None
    if is_main and progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_steps, initial=step, desc=task.name, unit="step", dynamic_ncols=True)
    t_start, steps_done, last_scalars = time.time(), 0, {}
    window: dict[str, float] = {}
    n_window = 0
    model.train()
    with _StopFlag() as flag:
        for batch in loader:
            _seed_step(cfg.seed, step, rank)
            batch = {k: v.to(dev, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
            with autocast:
                loss, scalars = task.loss(net, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"step {step}: loss is {loss.item()}; stopping (last checkpoint kept)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            ema_update(ema, model, ema_decay_at(step, cfg.ema_decay))
            step += 1
            steps_done += 1
            scalars = {"loss": float(loss.detach()), "grad_norm": float(grad_norm), **scalars}
            for k, v in scalars.items():
                window[k] = window.get(k, 0.0) + v
            n_window += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{scalars['loss']:.4f}", refresh=False)
            if is_main and step % cfg.log_every == 0:
                last_scalars = {k: v / n_window for k, v in window.items()}
                elapsed = time.time() - t_start
                _log(log_path, {"step": step, **last_scalars, "steps_per_s": steps_done / max(elapsed, 1e-9),
                                "lr": optimizer.param_groups[0]["lr"], "time": time.time()})
                window, n_window = {}, 0
            if is_main and cfg.val_every > 0 and step % cfg.val_every == 0:
                val = task.validate(ema, step, os.path.join(out_dir, "samples"))
                _log(log_path, {"step": step, **{f"val/{k}": v for k, v in val.items()}, "time": time.time()})
                model.train()
            if step % cfg.ckpt_every == 0:
                checkpoint(step)
            over_time = cfg.max_minutes > 0 and (time.time() - t_start) > cfg.max_minutes * 60
            if world > 1:
                stop_t = torch.tensor([int(flag.stop or over_time)], device=dev)
                dist.all_reduce(stop_t)
                stop_now = bool(stop_t.item())
            else:
                stop_now = flag.stop or over_time
            if stop_now or step >= cfg.max_steps:
                break
    if step % cfg.ckpt_every != 0 or steps_done == 0:
        checkpoint(step)
    if bar is not None:
        bar.close()
    if world > 1:
        dist.barrier()
    elapsed = time.time() - t_start
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))  # equal on every DDP rank
    return {"step": step, "steps_per_s": steps_done / max(elapsed, 1e-9), "param_checksum": checksum, **last_scalars}


def _log(path: str, row: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}) + "\n")


def _truncate_log(path: str, step: int) -> None:
    """Drop log rows written after the checkpoint being resumed (they will be written again)."""
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        rows = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= step]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(rows)
    os.replace(tmp, path)
