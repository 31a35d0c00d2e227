"""The classifier's data: your folder of images, tf_flowers from tensorflow-datasets, or openclipart-png offline.

Sources, in order:
1. `data.dir=PATH`: one sub-folder per class, `PATH/<class>/<image>`; images may sit in
   deeper sub-folders. Class names are the folder names, sorted.
2. tfds `tf_flowers` (3,670 photos, 5 classes) when it is prepared on disk or `data.online=true`.
3. Debian `openclipart-png` (`make install` installs it): six category folders of clip art.

Every image is decoded once (PIL; any size and mode, transparency composited onto
white), padded to a square, resized to `data.image_size` and cached as uint8 under
`data.cache_dir`. A file that is not a readable image is skipped with a warning and
counted in the report. Each class is split on its own (seeded), so train, val and test
keep the class proportions. Examples are (image, label) with image (size, size, 3)
uint8 RGB and label int64.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from common.data.splits import DataSplits, seeded_split
from common.data.tfds_source import load_tfds, tfds_data_dir, tfds_prepared
from common.paths import DEFAULT_ARTIFACTS

from .config import DataConfig
from .images import decoded_to_rgba, read_rgba, to_model_input

OPENCLIPART = Path("/usr/share/openclipart/png")
OPENCLIPART_CLASSES = ("animals", "food", "people", "recreation", "signs_and_symbols", "transportation")
TFDS_NAME = "tf_flowers"
CACHE_VERSION = 1  # bump when the preprocessing changes, so old caches are not reused


class FolderLayoutError(ValueError):
    """An image folder that is not laid out as DIR/<class>/<image> with at least two non-empty classes."""


@dataclass
class LabelledImages:
    """Decoded images with their labels, before splitting."""

    images: np.ndarray  # (n, size, size, 3) uint8 RGB
    labels: np.ndarray  # (n,) int64 class ids
    class_names: list[str]
    source: str
    skipped: list[str]  # one "path: reason" per file that could not be read


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


def _cache_path(cfg: DataConfig, key: object) -> Path:
    digest = hashlib.sha1(json.dumps([CACHE_VERSION, cfg.image_size, key]).encode()).hexdigest()[:16]
    root = Path(cfg.cache_dir) if cfg.cache_dir else DEFAULT_ARTIFACTS / "classifier" / "cache"
    return root / f"{cfg.image_size}px-{digest}.npz"


def _save_cache(path: Path, data: LabelledImages) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
    np.savez(tmp, images=data.images, labels=data.labels, skipped=np.asarray(data.skipped, dtype=str))
    os.replace(tmp, path)


def warn_skipped(skipped: Sequence[str]) -> None:
    """One warning line per file that could not be read."""
    for line in skipped:
        print(f"warning: skipped {line}", file=sys.stderr)


def decode_folder(root: Path, cfg: DataConfig, source: str, classes: Sequence[str] = ()) -> LabelledImages:
    """Decode the class folders of `root` (cached); unreadable files are skipped with a warning.

    Raises:
        FolderLayoutError: a bad layout (see `list_class_files`), or a class without one readable image.
    """
    files = _choose(list_class_files(root, classes), cfg.max_per_class, cfg.split_seed)
    class_names = list(files)
    listing = [(name, str(p), p.stat().st_size, p.stat().st_mtime_ns) for name, found in files.items() for p in found]
    cache = _cache_path(cfg, listing)
    if cache.exists():
        with np.load(cache) as stored:
            data = LabelledImages(stored["images"], stored["labels"], class_names, source, stored["skipped"].tolist())
    else:
        data = _decode_files(files, cfg.image_size, source)
    warn_skipped(data.skipped)
    empty = [name for k, name in enumerate(class_names) if not np.any(data.labels == k)]
    if empty:
        raise _layout_error(root, f"class folder {root / empty[0]} has no readable images")
    if not cache.exists():
        _save_cache(cache, data)
    return data


def _decode_files(files: dict[str, list[Path]], size: int, source: str) -> LabelledImages:
    resize = tf.function(lambda rgba: to_model_input(rgba, size), reduce_retracing=True)
    images, labels, skipped = [], [], []
    todo = [(k, path) for k, found in enumerate(files.values()) for path in found]
    for label, path in tqdm(todo, desc="Decoding images (cached for later runs)", unit="img", mininterval=2):
        try:
            rgba = read_rgba(path)
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


def load_tf_flowers(cfg: DataConfig) -> LabelledImages | None:
    """tfds `tf_flowers` resized like every other source (cached), or None if not on disk and not `cfg.online`."""
    if not (cfg.online or tfds_prepared(TFDS_NAME)):
        return None
    loaded = load_tfds(TFDS_NAME, "train", cfg.online, as_supervised=True, with_info=True)
    if loaded is None:
        return None
    ds, info = loaded
    class_names = list(info.features["label"].names)
    cache = _cache_path(cfg, [TFDS_NAME, str(info.version)])
    if cache.exists():
        with np.load(cache) as stored:
            return LabelledImages(stored["images"], stored["labels"], class_names, f"tfds:{TFDS_NAME}", [])
    size = cfg.image_size
    ds = ds.map(lambda x, y: (tf.cast(tf.round(to_model_input(decoded_to_rgba(x), size)), tf.uint8), y))
    images, labels = zip(*tqdm(ds.as_numpy_iterator(), desc=f"Resizing {TFDS_NAME}", unit="img"), strict=True)
    data = LabelledImages(np.stack(images), np.asarray(labels, np.int64), class_names, f"tfds:{TFDS_NAME}", [])
    _save_cache(cache, data)
    return data


def _no_data_message() -> str:
    return (
        "no image data found: pass your own folder with --set data.dir=PATH (laid out as PATH/<class>/<image>), "
        f"install the offline default with `make project=classifier install` (Debian package openclipart-png, "
        f"into {OPENCLIPART}), or download tf_flowers with --set data.online=true"
    )


def load_images(cfg: DataConfig) -> LabelledImages:
    """All labelled images of the source chosen by `cfg` (see the module docstring for the order)."""
    if cfg.dir:
        root = Path(cfg.dir).expanduser()
        return decode_folder(root, cfg, f"dir:{root}", cfg.classes)
    flowers = load_tf_flowers(cfg)
    if flowers is not None:
        return _subset(flowers, cfg)
    if not OPENCLIPART.is_dir():
        raise FileNotFoundError(_no_data_message())
    return decode_folder(OPENCLIPART, cfg, "debian:openclipart-png", cfg.classes or OPENCLIPART_CLASSES)


def _subset(data: LabelledImages, cfg: DataConfig) -> LabelledImages:
    """`cfg.classes` and `cfg.max_per_class` applied to an already decoded source (class order kept)."""
    unknown = sorted(set(cfg.classes) - set(data.class_names))
    if unknown:
        raise ValueError(f"data.classes: {', '.join(unknown)} not in {data.source} ({', '.join(data.class_names)})")
    keep_classes = [name for name in data.class_names if not cfg.classes or name in cfg.classes]
    rng = np.random.default_rng(cfg.split_seed)
    keep, labels = [], []
    for new_id, name in enumerate(keep_classes):
        (ids,) = np.nonzero(data.labels == data.class_names.index(name))
        keep.append(np.sort(rng.permutation(ids)[: cfg.max_per_class or None]))
        labels.append(np.full(len(keep[-1]), new_id, np.int64))
    order = np.concatenate(keep)
    return LabelledImages(data.images[order], np.concatenate(labels), keep_classes, data.source, data.skipped)


def split(data: LabelledImages, cfg: DataConfig) -> DataSplits:
    """Seeded train/val/test splits of each class, joined into unbatched (image, label) datasets."""
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for k in range(len(data.class_names)):
        (ids,) = np.nonzero(data.labels == k)
        train, val, test = seeded_split(len(ids), cfg.val_fraction, cfg.test_fraction, cfg.split_seed + k)
        for name, chosen in zip(parts, (train, val, test), strict=True):
            parts[name].append(ids[chosen])
    order = {name: np.sort(np.concatenate(chosen)) for name, chosen in parts.items()}
    datasets = {
        name: tf.data.Dataset.from_tensor_slices((data.images[ids], data.labels[ids])) for name, ids in order.items()
    }
    return DataSplits(
        **datasets,
        source=data.source,
        sizes={name: len(ids) for name, ids in order.items()},
        class_names=data.class_names,
        skipped=len(data.skipped),
    )


def load_splits(cfg: DataConfig) -> DataSplits:
    """Train/val/test splits of the source chosen by `cfg`."""
    return split(load_images(cfg), cfg)


def class_names(cfg: DataConfig) -> list[str]:
    """The class names `load_splits(cfg)` gives, in label order, found without decoding any image."""
    if cfg.dir:
        return list(list_class_files(Path(cfg.dir).expanduser(), cfg.classes))
    if cfg.online or tfds_prepared(TFDS_NAME):
        import tensorflow_datasets as tfds

        names = tfds.builder(TFDS_NAME, data_dir=str(tfds_data_dir())).info.features["label"].names
        return [name for name in names if not cfg.classes or name in cfg.classes]
    return list(list_class_files(OPENCLIPART, cfg.classes or OPENCLIPART_CLASSES))
