"""Make any picture of digits look like MNIST, the way MNIST itself was made.

MNIST digits are white ink on black, size-normalised into a 20x20 box keeping their aspect ratio and
centred by their centre of mass in a 28x28 field. A photo of a digit on paper is none of these: dark ink,
light and uneven paper, a shadow, any size. `prepare_digits` turns an RGBA picture into MNIST digits:

1. grey (transparency composited onto white), shrunk so its longer side is at most `MAX_SIDE` pixels;
2. inverted when the border (the paper) is light, so that ink is bright;
3. the paper's level, estimated per region (the 10th percentile over a wide window), is divided out (light
   multiplies: a shadow dims ink and paper alike), so that shadows and paper colour drop out; Otsu's
   threshold then separates ink from paper texture and noise;
4. ink is split into connected components; specks are dropped; components that overlap in x form one digit,
   read left to right;
5. each digit is cropped to its ink, scaled into 20x20 keeping its aspect ratio, and placed in 28x28 with its
   centre of mass at the centre.

serving/web/js/projects/mnist.js holds the twin of every step (`prepareDigits`), written operation for
operation so that both give the same 28x28 arrays (tests/test_mnist_inputs.py runs both on the same images).
Sums run in a fixed order (`np.cumsum`, tap by tap) for that reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

MAX_SIDE = 512  # longer side the picture is shrunk to first: enough for a row of digits, fast in the browser
BLOCKS = 4  # the paper level is estimated on a grid of this many blocks along the longer side...
PAPER_PERCENTILE = 0.1  # ...as this percentile over each block and its neighbours (3x3 blocks)
INK_PERCENTILE = 0.9  # the ink level, mapped to 1.0: this percentile of the pixels above the threshold
MIN_CONTRAST = 0.15  # ink that stands less than this above the paper is no digit (0-1 grey levels)
SPECK_SHARE = 0.02  # components smaller than this share of the largest are paper texture or noise
DIGIT_SHARE = 0.1  # digits (merged components) smaller than this share of the largest are dropped
OVERLAP = 0.5  # components whose x-ranges overlap by this share of the narrower one are one digit
BOX, FIELD = 20, 28  # MNIST: the digit fits a 20x20 box, centred by mass in a 28x28 field


class BlankImageError(ValueError):
    """The picture holds no ink that stands out from its background."""


@dataclass(frozen=True)
class _Ink:
    values: np.ndarray  # (h, w) float64 in [0, 1]: ink strength, 0 on paper
    labels: np.ndarray  # (h, w) int: connected component of each ink pixel, 0 on paper
    groups: list[list[int]]  # the component labels of each digit, left to right


def _round(x: float) -> int:
    """Halves round up, as JavaScript's Math.round does (Python's round goes to even)."""
    return math.floor(x + 0.5)


def grey_from_rgba(rgba: np.ndarray) -> np.ndarray:
    """(h, w, 4) uint8 RGBA -> (h, w) float64 grey in [0, 1], transparent pixels on white (ITU-R 601 luma)."""
    c = rgba.astype(np.float64)
    alpha = c[..., 3] / 255
    r, g, b = (alpha * c[..., k] + (1 - alpha) * 255 for k in range(3))
    return (0.299 * r + 0.587 * g + 0.114 * b) / 255


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Triangle-filter resampling from n_in to n_out pixels: (n_out, taps) source indices and weights.

    The filter widens with the shrink factor (every source pixel counts, no aliasing); missing taps point at
    pixel 0 with weight 0.
    """
    scale = n_out / n_in
    support = max(1.0, 1.0 / scale)
    taps = 2 * math.ceil(support) + 2
    index = np.zeros((n_out, taps), np.int64)
    weight = np.zeros((n_out, taps), np.float64)
    for i in range(n_out):
        centre = (i + 0.5) / scale
        lo = max(0, math.floor(centre - support))
        hi = min(n_in, math.ceil(centre + support))
        for k, j in enumerate(range(lo, hi)):
            index[i, k] = j
            weight[i, k] = max(0.0, 1.0 - abs((j + 0.5 - centre) / support))
    total = np.cumsum(weight, axis=1)[:, -1]
    return index, weight / total[:, None]


