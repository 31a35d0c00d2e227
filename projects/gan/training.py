"""The GAN's own training loop: `fit` on the compiled `GAN` model with the shared callbacks, plus its own progress.

Resumable like every project (`common.training`'s pieces): `BackupAndRestore` keeps both networks, the EMA
generator, both optimizers and the epoch counter under `checkpoints/backup/` after each epoch; rerunning
the same command resumes. Per epoch: `history.csv` (mean losses; FID and KID against the validation split's
real images, `val_*`; sample diversity), `plots/samples/epoch_NNN.png` (the EMA generator on fixed noise; epoch
000 is the initial generator), the same grid in TensorBoard (`logs/`); with `train.keep_best`, the EMA generator
of the epoch with the lowest validation FID so far in `checkpoints/best.keras` (`best.json`: which epoch). Per
step: `steps.csv` and TensorBoard scalars (both losses). At the end: `plots/progress.gif`, `model.keras` (the
best EMA generator, or the last one), `train.json`; the untrained generator stays in
`checkpoints/initial.keras`, so that `evaluate` scores it against the test split beside the trained one.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common.data.splits import DataSplits
from common.feature_space import FeatureSpace, diversity
from common.held_out_reference import HeldOutReference
from common.image_grids import mosaic, save_gif, save_png
from common.loop_training import StepLog, fit_resumable, fresh_start, samples_dir
from common.paths import ArtifactPaths
from common.training import backup_epoch, save_model_atomically

from .config import GanConfig
from .data import gan_batches
from .gan import GAN
from .sampling import generate, grid_inputs, seeded_inputs

GRID_SIZE = 64  # images in the progress grid (8 x 8)
FID_SEED_OFFSET = 1  # FID's noise differs from the grid's, and stays the same every epoch


def initial_json(paths: ArtifactPaths) -> Path:
    """The untrained generator's scores against the validation split (epoch 0 of the FID curve)."""
    return paths.root / "fid_initial.json"


def initial_generator(paths: ArtifactPaths) -> Path:
    """The untrained EMA generator, which `evaluate` scores against the test split."""
    return paths.root / "checkpoints" / "initial.keras"


def best_json(paths: ArtifactPaths) -> Path:
    """{"epoch", "val_fid", "val_fid_to_floor_ratio"} of the generator in `paths.best_checkpoint`."""
    return paths.best_checkpoint.with_suffix(".json")


class Scorer(HeldOutReference):
    """FID, KID and diversity of a generator's samples against held-out real images (common/held_out_reference.py):
    the test split (`evaluate`), or the validation split (`train` and `tune` after every epoch).

    Every score draws its `count` samples from the same seeded noise, so epochs differ by the generator alone.
    """

    def __init__(self, cfg: GanConfig, space: FeatureSpace, data: DataSplits, held_out: str = "test") -> None:
        super().__init__(space, data, cfg.train.fid_samples, cfg.train.fid_floor_draws, held_out)
        self.seed = cfg.train.seed + FID_SEED_OFFSET
        self.real_diversity = diversity(self.train_images[:GRID_SIZE])

    def samples(self, generator: keras.Model) -> np.ndarray:
        """`count` images drawn from the same seeded noise (and classes, drawn as often as in the data) every time."""
        return generate(generator, seeded_inputs(generator, self.count, self.seed, self.class_probs))

    def scores(self, images: np.ndarray) -> dict[str, float]:
        """{"fid", "kid", "fid_to_floor_ratio", "diversity"} of (n, size, size, 3) images against the held-out ones."""
        return {**super().scores(images), "diversity": diversity(images[:GRID_SIZE])}

    def score(self, generator: keras.Model) -> dict[str, float]:
        """`scores` of the generator's `count` samples."""
        return self.scores(self.samples(generator))


def _losses(gan: keras.Model) -> dict[str, float]:
    d_loss, g_loss = gan.step_losses.numpy()
    return {"d_loss": float(d_loss), "g_loss": float(g_loss)}


def _step(gan: keras.Model) -> int:
    return int(gan.g_optimizer.iterations.numpy())


