"""The detector's report figures: precision-recall curves and test images with true and predicted boxes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .scenes import Scenes

RECALLS = np.linspace(0, 1, 101)  # COCOeval's recall levels


def pr_curves(curves: dict[str, np.ndarray], ap: dict[str, float], path: Path) -> Path:
    """One precision-recall curve per class at IoU 0.5 (COCO's interpolated precision), AP in the legend."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for name, precision in curves.items():
        ax.plot(RECALLS, np.clip(precision, 0, 1), lw=1.2, label=f"{name} (AP {ap.get(name, 0):.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall at IoU 0.5 (test)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def detection_grid(
    scenes: Scenes,
    detections: dict[str, np.ndarray],
    class_names: Sequence[str],
    path: Path,
    threshold: float,
    indices: Sequence[int],
    cols: int = 4,
) -> Path:
    """Test images with their true boxes (dashed white) and the detections scoring >= threshold (coloured, labelled)."""
    size = scenes.images.shape[1]
    rows = -(-len(indices) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices, strict=False):
        ax.imshow(scenes.images[i])
        for y1, x1, y2, x2 in scenes.objects(i)[0] * size:
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", ls="--", lw=1))
        n = int(detections["num_detections"][i])
        for box, score, label in zip(
            detections["boxes"][i, :n], detections["scores"][i, :n], detections["classes"][i, :n], strict=True
        ):
            if score < threshold:
                continue
            y1, x1, y2, x2 = box * size
            colour = colours(int(label) % 10)
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=1.8))
            ax.text(x1, y1 - 1, f"{class_names[int(label)]} {score:.2f}", color="white", fontsize=7,
                    bbox={"facecolor": colour, "pad": 1, "lw": 0})  # fmt: skip
    fig.suptitle(f"Test scenes: true boxes dashed, detections scoring >= {threshold:g} labelled", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
