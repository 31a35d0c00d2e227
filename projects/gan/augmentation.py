"""The GAN's augmentation: flips of the real images, and DiffAugment on every image the discriminator sees.

- Flip (`data.flip`): a mirrored emoji or clip art is still one, so the real data doubles. Fashion-MNIST's
  garments are all drawn one way round (`data.flip=false` in its preset).
- DiffAugment (`train.diff_augment`; Zhao et al., 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training"): with a couple of thousand images the discriminator memorizes them and its feedback turns to
  noise. Random colour, translation and cutout, applied to real and generated images alike before the
  discriminator, and differentiable, so the generator is trained through them; it never learns to draw the
  augmentations, since they are applied to both sides.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from .config import GanConfig

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125  # shift by up to 1/8 of the side
CUTOUT_RATIO = 0.5  # a square of half the side


def build_augmentation(cfg: GanConfig) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """One real image (size, size, 3) float32 -> the same, mirrored left-right half the time; None if `data.flip` is
    off."""
    return tf.image.random_flip_left_right if cfg.data.flip else None


def parse_policy(policy: str) -> tuple[str, ...]:
    """ "color,translation" -> ("color", "translation").

    Raises:
        ValueError: an unknown part, naming the known ones.
    """
    parts = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in parts if p not in POLICIES]
    if unknown:
        raise ValueError(f"train.diff_augment: unknown {', '.join(unknown)}; use a comma list of {', '.join(POLICIES)}")
    return parts


def color(x: tf.Tensor) -> tf.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image, in [-1, 1] units."""
    n = tf.shape(x)[0]
    x = x + (tf.random.uniform((n, 1, 1, 1)) - 0.5)
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - mean) * (tf.random.uniform((n, 1, 1, 1)) * 2.0) + mean
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * (tf.random.uniform((n, 1, 1, 1)) + 0.5) + mean


def translation(x: tf.Tensor, ratio: float = TRANSLATION_RATIO) -> tf.Tensor:
    """Shift each image by a random whole number of pixels (up to `ratio` of the side) in x and y, filling with 0."""
    n, size = tf.shape(x)[0], x.shape[1]
    shift = max(1, int(size * ratio + 0.5))
    dy = tf.random.uniform((n, 1, 1), -shift, shift + 1, dtype=tf.int32)
    dx = tf.random.uniform((n, 1, 1), -shift, shift + 1, dtype=tf.int32)
    rows = tf.range(size)[None, :, None] - dy  # (n, size, 1): the source row of each output row
    cols = tf.range(size)[None, None, :] - dx  # (n, 1, size)
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    rows, cols = tf.clip_by_value(rows, 0, size - 1), tf.clip_by_value(cols, 0, size - 1)
    batch = tf.broadcast_to(tf.range(n)[:, None, None], tf.shape(inside))
    index = tf.stack([batch, tf.broadcast_to(rows, tf.shape(inside)), tf.broadcast_to(cols, tf.shape(inside))], -1)
    return tf.gather_nd(x, index) * tf.cast(inside, x.dtype)[..., None]


def cutout(x: tf.Tensor, ratio: float = CUTOUT_RATIO) -> tf.Tensor:
    """Set a random square of `ratio` times the side to 0 (grey) in each image."""
    n, size = tf.shape(x)[0], x.shape[1]
    half = int(size * ratio + 0.5) // 2
    cy = tf.random.uniform((n, 1, 1), 0, size, dtype=tf.int32)
    cx = tf.random.uniform((n, 1, 1), 0, size, dtype=tf.int32)
    inside_y = tf.abs(tf.range(size)[None, :, None] - cy) < half
    inside_x = tf.abs(tf.range(size)[None, None, :] - cx) < half
    return x * tf.cast(~(inside_y & inside_x), x.dtype)[..., None]


def diff_augment(x: tf.Tensor, policy: tuple[str, ...]) -> tf.Tensor:
    """(batch, size, size, 3) float32 in [-1, 1] -> the same shape, each of `policy`'s augmentations applied in turn."""
    for part in policy:
        x = {"color": color, "translation": translation, "cutout": cutout}[part](x)
    return x
