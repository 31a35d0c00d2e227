"""The GAN's training stream; its images come from `common/data/art.py` (shared with the diffusion project)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from common.data.splits import DataSplits


@dataclass
class GanBatches:
    """The GAN's training stream and what it needs to know about it."""

    dataset: tf.data.Dataset  # endless (images (batch, size, size, 3) float32 in [-1, 1], labels (batch,) int32)
    steps_per_epoch: int


def gan_batches(
    data: DataSplits,
    batch_size: int,
    steps_per_epoch: int,
    seed: int,
    augmentation: Callable[[tf.Tensor], tf.Tensor] | None = None,
) -> GanBatches:
    """The training split as the GAN takes it: shuffled, scaled, augmented (augmentation.py), repeated."""

    def prepare(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.cast(image, tf.float32) / 127.5 - 1.0
        return (augmentation(x) if augmentation else x), label

    ds = data.train.cache().shuffle(10_000, seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size, drop_remainder=True)
    return GanBatches(ds.prefetch(tf.data.AUTOTUNE), data.epoch_steps(batch_size, steps_per_epoch))
