"""Folders of labelled images, `ROOT/<class>/<image>`, decoded once into arrays: the classifier's and the GAN's.

`list_class_files` finds each class folder's files (searched recursively, hidden
ones ignored) and checks the layout; `decode_folder` decodes them (PIL; any size
and mode, transparency composited onto white), pads each to a square, resizes it
and caches the lot as uint8 under `cache_dir`. A file that is not a readable
image is skipped with a warning and listed in `LabelledImages.skipped`.
`decode_unlabelled` decodes every image under a folder, without classes (a pool
for self-supervised pretraining). Images over `max_pixels` (decompression bombs)
are skipped like unreadable ones, before their pixels are decoded.
`to_model_input` is the one TensorFlow function that turns a decoded image into
what a model sees, so that a project's serving model can prepare its input
exactly as its training data was prepared.

Debian's `openclipart-png` (`OPENCLIPART`) is such a folder: one sub-folder of clip art per category.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

OPENCLIPART = Path("/usr/share/openclipart/png")  # Debian openclipart-png: <category>/<image>.png
CACHE_VERSION = 1  # bump when the preprocessing changes, so old caches are not reused
WHITE = 255.0
MAX_SIDE = 2048  # larger images are shrunk while decoding
# Images with more pixels are skipped undecoded: PIL's own decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS).
MAX_PIXELS = 2 * Image.MAX_IMAGE_PIXELS


class FolderLayoutError(ValueError):
    """An image folder that is not laid out as DIR/<class>/<image> with at least two non-empty classes."""


class PixelLimitError(ValueError):
    """An image whose header promises more pixels than allowed: skipped before decoding."""


@dataclass
class LabelledImages:
    """Decoded images with their labels, before splitting."""

    images: np.ndarray  # (n, size, size, 3) uint8 RGB (or (n, h, w, 1) grey, for sources read elsewhere)
    labels: np.ndarray  # (n,) int64 class ids
    class_names: list[str]
    source: str  # e.g. "dir:/home/me/photos" or "debian:openclipart-png", for the report
    skipped: list[str]  # one "path: reason" per file that could not be read


def read_rgba(
    path: Path, max_side: int = MAX_SIDE, *, max_pixels: int = MAX_PIXELS, exif_transpose: bool = False
) -> np.ndarray:
    """Decode an image file (PNG, JPEG, GIF, BMP, WebP, ...; any mode; a GIF's first frame) to (h, w, 4) uint8 RGBA.

    Images with a side above `max_side` are first shrunk by an integer factor (box filter):
    a 10,000-pixel poster then costs megabytes, not gigabytes, on its way to 96x96.
    `exif_transpose`: turn a photo upright as its EXIF orientation says (cameras store it sideways).

    Raises:
        ValueError: the file is not a readable image.
        PixelLimitError: (a ValueError) the header promises more than `max_pixels` pixels: a decompression bomb,
            not decoded.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's notes on odd but readable files (e.g. palette transparency)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise PixelLimitError(_too_many_pixels(path, width, height, max_pixels))
                rgba = (ImageOps.exif_transpose(img) if exif_transpose else img).convert("RGBA")
    except PixelLimitError:
        raise
    except Image.DecompressionBombError as err:
        raise PixelLimitError(f"{path}: over the pixel limit, a decompression bomb ({err})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as err:
        raise ValueError(f"{path}: not a readable image ({type(err).__name__}: {err})") from None
    factor = -(-max(rgba.size) // max_side)
    return np.asarray(rgba.reduce(factor) if factor > 1 else rgba)


def _too_many_pixels(path: Path, width: int, height: int, max_pixels: int) -> str:
    return (
        f"{path}: over the pixel limit, a decompression bomb ({width}x{height} = {width * height / 1e6:,.0f} "
        f"megapixels, limit {max_pixels / 1e6:,.0f}); not decoded"
    )


def to_model_input(rgba: tf.Tensor, size: int) -> tf.Tensor:
    """(h, w, 4) uint8 RGBA -> (size, size, 3) float32 RGB in [0, 255].

    Transparent pixels become white, the image is centred in a white square (its
    aspect ratio kept) and resized with antialiasing.
    """
    rgba = tf.cast(rgba, tf.float32)
    alpha = rgba[..., 3:] / 255.0
    rgb = rgba[..., :3] * alpha + WHITE * (1.0 - alpha)
    # resize_with_pad pads with zeros: pad the negative image, so the padding comes out white.
    return WHITE - tf.image.resize_with_pad(WHITE - rgb, size, size, antialias=True)


def _layout_error(root: Path, problem: str) -> FolderLayoutError:
    return FolderLayoutError(
        f"{problem}; expected one sub-folder of images per class, at least two classes: "
        f"{root}/<class>/<image>, e.g. {root}/cats/001.jpg and {root}/dogs/002.png"
    )


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def list_class_files(root: Path, classes: Sequence[str] = ()) -> dict[str, list[Path]]:
    """The files of each class folder of `root` (searched recursively, hidden ones ignored), by class name.

    A file linked into several class folders is kept only in the folder that holds it
    (or in none, if it lives elsewhere): the same image must not carry two labels.

    Raises:
        FolderLayoutError: `root` missing, fewer than two class folders, a class in
            `classes` that does not exist, or a class folder without files.
    """
    if not root.is_dir():
        raise _layout_error(root, f"data.dir {root} is not a folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes:
        missing = sorted(set(classes) - {p.name for p in folders})
        if missing:
            raise _layout_error(root, f"{root} has no class folder {', '.join(missing)}")
        folders = [p for p in folders if p.name in classes]
    if len(folders) < 2:
        found = f"only one class folder ({folders[0].name})" if folders else "no class folders"
        raise _layout_error(root, f"{root} has {found}")

    files = {f.name: sorted(p for p in f.rglob("*") if p.is_file() and not _hidden(p, f)) for f in folders}
    for name, found in files.items():
        if not found:
            raise _layout_error(root, f"class folder {root / name} has no files")

    owners: dict[Path, set[str]] = {}
    for name, found in files.items():
        for path in found:
            owners.setdefault(path.resolve(), set()).add(name)
    homes = {name: (root / name).resolve() for name in files}
    kept: dict[str, list[Path]] = {}
    for name, found in files.items():
        seen: set[Path] = set()
        kept[name] = []
        for path in found:
            real = path.resolve()
            shared = len(owners[real]) > 1
            if real in seen or (shared and not real.is_relative_to(homes[name])):
                continue
            seen.add(real)
            kept[name].append(path)
    return kept


def _choose(files: dict[str, list[Path]], max_per_class: int, seed: int) -> dict[str, list[Path]]:
    """At most `max_per_class` files per class, a seeded random choice in file order (0 = all)."""
    if not max_per_class:
        return files
    rng = np.random.default_rng(seed)
    return {
        name: [found[i] for i in sorted(rng.permutation(len(found))[:max_per_class])] for name, found in files.items()
    }


def cache_file(cache_dir: Path, size: int, key: object) -> Path:
    """The .npz under `cache_dir` holding the images of `key` (anything JSON-able naming the source) at `size`."""
    digest = hashlib.sha1(json.dumps([CACHE_VERSION, size, key]).encode()).hexdigest()[:16]
    return cache_dir / f"{size}px-{digest}.npz"


def save_cache(path: Path, data: LabelledImages) -> None:
    """Write `data`'s images, labels and skipped files to `path` atomically (a killed run leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
    np.savez(tmp, images=data.images, labels=data.labels, skipped=np.asarray(data.skipped, dtype=str))
    os.replace(tmp, path)


def _warn_skipped(skipped: Sequence[str]) -> None:
    for line in skipped:
        print(f"warning: skipped {line}", file=sys.stderr)


def decode_folder(
    root: Path,
    source: str,
    *,
    size: int,
    cache_dir: Path,
    classes: Sequence[str] = (),
    max_per_class: int = 0,
    seed: int = 0,
    max_pixels: int = MAX_PIXELS,
    exif_transpose: bool = False,
) -> LabelledImages:
    """The class folders of `root` (only `classes`, if given) as (n, size, size, 3) uint8 images and their labels.

    Decoded once, then read from `cache_dir` while the files (names, sizes, times) stay the same. Unreadable files
    and files over `max_pixels` are skipped with a warning. `max_per_class` keeps at most that many files per class,
    chosen with `seed` (0: all). `exif_transpose`: photos turned upright first (see `read_rgba`).

    Raises:
        FolderLayoutError: a bad layout (see `list_class_files`), or a class without one readable image.
    """
    files = _choose(list_class_files(root, classes), max_per_class, seed)
    class_names = list(files)
    listing = [(name, str(p), p.stat().st_size, p.stat().st_mtime_ns) for name, found in files.items() for p in found]
    options = _read_options(max_pixels, exif_transpose)
    cache = cache_file(cache_dir, size, [listing, options] if options else listing)
    if cache.exists():
        with np.load(cache) as stored:
            data = LabelledImages(stored["images"], stored["labels"], class_names, source, stored["skipped"].tolist())
    else:
        data = _decode_files(files, size, source, **options)
    _warn_skipped(data.skipped)
    empty = [name for k, name in enumerate(class_names) if not np.any(data.labels == k)]
    if empty:
        raise _layout_error(root, f"class folder {root / empty[0]} has no readable images")
    if not cache.exists():
        save_cache(cache, data)
    return data


def _read_options(max_pixels: int, exif_transpose: bool) -> dict[str, Any]:
    """`read_rgba`'s options that differ from its defaults (they key the cache; the defaults keep old caches)."""
    options: dict[str, Any] = {}
    if max_pixels != MAX_PIXELS:
        options["max_pixels"] = max_pixels
    if exif_transpose:
        options["exif_transpose"] = True
    return options


def list_image_files(root: Path) -> list[Path]:
    """Every file under `root` (searched recursively, hidden ones ignored), sorted; no class layout needed.

    Raises:
        FolderLayoutError: `root` is not a folder, or holds no files.
    """
    if not root.is_dir():
        raise FolderLayoutError(f"{root} is not a folder of images")
    found = sorted(p for p in root.rglob("*") if p.is_file() and not _hidden(p, root))
    if not found:
        raise FolderLayoutError(f"{root} holds no files")
    return found


def decode_unlabelled(
    root: Path,
    source: str,
    *,
    size: int,
    cache_dir: Path,
    max_images: int = 0,
    seed: int = 0,
    max_pixels: int = MAX_PIXELS,
    exif_transpose: bool = False,
) -> LabelledImages:
    """Every image under `root`, any layout, as (n, size, size, 3) uint8 with labels -1 (unlabelled), cached.

    `max_images` keeps at most that many files, a choice seeded by `seed` (0: all). Unreadable files and files
    over `max_pixels` are skipped with a warning, as in `decode_folder`.

    Raises:
        FolderLayoutError: `root` is not a folder, holds no files, or no readable image.
    """
    files = _choose({root.name: list_image_files(root)}, max_images, seed)
    listing = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files[root.name]]
    options = _read_options(max_pixels, exif_transpose)
    cache = cache_file(cache_dir, size, ["unlabelled", listing, options])
    if cache.exists():
        with np.load(cache) as stored:
            data = LabelledImages(stored["images"], stored["labels"], [], source, stored["skipped"].tolist())
    else:
        data = _decode_files(files, size, source, **options)
        data = LabelledImages(data.images, np.full(len(data.images), -1, np.int64), [], source, data.skipped)
    _warn_skipped(data.skipped)
    if not len(data.images):
        raise FolderLayoutError(f"{root} holds no readable image")
    if not cache.exists():
        save_cache(cache, data)
    return data


def _decode_files(files: dict[str, list[Path]], size: int, source: str, **read_options: Any) -> LabelledImages:
    resize = tf.function(lambda rgba: to_model_input(rgba, size), reduce_retracing=True)
    images, labels, skipped = [], [], []
    todo = [(k, path) for k, found in enumerate(files.values()) for path in found]
    for label, path in tqdm(todo, desc="Decoding images (cached for later runs)", unit="img", mininterval=2):
        try:
            rgba = read_rgba(path, **read_options)
        except ValueError as err:
            skipped.append(str(err))
            continue
        images.append(np.round(resize(tf.constant(rgba)).numpy()).astype(np.uint8))
        labels.append(label)
    return LabelledImages(
        np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8),
        np.asarray(labels, np.int64),
        list(files),
        source,
        skipped,
    )
