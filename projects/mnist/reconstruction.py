"""The autoencoder's data, noise and report: digits as their own targets, noisy inputs for denoising, the
reconstruction error against a model that ignores its input, and the grid of digits and their reconstructions.

Every image is (28, 28, 1) float32 in [0, 1], white digit on black.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from common import plots
from common.data.splits import DataSplits, dataset_to_numpy
from common.paths import ArtifactPaths

GRID_DIGITS = 8  # test digits shown in reconstructions.png, one column each
NOISE_SEED = 0  # seeds the noise added to the test digits, so every evaluation measures the same noisy inputs


def images_as_targets(splits: DataSplits) -> DataSplits:
    """The splits with each (image, label) pair turned into (image, image): the autoencoder's target is its input."""

    def pairs(ds: tf.data.Dataset) -> tf.data.Dataset:
        return ds.map(lambda image, _: (image, image))

    return dataclasses.replace(splits, train=pairs(splits.train), val=pairs(splits.val), test=pairs(splits.test))


def add_noise(images: tf.Tensor, std: float, seed: int | None = None) -> tf.Tensor:
    """`images` (batch, 28, 28, 1) in [0, 1] plus Gaussian noise of standard deviation `std`, clipped to [0, 1]."""
    noise = tf.random.normal(tf.shape(images), stddev=std, seed=seed, dtype=images.dtype)
    return tf.clip_by_value(images + noise, 0.0, 1.0)


def denoising_pairs(noise: float) -> Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """Training batches (augmented images, targets) -> (images with `noise` added, the augmented images): the
    target is the clean digit as augmented (not the one before augmentation), the input the same digit with noise
    (none when `noise` is 0, a plain autoencoder)."""

    def pairs(images: tf.Tensor, _: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return (add_noise(images, noise) if noise else images), images

    return pairs


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b) ** 2))


def reconstruction_metrics(
    model: keras.Model, data: DataSplits, noise: float
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The test split's reconstruction error, with the baseline a model that ignores its input reaches.

    Returns metrics (mean squared error per pixel, PSNR in dB, binary cross-entropy; `mean_digit_mse`: the error
    of always answering the training split's mean image, and `mse_ratio`, the model's error over it; with `noise`,
    the error of the noisy inputs and of the model's denoised outputs) and the arrays the plots show: `clean`,
    `noisy` (with `noise`) and `output`, each (n, 28, 28, 1).
    """
    clean = dataset_to_numpy(data.test)[0]
    mean_digit = np.mean(dataset_to_numpy(data.train)[0], axis=0)
    inputs = add_noise(tf.constant(clean), noise, NOISE_SEED).numpy() if noise else clean
    output = model.predict(inputs, batch_size=256, verbose=0)
    mse = _mse(output, clean)
    clipped = np.clip(output.astype(np.float64), 1e-7, 1 - 1e-7)
    metrics = {
        "reconstruction_mse": mse,
        "psnr_db": float(10 * np.log10(1.0 / max(mse, 1e-12))),
        "binary_crossentropy": float(-np.mean(clean * np.log(clipped) + (1 - clean) * np.log(1 - clipped))),
        "mean_digit_mse": _mse(np.broadcast_to(mean_digit, clean.shape), clean),
    }
    metrics["mse_ratio"] = mse / metrics["mean_digit_mse"]
    arrays = {"clean": clean, "output": output}
    if noise:
        metrics["noise"] = noise
        metrics["noisy_input_mse"] = _mse(inputs, clean)
        arrays["noisy"] = inputs
    return metrics, arrays


def reconstruction_grid(arrays: dict[str, np.ndarray], path: Path) -> Path:
    """The first `GRID_DIGITS` test digits in a row, their noisy inputs below (when denoising), and what the
    autoencoder made of them in the last row, titled with each one's mean squared error."""
    clean, output = arrays["clean"][:GRID_DIGITS], arrays["output"][:GRID_DIGITS]
    rows = [(clean, ["test digit"] * len(clean))]
    if "noisy" in arrays:
        rows.append((arrays["noisy"][:GRID_DIGITS], ["noisy input"] * len(clean)))
    errors = np.mean((output - clean) ** 2, axis=(1, 2, 3))
    rows.append((output, [f"output, mse {e:.3f}" for e in errors]))
    images = np.concatenate([images for images, _ in rows])
    titles = [title for _, names in rows for title in names]
    return plots.image_grid(images, titles, path, cols=len(clean))


def reconstruction_report(
    model: keras.Model, data: DataSplits, noise: float, paths: ArtifactPaths
) -> tuple[dict[str, float], list[Path]]:
    """`evaluate` for the autoencoder: the metrics above, the training curves and reconstructions.png."""
    metrics, arrays = reconstruction_metrics(model, data, noise)
    written = []
    if paths.history_csv.exists():
        written.append(plots.training_curves(paths.history_csv, paths.plots / "training_curves.png"))
    written.append(reconstruction_grid(arrays, paths.plots / "reconstructions.png"))
    return metrics, written


def reconstruction_errors(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Mean squared error per image (n,) between `images` (n, 28, 28, 1) and the autoencoder's reconstructions:
    low for digits like those it learned, high for anything else."""
    output = model.predict(images, batch_size=256, verbose=0)
    return np.mean((output.astype(np.float64) - images) ** 2, axis=(1, 2, 3))
