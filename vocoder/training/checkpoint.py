"""Atomic checkpoints with everything needed to resume a run exactly.

A checkpoint is one ``torch.save`` dict:

* ``model``, ``ema``: state dicts (the EMA weights are what inference uses);
* ``optimizer``: the optimizer state dict;
* ``step``: optimizer steps completed;
* ``rng``: python, numpy and torch (CPU and CUDA) RNG states;
* ``config``: JSON-able dict with the task name, the model config, the training config and the mel
  contract; ``metadata``: task data such as the training and searched few-step schedules.

Writes go to a temporary file in the same directory, are fsync'ed, then renamed over the target, so a kill
at any moment leaves either the old or the new checkpoint, never a torn one.

A *compact* checkpoint (for committing to git) keeps the EMA (what ships) exactly, the weights as an fp16
offset from the EMA (or not at all when they equal it) and the Adam moments in bfloat16 (or none); loading
rebuilds fp32 tensors. Resuming from it continues the run with weights and moments rounded that little
(documented; exact resume uses the full checkpoint). The smallest compact form is the EMA alone, optionally
rounded to fp16 (``compact_checkpoint(..., weights_from_ema=True, half=True)``), for a warm restart.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

CHECKPOINT_VERSION = 1


def rng_state() -> dict[str, Any]:
    """The RNG states of python, numpy and torch (CPU and, when present, every CUDA device)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` through a temporary file and an atomic rename."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _cast_moments(opt_state: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    state = {}
    for k, v in opt_state["state"].items():
        state[k] = {n: (t.to(dtype) if torch.is_tensor(t) and t.is_floating_point() and t.dim() > 0 else t)
                    for n, t in v.items()}
    return {"state": state, "param_groups": opt_state["param_groups"]}


def make_checkpoint(
    model: torch.nn.Module, ema: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
    config: dict[str, Any], metadata: dict[str, Any] | None = None, compact: bool = False,
) -> dict[str, Any]:
    """Assemble the checkpoint dict (see the module docstring)."""
    opt = optimizer.state_dict()
    if compact:
        opt = _cast_moments(opt, torch.bfloat16)
    return {
        "version": CHECKPOINT_VERSION,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "ema": {k: v.detach().cpu() for k, v in ema.state_dict().items()},
        "optimizer": opt,
        "step": int(step),
        "rng": None if compact else rng_state(),
        "config": config,
        "metadata": dict(metadata or {}),
        "compact": compact,
    }


def save_checkpoint(path: str | os.PathLike, ckpt: dict[str, Any]) -> None:
    """Write a checkpoint dict atomically."""
    atomic_torch_save(ckpt, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with a clear error for anything else."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        raise ValueError(f"{path}: not a readable gradwave checkpoint ({e})") from None
    if not isinstance(ckpt, dict) or "ema" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path}: not a gradwave checkpoint (no 'ema'/'config' entries)")
    if ckpt.get("version", 0) > CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {ckpt['version']} is newer than this gradwave supports")
    if ckpt.get("half"):  # compact form with the weights rounded to fp16 for storage
        ckpt["model"] = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    if ckpt.get("ema") == "model":  # compact form of an EMA equal to the weights
        ckpt["ema"] = {k: v.clone() for k, v in ckpt["model"].items()}
    if ckpt.get("model") == "ema+offset":  # compact form: weights = EMA + an fp16 offset
        ckpt["model"] = {k: ckpt["ema"][k] + off.to(ckpt["ema"][k].dtype) if off.is_floating_point() else off
                         for k, off in ckpt.pop("model_offset").items()}
    if ckpt.get("compact") and ckpt.get("optimizer") is not None:
        ckpt["optimizer"] = _cast_moments(ckpt["optimizer"], torch.float32)
    return ckpt


def _fp16_if_finite(t: torch.Tensor) -> torch.Tensor:
    """``t`` in fp16, or as it is where fp16 would overflow."""
    half = t.to(torch.float16)
    return half if bool(torch.isfinite(half).all()) else t


def _offset(weight: torch.Tensor, ema: torch.Tensor) -> torch.Tensor:
    """``weight - ema`` in fp16 for a float tensor (fp32 where fp16 would overflow); other tensors as they are."""
    return _fp16_if_finite(weight - ema) if weight.is_floating_point() else weight


def _half(t: torch.Tensor) -> torch.Tensor:
    """A float weight (2-D or more) in fp16, kept in its dtype where fp16 would overflow; biases, norm gains
    and other 1-D or scalar tensors (a few KB) as they are, as the fp16 voice bundle keeps them."""
    return _fp16_if_finite(t) if t.is_floating_point() and t.dim() >= 2 else t


def compact_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, drop_optimizer: bool = False,
                       weights_from_ema: bool = False, half: bool = False) -> None:
    """Rewrite ``src`` as a compact checkpoint at ``dst``: Adam moments in bf16 (or dropped, for a warm
    restart of the optimizer), no RNG state, the EMA exact, and the weights stored once when they equal the
    EMA, else as their fp16 offset from it (half the bytes; the offset is small, so the weights come back
    within about 1e-3 of the offset, plus 6e-8).

    ``weights_from_ema`` (implies ``drop_optimizer``) is the smallest form, the EMA alone: a resumed run
    restarts both the weights (from the EMA) and Adam. It is what a milestone commits when the repository's
    history has to stay small (4 bytes a parameter instead of 6, or 10 with moments). ``half`` (only with
    ``weights_from_ema``) also rounds that EMA's weight tensors (2-D and up) to fp16 for storage, about 2 bytes
    a parameter: loading returns them as fp32, within fp16's rounding (relative 2^-11) of the EMA."""
    if half and not weights_from_ema:
        raise ValueError("half=True stores the EMA alone in fp16: it needs weights_from_ema=True")
    ckpt = load_checkpoint(src)
    if weights_from_ema:
        drop_optimizer = True
        ckpt["model"] = {k: v.clone() for k, v in ckpt["ema"].items()}
    ckpt["optimizer"] = None if drop_optimizer else _cast_moments(ckpt["optimizer"], torch.bfloat16)
    if all(torch.equal(ckpt["ema"][k], v) for k, v in ckpt["model"].items()):
        ckpt["ema"] = "model"
    else:
        ckpt["model_offset"] = {k: _offset(v, ckpt["ema"][k]) for k, v in ckpt["model"].items()}
        ckpt["model"] = "ema+offset"
    if half:
        ckpt["model"] = {k: _half(v) for k, v in ckpt["model"].items()}
        ckpt["half"] = True
    ckpt["rng"] = None
    ckpt["compact"] = True
    atomic_torch_save(ckpt, dst)


def update_metadata(path: str | os.PathLike, **entries: Any) -> None:
    """Add or replace metadata entries (e.g. a searched schedule) in a checkpoint, atomically."""
    ckpt = torch.load(os.fspath(path), map_location="cpu", weights_only=False)
    ckpt.setdefault("metadata", {}).update(entries)
    atomic_torch_save(ckpt, path)
