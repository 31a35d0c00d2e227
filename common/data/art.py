"""Art images for the generative projects (gan, diffusion): emoji art, openclipart-png, a folder, Fashion-MNIST, Monet.

Sources (`data.source`):
- `emoji`: the npm packages emoji-datasource-twitter / -google and openmoji (`make install`), read by
  `common/data/emoji.py`: emoji composited onto white and shrunk to `data.image_size`, labelled with their
  category (Smileys & Emotion, ..., Flags). `data.vendors` picks whose art: Twemoji (CC-BY 4.0) by default,
  Noto (Apache 2.0), OpenMoji (CC BY-SA 4.0).
  Held-out emoji are whole emoji: every vendor's and skin tone's picture of one lands on the same side.
- `openclipart`: Debian `openclipart-png` (`make project=gan install`), every PNG below
  /usr/share/openclipart/png/<category>/, read by `common/data/image_folders.py`: transparency composited onto
  white, padded to a square, resized. Unreadable files are skipped, counted and reported. Label: the category.
- `folder`: any `data.dir`/<class>/<image> folder, read the same way.
- `fashion_mnist`: Debian `dataset-fashion-mnist`, 70,000 28x28 grey images, resized and repeated over RGB.
- `monet`: tfds `cycle_gan/monet2photo`, split trainA (1,072 of Monet's paintings), with `data.online=true`.

Decoded images are cached as .npz under `data.cache_dir`, so a second run starts in seconds.
Examples are (image (size, size, 3) uint8, label int32), size = `data.image_size`.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tensorflow as tf

from common.art_config import ArtDataConfig
from common.config import ConfigError
from common.data.emoji import (
    DATASOURCE_VENDORS,
    VENDORS,
    EmojiError,
    check_categories,
    load_emoji,
    split_by_name,
    subcategory_names,
    vendor_label,
)
from common.data.image_folders import OPENCLIPART, FolderLayoutError, decode_folder, list_class_files
from common.data.splits import DataSplits, seeded_split
from common.data.tfds_source import load_tfds
from common.paths import DEFAULT_ARTIFACTS

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
MONET = "cycle_gan/monet2photo"
DECODE_SIZE = 64  # folders and Monet are decoded (and cached) at this side, then resized to data.image_size


@dataclass
class SourceImages:
    """One source's decoded images before splitting; `groups` keeps related images on one side of a split."""

    images: np.ndarray  # (n, h, w, 1 or 3) uint8
    labels: np.ndarray  # (n,) int64
    class_names: list[str]
    source: str
    skipped: int = 0
    groups: np.ndarray | None = None  # (n,) str, e.g. the emoji's short name; None: images split one by one


def cache_dir(cfg: ArtDataConfig) -> Path:
    """Where decoded images and the feature network are kept: one place for every project on the same art, so that
    their FIDs are measured by the same network."""
    return Path(cfg.cache_dir) if cfg.cache_dir else DEFAULT_ARTIFACTS / "gan" / "cache"