def resample(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) float64 -> (height, width) float64: triangle filter, along x then along y, taps summed in order."""
    index, weight = _taps(image.shape[1], width)
    rows = np.zeros((image.shape[0], width))
    for k in range(index.shape[1]):
        rows = rows + weight[:, k] * image[:, index[:, k]]
    index, weight = _taps(image.shape[0], height)
    out = np.zeros((height, width))
    for k in range(index.shape[1]):
        out = out + weight[:, k, None] * rows[index[:, k], :]
    return out


def _shrink(grey: np.ndarray) -> np.ndarray:
    h, w = grey.shape
    if max(h, w) <= MAX_SIDE:
        return grey
    scale = MAX_SIDE / max(h, w)
    return resample(grey, max(1, _round(h * scale)), max(1, _round(w * scale)))


def _percentile(values: np.ndarray, q: float) -> float:
    """The value at index floor(q * (n - 1)) of the sorted values: no interpolation."""
    flat = np.sort(values, axis=None)
    return float(flat[math.floor(q * (flat.size - 1))])


def _paper_level(ink: np.ndarray) -> np.ndarray:
    """(h, w) ink -> (h, w) the paper's ink level: a percentile per block over 3x3 blocks, bilinear between."""
    h, w = ink.shape
    block = math.ceil(max(h, w) / BLOCKS)
    ny, nx = math.ceil(h / block), math.ceil(w / block)
    level = np.zeros((ny, nx))
    for by in range(ny):
        for bx in range(nx):
            window = ink[max(0, by - 1) * block : (by + 2) * block, max(0, bx - 1) * block : (bx + 2) * block]
            level[by, bx] = _percentile(window, PAPER_PERCENTILE)
    fy = np.clip((np.arange(h) + 0.5) / block - 0.5, 0, ny - 1)
    fx = np.clip((np.arange(w) + 0.5) / block - 0.5, 0, nx - 1)
    y0, x0 = np.floor(fy).astype(int), np.floor(fx).astype(int)
    y1, x1 = np.minimum(y0 + 1, ny - 1), np.minimum(x0 + 1, nx - 1)
    ty, tx = (fy - y0)[:, None], (fx - x0)[None, :]
    top = (1 - tx) * level[y0][:, x0] + tx * level[y0][:, x1]
    bottom = (1 - tx) * level[y1][:, x0] + tx * level[y1][:, x1]
    return (1 - ty) * top + ty * bottom


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1] over 256 bins: the upper edge of the last background bin."""
    bins = np.minimum(255, np.floor(values * 256).astype(np.int64))
    counts = np.bincount(bins.ravel(), minlength=256).astype(np.float64)
    total = float(values.size)
    sum_all = float(np.cumsum(np.arange(256) * counts)[-1])
    best, best_k, weight_bg, sum_bg = -1.0, 0, 0.0, 0.0
    for k in range(256):
        weight_bg += counts[k]
        sum_bg += k * counts[k]
        weight_fg = total - weight_bg
        if weight_bg == 0 or weight_fg == 0:
            continue
        mean_bg, mean_fg = sum_bg / weight_bg, (sum_all - sum_bg) / weight_fg
        between = weight_bg * weight_fg * (mean_bg - mean_fg) * (mean_bg - mean_fg)
        if between > best:
            best, best_k = between, k
    return (best_k + 1) / 256


def _group_left_to_right(boxes: dict[int, tuple[int, int]]) -> list[list[int]]:
    """Component labels -> digits: components sorted by left edge, joined while their x-ranges overlap."""
    groups: list[tuple[list[int], int, int]] = []
    for label, (left, right) in sorted(boxes.items(), key=lambda item: (item[1][0], item[0])):
        if groups:
            members, g_left, g_right = groups[-1]
            overlap = min(right, g_right) - max(left, g_left)
            if overlap >= OVERLAP * min(right - left, g_right - g_left):
                groups[-1] = ([*members, label], g_left, max(g_right, right))
                continue
        groups.append(([label], left, right))
    return [members for members, _, _ in groups]


def find_ink(grey: np.ndarray) -> _Ink:
    """Steps 1-4 on (h, w) grey in [0, 1]: ink strength, components, digits left to right.

    Raises:
        BlankImageError: no ink stands out from the paper.
    """
    grey = _shrink(grey)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    ink = 1 - grey if np.median(border) > 0.5 else grey
    paper = _paper_level(ink)
    lifted = np.maximum((ink - paper) / np.maximum(1 - paper, 1e-6), 0)  # light is multiplied: divide it out
    threshold = otsu_threshold(lifted)
    mask = lifted > threshold
    if not mask.any():
        raise BlankImageError("no ink stands out from the background")
    level = _percentile(lifted[mask], INK_PERCENTILE)
    if level < MIN_CONTRAST:
        raise BlankImageError(f"the ink is too faint (contrast {level:.2f}, needs {MIN_CONTRAST})")
    values = np.clip(lifted / level, 0, 1) * mask
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = [k + 1 for k in range(count) if areas[k] >= SPECK_SHARE * areas.max()]
    slices = ndimage.find_objects(labels)
    boxes = {k: (slices[k - 1][1].start, slices[k - 1][1].stop) for k in keep}
    groups = _group_left_to_right(boxes)
    sizes = [sum(int(areas[k - 1]) for k in g) for g in groups]
    groups = [g for g, s in zip(groups, sizes, strict=True) if s >= DIGIT_SHARE * max(sizes)]
    return _Ink(values, labels, groups)


def to_mnist_field(values: np.ndarray) -> np.ndarray:
    """Step 5: (h, w) ink in [0, 1], ink touching every edge -> (28, 28) float32: fitted into 20x20 keeping
    the aspect ratio, placed with its centre of mass at the centre of the field."""
    h, w = values.shape
    scale = BOX / max(h, w)
    sh, sw = max(1, _round(h * scale)), max(1, _round(w * scale))
    digit = np.clip(resample(values, sh, sw), 0, 1)
    mass = float(np.cumsum(digit)[-1])
    if mass == 0:
        cy, cx = (sh - 1) / 2, (sw - 1) / 2
    else:
        cy = float(np.cumsum(_row_sums(digit) * np.arange(sh))[-1]) / mass
        cx = float(np.cumsum(_row_sums(digit.T) * np.arange(sw))[-1]) / mass
    top = min(max(_round((FIELD - 1) / 2 - cy), 0), FIELD - sh)
    left = min(max(_round((FIELD - 1) / 2 - cx), 0), FIELD - sw)
    field = np.zeros((FIELD, FIELD))
    field[top : top + sh, left : left + sw] = digit
    return field.astype(np.float32)


def _row_sums(a: np.ndarray) -> np.ndarray:
    """Sum of each row, left to right in order."""
    return np.cumsum(a, axis=1)[:, -1]


def prepare_digits(rgba: np.ndarray) -> np.ndarray:
    """(h, w, 4) uint8 RGBA picture of one or more digits in a row -> (n, 28, 28) float32 MNIST digits, left to
    right.

    Raises:
        BlankImageError: no ink stands out from the background.
    """
    ink = find_ink(grey_from_rgba(rgba))
    digits = []
    for group in ink.groups:
        mine = np.isin(ink.labels, group)
        rows, cols = np.nonzero(mine)
        crop = (ink.values * mine)[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        digits.append(to_mnist_field(crop))
    return np.stack(digits)


def prepare_digit(rgba: np.ndarray) -> np.ndarray:
    """(h, w, 4) uint8 RGBA picture of one digit -> (28, 28) float32: all its ink as one digit.

    Raises:
        BlankImageError: no ink stands out from the background.
    """
    ink = find_ink(grey_from_rgba(rgba))
    mine = np.isin(ink.labels, [k for g in ink.groups for k in g])
    rows, cols = np.nonzero(mine)
    return to_mnist_field((ink.values * mine)[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])
