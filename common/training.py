"""`fit` with the standard callbacks: resume, checkpoints, early stopping, TensorBoard, CSV log, LR schedule.

A project's recipe reads: build the model and compile it (inside `strategy_scope`,
with `make_optimizer`), then `fit(model, data, cfg.train, paths, monitor=...)`.

A killed run resumes: `BackupAndRestore` keeps the weights, the optimizer state
and the epoch counter under `checkpoints/backup/` after every epoch, and the
same command picks up from there.

`train.strategy` picks the tf.distribute strategy: `default` (one device),
`mirrored` (every GPU of this machine) or `multiworker` (several machines, from
TF_CONFIG). In a multi-worker run every worker trains, but only the chief writes
the model and the artifacts; the others keep their checkpoints and logs in a
temporary folder of their own.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from common.config import TrainConfig
from common.data.splits import DataSplits
from common.paths import ArtifactPaths


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`tf.distribute.MultiWorkerMirroredStrategy` that accepts the two reductions Keras 3's `fit` asks of it.

    Keras 3 reduces a whole (inputs, targets) batch in one call and the scalar loss and metrics over axis 0;
    the stock strategy rejects both (keras-team/keras#20585). Here a nested value is reduced item by item,
    keeping each item's dtype, and a scalar is averaged over the replicas only.
    """

    def reduce(self, reduce_op: str | tf.distribute.ReduceOp, value: Any, axis: int | None) -> Any:
        if tf.nest.is_nested(value):
            return tf.nest.map_structure(
                lambda v: tf.cast(self.reduce(reduce_op, v, axis), self.experimental_local_results(v)[0].dtype), value
            )
        first = self.experimental_local_results(value)[0]
        if axis is not None and getattr(first, "shape", None) is not None and first.shape.rank == 0:
            axis = None
        return super().reduce(reduce_op, value, axis)


