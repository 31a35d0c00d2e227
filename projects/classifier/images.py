"""Image files of any size and mode turned into model inputs, the same way for training, predict and serving.

Files are decoded with PIL (training data, `predict`) or with `tf.io.decode_image`
(the SavedModel's encoded-image input) into RGBA; then one TensorFlow function,
`to_model_input`, composites transparency onto white, pads the image to a square
with white and resizes it. Sharing that function keeps what the model sees when
serving identical to what it saw in training.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

WHITE = 255.0
MAX_SIDE = 2048  # larger images are shrunk while decoding


def read_rgba(path: Path, max_side: int = MAX_SIDE) -> np.ndarray:
    """Decode an image file (PNG, JPEG, GIF, BMP, WebP, ...; any mode) to (h, w, 4) uint8 RGBA.

    Images with a side above `max_side` are first shrunk by an integer factor (box filter):
    a 10,000-pixel poster then costs megabytes, not gigabytes, on its way to 96x96.

    Raises:
        ValueError: the file is not a readable image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's notes on odd but readable files (e.g. palette transparency)
            with Image.open(path) as img:
                rgba = img.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: not a readable image ({type(err).__name__}: {err})") from None
    factor = -(-max(rgba.size) // max_side)
    return np.asarray(rgba.reduce(factor) if factor > 1 else rgba)


def to_model_input(rgba: tf.Tensor, size: int) -> tf.Tensor:
    """(h, w, 4) uint8 RGBA -> (size, size, 3) float32 RGB in [0, 255].

    Transparent pixels become white, the image is centred in a white square (its
    aspect ratio kept) and resized with antialiasing.
    """
    rgba = tf.cast(rgba, tf.float32)
    alpha = rgba[..., 3:] / 255.0
    rgb = rgba[..., :3] * alpha + WHITE * (1.0 - alpha)
    # resize_with_pad pads with zeros: pad the negative image, so the padding comes out white.
    return WHITE - tf.image.resize_with_pad(WHITE - rgb, size, size, antialias=True)


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
