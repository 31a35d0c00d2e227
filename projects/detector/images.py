"""Reading any image file as the detector's input: RGB, resized (not padded) to the model's square.

Any size and colour mode (grey, 16-bit, CMYK, palette, with or without transparency), turned upright by its EXIF
orientation (as a phone's photo is meant to be seen), and the first frame of an animation (GIF, WebP, APNG).
`read_image` also says in words what it did, for `predict` to print.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# EXIF orientation tag values (TIFF 6.0) -> what turning the picture upright means.
ORIENTATIONS = {
    2: "mirrored",
    3: "turned 180 degrees",
    4: "flipped upside down",
    5: "mirrored and turned 90 degrees",
    6: "turned 90 degrees clockwise",
    7: "mirrored and turned 90 degrees",
    8: "turned 90 degrees counter-clockwise",
}
EXIF_ORIENTATION = 0x0112


def to_model_input(image: Image.Image, size: int) -> np.ndarray:
    """A PIL image of any mode and size -> (size, size, 3) float32 RGB in [0, 255] (transparency on white).

    Normalized boxes found in the result are boxes of the original image: resizing keeps them.
    """
    if image.mode in ("RGBA", "LA", "P", "PA", "RGBa", "La") or "transparency" in image.info:
        image = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    elif image.mode.startswith("I;16") or image.mode in ("I", "F"):  # 16-bit or float grey: scale to 8 bits
        values = np.asarray(image, np.float64)
        top = values.max() or 1.0
        image = Image.fromarray((values / top * 255).astype(np.uint8))
    return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR), np.float32)


def read_image(path: Path, size: int) -> tuple[np.ndarray, tuple[int, int], str]:
    """(size, size, 3) float32 model input, the upright picture's (height, width), and what was done to it in words
    (e.g. "640x480 JPEG RGB, turned 90 degrees clockwise (EXIF), resized to 96x96").

    Raises:
        ValueError: the file is missing, empty or not a readable image; the message names the file and the reason.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: {'is a folder, not an image' if path.is_dir() else 'no such file'}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty")
    try:
        with Image.open(path) as image:
            kind, mode, frames = image.format or "image", image.mode, getattr(image, "n_frames", 1)
            transparent = "A" in mode or "transparency" in image.info
            image.seek(0)
            image.load()
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
            upright = ImageOps.exif_transpose(image)
            pixels = to_model_input(upright, size)
            height, width = upright.height, upright.width
    except (UnidentifiedImageError, OSError, EOFError, ValueError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from None
    steps = [f"{width}x{height} {kind} {mode}"]
    if frames > 1:
        steps.append(f"first of {frames} frames")
    if orientation in ORIENTATIONS:
        steps.append(f"{ORIENTATIONS[orientation]} (EXIF)")
    if transparent:
        steps.append("transparency on white")
    elif mode not in ("RGB", "L"):
        steps.append(f"{mode} to RGB")
    steps.append(f"resized to {size}x{size}" if (height, width) != (size, size) else f"{size}x{size} as is")
    return pixels, (height, width), ", ".join(steps)


def load_image_file(path: Path, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(size, size, 3) float32 model input and the upright picture's (height, width).

    Raises:
        ValueError: the file is not a readable image.
    """
    pixels, shape, _ = read_image(path, size)
    return pixels, shape