@functools.cache
def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy named in the config, one per process (`multiworker` reads TF_CONFIG).

    A multi-worker strategy must be made before any other TensorFlow op runs (`common.cli` does so).
    """
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def strategy_scope(tcfg: TrainConfig) -> contextlib.AbstractContextManager:
    """The scope to build and compile a model in, so its variables live on the devices `tcfg.strategy` names.

    Seeds Python, NumPy and TensorFlow with `tcfg.seed` first: the same seed gives the same initial weights.
    """
    keras.utils.set_random_seed(tcfg.seed)
    return make_strategy(tcfg.strategy).scope()


def steps_per_epoch(data: DataSplits, batch_size: int) -> int:
    """Training batches per epoch: the training split's size over `batch_size`, rounded up."""
    return -(-data.sizes["train"] // batch_size)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the one process that writes the model: always, unless multi-worker and not the chief."""
    resolver = strategy.cluster_resolver
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_paths(strategy: tf.distribute.Strategy, paths: ArtifactPaths) -> ArtifactPaths:
    """A non-chief worker's own temporary folder for the checkpoints, resume backup and logs it must write.

    Its name follows the run's output folder and the worker's task, so a restarted worker resumes from its backup.
    """
    resolver = strategy.cluster_resolver
    digest = hashlib.sha1(str(paths.root.resolve()).encode()).hexdigest()[:8]
    root = Path(tempfile.gettempdir()) / f"{paths.root.name}-{resolver.task_type}{resolver.task_id}-{digest}"
    root.mkdir(parents=True, exist_ok=True)
    return ArtifactPaths(root)


def make_schedule(cfg: TrainConfig, steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate (or schedule over optimizer steps) named by `cfg.schedule`.

    - constant: `learning_rate` throughout.
    - step: multiplied by `step_gamma` every `step_epochs` epochs.
    - cosine: optional linear warm-up, then cosine decay to 0.
    - one_cycle: warm-up from lr/25 to lr over `warmup_epochs` (30% of training if 0), then cosine to lr/1e4.
    """
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "constant":
        return cfg.learning_rate
    if cfg.schedule == "step":
        n_steps = max(1, cfg.epochs // max(1, cfg.step_epochs))
        boundaries = [(i + 1) * cfg.step_epochs * steps_per_epoch for i in range(n_steps)]
        values = [cfg.learning_rate * cfg.step_gamma**i for i in range(n_steps + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    if cfg.schedule == "cosine":
        if warmup:
            return keras.optimizers.schedules.CosineDecay(
                0.0, total - warmup, warmup_target=cfg.learning_rate, warmup_steps=warmup
            )
        return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, total)
    # one_cycle
    warmup = warmup or int(0.3 * total)
    return keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate / 25, total - warmup, alpha=1e-3, warmup_target=cfg.learning_rate, warmup_steps=warmup
    )


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer named by `cfg.optimizer`, driven by `make_schedule`."""
    lr = make_schedule(cfg, steps_per_epoch)
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr)
    if cfg.optimizer == "momentum":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum, nesterov=True)
    if cfg.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr, momentum=cfg.momentum)
    if cfg.optimizer == "nadam":
        return keras.optimizers.Nadam(lr)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay)
    return keras.optimizers.Adam(lr)


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the current learning rate to the epoch logs (CSV, TensorBoard, curves)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def batched(
    ds: tf.data.Dataset, batch_size: int, *, shuffle_seed: int | None = None, augment=None, augment_pairs=None
) -> tf.data.Dataset:
    """Cache, optionally shuffle (reshuffled each epoch) and augment (inputs; then `augment_pairs`: both), batch and
    prefetch."""
    ds = ds.cache()
    if shuffle_seed is not None:
        ds = ds.shuffle(10_000, seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    if augment_pairs is not None:
        ds = ds.map(augment_pairs, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def backup_epoch(paths: ArtifactPaths) -> int | None:
    """The number of finished epochs stored in the resume backup, or None if there is none."""
    meta = paths.backup_dir / "training_metadata.json"
    for candidate in (meta, meta.with_name(meta.name + ".bkp")):
        try:
            return int(json.loads(candidate.read_text())["epoch"])
        except (OSError, ValueError, KeyError):
            continue
    return None


def keep_finished_epochs(paths: ArtifactPaths) -> None:
    """Drop the rows of `paths.history_csv` for epochs the resume backup has not finished.

    A run killed after an epoch's row was written but before its backup runs that epoch again when resumed;
    without this its row would appear twice. The backup is the last callback, so no finished epoch lacks a row.
    """
    done = backup_epoch(paths)
    if done is None or not paths.history_csv.exists():
        return
    with open(paths.history_csv, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [row for row in rows[1:] if row and int(row[0]) < done]
    if len(kept) < len(rows):
        with open(paths.history_csv, "w", newline="") as f:
            csv.writer(f).writerows(kept)


def save_model_atomically(model: keras.Model, path: os.PathLike) -> None:
    """Write `model` to `path` through a temporary file, so a crash never leaves half a model."""
    tmp = f"{path}.tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)


def fit(
    model: keras.Model,
    data: DataSplits,
    tcfg: TrainConfig,
    paths: ArtifactPaths,
    *,
    monitor: tuple[str, str],
    augmentation: Callable | None = None,
    augment_pairs: Callable | None = None,
    class_weight: dict[int, float] | None = None,
    summary: dict[str, Any] | None = None,
) -> keras.Model:
    """Train the compiled `model` on `data` with `tcfg` (epochs, batch size, seed), resuming a killed run.

    Args:
        model: built and compiled inside `strategy_scope(tcfg)`, which seeds the run with `tcfg.seed` (the
            weights, then the shuffling, augmentation and dropout that follow, in that order).
        data: unbatched (input, target) pairs; batched, shuffled and cached here.
        monitor: (metric, "max" or "min") that picks the best checkpoint and drives early stopping.
        augmentation: applied to training inputs (`training=True`), e.g. a Keras preprocessing model.
        augment_pairs: maps training batches (inputs, targets) -> (inputs, targets), for changes that must change
            the targets too (a mirrored road negates the steering).
        class_weight: loss weight per class id; None weighs all alike.
        summary: keys added to train.json (the project's name and its whole config).

    Writes `model.keras` (best weights when early stopping), `checkpoints/best.keras`,
    `history.csv`, TensorBoard logs under `logs/`, and `train.json` with the
    seconds spent and whether the run resumed. A multi-worker run's non-chief
    workers write all but the model and train.json to `worker_paths`, removed at the end.
    """
    strategy = make_strategy(tcfg.strategy)
    chief = is_chief(strategy)
    own = paths if chief else worker_paths(strategy, paths)

    done = backup_epoch(own)
    if done is None:
        # A fresh run: old logs would mix two runs in one curve.
        for stale in (own.history_csv, own.logs):
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
    else:
        print(f"Resuming from the backup in {own.backup_dir}: {done} of {tcfg.epochs} epochs already done.")
        keep_finished_epochs(own)

    metric, mode = monitor
    own.best_checkpoint.parent.mkdir(parents=True, exist_ok=True)
    callbacks: list[keras.callbacks.Callback] = [
        LearningRateLogger(),
        keras.callbacks.ModelCheckpoint(str(own.best_checkpoint), monitor=metric, mode=mode, save_best_only=True),
        keras.callbacks.CSVLogger(str(own.history_csv), append=True),
        keras.callbacks.TensorBoard(str(own.logs)),
    ]
    if tcfg.early_stopping_patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=metric, mode=mode, patience=tcfg.early_stopping_patience, restore_best_weights=True
            )
        )
    # Last: an epoch counts as done for resuming only once its row, checkpoint and logs are written.
    callbacks.append(keras.callbacks.BackupAndRestore(str(own.backup_dir), double_checkpoint=True))

    train_ds = batched(
        data.train, tcfg.batch_size, shuffle_seed=tcfg.seed, augment=augmentation, augment_pairs=augment_pairs
    )
    val_ds = batched(data.val, tcfg.batch_size)

    start = time.perf_counter()
    try:
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=tcfg.epochs,
            callbacks=callbacks,
            class_weight=class_weight,
            shuffle=False,  # the pipeline already reshuffles every epoch
            verbose=2 if os.environ.get("CI") else 1,  # one line per epoch in CI logs
        )
    except KeyboardInterrupt:
        print(f"\nInterrupted. The last finished epoch is kept in {own.backup_dir}; rerun the same command to resume.")
        raise
    seconds = time.perf_counter() - start

    if not chief:
        shutil.rmtree(own.root, ignore_errors=True)
        task = f"{strategy.cluster_resolver.task_type} {strategy.cluster_resolver.task_id}"
        print(f"{task} finished; the chief writes the model (this worker's files in {own.root} are removed).")
    else:
        save_model_atomically(model, paths.model)
        paths.train_summary.write_text(
            json.dumps(
                {
                    **(summary or {}),
                    "train_seconds": round(seconds, 2),
                    "resumed_from_epoch": done,
                    "epochs_run_now": len(history.epoch),
                    "data": data.describe(),
                },
                indent=2,
            )
        )
    return model
