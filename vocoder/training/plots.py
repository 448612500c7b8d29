"""Figures written during training and evaluation."""

from __future__ import annotations

import os


def save_spectrogram_png(path: str, *mels_and_title) -> None:
    """Plot one or more mels ``[80, F]`` stacked vertically, with a title (last argument)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    *mels, title = mels_and_title
    fig, axes = plt.subplots(len(mels), 1, figsize=(10, 2.2 * len(mels)), squeeze=False)
    for ax, m in zip(axes[:, 0], mels):
        ax.imshow(m, origin="lower", aspect="auto", vmin=-11.5, vmax=2.5, cmap="magma")
        ax.set_ylabel("mel bin")
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("frame (11.6 ms)")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)