class Progress(keras.callbacks.Callback):
    """After each epoch: the fixed-noise grid (PNG and TensorBoard), validation FID, KID, diversity, the collapse
    warning, and with `keep_best` the EMA generator in `paths.best_checkpoint` whenever its validation FID is the
    lowest so far (resumed runs read the best so far from `best_json`).

    Diversity is the mean pairwise pixel distance of the grid's 64 samples, as a share of 64 real images'. A
    collapsing generator draws near-identical images: the warning fires when the share falls below
    `collapse_ratio` times the best share seen so far in this run.
    """

    def __init__(
        self, scorer: Scorer, grid_inputs: dict, paths: ArtifactPaths, collapse_ratio: float, keep_best: bool
    ) -> None:
        super().__init__()
        self.scorer, self.grid_inputs, self.paths, self.collapse_ratio = scorer, grid_inputs, paths, collapse_ratio
        self.keep_best = keep_best
        self.writer = tf.summary.create_file_writer(str(paths.logs / "samples"))
        self.warnings = 0
        self.best_ratio = 0.0  # the highest diversity ratio so far: a fall from it is what collapse looks like
        self.best = json.loads(best_json(paths).read_text()) if keep_best and best_json(paths).exists() else {}

    def grid(self, generator: keras.Model, epoch: int) -> Path:
        picture = mosaic(generate(generator, self.grid_inputs))
        with self.writer.as_default(step=epoch):
            tf.summary.image("fixed_noise_samples", picture[None], step=epoch)
        self.writer.flush()
        return save_png(picture, samples_dir(self.paths) / f"epoch_{epoch:03d}.png")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        generator = self.model.ema_generator
        self.grid(generator, epoch + 1)
        scores = self.scorer.score(generator)
        ratio = scores["diversity"] / self.scorer.real_diversity
        to_floor = scores["fid_to_floor_ratio"]
        if logs is not None:
            logs.update(
                val_fid=scores["fid"], val_kid=scores["kid"], diversity_ratio=ratio, val_fid_to_floor_ratio=to_floor
            )
        improved = self.keep_best and scores["fid"] < self.best.get("val_fid", math.inf)
        print(
            f"\nepoch {epoch + 1}: validation FID {scores['fid']:.3g} = {to_floor:.2f} x the floor"
            f"{' (best so far, kept)' if improved else ''}, KID {scores['kid']:.3g}, diversity {ratio:.0%} of real"
        )
        if improved:
            save_model_atomically(generator, self.paths.best_checkpoint)
            self.best = {"epoch": epoch + 1, "val_fid": scores["fid"], "val_fid_to_floor_ratio": to_floor}
            tmp = best_json(self.paths).with_suffix(".json.tmp")
            tmp.write_text(json.dumps(self.best, indent=2))
            tmp.replace(best_json(self.paths))  # a run killed here resumes from a whole file, old or new
        if ratio < self.collapse_ratio * self.best_ratio:
            self.warnings += 1
            print(
                f"warning: possible mode collapse: sample diversity fell to {ratio:.0%} of the data's, from "
                f"{self.best_ratio:.0%} at best; look at {samples_dir(self.paths)}/epoch_{epoch + 1:03d}.png",
                file=sys.stderr,
            )
        self.best_ratio = max(self.best_ratio, ratio)


def train_gan(
    gan: GAN,
    scorer: Scorer,
    cfg: GanConfig,
    data: DataSplits,
    paths: ArtifactPaths,
    *,
    augmentation: Callable[[tf.Tensor], tf.Tensor] | None = None,
    summary: dict[str, Any] | None = None,
) -> keras.Model:
    """Train (or resume) the compiled `gan` on `data`; returns the EMA generator written to `model.keras`: the one
    of the epoch with the lowest validation FID with `train.keep_best`, else the last one.

    Args:
        gan: built and compiled (project.py `build_gan`).
        scorer: FID and KID against the validation split after every epoch, in the feature space of
            common/feature_space.py.
        augmentation: applied to each real training image (size, size, 3) float32 in [-1, 1].
        summary: keys added to train.json (the project's name and its whole config).
    """
    t = cfg.train
    done = backup_epoch(paths)
    if done is None:
        fresh_start(paths, initial_json(paths), initial_generator(paths), paths.best_checkpoint, best_json(paths))
    else:
        print(f"Resuming from the backup in {paths.backup_dir}: {done} of {t.epochs} epochs already done.")
    grid = grid_inputs(gan.ema_generator, t.seed)
    progress = Progress(scorer, grid, paths, t.collapse_ratio, t.keep_best)
    if done is None:
        initial = scorer.score(gan.ema_generator)
        progress.grid(gan.ema_generator, 0)
        initial_generator(paths).parent.mkdir(parents=True, exist_ok=True)
        save_model_atomically(gan.ema_generator, initial_generator(paths))
        initial_json(paths).write_text(json.dumps(initial, indent=2))
        print(
            f"At initialisation: validation FID {initial['fid']:.3g} "
            f"(floor, real training vs validation images: {scorer.floor.fid:.3g})"
        )

    batches = gan_batches(data, t.batch_size, t.steps_per_epoch, t.seed, augmentation)
    callbacks = [StepLog(paths, _losses, _step), progress]
    history, seconds = fit_resumable(gan, batches.dataset, t.epochs, batches.steps_per_epoch, paths, callbacks)

    frames = sorted(samples_dir(paths).glob("epoch_*.png"))
    save_gif(frames, paths.plots / "progress.gif")
    if progress.best:
        shutil.copyfile(paths.best_checkpoint, f"{paths.model}.tmp.keras")
        Path(f"{paths.model}.tmp.keras").replace(paths.model)
        print(
            f"model.keras: the EMA generator of epoch {progress.best['epoch']} of {t.epochs}, the lowest validation "
            f"FID ({progress.best['val_fid_to_floor_ratio']:.2f} x the floor; train.keep_best=false keeps the last)"
        )
    else:
        save_model_atomically(gan.ema_generator, paths.model)
    generator = keras.models.load_model(paths.model)  # fail here, not in `evaluate`, if it does not reload
    initial = json.loads(initial_json(paths).read_text())
    keys = ("val_fid", "val_kid", "diversity_ratio", "val_fid_to_floor_ratio")
    last = {f"{k}_last": history.history[k][-1] for k in keys} if history.epoch else {}
    paths.train_summary.write_text(
        json.dumps(
            {
                **(summary or {}),
                "train_seconds": round(seconds, 2),
                "resumed_from_epoch": done,
                "epochs_run_now": len(history.epoch),
                "steps_per_epoch": batches.steps_per_epoch,
                "val_fid_initial": initial["fid"],
                "val_fid_floor": scorer.floor.fid,
                "val_kid_initial": initial["kid"],
                **last,
                "kept_epoch": progress.best.get("epoch", t.epochs),
                "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),  # 0: one per core
                "collapse_warnings": progress.warnings,
                "feature_net": scorer.space.describe(),
                "data": data.describe(),
            },
            indent=2,
        )
    )
    print(f"Progress grids: {samples_dir(paths)}; animation: {paths.plots / 'progress.gif'}")
    return generator
