"""Export the graphs of :mod:`export.wrappers` to ONNX and assemble voice bundles.

All graphs use opset :data:`OPSET` with dynamic batch and length axes. They are exported with the
TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): the torch.export-based exporter
(the default since torch 2.9) only implements opset >= 18 and its down-conversion to 17 produced invalid
``Split`` nodes for these models (torch 2.13), while the TorchScript exporter gives exact graphs on
torch 2.11 and 2.13.

``fp16=True`` stores the weights of the Conv / ConvTranspose / MatMul / Gemm / Gather (embedding) nodes
as float16 and casts them back to float32 inside the graph (onnxruntime folds the casts at load time):
the bundle is half the size, inputs, outputs and arithmetic stay float32, so it runs correctly on the
CPU provider (which lacks float16 kernels for most of these ops) and on CUDA alike. Numeric constants
such as the sinusoidal embedding frequencies (up to 10^4, where float16 has a spacing of 8) keep float32.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from export.wrappers import (
    GradTTSEncoder,
    LoadedAcoustic,
    LoadedVocoder,
    ScoreStep,
    VocoderStep,
    default_schedule_name,
    example_inputs,
    load_acoustic,
    load_vocoder,
)
from serve.bundle import FORMAT, FORMAT_VERSION, VOICE_JSON, load_bundle, sha256_file, write_voice_json

OPSET = 17
GRAPH_FILES = {"vocoder_step": "vocoder_step.onnx", "encoder": "encoder.onnx", "score_step": "score_step.onnx"}
DEFAULT_DECODER_STEPS = 10
DEFAULT_TEMPERATURE = 1.5
DEFAULT_SOLVER = "euler"

_SPECS: dict[str, tuple[list[str], list[str], dict[str, dict[int, str]]]] = {
    "vocoder_step": (
        ["audio", "cond", "mel"], ["eps"],
        {"audio": {0: "batch", 1: "samples"}, "cond": {0: "batch"}, "mel": {0: "batch", 2: "frames"},
         "eps": {0: "batch", 1: "samples"}},
    ),
    "encoder": (
        ["ids", "lengths"], ["mu_x", "logw", "x_mask"],
        {"ids": {0: "batch", 1: "tokens"}, "lengths": {0: "batch"}, "mu_x": {0: "batch", 2: "tokens"},
         "logw": {0: "batch", 2: "tokens"}, "x_mask": {0: "batch", 2: "tokens"}},
    ),
    "score_step": (
        ["x", "t", "mu", "mask"], ["score"],
        {"x": {0: "batch", 2: "frames"}, "t": {0: "batch"}, "mu": {0: "batch", 2: "frames"},
         "mask": {0: "batch", 2: "frames"}, "score": {0: "batch", 2: "frames"}},
    ),
}
_WEIGHT_OPS = {"Conv": (1,), "ConvTranspose": (1,), "MatMul": (0, 1), "Gemm": (0, 1), "Gather": (0,)}


def _export(module: torch.nn.Module, kind: str, inputs: dict[str, torch.Tensor], path: str | os.PathLike,
            fp16: bool) -> None:
    """Trace ``module`` on ``inputs`` and write graph ``kind`` to ``path`` (see the module docstring)."""
    names, outputs, axes = _SPECS[kind]
    module = module.eval()
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript exporter's notice
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            module, tuple(inputs[n] for n in names), buf, input_names=names, output_names=outputs,
            dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
    model = onnx.load_from_string(buf.getvalue())
    if fp16:
        model = weights_to_fp16(model)
    model.doc_string = f"gradwave {kind}"
    helper.set_model_props(model, {"gradwave.graph": kind, "gradwave.precision": "fp16" if fp16 else "fp32"})
    onnx.checker.check_model(model)
    onnx.save(model, os.fspath(path))


def export_vocoder_step(model: torch.nn.Module, path: str | os.PathLike, fp16: bool = False) -> None:
    """Write one DiffWave/WaveGrad denoising step to ``path``:
    audio [B, T] f32, cond [B] f32, mel [B, 80, F] f32 -> eps [B, T] f32 (T = 256 F; B, T, F dynamic)."""
    _export(VocoderStep(model), "vocoder_step", example_inputs("vocoder_step", frames=4), path, fp16)


def export_encoder(model: torch.nn.Module, path: str | os.PathLike, fp16: bool = False) -> None:
    """Write the Grad-TTS encoder of ``model`` (a ``tts.grad_tts.GradTTS``) to ``path``:
    ids [B, L] i64, lengths [B] i64 -> mu_x [B, 80, L], logw [B, 1, L], x_mask [B, 1, L] (B, L dynamic)."""
    n_vocab = model.cfg.n_vocab
    _export(GradTTSEncoder(model), "encoder", example_inputs("encoder", tokens=9, n_vocab=n_vocab), path, fp16)


def export_score_step(model: torch.nn.Module, path: str | os.PathLike, fp16: bool = False) -> None:
    """Write the Grad-TTS score network of ``model`` to ``path``:
    x [B, 80, F], t [B], mu [B, 80, F], mask [B, 1, F] -> score [B, 80, F] (B, F dynamic; F % 4 == 0)."""
    _export(ScoreStep(model), "score_step", example_inputs("score_step", frames=12), path, fp16)


def weights_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store the float32 weight initializers of Conv/ConvTranspose/MatMul/Gemm/Gather nodes as float16,
    each followed by a Cast back to float32; every other tensor, input and output keeps its type."""
    graph = model.graph
    consumers: dict[str, list[tuple[str, int]]] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node.op_type, i))
    casts, keep = [], []
    for init in graph.initializer:
        uses = consumers.get(init.name, [])
        is_weight = uses and all(i in _WEIGHT_OPS.get(op, ()) for op, i in uses)
        if init.data_type != TensorProto.FLOAT or not is_weight or np.prod(init.dims) < 16:
            keep.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{init.name}__fp16")
        keep.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=f"{init.name}__cast"))
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def versions() -> dict[str, Any]:
    """Versions recorded in voice.json."""
    try:
        gradwave = importlib.metadata.version("gradwave")
    except importlib.metadata.PackageNotFoundError:
        gradwave = "unknown"
    return {"gradwave": gradwave, "torch": torch.__version__, "onnx": onnx.__version__, "opset": OPSET}


