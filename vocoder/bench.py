"""``gradwave bench vocoder``: speed (RTF) and peak memory of DiffWave and WaveGrad per size and step count.

Models are randomly initialised and vocode a random mel ``[80, F]`` (speed does not depend on the weights).
For each model, size and step count K, on the CPU and, when available, on CUDA:

* RTF: the median over ``repeats`` timed runs (after one untimed warm-up run) of wall time / audio duration;
* peak memory, from one more (untimed) run, as the increase over the memory in use before it (so the
  model weights, already resident, are not counted):

  - CUDA: ``torch.cuda.max_memory_allocated()`` minus ``torch.cuda.memory_allocated()`` before the run
    (tensors allocated by torch; the caching allocator's reserve and the CUDA context are excluded);
  - CPU: the peak resident set size (``/proc/self/statm``, sampled every ~2 ms by a background thread)
    minus the RSS before the run, after ``malloc_trim(0)`` has handed freed heap back to the OS (glibc).

Schedules: WaveGrad uses the published 6-step schedule for K = 6 and ``geomspace(1e-6, 0.06, K)`` betas
otherwise; DiffWave uses its 50-step training schedule for K = 50 and ``geomspace(1e-4, 0.5, K)`` mapped
onto training steps with :func:`vocoder.diffusion.fast_steps` otherwise.
"""

from __future__ import annotations

import ctypes
import dataclasses
import datetime
import gc
import statistics
import sys
import time
from typing import Any

import numpy as np

from vocoder import diffusion
from vocoder.audio import HOP_LENGTH, N_MELS, SAMPLE_RATE
from vocoder.evaluate import arguments, emit_report, hardware_info, hardware_line
from vocoder.memory import PeakRSS

MODELS = ("diffwave", "wavegrad")
SIZES = ("base", "small", "tiny")
MIB = 1024.0 * 1024.0


def bench_betas(model: str, steps: int) -> np.ndarray:
    """The K-step inference betas ``[K]`` the benchmark uses for a model (see the module docstring)."""
    if steps < 1:
        raise ValueError(f"step counts must be >= 1, got {steps}")
    if model == "diffwave":
        if steps == len(diffusion.DIFFWAVE_TRAIN_BETAS):
            return diffusion.DIFFWAVE_TRAIN_BETAS
        return np.geomspace(1e-4, 0.5, steps)
    if model == "wavegrad":
        if steps == len(diffusion.WAVEGRAD_FAST_BETAS):
            return diffusion.WAVEGRAD_FAST_BETAS
        return np.geomspace(1e-6, 0.06, steps)
    raise ValueError(f"unknown vocoder {model!r} (expected one of {', '.join(MODELS)})")


def bench_schedule(model: str, steps: int) -> dict[str, list[float]]:
    """A schedule record ``{"betas": [K], "conds": [K]}`` for :func:`vocoder.inference.vocode`."""
    from vocoder.inference import make_schedule
    from vocoder.train import train_betas

    return make_schedule(model, train_betas(model), bench_betas(model, steps))


