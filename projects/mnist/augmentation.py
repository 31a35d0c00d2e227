"""MNIST's augmentation: small random shifts, rotations and zoom, as handwriting varies; the label stays true."""

from __future__ import annotations

import keras
from keras import layers

from .config import MnistConfig


def build_augmentation(cfg: MnistConfig) -> keras.Sequential | None:
    """Random shifts, rotations and zoom for training batches (labels stay true), or None if `data.augment` is off.

    Input and output: (batch, 28, 28, 1) float32 in [0, 1]; uncovered pixels are filled with 0, MNIST's black.
    """
    d = cfg.data
    if not d.augment:
        return None
    return keras.Sequential(
        [
            layers.RandomTranslation(d.shift, d.shift, fill_mode="constant"),
            layers.RandomRotation(d.rotation, fill_mode="constant"),
            layers.RandomZoom(d.zoom, fill_mode="constant"),
        ],
        name="augmentation",
    )