def voice_dict(
    vocoder: LoadedVocoder,
    acoustic: LoadedAcoustic | None,
    graphs: dict[str, dict[str, str]],
    fp16: bool = False,
    default_schedule: str | None = None,
    decoder_steps: int | None = None,
    temperature: float | None = None,
    solver: str | None = None,
    postfilter: Any = None,
) -> dict[str, Any]:
    """The ``voice.json`` dict for these models (see :mod:`serve.bundle` for the layout).

    graphs: {graph name: {"file": ..., "sha256": ...}} (empty sha256 for a bundle that is not on disk).
    postfilter: the vocoder's :class:`vocoder.postfilter.PostFilter` (None: its defaults, 3 passes).
    Decoder settings left None come from the acoustic checkpoint's ``metadata["decoder"]``
    (``n_steps``, ``temperature``, ``solver``), else 10 steps, temperature 1.5, Euler.
    """
    import dataclasses

    from vocoder.audio import MEL
    from vocoder.postfilter import PostFilter

    postfilter = PostFilter() if postfilter is None else postfilter
    if decoder_steps is not None and (not isinstance(decoder_steps, int) or decoder_steps < 1):
        raise ValueError(f"--decoder-steps must be a positive whole number, got {decoder_steps!r}")
    default = default_schedule or default_schedule_name(vocoder.schedules)
    if default not in vocoder.schedules:
        raise ValueError(f"no vocoder schedule {default!r} (have: {', '.join(vocoder.schedules)})")
    out: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sample_rate": MEL.sample_rate,
        "precision": "fp16" if fp16 else "fp32",
        "mel": dataclasses.asdict(MEL),
        "graphs": graphs,
        "vocoder": {
            "model": vocoder.name, "config": vocoder.config, "sampler": "ddpm", "default_schedule": default,
            "schedules": {n: {"betas": [float(b) for b in s["betas"]], "conds": [float(c) for c in s["conds"]]}
                          for n, s in vocoder.schedules.items()},
            "checkpoint_step": vocoder.step,
            "postfilter": dataclasses.asdict(postfilter),
        },
        "acoustic": None,
        "versions": versions(),
    }
    if acoustic is not None:
        cfg, meta = acoustic.model.cfg, acoustic.decoder
        decoder_steps = decoder_steps if decoder_steps is not None else meta.get("n_steps", DEFAULT_DECODER_STEPS)
        temperature = temperature if temperature is not None else meta.get("temperature", DEFAULT_TEMPERATURE)
        solver = solver if solver is not None else meta.get("solver", DEFAULT_SOLVER)
        out["acoustic"] = {
            "model": "gradtts", "config": acoustic.config, "symbols": acoustic.symbols, "text": acoustic.text,
            "decoder": {"steps": int(decoder_steps), "temperature": float(temperature), "solver": solver,
                        "beta_min": float(cfg.beta_min), "beta_max": float(cfg.beta_max),
                        "length_multiple": int(acoustic.model.length_multiple)},
            "checkpoint_step": acoustic.step,
        }
    return out


