"""The GAN's augmentation: random left-right flips of the real images (clip art and paintings mirror well).

A generator learns whatever the real images show, so augmentation here only adds what could be real:
a mirrored image. Fashion-MNIST's garments are all drawn one way round (`data.flip=false` in its preset).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from .config import GanConfig


def build_augmentation(cfg: GanConfig) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """One real image (64, 64, 3) float32 -> the same, mirrored left-right half the time; None if `data.flip` is off."""
    return tf.image.random_flip_left_right if cfg.data.flip else None
