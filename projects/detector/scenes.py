"""Generated detection scenes: real MNIST digits pasted onto noisy or textured backgrounds, boxes recorded.

A scene is `image_size` x `image_size` RGB (uint8). Its background is one of: flat colour with
pixel noise, a smooth random texture, or a linear gradient with noise, dark or light. Each of
its 1 to 6 digits is cropped to its ink, scaled so its longer side is 16 to 64 pixels, tinted
with a colour that stands out from the background (light on dark, dark on light) and pasted
where it overlaps the digits already there by at most `max_overlap` IoU. Its box is the tight
box of the pasted ink, so boxes are exact. The same seed always gives the same scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .boxes import iou_matrix
from .config import DataConfig

MAX_TRIES = 30  # placements tried per digit before giving up on it (the scene keeps the others)


@dataclass
class Scenes:
    """Generated scenes: images (n, size, size, 3) uint8, boxes (n, max_objects, 4) float32 normalized
    (y1, x1, y2, x2), labels (n, max_objects) int64 digit classes, -1 where a scene has fewer objects."""

    images: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray

    def objects(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Scene i's real boxes (k, 4) and labels (k,), padding removed."""
        keep = self.labels[i] >= 0
        return self.boxes[i][keep], self.labels[i][keep]

    def __len__(self) -> int:
        return len(self.images)


def crop_to_ink(digit: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """A (28, 28) digit in [0, 1] cropped to the rows and columns holding ink."""
    rows, cols = np.where(digit > threshold)
    return digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, bool]:
    """A (size, size, 3) float32 background in [0, 255] and whether it is dark."""
    dark = bool(rng.random() < 0.5)
    low, high = (0.0, 110.0) if dark else (145.0, 255.0)
    kind = rng.integers(3)
    if kind == 0:  # flat colour
        image = np.broadcast_to(rng.uniform(low, high, 3), (size, size, 3)).astype(np.float32)
    elif kind == 1:  # smooth texture: a coarse random grid, upsampled
        cells = int(rng.integers(3, 9))
        coarse = rng.uniform(low, high, (cells, cells, 3)).astype(np.uint8)
        image = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), np.float32)
    else:  # linear gradient between two colours
        a, b = rng.uniform(low, high, 3), rng.uniform(low, high, 3)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
        t = np.clip(0.5 + (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)), 0, 1)[..., None]
        image = (a * (1 - t) + b * t).astype(np.float32)
    noise = rng.normal(0, rng.uniform(2, 18), (size, size, 3))
    return np.clip(image + noise, low - 20, high + 20).astype(np.float32), dark


def place(
    rng: np.random.Generator, placed: list[np.ndarray], h: int, w: int, size: int, max_overlap: float
) -> np.ndarray | None:
    """Pixel box (y1, x1, y2, x2) for an h x w digit inside the image, overlapping none too much; None if none found."""
    for _ in range(MAX_TRIES):
        y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        box = np.array([y, x, y + h, x + w], np.float32)
        if not placed or iou_matrix(box[None], np.asarray(placed)).max() <= max_overlap:
            return box
    return None


def scene(rng: np.random.Generator, digits: np.ndarray, labels: np.ndarray, cfg: DataConfig):
    """One scene: image (size, size, 3) uint8, boxes (k, 4) normalized, labels (k,), from a pool of digits."""
    size = cfg.image_size
    image, dark = background(rng, size)
    placed, classes = [], []
    for _ in range(int(rng.integers(cfg.min_objects, cfg.max_objects + 1))):
        k = int(rng.integers(len(digits)))
        ink = crop_to_ink(digits[k])
        scale = rng.uniform(cfg.min_size, min(cfg.max_size, size)) / max(ink.shape)
        h, w = max(2, round(ink.shape[0] * scale)), max(2, round(ink.shape[1] * scale))
        box = place(rng, placed, h, w, size, cfg.max_overlap)
        if box is None:
            continue
        alpha = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR), np.float32)
        alpha = (alpha / 255.0)[..., None]
        colour = rng.uniform(175, 255, 3) if dark else rng.uniform(0, 80, 3)
        y1, x1, y2, x2 = box.astype(int)
        image[y1:y2, x1:x2] = image[y1:y2, x1:x2] * (1 - alpha) + colour * alpha
        placed.append(box)
        classes.append(int(labels[k]))
    boxes = np.asarray(placed, np.float32).reshape(-1, 4) / size
    return np.clip(np.round(image), 0, 255).astype(np.uint8), boxes, np.asarray(classes, np.int64)


def generate(digits: np.ndarray, labels: np.ndarray, count: int, seed: int, cfg: DataConfig) -> Scenes:
    """`count` scenes from a pool of (n, 28, 28) digits in [0, 1] with labels (n,), all from one seed."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    size, most = cfg.image_size, cfg.max_objects
    images = np.zeros((count, size, size, 3), np.uint8)
    boxes = np.zeros((count, most, 4), np.float32)
    classes = np.full((count, most), -1, np.int64)
    for i in tqdm(range(count), desc=f"generating scenes (seed {seed})", leave=False, mininterval=2):
        images[i], b, c = scene(rng, digits, labels, cfg)
        boxes[i, : len(b)], classes[i, : len(c)] = b, c
    return Scenes(images, boxes, classes)
