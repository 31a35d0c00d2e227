"""The detector's augmentation, in colour only: new colours for the same scene, every box where it was.

The generated scenes draw light digits on dark backgrounds and dark digits on light ones, in
random colours. Permuting an image's RGB channels and inverting it (light <-> dark) make a scene
of that same kind in other colours, so each epoch sees the training scenes anew in colour while
their boxes and labels stay true. Both are one small matrix product per image: cheap next to a training step.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import tensorflow as tf

from .config import DetectorConfig

# The 6 orders of the R, G, B channels as (3, 3) matrices: pixel @ matrix reorders its channels.
PERMUTATIONS = np.stack([np.eye(3, dtype=np.float32)[list(p)] for p in itertools.permutations(range(3))])


@keras.saving.register_keras_serializable(package="detector")
class ColourShuffle(keras.layers.Layer):
    """Per image: a random order of its channels, and with chance `invert` 255 - pixel. Identity at inference.

    Input and output: (batch, size, size, 3) float32 in [0, 255]. Both changes are one (3, 3) matrix per image
    and an offset: x @ (sign * permutation) + (sign == -1) * 255.
    """

    def __init__(self, invert: float = 0.5, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.invert = invert
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training: bool = False):
        if not training:
            return images
        batch = tf.shape(images)[0]
        which = keras.random.randint((batch,), 0, len(PERMUTATIONS), seed=self.generator)
        sign = tf.where(keras.random.uniform((batch, 1, 1), seed=self.generator) < self.invert, -1.0, 1.0)
        matrices = tf.gather(tf.constant(PERMUTATIONS), which) * sign  # (batch, 3, 3)
        return tf.einsum("bhwc,bcd->bhwd", images, matrices) + (1.0 - sign[:, :, :, None]) * 127.5

    def get_config(self) -> dict:
        return {**super().get_config(), "invert": self.invert, "seed": self.seed}


def build_augmentation(cfg: DetectorConfig) -> ColourShuffle | None:
    """The colour shuffle for training batches, seeded by `train.seed`, or None if `data.augment` is off (VOC).

    Input and output: (batch, size, size, 3) float32 in [0, 255]; the targets need no change.
    """
    return ColourShuffle(seed=cfg.train.seed) if cfg.data.augment else None
