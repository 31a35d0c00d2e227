"""Matplotlib figures for reports: training curves, confusion matrix, ROC curves, image grids.

Every function writes one PNG and returns its path; nothing is shown on screen (Agg backend).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def read_history(history_csv: Path) -> dict[str, list[float]]:
    """The CSVLogger file as {column: values}, one value per epoch."""
    with open(history_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [float(r[key]) for r in rows if r.get(key) not in (None, "")] for key in rows[0]} if rows else {}


def training_curves(history_csv: Path, path: Path) -> Path:
    """Loss, every other metric (train vs val) and the learning rate, per epoch."""
    history = read_history(history_csv)
    metrics = [k for k in history if k not in ("epoch", "learning_rate") and not k.startswith("val_")]
    panels = metrics + (["learning_rate"] if "learning_rate" in history else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    epochs = [int(e) + 1 for e in history.get("epoch", [])]
    for ax, name in zip(axes[0], panels, strict=True):
        ax.plot(epochs, history[name], marker=".", label="train" if name != "learning_rate" else None)
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], marker=".", label="validation")
            ax.legend()
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def confusion_matrix(cm: np.ndarray, class_names: Sequence[str], path: Path) -> Path:
    """A counts matrix, true classes on rows, predicted on columns."""
    size = max(4.5, 0.5 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(cm, display_labels=list(class_names)).plot(ax=ax, colorbar=False, cmap="Blues")
    ax.set_title("Confusion matrix (test)")
    return _save(fig, path)


def roc_curves(y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str], path: Path) -> Path:
    """One-vs-rest ROC curve per class with its AUC.

    Args:
        y_true: (n,) int class ids.
        probs: (n, n_classes) float probabilities.
    """
    fig, ax = plt.subplots(figsize=(6, 5.5))
    for k, name in enumerate(class_names):
        if 0 < np.sum(y_true == k) < len(y_true):
            RocCurveDisplay.from_predictions(y_true == k, probs[:, k], name=str(name), ax=ax, plot_chance_level=False)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_title("ROC, one class vs rest (test)")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def image_grid(images: np.ndarray, titles: Sequence[str], path: Path, cols: int = 8, cmap: str | None = "gray") -> Path:
    """A grid of images with a title above each.

    Args:
        images: (n, h, w) or (n, h, w, c) floats in [0, 1] or uint8.
        titles: n strings.
    """
    n = len(images)
    if n == 0:
        fig, ax = plt.subplots(figsize=(3, 1))
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center")
        ax.axis("off")
        return _save(fig, path)
    cols = min(cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles, strict=False):
        image = np.squeeze(image)
        ax.imshow(image, cmap=cmap if image.ndim == 2 else None)
        ax.set_title(title, fontsize=8)
    return _save(fig, path)
