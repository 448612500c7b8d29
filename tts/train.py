"""The Grad-TTS training task on the shared loop (:mod:`vocoder.training.loop`): no loop, checkpointing,
EMA, AMP or DDP code of its own.

Preparation (cached in ``RUN/phonemes.npz`` and ``RUN/mels.npz``, see :func:`prepare`): each utterance's
normalised transcript -> phonemes -> ids with blanks interspersed (Grad-TTS), and the whole utterance's
log-mel in the contract of :mod:`vocoder.audio`, stored as float16. Batches are random utterances
(a pure function of seed, step and rank), padded; :meth:`GradTTS.compute_loss` does MAS, the duration,
prior and diffusion losses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from typing import Any

import numpy as np
import torch
from torch import nn

from tts.grad_tts import GradTTS, GradTTSConfig
from tts.text import SymbolTable, default_table, intersperse, text_to_phonemes
from vocoder.audio import load_audio, mel_numpy
from vocoder.training.data import read_metadata, split, step_rng
from vocoder.training.plots import save_spectrogram_png

DECODER_DEFAULTS = {"n_steps": 10, "temperature": 1.5, "solver": "euler"}


@dataclasses.dataclass(frozen=True)
class TTSTaskConfig:
    size: str = "base"  # base | small | tiny
    n_val: int = 16
    max_frames: int = 1000  # utterances longer than this (11.6 s) are left out of training batches
    val_items: int = 2


def model_config(size: str, n_vocab: int) -> GradTTSConfig:
    if size == "base":
        return GradTTSConfig.base(n_vocab)
    if size == "small":
        return GradTTSConfig.small(n_vocab)
    if size == "tiny":
        return GradTTSConfig.tiny(n_vocab)
    raise ValueError(f"unknown size {size!r} (expected base, small or tiny)")


def utterance_ids(text: str, table: SymbolTable) -> list[int]:
    """One utterance (possibly several sentences) -> ids with blanks: ``[2 N + 1]``."""
    phonemes = [p for sentence in text_to_phonemes(text) for p in sentence]
    return intersperse(table.encode(phonemes), table.blank_id)


def _cache_key(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()


def _load_cached(path: str | None, key: str) -> dict[str, np.ndarray] | None:
    if path and os.path.isfile(path):
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return {k: np.asarray(z[k]) for k in z.files}
    return None


def _save_cached(path: str | None, arrays: dict[str, np.ndarray]) -> None:
    if path:
        tmp = path + ".tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, path)


def prepare(data_dir: str, cache_dir: str | None, table: SymbolTable, progress: bool = True) -> dict[str, Any]:
    """Phoneme ids and mels for every utterance of a corpus.

    Two caches in ``cache_dir``: ``phonemes.npz`` (ids; small, keyed by the transcripts and the symbol
    table, so it can be made on one machine and carried to another that has no phonemizer) and
    ``mels.npz`` (float16 mels, keyed by the utterance ids). Returns {"uids": [N], "ids": list of int16
    arrays [L_i], "mels": list of float16 arrays [80, F_i]}.
    """
    items = sorted(read_metadata(data_dir), key=lambda u: u.id)
    uids = [u.id for u in items]
    ph_path = os.path.join(cache_dir, "phonemes.npz") if cache_dir else None
    mel_path = os.path.join(cache_dir, "mels.npz") if cache_dir else None

    def bar(seq, desc):
        if not progress:
            return seq
        from tqdm import tqdm

        return tqdm(seq, desc=desc, unit="utt", file=sys.stderr)

    ph_key = _cache_key([[u.id, u.normalized] for u in items], table.to_dict())
    ph = _load_cached(ph_path, ph_key)
    if ph is None:
        ids = [np.asarray(utterance_ids(u.normalized, table), dtype=np.int16) for u in bar(items, "phonemes")]
        ph = {"key": np.array(ph_key), "lens": np.array([len(x) for x in ids]), "ids": np.concatenate(ids)}
        _save_cached(ph_path, ph)
    mel_key = _cache_key(uids)
    ml = _load_cached(mel_path, mel_key)
    if ml is None:
        mels = [mel_numpy(load_audio(u.path, quiet=True)).astype(np.float16) for u in bar(items, "mels")]
        ml = {"key": np.array(mel_key), "lens": np.array([m.shape[1] for m in mels]),
              "mels": np.concatenate(mels, axis=1)}
        _save_cached(mel_path, ml)
    id_off = np.concatenate([[0], np.cumsum(ph["lens"])])
    mel_off = np.concatenate([[0], np.cumsum(ml["lens"])])
    return {
        "uids": uids,
        "ids": [ph["ids"][id_off[i]: id_off[i + 1]] for i in range(len(uids))],
        "mels": [ml["mels"][:, mel_off[i]: mel_off[i + 1]] for i in range(len(uids))],
    }


def collate(ids: list[np.ndarray], mels: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """Pad a list of id ``[L_i]`` and mel ``[80, F_i]`` arrays into a batch:
    ids ``[B, L]`` int64, lengths ``[B]``, mel ``[B, 80, F]`` float32, mel_lengths ``[B]``."""
    b, lmax, fmax = len(ids), max(len(x) for x in ids), max(m.shape[1] for m in mels)
    id_t = torch.zeros(b, lmax, dtype=torch.long)
    mel_t = torch.zeros(b, mels[0].shape[0], fmax)
    for i, (x, m) in enumerate(zip(ids, mels)):
        id_t[i, : len(x)] = torch.from_numpy(x.astype(np.int64))
        mel_t[i, :, : m.shape[1]] = torch.from_numpy(m.astype(np.float32))
    return {"ids": id_t, "lengths": torch.tensor([len(x) for x in ids]), "mel": mel_t,
            "mel_lengths": torch.tensor([m.shape[1] for m in mels])}


class GradTTSLoss(nn.Module):
    """What DDP wraps during training: ``forward(batch)`` is the loss dict, so gradient sync sees a forward."""

    def __init__(self, model: GradTTS):
        super().__init__()
        self.model = model

    def forward(self, ids, lengths, mel, mel_lengths) -> dict[str, torch.Tensor]:
        return self.model.compute_loss(ids, lengths, mel, mel_lengths)


class TTSTask:
    name = "gradtts"
    # Padded batches of random utterances change shape every step, so cudnn.benchmark stays off: in session 8
    # (H100) the first ~3 minutes ran at 0.5-2 step/s instead of 3.1, most likely from re-timing each new shape.
    static_shapes = False

    def __init__(self, data_dir: str, cfg: TTSTaskConfig = TTSTaskConfig(), cache_dir: str | None = None,
                 progress: bool = True):
        self.cfg = cfg
        self.table = default_table()
        self.model_cfg = model_config(cfg.size, len(self.table))
        if cache_dir:
            os.makedirs(cache_dir, exist_ok=True)
        data = prepare(data_dir, cache_dir, self.table, progress=progress)
        n = len(data["uids"])
        order = {u: i for i, u in enumerate(data["uids"])}
        items = read_metadata(data_dir)
        train_items, val_items = split(items, min(cfg.n_val, n // 10))
        self.train_idx = [order[u.id] for u in train_items if data["mels"][order[u.id]].shape[1] <= cfg.max_frames]
        self.val_idx = [order[u.id] for u in val_items][: cfg.val_items]
        if not self.train_idx:
            raise ValueError(f"{data_dir}: no training utterance of at most {cfg.max_frames} frames")
        self.data = data

    # --- Task protocol ------------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        return GradTTS(self.model_cfg)

    def training_module(self, model: GradTTS) -> nn.Module:
        return GradTTSLoss(model)

    def config_dict(self) -> dict[str, Any]:
        return {"model": self.model_cfg.to_dict(), "task": dataclasses.asdict(self.cfg)}

    def metadata(self) -> dict[str, Any]:
        return {"symbols": self.table.to_dict(), "decoder": dict(DECODER_DEFAULTS)}

    def batch(self, step: int, rank: int, seed: int, batch_size: int) -> dict[str, torch.Tensor]:
        rng = step_rng(seed, step, rank)
        pick = [self.train_idx[int(i)] for i in rng.integers(len(self.train_idx), size=batch_size)]
        return collate([self.data["ids"][i] for i in pick], [self.data["mels"][i] for i in pick])

    def loss(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        losses = net(batch["ids"], batch["lengths"], batch["mel"], batch["mel_lengths"])
        total = losses["dur_loss"] + losses["prior_loss"] + losses["diff_loss"]
        return total, {k: float(v.detach()) for k, v in losses.items()}

    @torch.no_grad()
    def validate(self, model: nn.Module, step: int, out_dir: str) -> dict[str, float]:
        """Validation losses on the held-out utterances (fixed seed), and a synthesised mel next to the
        recording's, as a PNG."""
        if not self.val_idx:
            return {}
        os.makedirs(out_dir, exist_ok=True)
        device = next(model.parameters()).device
        batch = collate([self.data["ids"][i] for i in self.val_idx], [self.data["mels"][i] for i in self.val_idx])
        batch = {k: v.to(device) for k, v in batch.items()}
        state = torch.get_rng_state()
        torch.manual_seed(1234)
        losses = model.compute_loss(batch["ids"], batch["lengths"], batch["mel"], batch["mel_lengths"])
        gen = torch.Generator(device=device).manual_seed(0)
        mel, _ = model.synthesise(batch["ids"][:1, : int(batch["lengths"][0])], batch["lengths"][:1],
                                  n_timesteps=DECODER_DEFAULTS["n_steps"],
                                  temperature=DECODER_DEFAULTS["temperature"], generator=gen)
        torch.set_rng_state(state)
        ref = batch["mel"][0, :, : int(batch["mel_lengths"][0])].cpu().numpy()
        save_spectrogram_png(os.path.join(out_dir, f"step{step:08d}.png"), ref, mel[0].float().cpu().numpy(),
                             f"Grad-TTS step {step}: recording (top) / synthesised, 10 steps (bottom)")
        np.save(os.path.join(out_dir, f"step{step:08d}.npy"), mel[0].float().cpu().numpy())
        return {k: float(v) for k, v in losses.items()}
