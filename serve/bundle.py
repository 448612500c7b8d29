"""A voice bundle on disk: ONNX graphs plus ``voice.json``, read into typed, frozen dataclasses.

Layout of a bundle directory (written by :func:`export.onnx.export_bundle`)::

    voice.json          everything the runtime needs besides the weights (this module reads it)
    vocoder_step.onnx   one vocoder denoising step: audio [B, T], cond [B], mel [B, 80, F] -> eps [B, T]
    encoder.onnx        Grad-TTS text encoder: ids [B, L], lengths [B] -> mu_x, logw, x_mask (TTS voices)
    score_step.onnx     Grad-TTS score: x [B, 80, F], t [B], mu [B, 80, F], mask [B, 1, F] -> score (TTS)

``voice.json`` (format ``gradwave-voice``, version :data:`FORMAT_VERSION`)::

    {"format": "gradwave-voice", "format_version": 1, "sample_rate": 22050, "precision": "fp32",
     "mel": {... vocoder.audio.MelConfig as a dict ...},
     "graphs": {"vocoder_step": {"file": "vocoder_step.onnx", "sha256": "..."}, ...},
     "vocoder": {"model": "diffwave", "config": {...}, "sampler": "ddpm", "default_schedule": "fast6",
                 "schedules": {"fast6": {"betas": [K], "conds": [K]}, ...}, "checkpoint_step": 0,
                 "postfilter": {"iterations": 3, "gain_floor": 0.1, "gain_ceiling": 4.0}},
     "acoustic": null | {"model": "gradtts", "config": {...}, "symbols": {"version": ..., "symbols": [...]},
                 "text": {"add_blank": true, "add_bos_eos": false},
                 "decoder": {"steps": 10, "temperature": 1.5, "solver": "euler", "beta_min": 0.05,
                             "beta_max": 20.0, "length_multiple": 4}, "checkpoint_step": 0},
     "versions": {"gradwave": ..., "torch": ..., "onnx": ..., "opset": 17}}

``vocoder.postfilter`` settings are optional (absent: no post-filter, as in bundles made before it).

This module imports the standard library, numpy and :mod:`vocoder.postfilter` only (never torch).
"""

from __future__ import annotations

import hashlib
import json
import os
import types
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vocoder.postfilter import OFF, PostFilter

FORMAT = "gradwave-voice"
FORMAT_VERSION = 1
VOICE_JSON = "voice.json"
GRAPH_NAMES = ("vocoder_step", "encoder", "score_step")
SAMPLERS = ("ddpm", "ddim")
SOLVERS = ("euler", "heun", "euler_maruyama")


class BundleError(ValueError):
    """A voice bundle that is missing, incomplete, corrupt or made by an incompatible gradwave."""


def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(d))


def _plain(v: Any) -> Any:
    """Mapping proxies and tuples back to JSON-able dicts and lists (nested)."""
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


