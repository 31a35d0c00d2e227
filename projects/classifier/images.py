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
from PIL import Image, ImageOps

from common.data.image_folders import MAX_PIXELS, read_rgba, to_model_input

# EXIF orientation -> what `ImageOps.exif_transpose` does to turn the image upright.
ORIENTATIONS = {
    2: "mirrored",
    3: "rotated 180 degrees",
    4: "flipped upside down",
    5: "mirrored and rotated 90 degrees",
    6: "rotated 90 degrees clockwise",
    7: "mirrored and rotated 90 degrees clockwise",
    8: "rotated 90 degrees anticlockwise",
}


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


def load_image_file(path: Path, size: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file as the model takes it: (size, size, 3) float32 in [0, 255], upright by its EXIF orientation.

    Raises:
        ValueError: the file is not a readable image, or has more than `max_pixels` pixels.
    """
    return to_model_input(read_rgba(path, max_pixels=max_pixels, exif_transpose=True), size).numpy()


def prepare_image_file(path: Path, size: int, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, list[str]]:
    """`load_image_file`, and what was done to the file on the way, in words (one step per item).

    Raises:
        ValueError: the file is missing, not a readable image, or has more than `max_pixels` pixels.
    """
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    image = load_image_file(path, size, max_pixels)
    with Image.open(path) as img:
        width, height = img.size
        steps = [f"{img.format or 'image'} {width}x{height} {img.mode}"]
        frames = getattr(img, "n_frames", 1)
        if frames > 1:
            steps.append(f"the first of {frames} frames")
        orientation = img.getexif().get(0x0112, 1)  # the EXIF Orientation tag
        if orientation in ORIENTATIONS:
            steps.append(f"turned upright by its EXIF orientation ({ORIENTATIONS[orientation]})")
            width, height = ImageOps.exif_transpose(img).size
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            steps.append("transparent pixels put on white")
        elif img.mode not in ("RGB", "RGBA"):
            steps.append(f"{img.mode} converted to RGB")
    if width != height:
        side = max(width, height)
        steps.append(f"centred in a white {side}x{side} square")
    steps.append(f"resized to {size}x{size}")
    return image, steps
