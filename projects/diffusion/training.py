"""The diffusion model's training loop: `fit` on the compiled `Diffusion` model with the shared callbacks.

Resumable like every project: `BackupAndRestore` keeps the denoiser, its EMA copy, the optimizer and the epoch
counter under `checkpoints/backup/` after each epoch; rerunning the same command resumes. Per epoch:
`history.csv` (mean loss), `plots/samples/epoch_NNN.png` (the EMA denoiser's DDIM samples from fixed seeds, one
row per class; epoch 000 is the untrained one) and the same grid in TensorBoard (`logs/`). Per step: `steps.csv`
and a TensorBoard scalar (the loss). At the end: `plots/progress.gif`, `model.keras` (the EMA denoiser alone) and
`train.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common.data.splits import DataSplits
from common.image_grids import mosaic, save_gif, save_png
from common.loop_training import StepLog, fit_resumable, fresh_start, samples_dir
from common.paths import ArtifactPaths
from common.training import backup_epoch, save_model_atomically

from .config import DiffusionConfig
from .data import training_batches
from .diffusion import Diffusion
from .sampling import Sampler, generate

GRID_COLS = 8


def grid_seeds_and_labels(num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The progress grid's seeds: 8 x 8 of them, or one row per class with the same 8 seeds in every row (a
    column shows one noise, per class)."""
    if not num_classes:
        return np.arange(GRID_COLS * GRID_COLS, dtype=np.int32) + seed, None
    seeds = np.tile(np.arange(GRID_COLS, dtype=np.int32) + seed, num_classes)
    return seeds, np.repeat(np.arange(num_classes), GRID_COLS).astype(np.int32)


def _losses(model: keras.Model) -> dict[str, float]:
    return {"loss": float(model.step_loss.numpy())}


def _step(model: keras.Model) -> int:
    return int(model.optimizer.iterations.numpy())


class Progress(keras.callbacks.Callback):
    """After each epoch: the EMA denoiser's DDIM samples from the fixed seeds (PNG and TensorBoard)."""

    def __init__(self, cfg: DiffusionConfig, alphas_cumprod: np.ndarray, num_classes: int, paths: ArtifactPaths):
        super().__init__()
        self.cfg, self.abar, self.paths = cfg, alphas_cumprod, paths
        self.seeds, self.labels = grid_seeds_and_labels(num_classes, cfg.train.seed)
        self.writer = tf.summary.create_file_writer(str(paths.logs / "samples"))

    def grid(self, denoiser: keras.Model, epoch: int) -> Path:
        s = self.cfg.sampling
        sampler = Sampler.for_keras(denoiser, self.abar, s.guidance_interval)
        picture = mosaic(generate(sampler, self.seeds, self.labels, s.grid_steps, 0.0, s.guidance), cols=GRID_COLS)
        with self.writer.as_default(step=epoch):
            tf.summary.image("fixed_seed_samples", picture[None], step=epoch)
        self.writer.flush()
        return save_png(picture, samples_dir(self.paths) / f"epoch_{epoch:03d}.png")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.grid(self.model.ema_denoiser, epoch + 1)


def train_diffusion(
    model: Diffusion,
    cfg: DiffusionConfig,
    data: DataSplits,
    paths: ArtifactPaths,
    summary: dict[str, Any] | None = None,
) -> keras.Model:
    """Train (or resume) the compiled `model` on `data`; returns the EMA denoiser, also written to `model.keras`."""
    t = cfg.train
    done = backup_epoch(paths)
    if done is None:
        fresh_start(paths)
    else:
        print(f"Resuming from the backup in {paths.backup_dir}: {done} of {t.epochs} epochs already done.")
    progress = Progress(cfg, model.abar.numpy(), model.num_classes, paths)
    if done is None:
        progress.grid(model.ema_denoiser, 0)
    batches = training_batches(data, cfg.data, t.batch_size, t.steps_per_epoch, t.seed)
    callbacks = [StepLog(paths, _losses, _step), progress]
    history, seconds = fit_resumable(model, batches.dataset, t.epochs, batches.steps_per_epoch, paths, callbacks)

    save_gif(sorted(samples_dir(paths).glob("epoch_*.png")), paths.plots / "progress.gif")
    save_model_atomically(model.ema_denoiser, paths.model)
    keras.models.load_model(paths.model)  # fail here, not in `evaluate`, if it does not reload
    paths.train_summary.write_text(
        json.dumps(
            {
                **(summary or {}),
                "train_seconds": round(seconds, 2),
                "resumed_from_epoch": done,
                "epochs_run_now": len(history.epoch),
                "steps_per_epoch": batches.steps_per_epoch,
                "loss_final": history.history["loss"][-1] if history.epoch else None,
                "data": data.describe(),
            },
            indent=2,
        )
    )
    print(f"Progress grids: {samples_dir(paths)}; animation: {paths.plots / 'progress.gif'}")
    return model.ema_denoiser
