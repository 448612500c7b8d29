"""``gradwave eval vocoder``: copy-synthesis quality of vocoder checkpoints, as a markdown + JSON table.

Copy-synthesis: each reference utterance ``[T]`` is cropped to whole mel frames ``[256 F]``, turned into its
mel ``[80, F]`` (:func:`vocoder.audio.mel_numpy`) and vocoded back to ``[256 F]`` samples by every checkpoint
with every requested schedule. The output is time-aligned with its reference, so the metrics of
:mod:`vocoder.metrics` compare the two frame by frame (no DTW):

* PESQ-WB (ITU-T P.862.2 at 16 kHz, ``pesq`` package), STOI (``pystoi``): higher is better;
* MCD: 80-band log-mel DCT cepstrum c1-c24, no DTW, in dB (:func:`vocoder.metrics.mcd`); its scale is much
  larger than the SPTK mel-cepstral MCD of papers, so it only compares numbers made by this code;
* log-mel L1 (natural log, the gradwave mel contract);
* RTF: vocoding wall time / audio duration on the stated device (lower is faster).

The same run scores two baselines: Griffin-Lim (librosa, 32 iterations, :func:`vocoder.metrics.griffin_lim`)
and the ground truth (the reference scored against itself: the ceiling of each metric).
Each utterance gets a fixed seed derived from its id, so every system sees the same noise for it.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
import warnings
import zlib
from typing import Any

import numpy as np

from vocoder import metrics
from vocoder.audio import HOP_LENGTH, SAMPLE_RATE, load_audio, mel_numpy
from vocoder.training.data import Utterance, read_metadata, split

METRICS = ("pesq_wb", "stoi", "mcd", "logmel_l1")
GRIFFIN_LIM_ITERS = 32
SAMPLER = "ddpm"
MCD_NOTE = "MCD: 80-band log-mel DCT cepstrum c1-c24, no DTW, dB (larger scale than SPTK mel-cepstral MCD)"


# --------------------------------------------------------------------------------------------------------
# shared with vocoder.bench: hardware description and atomic report files
# --------------------------------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def hardware_info(device: str | None = None) -> dict[str, Any]:
    """CPU model and core count, torch/numpy versions, torch threads and, for a CUDA device, the GPU name."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "torch_threads": torch.get_num_threads(), "device": device,
    }
    if device is not None and device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


def hardware_line(hw: dict[str, Any]) -> str:
    """One markdown line naming the hardware of a report."""
    gpu = f", GPU {hw['gpu']} (CUDA {hw.get('cuda')})" if hw.get("gpu") else ""
    return (f"Hardware: CPU {hw['cpu']} ({hw['cpu_count']} cores, torch {hw['torch_threads']} threads){gpu}; "
            f"torch {hw['torch']}.")


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (no half-written file)."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_report(out_dir: str, report: dict[str, Any], markdown: str) -> None:
    """Write ``table.md`` and ``table.json`` into out_dir, each atomically (temp file + rename)."""
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_text(os.path.join(out_dir, "table.md"), markdown)
    atomic_write_text(os.path.join(out_dir, "table.json"), json.dumps(_jsonable(report), indent=2) + "\n")


def emit_report(out_dir: str | None, report: dict[str, Any], markdown: str) -> None:
    """Print the markdown table; with ``out_dir``, also write table.md and table.json there."""
    print(markdown, end="" if markdown.endswith("\n") else "\n")
    if out_dir:
        write_report(out_dir, report, markdown)
        print(f"wrote {os.path.join(out_dir, 'table.md')} and table.json", file=sys.stderr)


def _jsonable(x: Any) -> Any:
    """NaN/inf become null (strict JSON); numpy scalars become Python numbers."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def arguments(args: Any) -> dict[str, Any]:
    """The command's arguments (an argparse namespace) as a JSON-able dict."""
    return {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, list, type(None)))}


