"""Listening samples from a ``gradwave eval tts`` run: ``--samples DIR`` writes, for the first few sentences,

* ``<id>-gradwave.wav``: our voice (Grad-TTS + vocoder at the first step count and solver of the run), 22,050 Hz;
* ``<id>.png``: the log-mel spectrograms ``[80, F]`` of the corpus recording (the ceiling), the recording
  vocoded by our vocoder, and our voice, stacked on one time axis;
* ``README.md``: each sentence's text next to its files.

The recordings themselves are corpus data and are not copied (their spectrogram is drawn, not their audio).
matplotlib (Agg backend) is imported only here. Every file is written to a temporary path and renamed.
"""

from __future__ import annotations

import os
import textwrap
from typing import Any

import numpy as np

from vocoder.audio import HOP_LENGTH, SAMPLE_RATE, mel_numpy, save_audio
from vocoder.evaluate import atomic_write_text

SAMPLE_COUNT = 3


def plot_mels(panels: list[tuple[str, np.ndarray]], title: str, path: str) -> None:
    """panels: (label, log-mel ``[80, F]``) each; one row per panel on a shared colour scale and time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = max(m.shape[1] for _, m in panels)
    lo = min(float(m.min()) for _, m in panels)
    hi = max(float(m.max()) for _, m in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.2 * len(panels)), sharex=True, squeeze=False)
    seconds = frames * HOP_LENGTH / SAMPLE_RATE
    for ax, (label, mel) in zip(axes[:, 0], panels):
        end = mel.shape[1] * HOP_LENGTH / SAMPLE_RATE
        im = ax.imshow(mel, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma",
                       extent=(0.0, end, 0, mel.shape[0]))
        ax.set_xlim(0.0, seconds)
        ax.set_ylabel("mel band")
        ax.set_title(label, fontsize=10, loc="left")
    axes[-1, 0].set_xlabel("seconds")
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="log mel", shrink=0.8)
    fig.suptitle(textwrap.fill(title, 100), fontsize=10)  # long sentences wrap instead of being cut off
    tmp = f"{path}.tmp{os.getpid()}.png"
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


def write_samples(out_dir: str, sentences: list[Any], audio: dict[str, dict[str, np.ndarray]],
                  labels: dict[str, str], ours: str, count: int = SAMPLE_COUNT) -> list[str]:
    """Write the samples of the first ``count`` sentences. ``audio[slug][id]`` is a waveform ``[T]`` per system
    (slug) and sentence; ``labels[slug]`` its caption; ``ours`` the slug whose audio is written as
    ``<id>-gradwave.wav``.
    Returns the ids written."""
    os.makedirs(out_dir, exist_ok=True)
    lines = ["# gradwave samples", "",
             f"Our voice ({labels[ours]}) on held-out sentences, with the log-mel spectrograms of the corpus "
             "recording (the ceiling), the recording vocoded by our vocoder, and ours. Written by "
             "`gradwave eval tts --samples DIR`.", ""]
    written = []
    for sentence in sentences[:count]:
        sid = sentence.id
        if sid not in audio.get(ours, {}):
            continue
        save_audio(os.path.join(out_dir, f"{sid}-gradwave.wav"), audio[ours][sid])
        panels = [(labels[slug], mel_numpy(audio[slug][sid])) for slug in audio if sid in audio[slug]]
        plot_mels(panels, f"{sid}: {sentence.text}", os.path.join(out_dir, f"{sid}.png"))
        wav = f"{sid}-gradwave.wav"
        lines += [f"## {sid}", "", f"> {sentence.text}", "", f"[{wav}]({wav}) (synthesized by gradwave)", "",
                  f"![{sid} spectrograms]({sid}.png)", ""]
        written.append(sid)
    atomic_write_text(os.path.join(out_dir, "README.md"), "\n".join(lines))
    return written
