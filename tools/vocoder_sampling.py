"""Copy-synthesis of held-out recordings through a bundle's vocoder under several sampler settings, scored by
DNSMOS (P808, OVRL) and log-mel L1 to the recording: does the sampler or the schedule, rather than training,
limit the vocoder? (Session 9: no; see docs/training.md.)

    python tools/vocoder_sampling.py [--voice serve/voices/joe] [--items 10] [--configs "searched6 ddpm,fast6 ddpm"]

Configurations: ``searched6 ddpm`` (the shipped default), ``searched6 ddim``, ``fast6 ddpm`` and
``searched6x2 ddpm`` (12 steps: each searched beta split in two with the same marginal, (1 - b')^2 = 1 - b).
A bundle without ``searched6`` (a fresh export of a training checkpoint) borrows the shipped voice's.
Each recording is vocoded in one piece with seed 0 on 1 CPU thread, without the mel-envelope post-filter
(the sampler's own output, as in session 9; ``tools/postfilter_eval.py`` measures the filter).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from scipy.signal import resample_poly

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from serve.bundle import Schedule, load_bundle  # noqa: E402
from serve.engine import Synthesizer  # noqa: E402
from tts.speech_metrics import DnsMos  # noqa: E402
from vocoder import diffusion  # noqa: E402
from vocoder.audio import SAMPLE_RATE, load_audio, mel_numpy  # noqa: E402
from vocoder.metrics import log_mel_l1  # noqa: E402
from vocoder.postfilter import OFF  # noqa: E402


def configs(schedules: dict[str, Schedule]) -> dict[str, tuple[Schedule, str]]:
    s6 = np.array(schedules["searched6"].betas)  # [6]
    s12 = np.repeat(1.0 - np.sqrt(1.0 - s6), 2)  # [12], the same noise levels after every second step
    return {
        "searched6 ddpm": (schedules["searched6"], "ddpm"),
        "searched6 ddim": (schedules["searched6"], "ddim"),
        "fast6 ddpm": (schedules["fast6"], "ddpm"),
        "searched6x2 ddpm": (Schedule(tuple(s12), tuple(diffusion.noise_levels(s12))), "ddpm"),  # WaveGrad conds
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voice", default=os.path.join(ROOT, "serve/voices/joe"))
    ap.add_argument("--data", default=os.path.join(ROOT, "../shared/corpus/joe-ljs-test"))
    ap.add_argument("--items", type=int, default=10)
    ap.add_argument("--configs", help="comma-separated subset of the configurations (default: all)")
    args = ap.parse_args()
    synth = Synthesizer(args.voice, device="cpu", threads=1, postfilter=OFF)
    if synth.bundle.vocoder.model != "wavegrad":  # the 12-step schedule's conds are WaveGrad noise levels
        ap.error(f"{args.voice}: a WaveGrad bundle is needed, this one has {synth.bundle.vocoder.model}")
    schedules = dict(synth.bundle.vocoder.schedules)
    if "searched6" not in schedules:
        schedules["searched6"] = load_bundle(os.path.join(ROOT, "serve/voices/joe")).vocoder.schedules["searched6"]
    with open(os.path.join(args.data, "metadata.csv"), encoding="utf-8") as f:
        ids = [line.split("|")[0] for line in f if line.strip()][: args.items]
    recordings = {i: load_audio(os.path.join(args.data, "wavs", f"{i}.flac")) for i in ids}  # [T] each
    dnsmos = DnsMos(threads=1)
    wanted = args.configs.split(",") if args.configs else None
    for name, (schedule, sampler) in configs(schedules).items():
        if wanted and name not in wanted:
            continue
        synth._schedule = lambda _steps, s=schedule: s  # the runtime's schedule lookup, pinned to this one
        p808, ovrl, l1, seconds = [], [], [], 0.0
        for audio in recordings.values():
            t0 = time.perf_counter()
            out = synth.vocode(mel_numpy(audio), seed=0, sampler=sampler)  # [T]
            seconds += time.perf_counter() - t0
            scores = dnsmos(resample_poly(out, 16000, SAMPLE_RATE))
            p808.append(scores["p808"])
            ovrl.append(scores["ovrl"])
            l1.append(log_mel_l1(audio, out))
        print(f"{name}: P808 {np.mean(p808):.3f}  OVRL {np.mean(ovrl):.3f}  log-mel L1 {np.mean(l1):.3f}  "
              f"({seconds:.0f} s to vocode)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
