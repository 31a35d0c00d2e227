"""The GAN's images: openclipart-png clip art (default), Fashion-MNIST, or Monet's paintings from tfds.

Sources (`data.source`):
- `openclipart`: Debian `openclipart-png` (`make project=gan install`), every PNG below
  /usr/share/openclipart/png/<category>/, read by `common/data/image_folders.py` (as the classifier reads
  its folders): transparency composited onto white, padded to a square with white, resized to 64x64. Files
  that cannot be read (two decompression bombs among them) are skipped, counted and reported. Label: the
  category.
- `fashion_mnist`: Debian `dataset-fashion-mnist`, the 70,000 28x28 grey images of its IDX files, scaled to
  64x64 and repeated over RGB. Label: one of 10 classes.
- `monet`: tfds `cycle_gan/monet2photo`, split trainA (1,072 of Monet's paintings), with `data.online=true`
  (downloaded once, about 300 MB) or when already prepared in ~/tensorflow_datasets. One class.

Decoded images are cached as .npz under `data.cache_dir`, so a second run starts in seconds.
Examples are (image (64, 64, 3) uint8 RGB, label int32).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from common.data.image_folders import OPENCLIPART, LabelledImages, decode_folder, list_class_files
from common.data.splits import DataSplits, seeded_split
from common.data.tfds_source import load_tfds
from common.paths import DEFAULT_ARTIFACTS

from .config import DataConfig
from .model import IMAGE_SIZE

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
MONET = "cycle_gan/monet2photo"


def cache_dir(cfg: DataConfig) -> Path:
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


def load_fashion_mnist() -> LabelledImages:
    """The 70,000 Fashion-MNIST images, (n, 28, 28, 1) uint8 (white garment on black), and their labels."""
    if not FASHION_MNIST.is_dir():
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {FASHION_MNIST}: install the Debian package with "
            "`make project=gan install` (dataset-fashion-mnist)"
        )
    images = [read_idx(FASHION_MNIST / f"{part}-images-idx3-ubyte.gz") for part in ("train", "t10k")]
    labels = [read_idx(FASHION_MNIST / f"{part}-labels-idx1-ubyte.gz") for part in ("train", "t10k")]
    return LabelledImages(
        np.concatenate(images)[..., None],
        np.concatenate(labels).astype(np.int64),
        FASHION_CLASSES,
        "debian:dataset-fashion-mnist",
        [],
    )


def load_openclipart(cfg: DataConfig) -> LabelledImages:
    """Every openclipart-png image (or those of `cfg.categories`) at 64x64, decoded once and cached."""
    if not OPENCLIPART.is_dir():
        raise FileNotFoundError(
            f"openclipart-png not found in {OPENCLIPART}: install it with `make project=gan install`, "
            "or choose --set data.source=fashion_mnist"
        )
    return decode_folder(
        OPENCLIPART, "debian:openclipart-png", size=IMAGE_SIZE, cache_dir=cache_dir(cfg), classes=cfg.categories
    )


def load_monet(cfg: DataConfig) -> LabelledImages:
    """Monet's paintings (tfds trainA) resized to 64x64, cached; needs `data.online=true` the first time."""
    cache = cache_dir(cfg) / "monet-64px.npz"
    if cache.exists():
        with np.load(cache) as stored:
            return LabelledImages(stored["images"], stored["labels"], ["monet"], f"tfds:{MONET}", [])
    ds = load_tfds(MONET, "trainA", cfg.online, as_supervised=True)
    if ds is None:
        raise FileNotFoundError(
            f"tfds {MONET} is not prepared in ~/tensorflow_datasets: allow the download with --set data.online=true"
        )
    ds = ds.map(lambda x, _: tf.cast(tf.round(tf.image.resize(x, (IMAGE_SIZE, IMAGE_SIZE), antialias=True)), tf.uint8))
    images = np.stack(list(ds.as_numpy_iterator()))
    data = LabelledImages(images, np.zeros(len(images), np.int64), ["monet"], f"tfds:{MONET}", [])
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.stem}.tmp-{os.getpid()}.npz")
    np.savez(tmp, images=data.images, labels=data.labels)
    os.replace(tmp, cache)
    return data


