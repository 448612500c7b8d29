"""Copy-synthesis of held-out recordings through a bundle's vocoder, with 0..N passes of the mel-envelope
post-filter (:mod:`vocoder.postfilter`) and with Griffin-Lim, scored by Whisper base WER, DNSMOS and log-mel
L1 to the recording: the copy-synthesis comparison of session 11 (docs/training.md), made reproducible.

    python tools/postfilter_eval.py [--voice serve/voices/joe] [--items 60] [--passes 0,3,5,8] [--griffin-lim]
        [--recordings]

Each recording is vocoded once, in one piece, with seed 0 and the bundle's default schedule, without the
post-filter; every setting then filters that same audio (the runtime filters each window, which carries
padded edge frames at the sentence's ends: on LJ050-0001 the two differ by at most 3e-5, at the last samples).
Needs the eval extra (faster-whisper, speechmos).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from scipy.signal import resample_poly

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from serve.engine import Synthesizer  # noqa: E402
from tts.speech_metrics import DnsMos, Transcriber, corpus_wer, normalize_for_wer, word_errors  # noqa: E402
from vocoder.audio import SAMPLE_RATE, clip_log_mel, load_audio, mel_numpy  # noqa: E402
from vocoder.metrics import griffin_lim, log_mel_l1  # noqa: E402
from vocoder.postfilter import OFF, PostFilter, mel_postfilter  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voice", default=os.path.join(ROOT, "serve/voices/joe"))
    ap.add_argument("--data", default=os.path.join(ROOT, "../shared/corpus/joe-ljs-test"))
    ap.add_argument("--items", type=int, default=60)
    ap.add_argument("--passes", default="0,3", help="comma-separated post-filter pass counts (0: none)")
    ap.add_argument("--griffin-lim", action="store_true", help="also score Griffin-Lim (32 iterations)")
    ap.add_argument("--recordings", action="store_true", help="also score the recordings themselves")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    passes = [int(p) for p in args.passes.split(",") if p.strip()]
    synth = Synthesizer(args.voice, device="cpu", threads=args.threads, postfilter=OFF)
    with open(os.path.join(args.data, "metadata.csv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("|") for line in f if line.strip()][: args.items]
    items = []  # (reference text, recording [T], its mel [80, F], vocoded [T])
    for row in rows:
        audio = load_audio(os.path.join(args.data, "wavs", f"{row[0]}.flac"))
        mel = mel_numpy(audio)
        items.append((row[-1], audio, mel, synth.vocode(mel, seed=0)))
    print(f"vocoded {len(items)} recordings", file=sys.stderr, flush=True)
    asr, dnsmos = Transcriber("base", threads=args.threads), DnsMos(threads=args.threads)
    systems = {f"vocoder, {n} post-filter passes": (lambda mel, out, n=n: mel_postfilter(
        out[None], clip_log_mel(mel)[None], PostFilter(iterations=n))[0]) for n in passes}
    if args.griffin_lim:
        systems["Griffin-Lim (32 iterations)"] = lambda mel, out: griffin_lim(mel, n_iter=32, seed=0)
    recording = {id(out): audio for _, audio, _, out in items}
    if args.recordings:
        systems["the recordings"] = lambda mel, out: recording[id(out)]
    print("| system | WER % | errors | P808 | OVRL | SIG | BAK | log-mel L1 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, make in systems.items():
        counts, scores, l1 = [], [], []
        for text, audio, mel, out in items:
            y = make(mel, out)  # [T]
            y16 = resample_poly(y, 16000, SAMPLE_RATE)
            counts.append(word_errors(normalize_for_wer(text), normalize_for_wer(asr(y16))))
            scores.append(dnsmos(y16))
            l1.append(log_mel_l1(audio, y))
        m = {k: np.mean([s[k] for s in scores]) for k in ("p808", "ovrl", "sig", "bak")}
        print(f"| {name} | {100 * corpus_wer(counts):.2f} | {sum(c['errors'] for c in counts)} | {m['p808']:.3f} | "
              f"{m['ovrl']:.3f} | {m['sig']:.3f} | {m['bak']:.3f} | {np.mean(l1):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
