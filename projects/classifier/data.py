"""The classifier's data: your folder of images, tf_flowers from tensorflow-datasets, or openclipart-png offline.

Sources, in order:
1. `data.dir=PATH`: one sub-folder per class, `PATH/<class>/<image>`; images may sit in
   deeper sub-folders. Class names are the folder names, sorted.
2. tfds `tf_flowers` (3,670 photos, 5 classes) when it is prepared on disk or `data.online=true`.
3. Debian `openclipart-png` (`make install` installs it): six category folders of clip art.

Every image is decoded once (PIL; any size and mode, turned upright by its EXIF
orientation, transparency composited onto white), padded to a square, resized to
`data.image_size` and cached as uint8 under `data.cache_dir`; folders are read by
`common/data/image_folders.py`, which the GAN shares. A file that is not a readable
image, or has more than `data.max_pixels` pixels (a decompression bomb), is skipped
with a warning and counted in the report. A class with fewer than
`data.min_per_class` readable images stops the run before training, naming it.
Each class is split on its own (seeded), so train, val and test keep the class
proportions; `data.label_fraction` keeps a seeded share of each class's training
labels (for label-efficiency runs). Examples are (image, label) with image
(size, size, 3) uint8 RGB and label int64.

`pretrain_pool` is the unlabelled pool of SimCLR: every image of the source
outside the test split (openclipart-png: all its categories, not only the six
labelled ones), plus `pretrain.extra_dir` and, with `pretrain.emoji`, the emoji
art of the npm packages. `supervised_pool` is the labelled pool of
`pretrain.method=supervised`: pictures of other classes than the classifier's
(the emoji packages' subcategories, the openclipart categories it does not use),
the offline stand-in for ImageNet. An image equal to a test image is left out of
either pool wherever it comes from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from common.config import ConfigError
from common.data.emoji import DATASOURCE_VENDORS, load_emoji
from common.data.image_folders import (
    OPENCLIPART,
    LabelledImages,
    cache_file,
    decode_folder,
    decode_unlabelled,
    list_class_files,
    save_cache,
    to_model_input,
)
from common.data.splits import DataSplits, seeded_split
from common.data.tfds_source import load_tfds, tfds_data_dir, tfds_prepared
from common.paths import DEFAULT_ARTIFACTS

from .config import ClassifierConfig, DataConfig, PretrainConfig
from .images import decoded_to_rgba

OPENCLIPART_CLASSES = ("animals", "food", "people", "recreation", "signs_and_symbols", "transportation")
TFDS_NAME = "tf_flowers"


def cache_dir(cfg: DataConfig) -> Path:
    """Where decoded images are cached: `data.cache_dir`, or artifacts/classifier/cache."""
    return Path(cfg.cache_dir) if cfg.cache_dir else DEFAULT_ARTIFACTS / "classifier" / "cache"


def decode(root: Path, cfg: DataConfig, source: str, classes: Sequence[str]) -> LabelledImages:
    """The class folders of `root` at `data.image_size`, at most `data.max_per_class` each (see image_folders.py)."""
    return decode_folder(
        root,
        source,
        size=cfg.image_size,
        cache_dir=cache_dir(cfg),
        classes=classes,
        max_per_class=cfg.max_per_class,
        seed=cfg.split_seed,
        max_pixels=cfg.max_pixels,
        exif_transpose=True,
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
    cache = cache_file(cache_dir(cfg), cfg.image_size, [TFDS_NAME, str(info.version)])
    if cache.exists():
        with np.load(cache) as stored:
            return LabelledImages(stored["images"], stored["labels"], class_names, f"tfds:{TFDS_NAME}", [])
    size = cfg.image_size
    ds = ds.map(lambda x, y: (tf.cast(tf.round(to_model_input(decoded_to_rgba(x), size)), tf.uint8), y))
    images, labels = zip(*tqdm(ds.as_numpy_iterator(), desc=f"Resizing {TFDS_NAME}", unit="img"), strict=True)
    data = LabelledImages(np.stack(images), np.asarray(labels, np.int64), class_names, f"tfds:{TFDS_NAME}", [])
    save_cache(cache, data)
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
        return decode(root, cfg, f"dir:{root}", cfg.classes)
    flowers = load_tf_flowers(cfg)
    if flowers is not None:
        return _subset(flowers, cfg)
    if not OPENCLIPART.is_dir():
        raise FileNotFoundError(_no_data_message())
    return decode(OPENCLIPART, cfg, "debian:openclipart-png", cfg.classes or OPENCLIPART_CLASSES)


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


def check_class_sizes(data: LabelledImages, cfg: DataConfig) -> None:
    """Stop before training when a class has fewer than `data.min_per_class` readable images.

    Raises:
        ConfigError: naming each such class, its count, and the ways out.
    """
    counts = np.bincount(data.labels, minlength=len(data.class_names))
    small = [f"{name} ({n})" for name, n in zip(data.class_names, counts, strict=True) if n < cfg.min_per_class]
    if small:
        keep = ",".join(name for name, n in zip(data.class_names, counts, strict=True) if n >= cfg.min_per_class)
        raise ConfigError(
            f"too few images in {len(small)} class(es) of {data.source}: {', '.join(small)}; each needs at least "
            f"data.min_per_class={cfg.min_per_class} readable images to be trained, validated and tested. "
            f"Add images, leave the class out with --set data.classes={keep}, or lower data.min_per_class"
        )


def split_ids(data: LabelledImages, cfg: DataConfig) -> dict[str, np.ndarray]:
    """Indices into `data` of the train, val and test splits, each sorted; seeded per class.

    `data.label_fraction` < 1 keeps that share of each class's training images (at least one), a seeded choice:
    val and test stay whole, so runs with fewer labels are scored on the same images.
    """
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for k in range(len(data.class_names)):
        (ids,) = np.nonzero(data.labels == k)
        train, val, test = seeded_split(len(ids), cfg.val_fraction, cfg.test_fraction, cfg.split_seed + k)
        if cfg.label_fraction < 1:
            rng = np.random.default_rng(cfg.split_seed + 1000 + k)
            train = rng.permutation(train)[: max(1, round(len(train) * cfg.label_fraction))]
        for name, chosen in zip(parts, (train, val, test), strict=True):
            parts[name].append(ids[chosen])
    return {name: np.sort(np.concatenate(chosen)) for name, chosen in parts.items()}


def split(data: LabelledImages, cfg: DataConfig) -> DataSplits:
    """Seeded train/val/test splits of each class, joined into unbatched (image, label) datasets.

    Raises:
        ConfigError: a class with fewer than `data.min_per_class` images (see `check_class_sizes`).
    """
    check_class_sizes(data, cfg)
    order = split_ids(data, cfg)
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


def _digests(images: np.ndarray) -> list[bytes]:
    return [hashlib.sha1(image.tobytes()).digest() for image in images]


def _with_test_split(cfg: DataConfig) -> tuple[LabelledImages, np.ndarray, set[bytes]]:
    """The classifier's labelled images, the indices of its test split and the digests of those test images."""
    labelled = load_images(cfg)
    test_ids = split_ids(labelled, cfg)["test"] if len(labelled.class_names) else np.zeros(0, np.int64)
    return labelled, test_ids, set(_digests(labelled.images[test_ids]))