def read_idx(path: Path) -> np.ndarray:
    """A gzip'd IDX file (the MNIST family's format) as a uint8 array: (n,) labels or (n, rows, cols) images."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = raw[0] * 256 + raw[1], raw[2], raw[3]
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist() -> SourceImages:
    """The 70,000 Fashion-MNIST images, (n, 28, 28, 1) uint8 (white garment on black), and their labels."""
    if not FASHION_MNIST.is_dir():
        raise ConfigError(
            f"Fashion-MNIST not found in {FASHION_MNIST}: install the Debian package with "
            "`make project=gan install` (dataset-fashion-mnist)"
        )
    images = [read_idx(FASHION_MNIST / f"{part}-images-idx3-ubyte.gz") for part in ("train", "t10k")]
    labels = [read_idx(FASHION_MNIST / f"{part}-labels-idx1-ubyte.gz") for part in ("train", "t10k")]
    return SourceImages(
        np.concatenate(images)[..., None],
        np.concatenate(labels).astype(np.int64),
        FASHION_CLASSES,
        "debian:dataset-fashion-mnist",
    )


def load_folder(root: Path, source: str, cfg: ArtDataConfig) -> SourceImages:
    """A DIR/<class>/<image> folder (openclipart-png is one) at 64x64, decoded once and cached."""
    try:
        data = decode_folder(root, source, size=DECODE_SIZE, cache_dir=cache_dir(cfg), classes=cfg.categories)
    except FolderLayoutError as err:
        raise ConfigError(f"{err}; expected {root}/<class>/<image>, set data.dir") from None
    return SourceImages(data.images, data.labels, data.class_names, data.source, len(data.skipped))


def load_monet(cfg: ArtDataConfig) -> SourceImages:
    """Monet's paintings (tfds trainA) at 64x64, cached; needs `data.online=true` the first time."""
    cache = cache_dir(cfg) / f"monet-{DECODE_SIZE}px.npz"
    if cache.exists():
        with np.load(cache) as stored:
            return SourceImages(stored["images"], stored["labels"], ["monet"], f"tfds:{MONET}")
    ds = load_tfds(MONET, "trainA", cfg.online, as_supervised=True)
    if ds is None:
        raise ConfigError(
            f"tfds {MONET} is not prepared in ~/tensorflow_datasets: allow the download with --set data.online=true"
        )
    size = (DECODE_SIZE, DECODE_SIZE)
    ds = ds.map(lambda x, _: tf.cast(tf.round(tf.image.resize(x, size, antialias=True)), tf.uint8))
    images = np.stack(list(ds.as_numpy_iterator()))
    data = SourceImages(images, np.zeros(len(images), np.int64), ["monet"], f"tfds:{MONET}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.stem}.tmp-{os.getpid()}.npz")
    np.savez(tmp, images=data.images, labels=data.labels)
    os.replace(tmp, cache)
    return data


def load_emoji_source(
    cfg: ArtDataConfig, vendors: tuple[str, ...], skin_tones: bool, labels: str = "category"
) -> SourceImages:
    """Emoji of `vendors` at `data.image_size`, grouped by short name (see common/data/emoji.py), labelled by
    category, by subcategory or by subcategory and vendor (`labels`)."""
    try:
        data = load_emoji(vendors, cfg.image_size, cfg.categories, skin_tones, cache_dir(cfg))
        if labels == "category":
            return SourceImages(data.images, data.labels, data.class_names, data.source, groups=data.names)
        by_vendor = labels == "subcategory_vendor"
        names = subcategory_names(cfg.categories, vendors, skin_tones, by_vendor=by_vendor)
    except EmojiError as err:
        raise ConfigError(f"{err} (data.vendors, data.categories)") from None
    index = {name: k for k, name in enumerate(names)}
    keys = map(vendor_label, data.subcategories, data.vendors) if by_vendor else data.subcategories
    ids = np.asarray([index[key] for key in keys], np.int64)
    return SourceImages(data.images, ids, names, data.source, groups=data.names)


def load_images(cfg: ArtDataConfig) -> SourceImages:
    """All images of `cfg.source`, at most `cfg.max_images` (a seeded choice).

    Raises:
        ConfigError: the source is not installed, a folder is empty or unreadable, a category does not exist.
    """
    if cfg.source == "emoji":
        data = load_emoji_source(cfg, cfg.vendors, cfg.skin_tones, cfg.labels)
    elif cfg.source == "fashion_mnist":
        data = load_fashion_mnist()
    elif cfg.source == "monet":
        data = load_monet(cfg)
    elif cfg.source == "folder":
        if not cfg.dir:
            raise ConfigError("data.source=folder needs data.dir: --set data.dir=path/to/images (DIR/<class>/<image>)")
        data = load_folder(Path(cfg.dir), f"dir:{cfg.dir}", cfg)
    else:
        if not OPENCLIPART.is_dir():
            raise ConfigError(
                f"openclipart-png not found in {OPENCLIPART}: install it with `make project=gan install`, "
                "or choose --set data.source=emoji"
            )
        data = load_folder(OPENCLIPART, "debian:openclipart-png", cfg)
    if cfg.max_images and cfg.max_images < len(data.labels):
        keep = np.sort(np.random.default_rng(cfg.split_seed).permutation(len(data.labels))[: cfg.max_images])
        groups = None if data.groups is None else data.groups[keep]
        data = replace(data, images=data.images[keep], labels=data.labels[keep], groups=groups)
    return data


