"""``gradwave bench --voice DIR``: speed of each stage of the whole pipeline, ONNX Runtime against torch eager.

Per stage (encoder, decoder at N steps, vocoder at K steps) the time spent in that stage's graph calls,
as a real-time factor (stage seconds / audio seconds); for the whole pipeline the RTF, the time to the
first audio chunk of a streamed synthesis, and the peak RSS increase (sampled every 2 ms from
/proc/self/statm). The torch rows need the checkpoints (``--acoustic``, ``--vocoder``); torch is imported
only for them, so the ONNX rows run on the torch-free runtime.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from typing import Any

import numpy as np

from serve.engine import Synthesizer, default_voice
from serve.streaming import stream_stats
from vocoder.bench import PeakRSS
from vocoder.evaluate import arguments, cpu_model, emit_report

TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Diffusion models turn noise into speech, one small step at a time, and this one runs in a few steps.",
)
STAGES = {"encode": "encoder", "score": "decoder", "vocoder_step": "vocoder"}


class TimedGraphs:
    """Wraps a runtime's graphs (ONNX or torch) and adds up the seconds spent in each stage's calls."""

    def __init__(self, graphs: Any):
        self._graphs = graphs
        self.seconds = dict.fromkeys(STAGES.values(), 0.0)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._graphs, name)
        if name not in STAGES:
            return attr

        def timed(*a, **kw):
            t0 = time.perf_counter()
            out = attr(*a, **kw)
            self.seconds[STAGES[name]] += time.perf_counter() - t0
            return out
        return timed


def bench_synth(synth: Synthesizer, label: str, texts: tuple[str, ...], steps: int, vocoder_steps: Any,
                repeats: int) -> dict[str, Any]:
    """Median over ``repeats`` (after one warm-up) of the stage RTFs, total RTF and time to first audio."""
    timed = TimedGraphs(synth.graphs)
    synth.graphs = timed
    try:
        runs = []
        for r in range(repeats + 1):
            for k in timed.seconds:
                timed.seconds[k] = 0.0
            with PeakRSS() as mem:
                firsts, audio_s, t0 = [], 0.0, time.perf_counter()
                for text in texts:
                    stats = stream_stats(synth.synthesize(text, steps=steps, vocoder_steps=vocoder_steps, seed=r))
                    firsts.append(stats["first_chunk_s"])
                    audio_s += stats["audio_s"]
                total = time.perf_counter() - t0
            if r == 0:
                continue  # warm-up
            runs.append({"rtf": total / audio_s, "first_audio_s": statistics.mean(firsts), "audio_s": audio_s,
                         **{f"rtf_{k}": v / audio_s for k, v in timed.seconds.items()},
                         "peak_rss_mb": mem.increase / 2**20})
    finally:
        synth.graphs = timed._graphs
    row = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return {"backend": label, "steps": steps, "vocoder_steps": vocoder_steps, **row}


def markdown(report: dict[str, Any]) -> str:
    hw = report["hardware"]
    lines = [
        f"# gradwave bench: {report['voice']}",
        "",
        f"Hardware: CPU {hw['cpu']} ({hw['cpu_count']} cores), onnxruntime {hw['onnxruntime']} "
        f"({', '.join(hw['providers'])}){'; torch ' + hw['torch'] if hw.get('torch') else ''}.",
        f"Texts: {len(report['texts'])} sentences; median of {report['repeats']} runs after a warm-up. "
        "RTF = compute seconds / audio seconds (lower is faster; < 1 is faster than real time). "
        "Peak memory: RSS increase during the run, sampled every 2 ms.",
        "",
        "| backend | decoder steps | vocoder schedule | encoder RTF | decoder RTF | vocoder RTF | total RTF "
        "| first audio (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(f"| {r['backend']} | {r['steps']} | {r['vocoder_steps']} | {r['rtf_encoder']:.4f} | "
                     f"{r['rtf_decoder']:.3f} | {r['rtf_vocoder']:.3f} | {r['rtf']:.3f} | {r['first_audio_s']:.3f} "
                     f"| {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def bench_cli(args) -> int:
    import onnxruntime as ort

    voice = args.voice or str(default_voice())
    steps_list = [int(s) for s in str(args.steps).split(",") if s.strip()]
    if not steps_list or min(steps_list) < 1:
        raise ValueError("--steps takes a comma-separated list of positive decoder step counts, e.g. 2,4,10")
    texts = tuple(args.text) if args.text else TEXTS
    synth = Synthesizer(voice, device=args.device or "auto", threads=args.threads)
    vocoder_steps = args.vocoder_steps or synth.bundle.vocoder.default_schedule
    hw = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
          "onnxruntime": ort.__version__, "providers": synth.providers}
    rows = []
    for n in steps_list:
        print(f"bench: onnxruntime, decoder {n} steps ...", file=sys.stderr, flush=True)
        rows.append(bench_synth(synth, "onnxruntime", texts, n, vocoder_steps, args.repeats))
    if args.acoustic and args.vocoder:
        from serve.torch_backend import TorchSynthesizer

        tsynth = TorchSynthesizer(args.acoustic, args.vocoder, device=args.device or "auto")
        import torch

        hw["torch"] = torch.__version__
        if torch.cuda.is_available():
            hw["gpu"] = torch.cuda.get_device_name()
        for n in steps_list:
            print(f"bench: torch eager, decoder {n} steps ...", file=sys.stderr, flush=True)
            rows.append(bench_synth(tsynth, "torch eager", texts, n, vocoder_steps, args.repeats))
    report = {"voice": voice, "texts": list(texts), "repeats": args.repeats, "hardware": hw, "rows": rows,
              "arguments": arguments(args), "numpy": np.__version__}
    emit_report(args.out, report, markdown(report))
    return 0
