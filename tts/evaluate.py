"""``gradwave eval tts``: quality and speed of text-to-speech on held-out sentences, in one table.

Systems (rows), all scored on the same sentences:

1. ``recordings``: the recordings of ``--recordings DIR`` as they are (the ceiling of every metric);
2. ``recordings vocoded``: the log-mel of each recording -> our vocoder at ``--vocoder-steps`` -> audio,
   in the chunks streaming uses (the vocoder's share of the loss);
3. ``Grad-TTS + vocoder``: text -> our acoustic model at each ``--steps`` count and ``--solvers`` solver ->
   vocoder -> audio, the same streamed synthesis as ``gradwave speak`` (default chunking).

Rows 1-2 and the log-mel distance need ``--recordings``. Per system:

- WER: faster-whisper transcribes each output; corpus-level WER of the transcripts against the reference
  text, both normalized alike (:mod:`tts.speech_metrics`);
- DNSMOS OVRL, SIG, BAK and P.808, means over utterances;
- log-mel DTW L1 against the recording (:func:`tts.speech_metrics.mel_dtw_l1`), mean over utterances;
- RTF of each stage: seconds spent in the encoder, decoder (score network) and vocoder graph calls, and
  the total wall time of the synthesis (text front-end and numpy glue included), each summed over
  utterances and divided by the summed audio duration. Scoring is not timed.

Audio is 22,050 Hz; Whisper and DNSMOS get it resampled to 16 kHz (``vocoder.audio.resample``). Every
system uses the same noise seed for an utterance: ``utterance_seed(id) + --seed``.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tts.eval_table import markdown
from tts.samples import SAMPLE_COUNT
from tts.speech_metrics import (
    ASR_SAMPLE_RATE,
    DnsMos,
    Transcriber,
    corpus_wer,
    mel_dtw_l1,
    normalize_for_wer,
    word_errors,
)
from vocoder.audio import HOP_LENGTH, SAMPLE_RATE, load_audio, mel_numpy, resample, save_audio
from vocoder.evaluate import (
    arguments,
    cpu_model,
    default_device,
    emit_report,
    hardware_info,
    hardware_line,
    utterance_seed,
)

DNSMOS_KEYS = ("ovrl", "sig", "bak", "p808")
STAGES = ("encoder", "decoder", "vocoder")


# --------------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sentence:
    """One test sentence: ``text`` is spoken, ``reference`` is what a listener should hear (for WER)."""

    id: str
    text: str
    reference: str
    recording: str | None = None


def read_texts(path: str | os.PathLike, id_prefix: str | None = None, limit: int = 0) -> list[Sentence]:
    """Sentences of an LJSpeech ``metadata.csv`` (``id|text|normalized_text``: ``text`` is spoken,
    ``normalized_text`` -- or ``text`` where it is missing -- is the reference) or of a plain text file (one
    sentence a line, both spoken and reference; ids ``line0001``... by line number). Blank lines are skipped;
    a file is metadata when every other line holds a ``|``. ``id_prefix`` keeps the ids that start with it
    (e.g. ``LJ050``); ``limit`` > 0 keeps the first ``limit``. Returns the sentences in file order."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--texts {path}: no such file")
    with open(path, encoding="utf-8-sig") as f:
        lines = [(n, line.rstrip("\r\n")) for n, line in enumerate(f, 1) if line.strip()]
    if not lines:
        raise ValueError(f"--texts {path}: no sentences in the file")
    with_bar = sum("|" in line for _, line in lines)
    if 0 < with_bar < len(lines):
        raise ValueError(f"--texts {path}: {with_bar} of {len(lines)} lines are metadata rows (id|text|...) and "
                         "the others plain sentences; use one format")
    out: list[Sentence] = []
    for n, line in lines:
        if with_bar:
            parts = [p.strip() for p in line.split("|")]
            if not parts[0] or not parts[1]:
                raise ValueError(f"--texts {path}:{n}: expected id|text|normalized_text, got {line[:60]!r}")
            out.append(Sentence(parts[0], parts[1], parts[2] if len(parts) > 2 and parts[2] else parts[1]))
        else:
            out.append(Sentence(f"line{n:04d}", line.strip(), line.strip()))
    seen: set[str] = set()
    for s in out:
        if s.id in seen:
            raise ValueError(f"--texts {path}: the id {s.id} appears twice")
        seen.add(s.id)
    if id_prefix:
        out = [s for s in out if s.id.startswith(id_prefix)]
        if not out:
            raise ValueError(f"--texts {path}: no id starts with {id_prefix!r}")
    if limit < 0:
        raise ValueError("--limit must be >= 0")
    return out[:limit] if limit else out


