"""The detector reads any image file: any size and colour mode, EXIF rotation, an animation's first frame; it says
what it did, and a bad file is named with the reason."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from projects.detector.images import read_image

SIZE = 96


def _scene() -> Image.Image:
    """A white 160x120 picture with a red square at the top left: where it lands shows which way is up."""
    picture = Image.new("RGB", (160, 120), "white")
    picture.paste((220, 0, 0), (0, 0, 40, 40))
    return picture


def _red_corner(pixels: np.ndarray) -> tuple[int, int]:
    """(row, column) of the red square's centre in a (size, size, 3) model input."""
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 80)
    rows, cols = np.nonzero(red)
    return round(rows.mean()), round(cols.mean())


def test_a_phone_photo_on_its_side_is_turned_upright_and_says_so(tmp_path):
    sideways = _scene().transpose(Image.Transpose.ROTATE_90)  # stored turned; EXIF 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    pixels, (height, width), done = read_image(tmp_path / "phone.jpg", SIZE)
    assert (height, width) == (120, 160)
    assert pixels.shape == (SIZE, SIZE, 3) and pixels.dtype == np.float32
    row, col = _red_corner(pixels)
    assert row < SIZE / 3 and col < SIZE / 3  # the red square is back at the top left
    assert done.startswith("160x120 JPEG") and "turned 90 degrees clockwise (EXIF)" in done and "resized" in done


@pytest.mark.parametrize(
    ("name", "mode", "said"),
    [
        ("grey.png", "L", "PNG L"),
        ("deep.png", "I;16", "PNG I;16"),
        ("print.jpg", "CMYK", "CMYK to RGB"),
        ("clip.png", "RGBA", "transparency on white"),
        ("photo.webp", "RGB", "WEBP RGB"),
    ],
)
def test_every_colour_mode_becomes_rgb_in_0_255(tmp_path, name, mode, said):
    picture = _scene().convert(mode) if mode != "I;16" else _scene().convert("L").convert("I;16")
    picture.save(tmp_path / name)
    pixels, shape, done = read_image(tmp_path / name, SIZE)
    assert pixels.shape == (SIZE, SIZE, 3) and shape == (120, 160)
    assert said in done
    assert pixels.max() > 200 and pixels.min() < 120  # the white page and the square survive the conversion
    row, col = _red_corner(pixels) if mode not in ("L", "I;16") else (0, 0)
    assert row < SIZE / 3 and col < SIZE / 3


def test_transparency_goes_on_white_and_an_animation_gives_its_first_frame(tmp_path):
    clear = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    clear.save(tmp_path / "clear.png")
    pixels, _, _ = read_image(tmp_path / "clear.png", SIZE)
    assert pixels.min() == 255  # nothing drawn: white, not black
    first, second = _scene(), Image.new("RGB", (160, 120), "black")
    first.save(tmp_path / "anim.gif", save_all=True, append_images=[second])
    pixels, _, done = read_image(tmp_path / "anim.gif", SIZE)
    assert "first of 2 frames" in done and pixels.mean() > 150  # the white first frame, not the black second


def test_bad_files_are_named_with_the_reason(tmp_path):
    (tmp_path / "notes.jpg").write_text("shopping list")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    cases = {
        "notes.jpg": "notes.jpg: not a readable image",
        "empty.png": "empty.png: the file is empty",
        "folder.png": "folder.png: is a folder, not an image",
        "missing.png": "missing.png: no such file",
    }
    for name, message in cases.items():
        with pytest.raises(ValueError, match=message.replace(".", r"\.")):
            read_image(tmp_path / name, SIZE)