def _openclipart(cfg: ClassifierConfig, leave_out: Sequence[str] = ()) -> LabelledImages:
    """Every openclipart-png category but `leave_out`, decoded at `data.image_size` (cached); with
    `pretrain.max_images`, at most that many images shared out over the categories (a seeded choice)."""
    data_cfg, pcfg = cfg.data, cfg.pretrain
    categories = sorted(
        p.name for p in OPENCLIPART.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in leave_out
    )
    return decode_folder(
        OPENCLIPART,
        "debian:openclipart-png",
        size=data_cfg.image_size,
        cache_dir=cache_dir(data_cfg),
        classes=categories,
        max_per_class=-(-pcfg.max_images // len(categories)) if pcfg.max_images else 0,
        seed=pcfg.seed,
        max_pixels=data_cfg.max_pixels,
        exif_transpose=True,
    )


def _new_rows(images: np.ndarray, seen: set[bytes]) -> np.ndarray:
    """Indices of the rows of `images` not already in `seen` (the first of equal rows), their digests added to it."""
    rows = []
    for row, digest in enumerate(_digests(images)):
        if digest not in seen:
            seen.add(digest)
            rows.append(row)
    return np.asarray(rows, np.int64)


def _capped(n: int, pcfg: PretrainConfig) -> np.ndarray:
    """Sorted indices of at most `pretrain.max_images` of `n` rows, a seeded choice (all of them without a cap)."""
    if not pcfg.max_images or n <= pcfg.max_images:
        return np.arange(n)
    return np.sort(np.random.default_rng(pcfg.seed).permutation(n)[: pcfg.max_images])


def pretrain_pool(cfg: ClassifierConfig) -> tuple[np.ndarray, dict]:
    """The unlabelled images `pretrain` learns from: (n, size, size, 3) uint8, and a description for pretrain.json.

    Every image of the labelled source outside its test split; with openclipart-png as the source, every one of its
    categories (labelled or not); plus every image under `pretrain.extra_dir`; plus, with `pretrain.emoji`, the
    emoji art of the npm packages (common/data/emoji.py, on white). Images equal to a test image are
    left out, and duplicates kept once. `pretrain.max_images` caps the pool (a seeded choice).
    """
    data_cfg, pcfg = cfg.data, cfg.pretrain
    labelled, test_ids, test = _with_test_split(data_cfg)
    parts = [("labelled, outside the test split", np.delete(labelled.images, test_ids, axis=0))]
    if labelled.source == "debian:openclipart-png":
        everything = _openclipart(cfg)
        parts.append((f"openclipart-png, all {len(everything.class_names)} categories", everything.images))
    if pcfg.extra_dir:
        root = Path(pcfg.extra_dir).expanduser()
        extra = decode_unlabelled(
            root,
            f"dir:{root}",
            size=data_cfg.image_size,
            cache_dir=cache_dir(data_cfg),
            max_images=pcfg.max_images,
            seed=pcfg.seed,
            max_pixels=data_cfg.max_pixels,
            exif_transpose=True,
        )
        parts.append((f"pretrain.extra_dir {root}", extra.images))
    if pcfg.emoji:
        emoji = load_emoji(DATASOURCE_VENDORS, size=data_cfg.image_size, skin_tones=True, cache_dir=cache_dir(data_cfg))
        parts.append((emoji.source, emoji.images))
    pool = np.concatenate([images[_new_rows(images, test)] for _, images in parts])
    pool = pool[_capped(len(pool), pcfg)]
    about = {
        "images": len(pool),
        "sources": {name: len(images) for name, images in parts},
        "left_out_test_images": len(test_ids),
    }
    return pool, about


def supervised_pool(cfg: ClassifierConfig) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """The labelled pictures `pretrain.method=supervised` learns from, none of the classifier's own classes.

    Every emoji picture of both npm vendors (skin tones included, on white) labelled by its subcategory
    ("Animals & Nature: animal-mammal", ...), and every openclipart-png category the classifier does not use (all of
    them when it reads another source) labelled by its folder: (n, size, size, 3) uint8 images, (n,) int64 labels,
    the class names, and a description for pretrain.json. Images equal to a test image are left out, duplicates
    kept once (the first label); `pretrain.max_images` caps the pool (a seeded choice).
    """
    data_cfg = cfg.data
    labelled, test_ids, test = _with_test_split(data_cfg)
    emoji = load_emoji(DATASOURCE_VENDORS, size=data_cfg.image_size, skin_tones=True, cache_dir=cache_dir(data_cfg))
    subcategories = sorted(set(emoji.subcategories.tolist()))
    parts = [(emoji.source, emoji.images, np.searchsorted(subcategories, emoji.subcategories), subcategories)]
    if OPENCLIPART.is_dir():
        clipart = _openclipart(cfg, labelled.class_names if labelled.source == "debian:openclipart-png" else ())
        names = [f"openclipart: {name}" for name in clipart.class_names]
        parts.append((f"openclipart-png, {len(names)} categories", clipart.images, clipart.labels, names))
    images, labels, class_names = [], [], []
    for _, part_images, part_labels, names in parts:
        rows = _new_rows(part_images, test)
        images.append(part_images[rows])
        labels.append(part_labels[rows] + len(class_names))
        class_names += names
    keep = _capped(sum(map(len, images)), cfg.pretrain)
    about = {
        "images": len(keep),
        "classes": len(class_names),
        "sources": {name: len(part_images) for name, part_images, _, _ in parts},
        "left_out_test_images": len(test_ids),
    }
    return np.concatenate(images)[keep], np.concatenate(labels).astype(np.int64)[keep], class_names, about