@dataclass(frozen=True)
class Schedule:
    """A few-step vocoder schedule: ``betas`` [K] and the per-step model conditioning ``conds`` [K]."""

    betas: tuple[float, ...]
    conds: tuple[float, ...]

    def __post_init__(self) -> None:
        betas = tuple(float(b) for b in self.betas)
        conds = tuple(float(c) for c in self.conds)
        if not betas or len(betas) != len(conds):
            raise ValueError(f"a schedule needs K >= 1 betas and K conds, got {len(betas)} and {len(conds)}")
        if not all(0.0 < b < 1.0 for b in betas) or not all(np.isfinite(conds)):
            raise ValueError("schedule betas must lie in (0, 1) and conds must be finite")
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "conds", conds)

    @property
    def steps(self) -> int:
        return len(self.betas)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(betas [K] float64, conds [K] float64)."""
        return np.asarray(self.betas, dtype=np.float64), np.asarray(self.conds, dtype=np.float64)


@dataclass(frozen=True)
class GraphFile:
    """One ONNX graph of the bundle: its file name (relative to the bundle) and its SHA-256."""

    file: str
    sha256: str


@dataclass(frozen=True)
class VocoderInfo:
    model: str  # "diffwave" | "wavegrad"
    config: Mapping[str, Any]
    schedules: Mapping[str, Schedule]
    default_schedule: str
    sampler: str = "ddpm"
    checkpoint_step: int | None = None
    postfilter: PostFilter = OFF  # vocoder.postfilter settings; bundles written before it have none (off)

    def schedule(self, which: str | int | None = None) -> tuple[str, Schedule]:
        """Resolve a schedule by name, by step count K, or None for the default. Returns (name, schedule).

        For a step count the default schedule wins when it has K steps, then ``searched{K}``, ``fast{K}``,
        then any stored schedule with K steps.
        """
        if which is None:
            return self.default_schedule, self.schedules[self.default_schedule]
        if isinstance(which, str) and not which.isdigit():
            if which not in self.schedules:
                raise ValueError(f"no vocoder schedule {which!r} in this voice "
                                 f"(have: {', '.join(self._describe())})")
            return which, self.schedules[which]
        k = int(which)
        order = [self.default_schedule, f"searched{k}", f"fast{k}", *sorted(self.schedules)]
        for name in order:
            if name in self.schedules and self.schedules[name].steps == k:
                return name, self.schedules[name]
        raise ValueError(f"no {k}-step vocoder schedule in this voice (have: {', '.join(self._describe())})")

    def _describe(self) -> list[str]:
        return [f"{n} ({s.steps} steps)" for n, s in self.schedules.items()]


@dataclass(frozen=True)
class DecoderDefaults:
    """Defaults of the Grad-TTS reverse diffusion, and its constants."""

    steps: int = 10
    temperature: float = 1.5
    solver: str = "euler"
    beta_min: float = 0.05
    beta_max: float = 20.0
    length_multiple: int = 4  # decoder frame counts are padded to a multiple of this


@dataclass(frozen=True)
class AcousticInfo:
    model: str  # "gradtts"
    config: Mapping[str, Any]
    symbols: Mapping[str, Any]  # tts.text.SymbolTable.to_dict()
    text: Mapping[str, Any]  # keyword options of tts.text.text_to_ids (add_blank, add_bos_eos)
    decoder: DecoderDefaults
    checkpoint_step: int | None = None


@dataclass(frozen=True)
class Bundle:
    """A parsed ``voice.json``; ``root`` is the bundle directory (None for a bundle built in memory)."""

    root: Path | None
    format_version: int
    sample_rate: int
    hop_length: int
    n_mels: int
    mel: Mapping[str, Any]
    precision: str
    graphs: Mapping[str, GraphFile]
    vocoder: VocoderInfo
    acoustic: AcousticInfo | None
    versions: Mapping[str, Any]

    @property
    def has_acoustic(self) -> bool:
        return self.acoustic is not None

    def graph_path(self, name: str) -> Path:
        """Absolute path of graph ``name`` (one of :data:`GRAPH_NAMES`)."""
        if self.root is None:
            raise BundleError("this bundle has no directory (built in memory)")
        if name not in self.graphs:
            raise BundleError(f"{self.root}: this voice has no {name!r} graph")
        return self.root / self.graphs[name].file

    def to_dict(self) -> dict[str, Any]:
        """The ``voice.json`` dict (inverse of :meth:`from_dict`)."""
        ac = self.acoustic
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "sample_rate": self.sample_rate,
            "precision": self.precision,
            "mel": _plain(self.mel),
            "graphs": {n: {"file": g.file, "sha256": g.sha256} for n, g in self.graphs.items()},
            "vocoder": {
                "model": self.vocoder.model, "config": _plain(self.vocoder.config),
                "sampler": self.vocoder.sampler, "default_schedule": self.vocoder.default_schedule,
                "schedules": {n: {"betas": list(s.betas), "conds": list(s.conds)}
                              for n, s in self.vocoder.schedules.items()},
                "checkpoint_step": self.vocoder.checkpoint_step,
                "postfilter": asdict(self.vocoder.postfilter),
            },
            "acoustic": None if ac is None else {
                "model": ac.model, "config": _plain(ac.config), "symbols": _plain(ac.symbols),
                "text": _plain(ac.text), "checkpoint_step": ac.checkpoint_step,
                "decoder": {k: getattr(ac.decoder, k) for k in DecoderDefaults.__dataclass_fields__},
            },
            "versions": _plain(self.versions),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], root: str | os.PathLike | None = None) -> Bundle:
        """Parse and validate a ``voice.json`` dict. Raises :class:`BundleError` with the problem."""
        where = f"{root}: " if root is not None else ""
        try:
            return cls._parse(d, None if root is None else Path(root))
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            missing = f"missing entry {e}" if isinstance(e, KeyError) else str(e)
            raise BundleError(f"{where}voice.json is malformed: {missing}") from None

    @classmethod
    def _parse(cls, d: Mapping[str, Any], root: Path | None) -> Bundle:
        where = f"{root}: " if root is not None else ""
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            raise BundleError(f"{where}not a gradwave voice bundle (voice.json has no format {FORMAT!r})")
        version = d.get("format_version")
        if not isinstance(version, int):
            raise BundleError(f"{where}voice.json has no integer format_version")
        if version > FORMAT_VERSION:
            raise BundleError(f"{where}voice format version {version} was written by a newer gradwave "
                              f"(this one reads up to {FORMAT_VERSION}); upgrade gradwave")
        if version < 1:
            raise BundleError(f"{where}unknown voice format version {version}")
        mel = dict(d["mel"])
        sample_rate, hop, n_mels = int(d["sample_rate"]), int(mel["hop_length"]), int(mel["n_mels"])
        if sample_rate != int(mel["sample_rate"]):
            raise BundleError(f"{where}sample_rate {sample_rate} differs from the mel contract's "
                              f"{mel['sample_rate']}")
        graphs = {n: GraphFile(str(g["file"]), str(g["sha256"])) for n, g in d["graphs"].items()}
        v = d["vocoder"]
        schedules = {str(n): Schedule(tuple(s["betas"]), tuple(s["conds"])) for n, s in v["schedules"].items()}
        if not schedules:
            raise BundleError(f"{where}voice.json holds no vocoder schedule")
        if v["default_schedule"] not in schedules:
            raise BundleError(f"{where}default vocoder schedule {v['default_schedule']!r} is not stored")
        if v.get("sampler", "ddpm") not in SAMPLERS:
            raise BundleError(f"{where}unknown vocoder sampler {v.get('sampler')!r}")
        vocoder = VocoderInfo(
            model=str(v["model"]), config=_frozen(v["config"]), schedules=_frozen(schedules),
            default_schedule=str(v["default_schedule"]), sampler=str(v.get("sampler", "ddpm")),
            checkpoint_step=v.get("checkpoint_step"),
            postfilter=PostFilter(**v["postfilter"]) if v.get("postfilter") else OFF,
        )
        if "vocoder_step" not in graphs:
            raise BundleError(f"{where}voice.json lists no vocoder_step graph")
        acoustic = None
        a = d.get("acoustic")
        if a is not None:
            dec = DecoderDefaults(**{k: a["decoder"][k] for k in DecoderDefaults.__dataclass_fields__
                                     if k in a["decoder"]})
            if dec.solver not in SOLVERS:
                raise BundleError(f"{where}unknown decoder solver {dec.solver!r}")
            for name in ("encoder", "score_step"):
                if name not in graphs:
                    raise BundleError(f"{where}a TTS voice needs the {name} graph, voice.json lists none")
            acoustic = AcousticInfo(
                model=str(a["model"]), config=_frozen(a["config"]), symbols=_frozen(a["symbols"]),
                text=_frozen(a.get("text", {})), decoder=dec, checkpoint_step=a.get("checkpoint_step"),
            )
        return cls(
            root=root, format_version=version, sample_rate=sample_rate, hop_length=hop, n_mels=n_mels,
            mel=_frozen(mel), precision=str(d.get("precision", "fp32")), graphs=_frozen(graphs),
            vocoder=vocoder, acoustic=acoustic, versions=_frozen(d.get("versions", {})),
        )


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_bundle(voice_dir: str | os.PathLike, check_files: bool = True) -> Bundle:
    """Read and validate the bundle in ``voice_dir``.

    With ``check_files`` every graph must exist and match the SHA-256 recorded in ``voice.json``.
    Raises :class:`BundleError` (a ValueError) with a message naming the directory and the problem.
    """
    root = Path(voice_dir).expanduser().resolve()
    if not root.exists():
        raise BundleError(f"{voice_dir}: no such voice bundle directory")
    if not root.is_dir():
        raise BundleError(f"{voice_dir}: a voice bundle is a directory, this is a file")
    meta = root / VOICE_JSON
    if not meta.is_file():
        raise BundleError(f"{voice_dir}: not a voice bundle (no {VOICE_JSON}); make one with `gradwave export`")
    try:
        with open(meta, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{voice_dir}: {VOICE_JSON} is unreadable or not valid JSON ({e})") from None
    bundle = Bundle.from_dict(d, root)
    if check_files:
        for name, g in bundle.graphs.items():
            path = root / g.file
            if not path.is_file():
                raise BundleError(f"{voice_dir}: graph {name!r} is missing ({g.file}); re-export the voice")
            if sha256_file(path) != g.sha256:
                raise BundleError(f"{voice_dir}: {g.file} is corrupt (its SHA-256 differs from voice.json); "
                                  "re-export the voice")
    return bundle


def write_voice_json(d: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Validate a ``voice.json`` dict (by parsing it) and write it to ``path`` (temp file + rename)."""
    Bundle.from_dict(d)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(_plain(d), f, indent=1, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
