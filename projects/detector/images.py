"""Reading any image file as the detector's input: RGB, resized (not padded) to the model's square."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


def to_model_input(image: Image.Image, size: int) -> np.ndarray:
    """A PIL image of any mode and size -> (size, size, 3) float32 RGB in [0, 255] (transparency on white).

    Normalized boxes found in the result are boxes of the original image: resizing keeps them.
    """
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR), np.float32)


def load_image_file(path: Path, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(size, size, 3) float32 model input and the file's (height, width).

    Raises:
        ValueError: the file is not a readable image.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return to_model_input(image, size), (image.height, image.width)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from None