def load_images(cfg: DataConfig) -> LabelledImages:
    """All images of `cfg.source`, at most `cfg.max_images` (a seeded choice)."""
    if cfg.source == "fashion_mnist":
        data = load_fashion_mnist()
    elif cfg.source == "monet":
        data = load_monet(cfg)
    else:
        data = load_openclipart(cfg)
    if cfg.max_images and cfg.max_images < len(data.labels):
        keep = np.sort(np.random.default_rng(cfg.split_seed).permutation(len(data.labels))[: cfg.max_images])
        data = LabelledImages(data.images[keep], data.labels[keep], data.class_names, data.source, data.skipped)
    return data


def class_names(cfg: DataConfig) -> list[str]:
    """The class names `load_splits(cfg)` gives, in label order, found without decoding any image."""
    if cfg.source == "fashion_mnist":
        return list(FASHION_CLASSES)
    if cfg.source == "monet":
        return ["monet"]
    return list(list_class_files(OPENCLIPART, cfg.categories)) if OPENCLIPART.is_dir() else []


def to_rgb64(image: tf.Tensor) -> tf.Tensor:
    """(h, w, 1 or 3) uint8 -> (64, 64, 3) uint8: resized (bilinear, antialiased) when needed, grey repeated."""
    if image.shape[0] != IMAGE_SIZE or image.shape[1] != IMAGE_SIZE:
        resized = tf.image.resize(tf.cast(image, tf.float32), (IMAGE_SIZE, IMAGE_SIZE), antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return tf.tile(image, [1, 1, 3]) if image.shape[-1] == 1 else image


def split(data: LabelledImages, cfg: DataConfig) -> DataSplits:
    """Seeded train/val/test splits: unbatched datasets of (image (64, 64, 3) uint8, label int32)."""
    train, val, test = seeded_split(len(data.labels), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    order = {name: np.sort(ids) for name, ids in (("train", train), ("val", val), ("test", test))}

    def dataset(ids: np.ndarray) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((data.images[ids], data.labels[ids].astype(np.int32)))
        return ds.map(lambda x, y: (to_rgb64(x), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return DataSplits(
        **{name: dataset(ids) for name, ids in order.items()},
        source=data.source,
        sizes={name: len(ids) for name, ids in order.items()},
        class_names=data.class_names,
        skipped=len(data.skipped),
    )


def load_splits(cfg: DataConfig) -> DataSplits:
    """Train/val/test splits of `cfg.source` (see the module docstring)."""
    return split(load_images(cfg), cfg)


def data_key(cfg: DataConfig) -> str:
    """A short digest of what decides the images and splits: the feature classifier is reused while it holds."""
    fields = {k: getattr(cfg, k) for k in ("source", "categories", "max_images", "val_fraction", "test_fraction")}
    fields["split_seed"] = cfg.split_seed
    return hashlib.sha1(json.dumps(fields, sort_keys=True, default=list).encode()).hexdigest()[:12]


@dataclass
class GanBatches:
    """The GAN's training stream and what it needs to know about it."""

    dataset: tf.data.Dataset  # endless (images (batch, 64, 64, 3) float32 in [-1, 1], labels (batch,) int32)
    steps_per_epoch: int


def gan_batches(
    data: DataSplits,
    batch_size: int,
    steps_per_epoch: int,
    seed: int,
    augmentation: Callable[[tf.Tensor], tf.Tensor] | None = None,
) -> GanBatches:
    """The training split as the GAN takes it: shuffled, scaled, augmented (augmentation.py), repeated."""

    def prepare(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.cast(image, tf.float32) / 127.5 - 1.0
        return (augmentation(x) if augmentation else x), label

    ds = data.train.cache().shuffle(10_000, seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size, drop_remainder=True)
    steps = steps_per_epoch or max(1, data.sizes["train"] // batch_size)
    return GanBatches(ds.prefetch(tf.data.AUTOTUNE), steps)
