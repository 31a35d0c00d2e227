"""The GAN report's figures: losses per step, FID per epoch, nearest training neighbours."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def read_csv(path: Path) -> dict[str, list[float]]:
    """A CSV of numbers as {column: values}; cells that are not numbers (CSVLogger's "NA") are left out."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, list[float]] = {key: [] for key in (rows[0] if rows else {})}
    for row in rows:
        for key, cell in row.items():
            try:
                columns[key].append(float(cell))
            except (TypeError, ValueError):
                continue
    return columns


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def loss_curves(steps_csv: Path, path: Path, smooth: int = 25) -> Path:
    """Discriminator and generator loss per step (faint) with a moving average over `smooth` steps."""
    steps = read_csv(steps_csv)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for name, color in (("d_loss", "tab:blue"), ("g_loss", "tab:orange")):
        values = np.asarray(steps[name])
        ax.plot(steps["step"], values, color=color, alpha=0.25, lw=0.8)
        if len(values) >= smooth:
            average = np.convolve(values, np.ones(smooth) / smooth, mode="valid")
            ax.plot(steps["step"][smooth - 1 :], average, color=color, label=f"{name} ({smooth}-step mean)")
        else:
            ax.plot([], [], color=color, label=name)
    ax.set_xlabel("step")
    ax.set_title("losses per step")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def fid_curve(history_csv: Path, fid_initial: float, path: Path) -> Path:
    """Validation FID (log scale) and the sample diversity ratio per epoch; epoch 0 is the untrained generator
    (`fid_initial`, against the same validation images)."""
    history = read_csv(history_csv)
    epochs = [0] + [int(e) + 1 for e in history["epoch"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(epochs, [fid_initial, *history["val_fid"]], marker=".")
    ax1.set_yscale("log")
    ax1.set_title("validation FID (own feature network; lower is better)")
    ax2.plot(epochs[1:], history["diversity_ratio"], marker=".", color="tab:green")
    ax2.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax2.set_title("sample diversity / data diversity")
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def nearest_neighbours(samples: np.ndarray, neighbours: np.ndarray, distances: np.ndarray, path: Path) -> Path:
    """One row per generated sample: the sample, then its nearest training images with their distances.

    Args:
        samples: (n, h, w, 3) uint8 generated images.
        neighbours: (n, k, h, w, 3) uint8 training images, nearest first.
        distances: (n, k) RMS pixel distances in [0, 1].
    """
    n, k = neighbours.shape[:2]
    fig, axes = plt.subplots(n, k + 1, figsize=(1.5 * (k + 1), 1.6 * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(samples[i])
        axes[i, 0].set_title("generated", fontsize=8, color="tab:red")
        for j in range(k):
            axes[i, j + 1].imshow(neighbours[i, j])
            axes[i, j + 1].set_title(f"train, d={distances[i, j]:.3f}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("nearest training images (pixel distance): close copies would show d near 0", fontsize=9)
    return _save(fig, path)