def export_bundle(
    acoustic_ckpt_path: str | os.PathLike | None,
    vocoder_ckpt_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    fp16: bool = False,
    overwrite: bool = False,
    default_schedule: str | None = None,
    decoder_steps: int | None = None,
    temperature: float | None = None,
    solver: str | None = None,
    postfilter: Any = None,
) -> Path:
    """Export a voice bundle (graphs + voice.json) from training checkpoints into ``out_dir``.

    ``acoustic_ckpt_path=None`` makes a vocoder-only bundle (copy-synthesis, no text). Everything is written
    into a temporary sibling directory that is renamed to ``out_dir`` at the end, so ``out_dir`` is either
    absent/unchanged or complete. An existing ``out_dir`` raises FileExistsError unless ``overwrite``.
    Returns the bundle directory.
    """
    vocoder = load_vocoder(vocoder_ckpt_path)
    acoustic = load_acoustic(acoustic_ckpt_path) if acoustic_ckpt_path is not None else None
    return export_models(vocoder, acoustic, out_dir, fp16=fp16, overwrite=overwrite,
                         default_schedule=default_schedule, decoder_steps=decoder_steps,
                         temperature=temperature, solver=solver, postfilter=postfilter)


def export_models(
    vocoder: LoadedVocoder,
    acoustic: LoadedAcoustic | None,
    out_dir: str | os.PathLike,
    fp16: bool = False,
    overwrite: bool = False,
    **voice_options: Any,
) -> Path:
    """:func:`export_bundle` for models already in memory (``voice_options``: see :func:`voice_dict`)."""
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists (pass overwrite=True / --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp", dir=out.parent))
    try:
        jobs = [("vocoder_step", export_vocoder_step, vocoder.model)]
        if acoustic is not None:
            jobs += [("encoder", export_encoder, acoustic.model), ("score_step", export_score_step, acoustic.model)]
        graphs = {}
        for name, fn, model in jobs:
            fn(model, tmp / GRAPH_FILES[name], fp16=fp16)
            graphs[name] = {"file": GRAPH_FILES[name], "sha256": sha256_file(tmp / GRAPH_FILES[name])}
        write_voice_json(voice_dict(vocoder, acoustic, graphs, fp16=fp16, **voice_options), tmp / VOICE_JSON)
        load_bundle(tmp)  # the runtime can read what was written
        _replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _replace_dir(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; an existing ``dst`` is moved aside first and removed after the swap."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old{os.getpid()}")
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except BaseException:
        if old is not None:
            os.replace(old, dst)
        raise
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)
