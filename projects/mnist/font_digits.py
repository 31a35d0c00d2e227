"""Printed digits as a phone would photograph them: the digits 0-9 in the fonts Debian ships, on paper.

The fonts come from the Debian packages in debian-packages.txt (`make install` puts them in
/usr/share/fonts). Each picture varies what a real photo varies: the font, stroke width, slant and
rotation, scale, position, paper and ink colour (sometimes light ink on a dark board), a shadow across
the paper, blur and sensor noise. `font_digit_set` renders them and prepares them as `predict` does
(preparation.py), so the set measures the whole path from a photo to the model.

Fonts are split by family: every fourth family (sorted by name) is held out for the real-world test set,
the others may be used in training, so the test set measures fonts the model has never seen.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .preparation import BlankImageError, prepare_digit

FONT_DIR = Path("/usr/share/fonts")
TEST_EVERY = 4  # every fourth font family is held out for the test set
GLYPH_PX = 64  # size the glyph checks render at
RENDER_PX = 96  # size the digits are drawn at before they are slanted, rotated and scaled
INSTALL_HINT = "install them with `make project=mnist install` (projects/mnist/debian-packages.txt)"


def _renders_digits(font: ImageFont.FreeTypeFont) -> bool:
    """True if the font draws ten distinct, non-empty digit glyphs (not a symbol or dingbat font)."""
    shapes = set()
    for digit in "0123456789":
        image = Image.new("L", (GLYPH_PX * 2, GLYPH_PX * 2))
        ImageDraw.Draw(image).text((GLYPH_PX // 2, GLYPH_PX // 4), digit, fill=255, font=font)
        pixels = np.asarray(image) > 127
        if not pixels.any():
            return False
        shapes.add(pixels.tobytes())
    return len(shapes) == 10


@cache
def font_families() -> dict[str, tuple[Path, ...]]:
    """{family name: its font files} for every font under /usr/share/fonts that draws the ten digits.

    Raises:
        FileNotFoundError: no such font is installed.
    """
    families: dict[str, list[Path]] = {}
    for path in sorted(p for p in FONT_DIR.rglob("*") if p.suffix.lower() in (".ttf", ".otf")):
        try:
            font = ImageFont.truetype(str(path), GLYPH_PX)
        except OSError:
            continue
        if _renders_digits(font):
            families.setdefault(font.getname()[0], []).append(path)
    if not families:
        raise FileNotFoundError(f"no fonts with digits under {FONT_DIR}: {INSTALL_HINT}")
    return {name: tuple(files) for name, files in sorted(families.items())}


def split_families(split: str) -> list[str]:
    """The `train` or `test` font families: every TEST_EVERY-th family, sorted by name, is a test family."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    names = list(font_families())
    return [n for i, n in enumerate(names) if (i % TEST_EVERY == TEST_EVERY - 1) == (split == "test")]


def font_files(split: str) -> list[Path]:
    """The font files of the `train` or `test` families."""
    return [path for name in split_families(split) for path in font_families()[name]]


@cache
def _font(path: Path) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), RENDER_PX)


def _ink_layer(font_path: Path, digit: int, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """The digit's ink as an (h, w) L mask: scaled, thickened, slanted, rotated and placed at random."""
    width, height = size
    stroke = int(rng.integers(0, 5))  # extra stroke width at RENDER_PX: from the font's own weight to much bolder
    side = 2 * RENDER_PX
    glyph = Image.new("L", (side, side))
    ImageDraw.Draw(glyph).text((side // 4, side // 8), str(digit), fill=255, font=_font(font_path), stroke_width=stroke)
    # One affine map for slant (x += slant * y) and rotation about the centre; PIL wants output -> input.
    slant, turn = rng.uniform(-0.3, 0.3), math.radians(rng.uniform(-10, 10))
    forward = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]]) @ [[1, slant], [0, 1]]
    inverse = np.linalg.inv(forward)
    centre = np.array([side / 2, side / 2])
    shift = centre - inverse @ centre
    glyph = glyph.transform(glyph.size, Image.AFFINE, (*inverse[0], shift[0], *inverse[1], shift[1]), Image.BILINEAR)
    glyph = glyph.crop(glyph.getbbox())
    target = rng.uniform(0.35, 0.8) * height  # digit height as a share of the picture
    scale = min(target / glyph.height, 0.9 * width / glyph.width)
    glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))), Image.BILINEAR)
    layer = Image.new("L", size)
    left = int(rng.integers(0, max(1, width - glyph.width)))
    top = int(rng.integers(0, max(1, height - glyph.height)))
    layer.paste(glyph, (left, top))
    return layer


def render_digit(font_path: Path, digit: int, rng: np.random.Generator) -> np.ndarray:
    """A photo-like picture of `digit` in the font: (h, w, 4) uint8 RGBA, h and w between 56 and 160."""
    size = (int(rng.integers(56, 161)), int(rng.integers(56, 161)))
    ink = np.asarray(_ink_layer(font_path, digit, size, rng), np.float32)[..., None] / 255
    paper = rng.uniform(150, 255) * (1 - rng.uniform(0, 0.12, 3))  # white to grey, a little tinted
    pen = rng.uniform(0, 80, 3)
    if rng.random() < 0.1:  # chalk on a board: light ink on dark paper
        paper, pen = 255 - paper, 255 - pen
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]] / max(size)
    angle = rng.uniform(0, 2 * math.pi)
    shadow = 1 - rng.uniform(0, 0.35) * np.clip(np.cos(angle) * xx + np.sin(angle) * yy, 0, 1)
    picture = (paper * (1 - ink) + pen * ink) * shadow[..., None]
    blurred = Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0, 1.5))
    )
    noisy = np.asarray(blurred, np.float32) + rng.normal(0, rng.uniform(0, 12), (size[1], size[0], 3))
    rgb = np.clip(noisy, 0, 255).astype(np.uint8)
    return np.concatenate([rgb, np.full((size[1], size[0], 1), 255, np.uint8)], axis=2)


@cache  # `all` loads the data twice (train, then evaluate): render once
def font_digit_set(split: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` font digits of the `split` fonts, balanced over the digits, prepared as MNIST.

    Returns (count, 28, 28) float32 in [0, 1] white on black, and (count,) int64 labels (read-only: shared
    between calls). The same split, count and seed give the same digits.
    """
    fonts = font_files(split)
    rng = np.random.default_rng(seed)
    images, labels = [], []
    while len(images) < count:
        digit = len(images) % 10
        picture = render_digit(fonts[int(rng.integers(len(fonts)))], digit, rng)
        try:
            images.append(prepare_digit(picture))
        except BlankImageError:  # a glyph lost in blur and noise: a photo nobody would take
            continue
        labels.append(digit)
    images, labels = np.stack(images), np.asarray(labels, np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels
