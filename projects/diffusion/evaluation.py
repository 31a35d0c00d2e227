"""`evaluate`'s measurements: FID/KID, precision and recall at several DDIM step counts, the floor, pure noise's FID,
the GAN's committed figures beside them, and the pictures (grids per step count, a denoising strip, DDPM).

Everything is measured in the feature space shared with the GAN (common/feature_space.py), against the held-out
test split (emoji neither model nor the feature network saw).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from common.held_out_reference import HeldOutReference
from common.image_grids import mosaic, save_png, to_uint8
from common.paths import REPO_ROOT

from .config import DiffusionConfig
from .sampling import Sampler, class_labels, generate, noise_from_seeds

GAN_RESULTS = REPO_ROOT / "benchmarks" / "results" / "gan.json"
GAN_KEYS = ("preset", "fid_to_floor_ratio", "fid", "fid_floor", "precision", "recall", "train_seconds", "data")
FID_SEED = 10_000  # FID's seeds differ from the grids'
STRIP_FRAMES = 10


def fid_inputs(sampler: Sampler, cfg: DiffusionConfig, ref: HeldOutReference) -> tuple[np.ndarray, np.ndarray | None]:
    """FID's `ref.count` seeds, and classes drawn as often as in the data (None when unconditional)."""
    seeds = np.arange(ref.count, dtype=np.int32) + FID_SEED
    return seeds, class_labels(ref.count, sampler.num_classes, -1, ref.class_probs, cfg.train.seed)


def fid_by_steps(
    sampler: Sampler, cfg: DiffusionConfig, ref: HeldOutReference
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """One row per DDIM step count of `sampling.compared_steps` (and `sampling.steps`): FID, KID, seconds per
    image; and the images of `sampling.steps`, for precision and recall."""
    s = cfg.sampling
    seeds, labels = fid_inputs(sampler, cfg, ref)
    rows, chosen = [], None
    generate(sampler, seeds[:256], None if labels is None else labels[:256], 1, s.eta, s.guidance)  # traced once
    for steps in sorted({*s.compared_steps, s.steps}):
        if steps > sampler.timesteps:
            continue
        start = time.perf_counter()
        images = generate(sampler, seeds, labels, steps, s.eta, s.guidance)
        seconds = (time.perf_counter() - start) / len(images)
        scores = ref.scores(images)
        rows.append(
            {
                "ddim_steps": steps,
                "fid": scores["fid"],
                "fid_to_floor_ratio": scores["fid_to_floor_ratio"],
                "kid": scores["kid"],
                "seconds_per_image": seconds,
            }
        )
        print(
            f"DDIM {steps} steps: FID {scores['fid']:.3g} ({scores['fid_to_floor_ratio']:.2f} x the floor), "
            f"{seconds * 1000:.1f} ms per image"
        )
        if steps == s.steps:
            chosen = images
    return rows, chosen


def noise_fid(ref: HeldOutReference, size: int, seed: int) -> float:
    """FID of pure Gaussian noise shown as images: what an untrained model's output looks like to the features."""
    noise = to_uint8(np.clip(noise_from_seeds(np.arange(ref.count) + seed, size).numpy(), -1, 1))
    return ref.scores(noise)["fid"]


def gan_figures() -> dict[str, Any]:
    """The GAN's committed benchmark (benchmarks/results/gan.json), the keys compared here; {} when there is none."""
    if not GAN_RESULTS.exists():
        return {}
    results = json.loads(GAN_RESULTS.read_text())
    return {key: results[key] for key in GAN_KEYS if key in results}


def steps_grid(sampler: Sampler, cfg: DiffusionConfig, steps_list: list[int], path: Path) -> Path:
    """One row per DDIM step count, the same 8 seeds (and classes) in every row: quality against sampling cost."""
    seeds = np.arange(8, dtype=np.int32) + cfg.train.seed
    labels = class_labels(8, sampler.num_classes)
    rows = [generate(sampler, seeds, labels, steps, cfg.sampling.eta, cfg.sampling.guidance) for steps in steps_list]
    return labelled_rows(rows, [f"{steps} steps" for steps in steps_list], "DDIM samples by number of steps", path)


def denoising_strip(sampler: Sampler, cfg: DiffusionConfig, path: Path) -> Path:
    """One image denoised step by step (DDIM, `sampling.steps`): the noisy x_t on top, the model's estimate of the
    clean image below, at `STRIP_FRAMES` evenly spaced steps."""
    s = cfg.sampling
    trace: list = []
    labels = class_labels(1, sampler.num_classes)
    x = noise_from_seeds(np.array([cfg.train.seed]), sampler.size)
    sampler.ddim(x, labels, s.steps, s.eta, s.guidance, trace=trace)
    shown = sorted({round(i) for i in np.linspace(0, len(trace) - 1, min(STRIP_FRAMES, len(trace)))})
    noisy = to_uint8(np.concatenate([x.numpy()] + [trace[i][0].numpy() for i in shown]))
    estimate = to_uint8(np.concatenate([np.zeros_like(x.numpy())] + [trace[i][1].numpy() for i in shown]))
    titles = ["noise"] + [f"step {i + 1}" for i in shown]
    fig, axes = plt.subplots(2, len(titles), figsize=(1.2 * len(titles), 2.8), squeeze=False)
    for k, title in enumerate(titles):
        axes[0, k].imshow(noisy[k])
        axes[0, k].set_title(title, fontsize=7)
        if k:
            axes[1, k].imshow(estimate[k])
    axes[0, 0].set_ylabel("x_t")
    axes[1, 1].set_ylabel("estimate of x_0")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1, 0].axis("off")
    fig.suptitle(
        f"one image denoised by DDIM in {s.steps} steps: x_t (top), the model's clean estimate (bottom)", fontsize=8
    )
    return _save(fig, path)


def labelled_rows(rows: list[np.ndarray], labels: list[str], title: str, path: Path) -> Path:
    """Rows of (k, h, w, 3) uint8 images, each row named on its left."""
    cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.1 * cols + 0.8, 1.2 * len(rows)), squeeze=False)
    for r, (images, label) in enumerate(zip(rows, labels, strict=True)):
        for k in range(cols):
            ax = axes[r, k]
            ax.set_xticks([])
            ax.set_yticks([])
            if k < len(images):
                ax.imshow(images[k])
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def ddpm_grid(sampler: Sampler, cfg: DiffusionConfig, path: Path) -> Path:
    """16 images by ancestral DDPM through all T steps (stochastic), from seeded noise."""
    labels = class_labels(16, sampler.num_classes)
    x = noise_from_seeds(np.arange(16) + cfg.train.seed, sampler.size)
    images = to_uint8(sampler.ddpm(x, labels, cfg.sampling.guidance, seed=cfg.train.seed))
    return save_png(mosaic(images), path)


def loss_curve(steps_csv: Path, path: Path, smooth: int = 25) -> Path:
    """The training loss per step (faint) and its moving average over `smooth` steps, log scale."""
    table = np.genfromtxt(steps_csv, delimiter=",", names=True)
    steps, loss = np.atleast_1d(table["step"]), np.atleast_1d(table["loss"])
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.plot(steps, loss, color="tab:blue", alpha=0.3, lw=0.8)
    if len(loss) >= smooth:
        ax.plot(
            steps[smooth - 1 :],
            np.convolve(loss, np.ones(smooth) / smooth, mode="valid"),
            color="tab:blue",
            label=f"{smooth}-step mean",
        )
        ax.legend()
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title("noise-prediction loss (MSE) per step")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