def attach_recordings(sentences: list[Sentence], recordings: str | os.PathLike) -> list[Sentence]:
    """The sentences with ``recording`` set to ``<recordings>/wavs/<id>.flac`` (or ``.wav``). An id without
    a recording is an error (ValueError naming the first few)."""
    wavs = Path(recordings) / "wavs"
    if not wavs.is_dir():
        raise FileNotFoundError(f"--recordings {recordings}: no wavs/ folder (expected LJSpeech layout)")
    out, missing = [], []
    for s in sentences:
        found = next((wavs / f"{s.id}{ext}" for ext in (".flac", ".wav") if (wavs / f"{s.id}{ext}").is_file()), None)
        if found is None:
            missing.append(s.id)
        out.append(Sentence(s.id, s.text, s.reference, str(found) if found else None))
    if missing:
        raise ValueError(f"--recordings {recordings}: no wavs/<id>.flac|wav for {len(missing)} of {len(sentences)} "
                         f"sentences (first: {', '.join(missing[:3])})")
    return out


def parse_list(value: str | None, name: str, cast: type = str) -> list[Any] | None:
    """``"2,4,10"`` -> ``[2, 4, 10]`` (None stays None); a bad item is a ValueError naming ``--name``."""
    if value is None:
        return None
    try:
        items = [cast(v.strip()) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--{name}: expected a comma-separated list, got {value!r}") from None
    if not items:
        raise ValueError(f"--{name}: empty list")
    return items


# --------------------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------------------
class Scorer:
    """Scores one output against its sentence: transcript and word errors, DNSMOS, DTW log-mel distance.

    transcriber / dnsmos: a :class:`~tts.speech_metrics.Transcriber` / :class:`~tts.speech_metrics.DnsMos`
    or None to skip that metric.
    """

    def __init__(self, transcriber: Any | None, dnsmos: Any | None):
        self.transcriber = transcriber
        self.dnsmos = dnsmos

    def __call__(self, audio: np.ndarray, sentence: Sentence, ref_mel: np.ndarray | None) -> dict[str, Any]:
        """audio ``[T]`` at 22,050 Hz; ref_mel ``[80, F]`` of the recording or None. Returns a flat dict."""
        out: dict[str, Any] = {}
        audio16 = None
        if self.transcriber is not None or self.dnsmos is not None:
            audio16 = resample(np.clip(audio, -1.0, 1.0), SAMPLE_RATE, ASR_SAMPLE_RATE)  # [T * 16000 / 22050]
        if self.transcriber is not None:
            hyp = self.transcriber(audio16)
            ref_norm, hyp_norm = normalize_for_wer(sentence.reference), normalize_for_wer(hyp)
            out.update(transcript=hyp, reference_norm=ref_norm, transcript_norm=hyp_norm,
                       **word_errors(ref_norm, hyp_norm))
        if self.dnsmos is not None:
            out.update(self.dnsmos(audio16))
        if ref_mel is not None:
            out["mel_dtw_l1"] = mel_dtw_l1(ref_mel, mel_numpy(audio)) if len(audio) >= HOP_LENGTH else None
        return out


class _Row:
    """One system: its description and per-utterance scores and timings."""

    def __init__(self, slug: str, **info: Any):
        self.slug = slug
        self.info = info
        self.per_utt: list[dict[str, Any]] = []

    @property
    def kind(self) -> str:
        return self.info["kind"]

    def add(self, uid: str, audio_s: float, scores: dict[str, Any], seconds: dict[str, float] | None) -> None:
        timing = {f"{k}_s": v for k, v in (seconds or {}).items()}
        self.per_utt.append({"id": uid, "audio_s": audio_s, **scores, **timing})

    def summary(self) -> dict[str, Any]:
        u = self.per_utt
        audio_s = sum(x["audio_s"] for x in u)
        out = dict(self.info, n=len(u), audio_s=audio_s)
        with_wer = [x for x in u if "errors" in x]
        out["wer"] = corpus_wer(with_wer) if with_wer else None
        out["errors"] = sum(x["errors"] for x in with_wer) if with_wer else None
        out["ref_words"] = sum(x["ref_words"] for x in with_wer) if with_wer else None
        for key in (*DNSMOS_KEYS, "mel_dtw_l1"):
            vals = [x[key] for x in u if x.get(key) is not None]
            out[key] = float(np.mean(vals)) if vals else None
        for key in (*STAGES, "total"):
            secs = [x[f"{key}_s"] for x in u if f"{key}_s" in x]
            out[f"rtf_{key}" if key != "total" else "rtf"] = sum(secs) / audio_s if secs and audio_s else None
        out["utterances"] = u
        return out


def _speak(synth: Any, text: str, **options: Any) -> np.ndarray:
    """The streamed synthesis of ``text`` (``Synthesizer.synthesize``), its chunks joined: ``[T]``."""
    return np.concatenate([c.audio for c in synth.synthesize(text, **options)])


def _timed(synth: Any, fn: Any, *args: Any, **kwargs: Any) -> tuple[np.ndarray, dict[str, float]]:
    """``fn(*args, **kwargs)`` (audio ``[T]``) with ``synth``'s graph calls timed per stage (serve.bench's
    TimedGraphs) and the whole call timed as ``total``. Returns (audio, {stage: seconds})."""
    from serve.bench import TimedGraphs

    timed = TimedGraphs(synth.graphs)
    synth.graphs = timed
    try:
        t0 = time.perf_counter()
        audio = fn(*args, **kwargs)
        total = time.perf_counter() - t0
    finally:
        synth.graphs = timed._graphs
    return audio, {**timed.seconds, "total": total}


def evaluate(synth: Any, sentences: list[Sentence], steps: list[int] | None = None,
             solvers: list[str] | None = None, vocoder_steps: str | int | None = None,
             temperature: float | None = None, seed: int = 0, transcriber: Any | None = None,
             dnsmos: Any | None = None, save_audio_dir: str | None = None, progress: bool = True,
             keep_audio: int = 0) -> dict[str, Any]:
    """Score every system on ``sentences`` (see the module docstring) with ``synth`` (a
    :class:`serve.engine.Synthesizer` or :class:`serve.torch_backend.TorchSynthesizer`). steps / solvers:
    decoder step counts and solvers (None: the voice's default); vocoder_steps: schedule name or step count
    (None: the voice's default). With ``save_audio_dir`` each system's outputs go to
    ``<dir>/<system>/<id>.wav``. Returns the report: ``rows`` (one per system: summary, per-utterance
    values), ``notes``, ``utterances``; with ``keep_audio`` N, also ``audio`` (``{slug: {id: [T]}}`` of the
    first N sentences) and ``labels`` (``{slug: caption}``), for :func:`tts.samples.write_samples`."""
    if not sentences:
        raise ValueError("no sentences to evaluate")
    from serve.streaming import DEFAULT_CHUNK_FRAMES

    dec = synth.bundle.acoustic.decoder if synth.bundle.acoustic is not None else None
    if dec is None:
        raise ValueError("this voice bundle has a vocoder only (no acoustic model): it cannot speak text")
    steps = steps or [dec.steps]
    solvers = solvers or [dec.solver]
    if min(steps) < 1:
        raise ValueError("--steps must be positive step counts")
    schedule_name, schedule = synth.bundle.vocoder.schedule(vocoder_steps)
    with_recordings = all(s.recording for s in sentences)
    score = Scorer(transcriber, dnsmos)
    voc = dict(vocoder_schedule=schedule_name, vocoder_steps=schedule.steps)
    rows: list[_Row] = []
    if with_recordings:
        rows.append(_Row("recordings", system="recordings", kind="recordings", solver=None, steps=None,
                         vocoder_schedule=None, vocoder_steps=None))
        rows.append(_Row(f"vocoded-{schedule_name}", system="recordings vocoded", kind="vocoded", solver=None,
                         steps=None, **voc))
    tts_rows = [(solver, n, _Row(f"tts-{solver}-{n}-{schedule_name}", system="Grad-TTS + vocoder", kind="tts",
                                 solver=solver, steps=n, temperature=temperature or dec.temperature, **voc))
                for solver in solvers for n in steps]
    rows += [r for *_, r in tts_rows]
    # first calls pay for lazy initialisation (sessions, allocator): untimed
    synth.tts_mel("Hello.", steps=min(steps), temperature=temperature, solver=solvers[0])
    synth.vocode(np.full((synth.n_mels, 8), -5.0, np.float32), steps=schedule_name)

    kept: dict[str, dict[str, np.ndarray]] = {}
    start = time.perf_counter()
    for k, sentence in enumerate(sentences, 1):
        t_utt = time.perf_counter()
        useed = (utterance_seed(sentence.id) + seed) & 0x7FFFFFFF
        outputs: list[tuple[_Row, np.ndarray, dict[str, float] | None]] = []
        ref_mel = None
        if with_recordings:
            rec = load_audio(sentence.recording, quiet=True)
            rec = rec[: (len(rec) // HOP_LENGTH) * HOP_LENGTH]  # whole frames: [256 F]
            if len(rec) == 0:
                raise ValueError(f"{sentence.recording}: shorter than one mel frame")
            ref_mel = mel_numpy(rec)  # [80, F]
            outputs.append((rows[0], rec, None))
            audio, secs = _timed(synth, synth.vocode, ref_mel, steps=schedule_name, seed=useed,
                                 chunk_frames=DEFAULT_CHUNK_FRAMES)
            outputs.append((rows[1], audio, secs))
        for solver, n, row in tts_rows:
            audio, secs = _timed(synth, _speak, synth, sentence.text, steps=n, vocoder_steps=schedule_name,
                                 temperature=temperature, seed=useed, solver=solver)
            outputs.append((row, audio, secs))
        for row, audio, secs in outputs:
            row.add(sentence.id, len(audio) / SAMPLE_RATE, score(audio, sentence, ref_mel), secs)
            if k <= keep_audio:
                kept.setdefault(row.slug, {})[sentence.id] = audio
            if save_audio_dir and row.kind != "recordings":
                save_audio(os.path.join(save_audio_dir, row.slug, f"{sentence.id}.wav"), audio)
        if progress:
            print(f"eval tts: [{k}/{len(sentences)}] {sentence.id}: {len(outputs)} systems in "
                  f"{time.perf_counter() - t_utt:.1f} s ({time.perf_counter() - start:.0f} s so far)",
                  file=sys.stderr, flush=True)
    notes = []
    if not with_recordings:
        notes.append("no --recordings: no recordings rows and no log-mel distance")
    report = {"rows": [r.summary() for r in rows], "notes": notes, "utterances": [s.id for s in sentences]}
    if keep_audio:
        report["audio"] = kept
        report["labels"] = {r.slug: _caption(r.info) for r in rows}
    return report


def _caption(info: dict[str, Any]) -> str:
    """A row's description for a figure: the system, its solver and steps, and its vocoder schedule."""
    parts = [info["system"]]
    if info.get("steps"):
        parts.append(f"{info['solver']} {info['steps']} steps")
    if info.get("vocoder_schedule"):
        parts.append(f"vocoder {info['vocoder_schedule']}")
    return ", ".join(parts)


def _hardware(synth: Any, torch_device: str | None) -> tuple[dict[str, Any], str]:
    """Hardware description and its markdown line (torch checkpoints: hardware_info; a bundle: onnxruntime)."""
    if torch_device is not None:
        hw = hardware_info(torch_device)
        return hw, hardware_line(hw)
    import onnxruntime as ort

    hw = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
          "onnxruntime": ort.__version__, "providers": synth.providers}
    return hw, (f"Hardware: CPU {hw['cpu']} ({hw['cpu_count']} cores); onnxruntime {hw['onnxruntime']} "
                f"({', '.join(hw['providers'])}).")


def eval_cli(args: Any) -> int:
    """``gradwave eval tts``. args: voice, acoustic, vocoder, texts, recordings, id_prefix, limit, asr,
    no_dnsmos, steps, solvers, vocoder_steps, temperature, seed, device, threads, save_audio, out."""
    if args.voice and (args.acoustic or args.vocoder):
        raise ValueError("give either --voice (an ONNX bundle) or --acoustic and --vocoder (checkpoints), not both")
    if bool(args.acoustic) != bool(args.vocoder):
        raise ValueError("--acoustic and --vocoder go together (torch checkpoints of both models)")
    if args.threads is not None and args.threads < 1:
        raise ValueError("--threads must be >= 1")
    steps = parse_list(args.steps, "steps", int)
    solvers = parse_list(args.solvers, "solvers")
    from tts.solvers import SOLVER_NAMES

    bad = [s for s in solvers or [] if s not in SOLVER_NAMES]
    if bad:
        raise ValueError(f"--solvers: unknown {', '.join(bad)} (choose from {', '.join(SOLVER_NAMES)})")
    sentences = read_texts(args.texts, args.id_prefix, args.limit)
    if args.recordings:
        sentences = attach_recordings(sentences, args.recordings)
    # the scorers first: a missing extra fails before any synthesis
    transcriber = None
    if args.asr != "none":
        print(f"eval tts: loading the ASR model ({args.asr}) ...", file=sys.stderr, flush=True)
        transcriber = Transcriber(args.asr, threads=args.threads)
    dnsmos = None if args.no_dnsmos else DnsMos(threads=args.threads)
    if args.acoustic:
        from serve.torch_backend import TorchSynthesizer

        torch_device = default_device(None if args.device == "auto" else args.device)
        synth = TorchSynthesizer(args.acoustic, args.vocoder, device=torch_device, threads=args.threads)
        system = f"torch checkpoints {args.acoustic} + {args.vocoder}"
    else:
        from serve.engine import Synthesizer, default_voice

        voice = args.voice or str(default_voice())
        synth = Synthesizer(voice, device=args.device, threads=args.threads)
        torch_device, system = None, f"voice bundle {voice}"
    samples = getattr(args, "samples", None)
    report = evaluate(synth, sentences, steps, solvers, args.vocoder_steps, args.temperature, args.seed, transcriber,
                      dnsmos, args.save_audio, keep_audio=SAMPLE_COUNT if samples else 0)
    if samples:
        from tts.samples import write_samples

        audio, labels = report.pop("audio"), report.pop("labels")
        ours = next(slug for slug in labels if slug.startswith("tts-"))
        written = write_samples(samples, sentences, audio, labels, ours)
        print(f"eval tts: wrote {len(written)} samples (wav + spectrogram png) to {samples}", file=sys.stderr)
    hw, hw_line = _hardware(synth, torch_device)
    dec = synth.bundle.acoustic.decoder
    report = {"command": "eval tts",
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "hardware": hw, "hardware_line": hw_line, "arguments": arguments(args), "system": system,
              "texts": args.texts, "device": torch_device or ", ".join(synth.providers),
              "asr": {"name": transcriber.name, "model_dir": str(transcriber.model_dir)} if transcriber else None,
              "dnsmos": dnsmos is not None, "temperature": args.temperature or dec.temperature, "seed": args.seed,
              "postfilter": synth.postfilter.iterations, **report}
    if args.save_audio:
        print(f"eval tts: wrote the outputs to {args.save_audio}/<system>/<id>.wav", file=sys.stderr)
    emit_report(args.out, report, markdown(report))
    return 0
