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
from sklearn.metrics import ConfusionMatrixDisplay, roc_auc_score, roc_curve


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def read_history(history_csv: Path) -> dict[str, list[float]]:
    """The CSVLogger file as {column: values}, one value per epoch (an "NA", a value not logged, left out)."""
    with open(history_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [float(r[key]) for r in rows if r.get(key) not in (None, "", "NA")] for key in rows[0]} if rows else {}


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
    """One-vs-rest ROC curve per class with its AUC; the false-positive axis is logarithmic,
    so that the differences between good classifiers (all near the top-left corner) stay visible.

    Args:
        y_true: (n,) int class ids.
        probs: (n, n_classes) float probabilities.
    """
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    floor = 1.0 / max(1, len(y_true))
    for k, name in enumerate(class_names):
        positives = y_true == k
        if 0 < positives.sum() < len(y_true):
            fpr, tpr, _ = roc_curve(positives, probs[:, k])
            auc = roc_auc_score(positives, probs[:, k])
            ax.plot(np.maximum(fpr, floor / 2), tpr, lw=1.2, label=f"{name} (AUC {auc:.4f})")
    ax.set_xscale("log")
    ax.set_xlim(floor / 2, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positive rate (log scale)")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC, each class vs the rest (test)")
    ax.grid(alpha=0.3, which="both")
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


def tuning_trials(trials: Sequence[dict], keys: Sequence[str], objective: str, maximize: bool, path: Path) -> Path:
    """The search at a glance: the objective per trial with the best so far, then the objective against each key.

    Args:
        trials: finished trials in order, each {"trial": id, "score": float, "values": {key: value}}.
        keys: the searched config keys, one panel each.
        maximize: whether a higher objective is better (accuracy) or a lower one (loss).
    """
    panels = 1 + len(keys)
    cols = min(4, panels)
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[panels:]:
        ax.axis("off")
    scores = [t["score"] for t in trials]
    order = range(1, len(trials) + 1)
    best = np.maximum.accumulate(scores) if maximize else np.minimum.accumulate(scores)
    ax = axes.flat[0]
    ax.plot(order, scores, "o", label="trial")
    ax.plot(order, best, "-", label="best so far")
    ax.set_xlabel("trial")
    ax.set_title(objective)
    ax.legend()
    for ax, key in zip(axes.flat[1:panels], keys, strict=True):
        values = [t["values"].get(key) for t in trials]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            ax.plot(values, scores, "o")
            if min(values) > 0 and max(values) / min(values) >= 100:
                ax.set_xscale("log")
        else:
            labels = sorted({str(v) for v in values})
            ax.plot([labels.index(str(v)) for v in values], scores, "o")
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
        ax.set_title(key)
        ax.set_ylabel(objective)
    for ax in axes.flat[:panels]:
        ax.grid(alpha=0.3)
    return _save(fig, path)


def size_versus_accuracy(
    models: dict[str, tuple[float, float]], path: Path, metric: str = "test accuracy", higher_is_better: bool = True
) -> Path:
    """Each model as a labelled point: gzip size in KB (x) against its test `metric` (y)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (kilobytes, value) in models.items():
        ax.plot(kilobytes, value, "o")
        ax.annotate(label, (kilobytes, value), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("gzip size (KB)")
    ax.set_ylabel(metric)
    ax.set_title(f"smaller and as good is better: {'up' if higher_is_better else 'down'} and left")
    ax.grid(alpha=0.3)
    return _save(fig, path)
