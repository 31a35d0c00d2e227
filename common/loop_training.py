"""Training a model that has its own `train_step` (the GAN's two networks, the diffusion model's denoiser):
per-step losses, a resumable `fit` with TensorBoard and a CSV history, and the files a fresh run clears.

The project brings its progress callback (the fixed-seed grid of each epoch, its own scores); `fit_resumable`
runs it with the step log, the CSV and TensorBoard logs, and BackupAndRestore last, so that an epoch counts
as done for resuming only once its logs and grid are written. Killed, the same command resumes.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from common.paths import ArtifactPaths
from common.training import keep_finished_epochs


def samples_dir(paths: ArtifactPaths) -> Path:
    """Where the progress grid of each epoch goes (`epoch_000.png` is before training)."""
    return paths.plots / "samples"


def steps_csv(paths: ArtifactPaths) -> Path:
    """The losses of every step (`step` and one column per loss)."""
    return paths.root / "steps.csv"


class StepLog(keras.callbacks.Callback):
    """The losses after every step, into `steps.csv` and TensorBoard (`logs/steps`, as `step/<name>`).

    `losses`: the model -> {name: its last step's value}; `step`: the model -> the step's number.
    """

    def __init__(
        self,
        paths: ArtifactPaths,
        losses: Callable[[keras.Model], dict[str, float]],
        step: Callable[[keras.Model], int],
    ) -> None:
        super().__init__()
        self.path, self.losses, self.step = steps_csv(paths), losses, step
        self.writer = tf.summary.create_file_writer(str(paths.logs / "steps"))
        self.rows: list[tuple[int, dict[str, float]]] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step, values = self.step(self.model), self.losses(self.model)
        self.rows.append((step, values))
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(f"step/{name}", value)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.rows:
            return
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            out = csv.writer(f)
            if new:
                out.writerow(["step", *self.rows[0][1]])
            out.writerows((step, *(f"{v:.5f}" for v in values.values())) for step, values in self.rows)
        self.rows.clear()
        self.writer.flush()


def fresh_start(paths: ArtifactPaths, *more: Path) -> None:
    """No backup: remove the logs of an older run (and `more` of its files), so that two runs never mix."""
    for stale in (paths.history_csv, steps_csv(paths), paths.logs, samples_dir(paths), *more):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()


def fit_resumable(
    model: keras.Model,
    dataset: tf.data.Dataset,
    epochs: int,
    steps_per_epoch: int,
    paths: ArtifactPaths,
    callbacks: list[keras.callbacks.Callback],
) -> tuple[keras.callbacks.History, float]:
    """`model.fit` with `callbacks` (the step log, the progress grid), then the CSV history, TensorBoard and
    BackupAndRestore; resumes from `paths.backup_dir`. Returns the history and the seconds it took."""
    paths.backup_dir.mkdir(parents=True, exist_ok=True)
    keep_finished_epochs(paths)
    callbacks = [
        *callbacks,
        keras.callbacks.CSVLogger(str(paths.history_csv), append=True),
        keras.callbacks.TensorBoard(str(paths.logs)),
        # Last: an epoch counts as done for resuming only once its logs and grid are written.
        keras.callbacks.BackupAndRestore(str(paths.backup_dir), double_checkpoint=True),
    ]
    start = time.perf_counter()
    try:
        history = model.fit(
            dataset,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles
            verbose=2 if os.environ.get("CI") else 1,
        )
    except KeyboardInterrupt:
        print(f"\nInterrupted. The last finished epoch is kept in {paths.backup_dir}; rerun the same command to resume")
        raise
    return history, time.perf_counter() - start
