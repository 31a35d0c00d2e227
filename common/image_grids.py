"""Pictures of generated images: [-1, 1] floats to uint8, a grid of them, PNG and GIF files.

The generative projects (gan, diffusion) draw their progress grids, final grids and step strips with these.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
    """(n, h, w, 3) float in [-1, 1] -> uint8 in [0, 255], rounded (as the serving models do)."""
    return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


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


def save_png(picture: np.ndarray, path: Path, target: int = 480) -> Path:
    """An (h, w, 3) uint8 picture as PNG, enlarged (nearest neighbour: pixels stay sharp) by `display_scale`."""
    scale = display_scale(picture, target)
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