def class_names(cfg: ArtDataConfig) -> list[str]:
    """The class names `load_splits(cfg)` gives, in label order, found without decoding any image ([] if unknown)."""
    if cfg.source == "fashion_mnist":
        return list(FASHION_CLASSES)
    if cfg.source == "monet":
        return ["monet"]
    try:
        if cfg.source == "emoji" and cfg.labels != "category":
            return subcategory_names(
                cfg.categories, cfg.vendors, cfg.skin_tones, by_vendor=cfg.labels == "subcategory_vendor"
            )
        if cfg.source == "emoji":
            return check_categories(cfg.categories, cfg.vendors[0] if cfg.vendors else VENDORS[0])
        root = Path(cfg.dir) if cfg.source == "folder" else OPENCLIPART
        return list(list_class_files(root, cfg.categories))
    except (EmojiError, FolderLayoutError):
        return []


def resize_rgb(image: tf.Tensor, size: int) -> tf.Tensor:
    """(h, w, 1 or 3) uint8 -> (size, size, 3) uint8: resized (bilinear, antialiased) when needed, grey repeated."""
    if image.shape[0] != size or image.shape[1] != size:
        resized = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return tf.tile(image, [1, 1, 3]) if image.shape[-1] == 1 else image


def split(data: SourceImages, cfg: ArtDataConfig) -> DataSplits:
    """Seeded train/val/test splits (by group when the source has groups): (image uint8, label int32) pairs."""
    if data.groups is not None:
        train, val, test = split_by_name(data.groups, cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    else:
        train, val, test = seeded_split(len(data.labels), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    order = {name: np.sort(ids) for name, ids in (("train", train), ("val", val), ("test", test))}
    empty = [name for name, ids in order.items() if name != "val" and not len(ids)]
    if empty:
        raise ConfigError(
            f"{data.source}: {len(data.labels)} images leave the {' and '.join(empty)} split empty: "
            "use more images (data.max_images, data.categories) or change data.test_fraction"
        )

    def dataset(ids: np.ndarray) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((data.images[ids], data.labels[ids].astype(np.int32)))
        return ds.map(lambda x, y: (resize_rgb(x, cfg.image_size), y), num_parallel_calls=tf.data.AUTOTUNE)

    return DataSplits(
        **{name: dataset(ids) for name, ids in order.items()},
        source=data.source,
        sizes={name: len(ids) for name, ids in order.items()},
        class_names=data.class_names,
        skipped=data.skipped,
    )


def load_splits(cfg: ArtDataConfig) -> DataSplits:
    """Train/val/test splits of `cfg.source` (see the module docstring)."""
    return split(load_images(cfg), cfg)


def feature_splits(cfg: ArtDataConfig) -> DataSplits:
    """What the FID feature network learns from: for emoji, every vendor's art with its skin tones, split by the
    same emoji as the generative model's data (so its test split holds only emoji it never saw); otherwise that data.
    Emoji: Twemoji's and Noto's (`DATASOURCE_VENDORS`), whichever vendors the model learns, so that one instrument
    scores every model."""
    if cfg.source != "emoji":
        return load_splits(cfg)
    return split(load_emoji_source(cfg, DATASOURCE_VENDORS, skin_tones=True), cfg)