def _malloc_trim() -> None:
    """Return freed heap to the OS (glibc), so that the next run's allocations show up in the RSS."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _build(model: str, size: str):
    """A randomly initialised vocoder (seed 0) of a size: ``(module, parameter count)``."""
    import torch

    from vocoder.inference import build_vocoder
    from vocoder.train import model_config

    torch.manual_seed(0)
    net = build_vocoder(model, dataclasses.asdict(model_config(model, size))).eval()
    return net, sum(p.numel() for p in net.parameters())


def bench_one(net, model: str, steps: int, seconds: float, repeats: int, device: str) -> dict[str, Any]:
    """Time ``repeats`` vocodes of a random mel of ``seconds`` (after a warm-up) and measure the peak memory
    of one more. Returns ``{"rtf", "rtf_runs", "peak_mem_mib", "audio_seconds"}``."""
    import torch

    from vocoder.inference import vocode

    frames = max(1, round(seconds * SAMPLE_RATE / HOP_LENGTH))
    audio_seconds = frames * HOP_LENGTH / SAMPLE_RATE
    mel = np.random.default_rng(0).normal(-5.0, 2.0, (N_MELS, frames)).astype(np.float32)  # [80, F]
    schedule = bench_schedule(model, steps)
    net = net.to(device)
    cuda = device.startswith("cuda")

    def run() -> None:
        vocode(net, mel, schedule, sampler="ddpm", seed=0, device=device)  # returns numpy: synchronised

    run()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    if cuda:
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run()
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        _malloc_trim()
        with PeakRSS() as rss:
            run()
        peak = rss.increase
    rtfs = [t / audio_seconds for t in times]
    return {"rtf": statistics.median(rtfs), "rtf_runs": rtfs, "peak_mem_mib": peak / MIB,
            "audio_seconds": audio_seconds}


def bench(models: list[str], sizes: list[str], steps: list[int], seconds: float = 2.0, repeats: int = 2,
          devices: list[str] | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Benchmark every (device, model, size, K). Returns one row per combination."""
    import torch
    from tqdm import tqdm

    if seconds <= 0 or repeats < 1:
        raise ValueError("--seconds must be > 0 and --repeats >= 1")
    for s in sizes:
        if s not in SIZES:
            raise ValueError(f"unknown size {s!r} (expected some of {', '.join(SIZES)})")
    for k in steps:
        bench_betas(models[0], k)  # validates K
    devices = devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    combos = [(d, m, s, k) for d in devices for m in models for s in sizes for k in steps]
    rows = []
    with tqdm(combos, desc="bench vocoder", unit="config", disable=not progress, file=sys.stderr,
              dynamic_ncols=True) as bar:
        for device, model, size, k in bar:
            bar.set_postfix_str(f"{device} {model} {size} K={k}", refresh=True)
            net, n_params = _build(model, size)
            with torch.no_grad():
                result = bench_one(net, model, k, seconds, repeats, device)
            rows.append({"device": device, "model": model, "size": size, "params": n_params, "steps": k,
                         **result})
            del net
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
    return rows


def markdown(report: dict[str, Any]) -> str:
    """The benchmark as a markdown table with the method and hardware."""
    lines = ["| Model | Size | Params | Steps | Device | RTF ↓ | Peak mem (MiB) |",
             "|---|---|---:|---:|---|---:|---:|"]
    for r in report["rows"]:
        lines.append(f"| {r['model']} | {r['size']} | {r['params'] / 1e6:.2f}M | {r['steps']} | "
                     f"{r['device']} | {r['rtf']:.4f} | {r['peak_mem_mib']:.1f} |")
    a = report["arguments"]
    lines += [
        "",
        f"Random weights, random mel of {report['rows'][0]['audio_seconds']:.2f} s, DDPM sampler, batch 1. "
        f"RTF: wall time / audio duration, median of {a['repeats']} runs after one warm-up.",
        "Peak mem: increase over the memory in use before one more run (weights excluded); CUDA: "
        "torch.cuda.max_memory_allocated; CPU: peak RSS from /proc/self/statm sampled every ~2 ms by a "
        "background thread, after malloc_trim.",
        "Schedules: WaveGrad K=6 the published fast6, other K geomspace(1e-6, 0.06, K); DiffWave K=50 its "
        "training schedule, other K geomspace(1e-4, 0.5, K) mapped with fast_steps.",
        hardware_line(report["hardware"]),
    ]
    return "\n".join(lines) + "\n"


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {text!r}") from None


def bench_cli(args: Any) -> int:
    """``gradwave bench vocoder``: args has seconds, steps ("6,12,50"), sizes ("base,small"), repeats, out."""
    import torch

    steps = _ints(args.steps, "--steps")
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if not steps or not sizes:
        raise ValueError("--steps and --sizes must name at least one value")
    rows = bench(list(MODELS), sizes, steps, seconds=args.seconds, repeats=args.repeats)
    hw = hardware_info("cuda" if torch.cuda.is_available() else "cpu")
    hw["devices"] = sorted({r["device"] for r in rows})
    report = {"command": "bench vocoder",
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "hardware": hw, "arguments": arguments(args), "rows": rows}
    emit_report(args.out, report, markdown(report))
    return 0
