"""The diffusion model's images: the art of `common/data/art.py` (the GAN's data, split the same way), and the
training stream.

Examples are (image (size, size, 3) uint8, label int32), size = `data.image_size`; the held-out test split
holds whole emoji neither the model nor the FID feature network saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from common.art_config import ArtDataConfig
from common.data.art import class_names, load_splits
from common.data.splits import DataSplits

__all__ = ["Batches", "class_names", "load_splits", "training_batches"]


@dataclass
class Batches:
    """The training stream and its epoch length."""

    dataset: tf.data.Dataset  # endless (images (batch, size, size, 3) float32 in [-1, 1], labels (batch,) int32)
    steps_per_epoch: int


def training_batches(data: DataSplits, cfg: ArtDataConfig, batch_size: int, steps_per_epoch: int, seed: int) -> Batches:
    """The training split shuffled, scaled to [-1, 1], flipped at random (`data.flip`), repeated, batched."""

    def prepare(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.cast(image, tf.float32) / 127.5 - 1.0
        return (tf.image.random_flip_left_right(x) if cfg.flip else x), label

    ds = data.train.cache().shuffle(10_000, seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size, drop_remainder=True)
    return Batches(ds.prefetch(tf.data.AUTOTUNE), data.epoch_steps(batch_size, steps_per_epoch))
