"""Image files of any size and mode turned into model inputs, the same way for training, predict and serving.

Files are decoded with PIL (training data, `predict`: `read_rgba`) or with
`tf.io.decode_image` (the SavedModel's encoded-image input) into RGBA; then one
TensorFlow function, `to_model_input`, composites transparency onto white, pads
the image to a square with white and resizes it. Both come from
`common/data/image_folders.py`, which decodes the training folders: sharing them
keeps what the model sees when serving identical to what it saw in training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from common.data.image_folders import read_rgba, to_model_input


def decoded_to_rgba(image: tf.Tensor) -> tf.Tensor:
    """(h, w, c) uint8 with c = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) -> (h, w, 4) uint8 RGBA."""
    channels = tf.shape(image)[-1]
    has_alpha = tf.equal(channels % 2, 0)
    color = image[..., : channels - tf.cast(has_alpha, tf.int32)]
    color = tf.cond(tf.equal(tf.shape(color)[-1], 1), lambda: tf.tile(color, [1, 1, 3]), lambda: color)
    opaque = tf.fill(tf.shape(image[..., :1]), tf.constant(255, tf.uint8))
    alpha = tf.cond(has_alpha, lambda: image[..., -1:], lambda: opaque)
    return tf.concat([color, alpha], axis=-1)


def decode_to_model_input(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """One encoded image (scalar string: PNG, JPEG, GIF or BMP bytes) -> (size, size, 3) float32 in [0, 255]."""
    image = tf.io.decode_image(encoded, channels=0, expand_animations=False)
    return to_model_input(decoded_to_rgba(image), size)


def load_image_file(path: Path, size: int) -> np.ndarray:
    """An image file as the model takes it: (size, size, 3) float32 in [0, 255]. Raises ValueError if unreadable."""
    return to_model_input(read_rgba(path), size).numpy()