def default_device(device: str | None) -> str:
    """``device``, or when None ``cuda`` if available else ``cpu``. Unavailable CUDA is a ValueError."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    return device


# --------------------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------------------
def evaluation_items(data: str, held_out: int = 0, limit: int = 0) -> list[Utterance]:
    """The utterances to score: all of ``data`` sorted by id, or with ``held_out`` N the N held-out ones of
    ``split(read_metadata(data), N)`` (the training split when N is the run's n_val); at most ``limit``."""
    if held_out < 0 or limit < 0:
        raise ValueError("--held-out and --limit must be >= 0")
    items = read_metadata(data)
    items = split(items, held_out)[1] if held_out else sorted(items, key=lambda u: u.id)
    return items[:limit] if limit else items


def utterance_seed(uid: str) -> int:
    """A fixed seed for an utterance, from its id (independent of which other utterances are scored)."""
    return zlib.crc32(uid.encode("utf-8")) & 0x7FFFFFFF


def score(ref: np.ndarray, est: np.ndarray) -> dict[str, float]:
    """All metrics of ``est [T2]`` against ``ref [T1]`` (22,050 Hz). PESQ is nan where it is undefined."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no utterance" -> nan, counted in the notes
            p = metrics.pesq_wb(ref, est)
    except ValueError:  # shorter than PESQ accepts
        p = float("nan")
    return {"pesq_wb": p, "stoi": metrics.stoi(ref, est), "mcd": metrics.mcd(ref, est),
            "logmel_l1": metrics.log_mel_l1(ref, est)}


def _labels(paths: list[str]) -> list[str]:
    """Shortest unique path suffixes: ['a/last.pt', 'b/last.pt'] for two last.pt files."""
    parts = [os.path.normpath(os.path.abspath(p)).split(os.sep) for p in paths]
    labels = []
    for i, p in enumerate(parts):
        others = [q for j, q in enumerate(parts) if j != i]
        depth = next((d for d in range(1, len(p)) if all(q[-d:] != p[-d:] for q in others)), len(p))
        labels.append("/".join(p[-depth:]))
    return labels


class _Row:
    """Accumulates one system's per-utterance scores and timings."""

    def __init__(self, **info: Any):
        self.info = info
        self.per_utt: list[dict[str, Any]] = []

    def add(self, uid: str, scores: dict[str, float], rtf: float | None) -> None:
        self.per_utt.append({"id": uid, **scores, "rtf": rtf})

    def summary(self) -> dict[str, Any]:
        out = dict(self.info, n=len(self.per_utt))
        for key in (*METRICS, "rtf"):
            vals = np.array([u[key] for u in self.per_utt if u[key] is not None], dtype=np.float64)
            finite = vals[np.isfinite(vals)]
            out[key] = float(finite.mean()) if finite.size else None
            if key == "pesq_wb":
                out["n_pesq"] = int(finite.size)
        out["utterances"] = self.per_utt
        return out


def evaluate(checkpoints: list[str], items: list[Utterance], schedules: list[str] | None = None,
             device: str = "cpu", held_out: int = 0, corpus_size: int | None = None,
             progress: bool = True, postfilter_iterations: int = 0) -> dict[str, Any]:
    """Copy-synthesis of ``items`` by every checkpoint and schedule, plus the Griffin-Lim and ground-truth
    baselines; with ``postfilter_iterations`` N > 0 each vocoder row gets a twin: the same audio after N passes
    of the runtime's mel-envelope post-filter (:mod:`vocoder.postfilter`), timed with its vocoding.
    ``schedules`` None: all stored in each checkpoint. ``held_out``/``corpus_size`` (the N of
    --held-out and the corpus' utterance count) only serve a note when N exceeds a checkpoint's n_val.
    Returns the report: ``rows`` (one per system: means over utterances, n, per-utterance values),
    ``notes``, ``utterances`` and ``device``."""
    from tqdm import tqdm

    from vocoder.audio import clip_log_mel
    from vocoder.inference import Vocoder
    from vocoder.postfilter import PostFilter, mel_postfilter

    postfilter = PostFilter(iterations=postfilter_iterations)  # ValueError for a bad count
    if not items:
        raise ValueError("no utterances to evaluate")
    notes: list[str] = []
    vocoders = [Vocoder(p, device=device) for p in checkpoints]
    rows: list[tuple[Any, str, _Row]] = []  # (vocoder, schedule name, row)
    for path, label, voc in zip(checkpoints, _labels(checkpoints), vocoders):
        wanted = schedules or list(voc.schedules)
        for name in wanted:
            if name not in voc.schedules:
                notes.append(f"{label}: no schedule '{name}' (has: {', '.join(voc.schedules)}); skipped")
                continue
            row = _Row(system=f"{voc.name} {label} (step {voc.step})", kind="vocoder",
                       checkpoint=os.path.abspath(path), model=voc.name, train_step=voc.step, schedule=name,
                       steps=len(voc.schedule(name)["betas"]), sampler=SAMPLER, device=device)
            rows.append((voc, name, row))
        if held_out:
            notes.extend(_held_out_note(label, voc, held_out, corpus_size))
    if not rows:
        wanted = ", ".join(schedules or [])
        raise ValueError(f"none of the requested schedules ({wanted}) is in any checkpoint")
    filtered = {i: _Row(**dict(row.info, system=f"{row.info['system']} + post-filter ({postfilter.iterations} "
                                                 "passes)", postfilter=postfilter.iterations))
                for i, (_, _, row) in enumerate(rows)} if postfilter.enabled else {}
    gl = _Row(system=f"Griffin-Lim ({GRIFFIN_LIM_ITERS} iterations)", kind="griffin_lim", schedule=None,
              steps=GRIFFIN_LIM_ITERS, device="cpu")
    gt = _Row(system="ground truth", kind="ground_truth", schedule=None, steps=None, device=None)
    warmed: set[int] = set()
    for voc, name, _ in rows:  # first calls pay for lazy initialisation (kernels, allocator): untimed
        if id(voc) not in warmed:
            voc.vocode(np.full((80, 8), -5.0, np.float32), schedule=name, sampler=SAMPLER)
            warmed.add(id(voc))

    bar = tqdm(total=len(items) * (len(rows) + 1), desc="eval vocoder", unit="run", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    for utt in items:
        audio = load_audio(utt.path, quiet=True)
        ref = audio[: (len(audio) // HOP_LENGTH) * HOP_LENGTH]  # whole frames: [256 F]
        if len(ref) == 0:
            notes.append(f"{utt.id}: shorter than one mel frame; skipped")
            bar.update(len(rows) + 1)
            continue
        seconds = len(ref) / SAMPLE_RATE
        mel = mel_numpy(ref)  # [80, F]
        seed = utterance_seed(utt.id)
        for i, (voc, name, row) in enumerate(rows):
            bar.set_postfix_str(f"{utt.id} {row.info['model']} {name}", refresh=False)
            t0 = time.perf_counter()
            out = voc.vocode(mel, schedule=name, sampler=SAMPLER, seed=seed)  # [256 F] (synchronised)
            t1 = time.perf_counter()
            row.add(utt.id, score(ref, out), (t1 - t0) / seconds)
            if i in filtered:
                t2 = time.perf_counter()
                out = mel_postfilter(out[None], clip_log_mel(mel)[None], postfilter)[0]  # [256 F]
                filtered[i].add(utt.id, score(ref, out), (t1 - t0 + time.perf_counter() - t2) / seconds)
            bar.update(1)
        t0 = time.perf_counter()
        out = metrics.griffin_lim(mel, n_iter=GRIFFIN_LIM_ITERS, seed=seed)  # [256 F]
        gl.add(utt.id, score(ref, out), (time.perf_counter() - t0) / seconds)
        gt.add(utt.id, score(ref, ref), None)
        bar.update(1)
    bar.close()

    table = [r.summary() for i, (_, _, row) in enumerate(rows) for r in (row, filtered.get(i)) if r is not None]
    table += [gl.summary(), gt.summary()]
    for r in table:
        if r["n_pesq"] < r["n"]:
            notes.append(f"{r['system']}: PESQ undefined for {r['n'] - r['n_pesq']} of {r['n']} utterances "
                         "(too short or no speech); its mean is over the others")
    return {"rows": table, "notes": notes, "utterances": [u.id for u in items], "device": device}


def _held_out_note(label: str, voc: Any, held_out: int, corpus_size: int | None) -> list[str]:
    """A note when --held-out N exceeds the utterances the checkpoint's run held out.

    Training holds out the first ``min(n_val, corpus_size // 10)`` of the same seeded permutation that
    :func:`split` draws N from, so with N above that, N minus it of the scored utterances were trained on.
    """
    n_val = voc.config.get("model", {}).get("task", {}).get("n_val")
    if n_val is None:
        return []
    if corpus_size is not None:
        n_val = min(n_val, corpus_size // 10)
    if held_out <= n_val:
        return []
    return [f"{label}: its run held out only {n_val} utterance(s) (if trained on this corpus), so "
            f"{held_out - n_val} of the {held_out} --held-out utterances were in its training set"]


# --------------------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------------------
def _fmt(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table with its notes (metric definitions, device, hardware)."""
    lines = ["| System | Schedule | Steps | PESQ-WB ↑ | STOI ↑ | MCD (dB) ↓ | log-mel L1 ↓ | RTF ↓ | n |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        lines.append(f"| {r['system']} | {r['schedule'] or '-'} | {r['steps'] if r['steps'] else '-'} | "
                     f"{_fmt(r['pesq_wb'], 3)} | {_fmt(r['stoi'], 3)} | {_fmt(r['mcd'], 2)} | "
                     f"{_fmt(r['logmel_l1'], 3)} | {_fmt(r['rtf'], 3)} | {r['n']} |")
    hw = report["hardware"]
    lines += [
        "",
        f"Copy-synthesis of {len(report['utterances'])} utterances; means over utterances (n). "
        f"Sampler: {SAMPLER}, a fixed seed per utterance.",
        f"PESQ-WB: ITU-T P.862.2 at 16 kHz (pesq). STOI: pystoi. {MCD_NOTE}. "
        "log-mel L1: mean |difference| of the natural-log 80-band mels.",
        f"RTF: vocoding wall time / audio duration, mean over utterances; vocoders on {report['device']}, "
        "Griffin-Lim on CPU (librosa); the ground truth is the reference itself (metric ceilings).",
        hardware_line(hw),
    ]
    lines += [f"Note: {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def eval_cli(args: Any) -> int:
    """``gradwave eval vocoder``. args: checkpoint (list), data, schedules, held_out, limit, out, device,
    postfilter_iterations."""
    device = default_device(args.device)
    schedules = [s.strip() for s in args.schedules.split(",") if s.strip()] if args.schedules else None
    items = evaluation_items(args.data, args.held_out, args.limit)
    report = evaluate(list(args.checkpoint), items, schedules, device=device, held_out=args.held_out,
                      corpus_size=len(read_metadata(args.data)) if args.held_out else None,
                      postfilter_iterations=args.postfilter_iterations)
    report = {"command": "eval vocoder",
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "hardware": hardware_info(device), "arguments": arguments(args), **report}
    for note in report["notes"]:
        print(f"gradwave: note: {note}", file=sys.stderr)
    emit_report(args.out, report, markdown(report))
    return 0
