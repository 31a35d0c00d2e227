"""Drawing images from a generator: seeded noise, uint8 pixels, grids, the GIF, interpolation."""

from __future__ import annotations

import keras
import numpy as np

from common.image_grids import to_uint8

MAX_GRID_ROWS = 12  # a grid of a conditional generator with more classes shows this many of them


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


def grid_classes(num_classes: int, rows: int = MAX_GRID_ROWS) -> np.ndarray:
    """The classes a grid shows, one per row: all of them, or `rows` spread evenly over the class ids (with
    emoji subcategories, ordered by category, that is about one per category)."""
    if num_classes <= rows:
        return np.arange(num_classes)
    return np.unique(np.round(np.linspace(0, num_classes - 1, rows)).astype(np.int64))


def grid_inputs(generator: keras.Model, seed: int, cols: int = 8, rows: int = 8) -> dict:
    """The progress grid's inputs: `rows` x `cols` seeded noise vectors; a class-conditional generator instead
    draws one row per class (`grid_classes`), the same `cols` noise vectors in every row (so a column shows one
    noise, per class)."""
    if not is_conditional(generator):
        return seeded_inputs(generator, rows * cols, seed)
    classes = grid_classes(generator.get_layer("class_embedding").input_dim)
    noise = seeded_inputs(generator, cols, seed)["noise"]
    return {
        "noise": np.tile(noise, (len(classes), 1)),
        "label": np.repeat(classes, cols).astype(np.int32),
    }


def generate(generator: keras.Model, inputs: dict) -> np.ndarray:
    """(n, size, size, 3) uint8 images for `inputs` (see `seeded_inputs`)."""
    feed = [inputs["noise"], inputs["label"]] if is_conditional(generator) else inputs["noise"]
    return to_uint8(generator.predict(feed, batch_size=256, verbose=0))


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
