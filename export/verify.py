"""Check an exported bundle against the torch models it came from.

* Graph parity: each ONNX graph and its torch module on the same random inputs (two batch sizes and
  lengths other than the export's, so the dynamic axes are exercised).
* End to end: the bundle's mel and audio for a one-sentence text versus the torch pipeline
  (``GradTTS.synthesise`` + ``vocoder.diffusion.sample_ddpm`` over the *original* vocoder, then the voice's
  post-filter, :func:`vocoder.postfilter.mel_postfilter`, as the runtime applies it), both fed the same
  numpy noise (:func:`serve.engine.prior_noise`, :func:`serve.engine.vocoder_noise`).

Tolerances (``max |onnx - torch| <= atol + rtol * max |torch|``): fp32 bundles -- graphs atol 1e-4,
rtol 1e-4; end to end atol 2e-3 (errors of ~1e-6 grow through 10 ODE steps and the vocoder's division by
sqrt(1 - beta)). fp16-weight bundles: graphs atol 5e-3, rtol 2e-2; end to end atol 5e-2, rtol 5e-2.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from export.wrappers import (
    GradTTSEncoder,
    LoadedAcoustic,
    LoadedVocoder,
    ScoreStep,
    VocoderStep,
    example_inputs,
    load_acoustic,
    load_vocoder,
)

TOLERANCES = {  # precision -> {"graph": (atol, rtol), "e2e": (atol, rtol)}
    "fp32": {"graph": (1e-4, 1e-4), "e2e": (2e-3, 0.0)},
    "fp16": {"graph": (5e-3, 2e-2), "e2e": (5e-2, 5e-2)},
}
DEFAULT_TEXT = "The quick brown fox jumps over the lazy dog."


@dataclass(frozen=True)
class Check:
    """One comparison: max absolute difference against the tolerance ``atol + rtol * scale``."""

    name: str
    max_abs: float
    scale: float  # max |reference|
    atol: float
    rtol: float

    @property
    def bound(self) -> float:
        return self.atol + self.rtol * self.scale

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_abs) and self.max_abs <= self.bound)


@dataclass
class VerifyReport:
    bundle: str
    precision: str
    checks: list[Check] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"bundle": self.bundle, "precision": self.precision, "ok": self.ok, "info": self.info,
                "checks": [{**asdict(c), "bound": c.bound, "ok": c.ok} for c in self.checks]}

    def format(self) -> str:
        """A plain-text table, one line per check."""
        lines = [f"{self.bundle} ({self.precision}): {'OK' if self.ok else 'FAILED'}"]
        for c in self.checks:
            flag = "ok  " if c.ok else "FAIL"
            lines.append(f"  {flag} {c.name:<28} max|diff| {c.max_abs:.3g}  (bound {c.bound:.3g})")
        lines += [f"  info {k}: {v}" for k, v in self.info.items()]
        return "\n".join(lines)


def _check(name: str, got: np.ndarray, ref: np.ndarray, tol: tuple[float, float]) -> Check:
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return Check(f"{name} (shape {got.shape} vs {ref.shape})", float("inf"), 0.0, *tol)
    return Check(name, float(np.max(np.abs(got - ref))), float(np.max(np.abs(ref))), *tol)


def graph_checks(synth, vocoder: LoadedVocoder, acoustic: LoadedAcoustic | None, tol: tuple[float, float],
                 seed: int = 0) -> list[Check]:
    """Each graph of ``synth`` (a :class:`serve.engine.Synthesizer`) against its torch module."""
    checks = []
    cases = [(1, 5, 7), (3, 11, 16)]  # (batch, mel frames / tokens, decoder frames)
    with torch.no_grad():
        step = VocoderStep(vocoder.model).eval()
        cond_max = max(max(s["conds"]) for s in vocoder.schedules.values())  # DiffWave: step index; WaveGrad: level
        for b, f, _ in cases:
            x = example_inputs("vocoder_step", batch=b, frames=f, seed=seed)
            x["cond"] = x["cond"] * float(cond_max)
            ref = vocoder.model(x["audio"], x["cond"], x["mel"]).numpy()  # the original, not the export copy
            got = synth.graphs.vocoder_step(*(x[k].numpy() for k in ("audio", "cond", "mel")))
            checks.append(_check(f"vocoder_step B={b} F={f}", got, ref, tol))
            checks.append(_check(f"vocoder_step wrapper B={b}", step(x["audio"], x["cond"], x["mel"]).numpy(), ref,
                                 TOLERANCES["fp32"]["graph"]))
        if acoustic is not None:
            enc, score = GradTTSEncoder(acoustic.model).eval(), ScoreStep(acoustic.model).eval()
            for b, n, f in cases:
                x = example_inputs("encoder", batch=b, tokens=n, n_vocab=acoustic.model.cfg.n_vocab, seed=seed)
                x["lengths"][0] = max(1, n - 3)  # padding inside the batch
                ref = enc(x["ids"], x["lengths"])
                got = synth.graphs.encode(x["ids"].numpy(), x["lengths"].numpy())
                for name, g, r in zip(("mu_x", "logw", "x_mask"), got, ref):
                    checks.append(_check(f"encoder.{name} B={b} L={n}", g, r.numpy(), tol))
                x = example_inputs("score_step", batch=b, frames=f, seed=seed)
                x["mask"][0, :, f // 2:] = 0.0
                ref = score(x["x"], x["t"], x["mu"], x["mask"]).numpy()
                got = synth.graphs.score(*(x[k].numpy() for k in ("x", "t", "mu", "mask")))
                checks.append(_check(f"score_step B={b} F={f}", got, ref, tol))
    return checks


def end_to_end_checks(synth, vocoder: LoadedVocoder, acoustic: LoadedAcoustic | None, text: str, seed: int,
                      tol: tuple[float, float]) -> tuple[list[Check], dict[str, Any]]:
    """The bundle's mel and audio against the torch pipeline with the same noise (first sentence of
    ``text``; vocoder only: copy-synthesis of a random mel)."""
    from serve.engine import edge_window, fix_length, prior_noise, vocoder_noise
    from serve.streaming import ChunkSpan
    from vocoder import diffusion
    from vocoder.audio import clip_log_mel
    from vocoder.postfilter import mel_postfilter

    bundle = synth.bundle
    name, schedule = bundle.vocoder.schedule(None)
    betas, conds = schedule.arrays()
    checks, info = [], {"schedule": name}
    with torch.no_grad():
        if acoustic is not None:
            dec = bundle.acoustic.decoder
            ids = next(synth.sentence_ids(text))
            ids_t, lengths = torch.tensor([ids]), torch.tensor([len(ids)])
            model = acoustic.model
            _, logw, x_mask = model.encode(ids_t, lengths)
            n_frames = int(model.durations(logw, x_mask).sum())
            noise = np.zeros((1, bundle.n_mels, fix_length(n_frames, dec.length_multiple)), dtype=np.float32)
            noise[0, :, :n_frames] = prior_noise(seed, 0, bundle.n_mels, n_frames)
            mel_ref, _ = model.synthesise(ids_t, lengths, n_timesteps=dec.steps, temperature=dec.temperature,
                                          solver=dec.solver, noise=torch.from_numpy(noise))
            mel_ref = mel_ref[0].numpy()  # [80, F]
            mel = synth._mels([ids], [0], seed, None, None, 1.0, None)[0]
            checks.append(_check("mel (text -> mel)", mel, mel_ref, tol))
            info["frames"] = n_frames
        else:
            mel_ref = np.random.default_rng(seed).normal(-5.0, 2.0, (bundle.n_mels, 40)).astype(np.float32)
        n_frames = mel_ref.shape[1]
        noise = vocoder_noise(seed, 0, schedule.steps, n_frames, bundle.hop_length)  # [K, hop (F + 2 EDGE)]
        whole = ChunkSpan(0, n_frames, 0, n_frames)  # the sentence in one window, edges padded as the runtime does
        window, noise, core = edge_window(mel_ref, noise, whole, bundle.hop_length)  # [80, W], [K, hop W]
        mel_t = clip_log_mel(torch.from_numpy(window)[None])  # [1, 80, W]: the vocoder's input contract
        audio_ref = diffusion.sample_ddpm(lambda x, c: vocoder.model(x, c, mel_t), torch.from_numpy(noise[:1]),
                                          betas, conds, noise=lambda n: torch.from_numpy(noise[n: n + 1]))
        audio_ref = mel_postfilter(audio_ref.float().numpy(), mel_t.numpy(), synth.postfilter)[0, core]  # [hop F]
    audio = synth.vocode(mel_ref, seed=seed)
    checks.append(_check(f"audio (vocoder, {name})", audio, audio_ref, tol))
    chunked = synth.vocode(mel_ref, seed=seed, chunk_frames=32)
    info["chunked_vs_unchunked_max_abs"] = float(np.max(np.abs(chunked - audio)))
    if acoustic is not None:
        full = np.concatenate([c.audio for c in synth.synthesize(text, seed=seed, chunk_frames=None)])
        if len(list(synth.sentence_ids(text))) == 1:
            checks.append(_check("audio (text -> audio)", full, audio_ref, tol))
    return checks, info


def verify_bundle(bundle_dir: str | os.PathLike, vocoder_ckpt: str | os.PathLike,
                  acoustic_ckpt: str | os.PathLike | None = None, text: str = DEFAULT_TEXT, seed: int = 0,
                  threads: int | None = None) -> VerifyReport:
    """Compare the bundle in ``bundle_dir`` with the checkpoints it was exported from; see the module
    docstring for what is compared and the tolerances. ``text`` should be one sentence."""
    from serve.engine import Synthesizer

    synth = Synthesizer(bundle_dir, device="cpu", threads=threads)
    precision = synth.bundle.precision
    tols = TOLERANCES.get(precision, TOLERANCES["fp16"])
    vocoder = load_vocoder(vocoder_ckpt)
    acoustic = load_acoustic(acoustic_ckpt) if acoustic_ckpt is not None else None
    if (acoustic is None) != (synth.bundle.acoustic is None):
        raise ValueError("pass the acoustic checkpoint exactly when the bundle has an acoustic model")
    report = VerifyReport(str(bundle_dir), precision)
    report.checks += graph_checks(synth, vocoder, acoustic, tols["graph"], seed)
    checks, info = end_to_end_checks(synth, vocoder, acoustic, text, seed, tols["e2e"])
    report.checks += checks
    report.info.update(info)
    return report
