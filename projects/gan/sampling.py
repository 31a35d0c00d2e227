"""Drawing images from a generator: seeded noise, uint8 pixels, grids, the GIF, interpolation."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from PIL import Image


def is_conditional(generator: keras.Model) -> bool:
    return len(generator.inputs) > 1


def latent_dim(generator: keras.Model) -> int:
    return int(generator.inputs[0].shape[-1])


def seeded_inputs(generator: keras.Model, count: int, seed: int, class_probs: np.ndarray | None = None) -> dict:
    """Generator inputs from `seed`: `noise` (count, latent_dim) float32 N(0, 1), and `label` (count,) int32 when
    conditional (drawn with `class_probs`, or cycling through the classes)."""
    rng = np.random.default_rng(seed)
    inputs = {"noise": rng.standard_normal((count, latent_dim(generator))).astype(np.float32)}
    if is_conditional(generator):
        num_classes = generator.get_layer("class_embedding").input_dim
        if class_probs is None:
            inputs["label"] = (np.arange(count) % num_classes).astype(np.int32)
        else:
            inputs["label"] = rng.choice(num_classes, size=count, p=class_probs).astype(np.int32)
    return inputs


def grid_inputs(generator: keras.Model, seed: int, cols: int = 8, rows: int = 8) -> dict:
    """The progress grid's inputs: `rows` x `cols` seeded noise vectors; a class-conditional generator instead
    draws one row per class, the same `cols` noise vectors in every row (so a column shows one noise, per class)."""
    if not is_conditional(generator):
        return seeded_inputs(generator, rows * cols, seed)
    num_classes = generator.get_layer("class_embedding").input_dim
    noise = seeded_inputs(generator, cols, seed)["noise"]
    return {
        "noise": np.tile(noise, (num_classes, 1)),
        "label": np.repeat(np.arange(num_classes), cols).astype(np.int32),
    }


def to_uint8(images: np.ndarray) -> np.ndarray:
    """(n, h, w, 3) float in [-1, 1] -> uint8 in [0, 255], rounded (as the serving model does)."""
    return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def generate(generator: keras.Model, inputs: dict) -> np.ndarray:
    """(n, size, size, 3) uint8 images for `inputs` (see `seeded_inputs`)."""
    feed = [inputs["noise"], inputs["label"]] if is_conditional(generator) else inputs["noise"]
    return to_uint8(generator.predict(feed, batch_size=256, verbose=0))


def mosaic(images: np.ndarray, cols: int = 8, gap: int = 2) -> np.ndarray:
    """(n, h, w, 3) uint8 -> one (rows*(h+gap)+gap, cols*(w+gap)+gap, 3) uint8 picture on white."""
    n, h, w, c = images.shape
    cols = min(cols, n)
    rows = -(-n // cols)
    out = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, k = divmod(i, cols)
        out[gap + r * (h + gap) : gap + r * (h + gap) + h, gap + k * (w + gap) : gap + k * (w + gap) + w] = image
    return out


def display_scale(picture: np.ndarray, target: int = 480) -> int:
    """The whole-number enlargement that brings a picture's width nearest `target` pixels (at least 1)."""
    return max(1, round(target / picture.shape[1]))


def save_png(picture: np.ndarray, path: Path, scale: int = 1) -> Path:
    """An (h, w, 3) uint8 picture as PNG, enlarged `scale` times (nearest neighbour, pixels stay sharp)."""
    img = Image.fromarray(picture)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def save_gif(frames: list[Path], path: Path, seconds_per_frame: float = 0.5) -> Path:
    """An animated GIF of the PNG `frames` (the last one held three times as long), looping."""
    images = [Image.open(f).convert("RGB") for f in frames]
    durations = [int(seconds_per_frame * 1000)] * (len(images) - 1) + [int(seconds_per_frame * 3000)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between noise vectors a and b (d,) at fractions t (k,) -> (k, d).

    Gaussian noise lives near a sphere; a straight line between two points passes through its less likely
    interior, where samples are duller. Falls back to a straight line when a and b are (nearly) parallel.
    """
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    t = np.asarray(t, np.float64)[:, None]
    if omega < 1e-4:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)
