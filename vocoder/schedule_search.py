"""Few-step schedule search (as in WaveGrad, Sec. 4): coordinate search over the K betas of an inference
schedule, minimising the log-mel L1 between held-out mels and the mels of the audio sampled from them.

The search works in log-beta space. It starts from the published 6-step schedule for K = 6 (otherwise a
geometric schedule over the same range), and in each sweep tries scaling each beta by a few factors,
keeping a change when it lowers the distance. Every candidate is scored with the same seeds, so the
comparison is between schedules and not between noise draws. The winner is stored in the checkpoint's
metadata as ``schedules["searched{K}"]`` (data: betas and the model's per-step conditioning values),
next to the search's scores.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from vocoder import diffusion
from vocoder.audio import mel_numpy, mel_torch
from vocoder.inference import Vocoder, make_schedule, vocode

FACTORS = (0.4, 0.7, 1.4, 2.5)


def initial_betas(model: str, steps: int) -> np.ndarray:
    """The published 6-step schedule, or a geometric one over its range for other K: ``[K]``."""
    fast = diffusion.DIFFWAVE_FAST_BETAS if model == "diffwave" else diffusion.WAVEGRAD_FAST_BETAS
    if steps == len(fast):
        return fast.copy()
    return np.geomspace(fast[0], fast[-1], steps)


def schedule_distance(voc: Vocoder, mels: list[np.ndarray], betas: np.ndarray, seed: int = 0) -> float:
    """Mean log-mel L1 between each mel ``[80, F]`` and the mel of its vocoded audio under ``betas`` ``[K]``."""
    sched = make_schedule(voc.name, voc.train_betas, betas)
    total = 0.0
    for i, mel in enumerate(mels):
        audio = vocode(voc.model, mel, sched, sampler="ddpm", seed=seed + i, device=voc.device)
        est = mel_torch(torch.from_numpy(audio)).numpy()
        total += float(np.abs(est - mel[:, : est.shape[1]]).mean())
    return total / len(mels)


def coordinate_search(score: Callable[[np.ndarray], float], betas: np.ndarray, sweeps: int = 3,
                      factors: tuple[float, ...] = FACTORS, log: Callable[[str], None] = lambda s: None
                      ) -> tuple[np.ndarray, float, float]:
    """Minimise ``score(betas)`` by scaling one beta at a time; betas stay sorted and in (0, 0.9].

    Returns (best betas ``[K]``, its score, the starting score).
    """
    best = np.asarray(betas, dtype=np.float64).copy()
    best_score = start = score(best)
    log(f"start: {start:.4f}  betas={np.array2string(best, precision=5)}")
    for sweep in range(sweeps):
        improved = False
        for k in range(len(best)):
            for f in factors:
                cand = best.copy()
                cand[k] = min(cand[k] * f, 0.9)
                if np.any(np.diff(cand) <= 0) or cand[k] == best[k]:
                    continue
                s = score(cand)
                if s < best_score - 1e-4:
                    best, best_score, improved = cand, s, True
                    log(f"sweep {sweep + 1}, beta[{k}] x{f}: {s:.4f}")
        if not improved:
            break
    return best, best_score, start


def search_cli(args) -> int:
    """``gradwave schedule search``: search, then store the schedule in the checkpoint (atomically)."""
    from vocoder.training.checkpoint import update_metadata
    from vocoder.training.data import AudioBank, read_metadata, split

    if args.steps < 1:
        raise ValueError("--steps must be at least 1")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    voc = Vocoder(args.checkpoint, device=device)
    n_val = voc.config["model"]["task"]["n_val"]
    items = read_metadata(args.data)
    n_val = min(n_val, len(items) // 10)
    _, val = split(items, n_val)
    if not val:
        raise ValueError(f"{args.data}: too few utterances for a held-out split")
    bank = AudioBank(val[: args.items])
    frames = int(args.seconds * 22050 / 256)
    mels = [mel_numpy(bank.wave(i)[: frames * 256]) for i in range(len(bank))]

    def log(msg: str) -> None:
        print(f"schedule search: {msg}", file=sys.stderr, flush=True)

    t0 = time.time()
    best, best_score, start = coordinate_search(lambda b: schedule_distance(voc, mels, b),
                                                initial_betas(voc.name, args.steps), sweeps=args.iters, log=log)
    name = f"searched{args.steps}"
    schedules = dict(voc.schedules)
    schedules[name] = make_schedule(voc.name, voc.train_betas, best)
    search_info = dict(voc.metadata.get("schedule_search", {}))
    search_info[name] = {"logmel_l1": best_score, "start_logmel_l1": start, "items": len(mels),
                         "seconds": args.seconds, "minutes": (time.time() - t0) / 60}
    update_metadata(args.checkpoint, schedules=schedules, schedule_search=search_info)
    print(f"{name}: log-mel L1 {start:.4f} -> {best_score:.4f}; betas {[float(f'{b:.4g}') for b in best]}; "
          f"stored in {args.checkpoint}")
    return 0
