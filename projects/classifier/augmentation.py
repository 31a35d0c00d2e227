"""The classifier's augmentation: random flips, rotations, zoom and contrast, as photos and clip art vary."""

from __future__ import annotations

import keras
from keras import layers

from .config import ClassifierConfig

WHITE = 255.0  # what rotation and zoom uncover: the white the images were padded with


def build_augmentation(cfg: ClassifierConfig) -> keras.Sequential | None:
    """Random flips (`data.flip`), rotations, zoom and contrast for training batches, or None if `data.augment` is off.

    Input and output: (batch, size, size, 3) float32 in [0, 255]; the label stays true.
    """
    d = cfg.data
    if not d.augment:
        return None
    steps = [layers.RandomFlip("horizontal")] if d.flip else []
    steps += [
        layers.RandomRotation(d.rotation, fill_mode="constant", fill_value=WHITE),
        layers.RandomZoom(d.zoom, fill_mode="constant", fill_value=WHITE),
        layers.RandomContrast(d.contrast, value_range=(0, 255)),
    ]
    return keras.Sequential(steps, name="augmentation")
