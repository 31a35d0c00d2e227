"""The diffusion model's training loop: `fit` on the compiled `Diffusion` model with the shared callbacks.

Resumable like every project: `BackupAndRestore` keeps the denoiser, its EMA copy, the optimizer and the epoch
counter under `checkpoints/backup/` after each epoch; rerunning the same command resumes. Per epoch:
`history.csv` (mean loss), `plots/samples/epoch_NNN.png` (the EMA denoiser's DDIM samples from fixed seeds, one
row per class; epoch 000 is the untrained one) and the same grid in TensorBoard (`logs/`). Per step: `steps.csv`
and a TensorBoard scalar (the loss). At the end: `plots/progress.gif`, `model.keras` (the EMA denoiser alone) and
`train.json`.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common.data.splits import DataSplits
from common.paths import ArtifactPaths
from common.training import backup_epoch, save_model_atomically

from .config import DiffusionConfig
from .data import training_batches
from .diffusion import Diffusion
from .sampling import Sampler, generate, mosaic, save_gif, save_png

GRID_COLS = 8


def samples_dir(paths: ArtifactPaths) -> Path:
    return paths.plots / "samples"


def steps_csv(paths: ArtifactPaths) -> Path:
    return paths.root / "steps.csv"


def grid_seeds_and_labels(num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The progress grid's seeds: 8 x 8 of them, or one row per class with the same 8 seeds in every row (a
    column shows one noise, per class)."""
    if not num_classes:
        return np.arange(GRID_COLS * GRID_COLS, dtype=np.int32) + seed, None
    seeds = np.tile(np.arange(GRID_COLS, dtype=np.int32) + seed, num_classes)
    return seeds, np.repeat(np.arange(num_classes), GRID_COLS).astype(np.int32)


class StepLog(keras.callbacks.Callback):
    """The loss after every step, into `steps.csv` and TensorBoard (`logs/steps`)."""

    def __init__(self, paths: ArtifactPaths) -> None:
        super().__init__()
        self.path = steps_csv(paths)
        self.writer = tf.summary.create_file_writer(str(paths.logs / "steps"))
        self.rows: list[tuple[int, float]] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = float(self.model.step_loss.numpy())
        step = int(self.model.optimizer.iterations.numpy())
        self.rows.append((step, loss))
        with self.writer.as_default(step=step):
            tf.summary.scalar("step/loss", loss)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            out = csv.writer(f)
            if new:
                out.writerow(["step", "loss"])
            out.writerows((s, f"{loss:.5f}") for s, loss in self.rows)
        self.rows.clear()
        self.writer.flush()


class Progress(keras.callbacks.Callback):
    """After each epoch: the EMA denoiser's DDIM samples from the fixed seeds (PNG and TensorBoard)."""

    def __init__(self, cfg: DiffusionConfig, alphas_cumprod: np.ndarray, num_classes: int, paths: ArtifactPaths):
        super().__init__()
        self.cfg, self.abar, self.paths = cfg, alphas_cumprod, paths
        self.seeds, self.labels = grid_seeds_and_labels(num_classes, cfg.train.seed)
        self.writer = tf.summary.create_file_writer(str(paths.logs / "samples"))

    def grid(self, denoiser: keras.Model, epoch: int) -> Path:
        s = self.cfg.sampling
        sampler = Sampler.for_keras(denoiser, self.abar)
        picture = mosaic(generate(sampler, self.seeds, self.labels, s.grid_steps, 0.0, s.guidance), cols=GRID_COLS)
        with self.writer.as_default(step=epoch):
            tf.summary.image("fixed_seed_samples", picture[None], step=epoch)
        self.writer.flush()
        return save_png(picture, samples_dir(self.paths) / f"epoch_{epoch:03d}.png")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.grid(self.model.ema_denoiser, epoch + 1)


def _fresh_start(paths: ArtifactPaths) -> None:
    """No backup: remove the logs of an older run, so that two runs never mix in one curve."""
    for stale in (paths.history_csv, steps_csv(paths), paths.logs, samples_dir(paths)):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()


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
        _fresh_start(paths)
    else:
        print(f"Resuming from the backup in {paths.backup_dir}: {done} of {t.epochs} epochs already done.")
    progress = Progress(cfg, model.abar.numpy(), model.num_classes, paths)
    if done is None:
        progress.grid(model.ema_denoiser, 0)
    batches = training_batches(data, cfg.data, t.batch_size, t.steps_per_epoch, t.seed)
    paths.backup_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [
        StepLog(paths),
        progress,
        keras.callbacks.CSVLogger(str(paths.history_csv), append=True),
        keras.callbacks.TensorBoard(str(paths.logs)),
        # Last: an epoch counts as done for resuming only once its logs and grid are written.
        keras.callbacks.BackupAndRestore(str(paths.backup_dir), double_checkpoint=True),
    ]
    start = time.perf_counter()
    try:
        history = model.fit(
            batches.dataset,
            epochs=t.epochs,
            steps_per_epoch=batches.steps_per_epoch,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles
            verbose=2 if os.environ.get("CI") else 1,
        )
    except KeyboardInterrupt:
        print(
            f"\nInterrupted. The last finished epoch is kept in {paths.backup_dir}; rerun the same command to resume."
        )
        raise
    seconds = time.perf_counter() - start

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
