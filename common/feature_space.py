"""The feature network FID, KID, precision and recall are measured in: a classifier of the data's categories.

Shared by the generative projects (gan, diffusion), so that their figures are measured in one feature space.
The usual FID takes its features from ImageNet's Inception-v3, whose weights cannot be downloaded offline.
Here a small CNN learns to tell the data's categories apart, and its pooled activations (the `features`
layer) stand in for Inception's. For emoji it learns from more than a generative model ever sees: both vendors' art
(Twemoji and Noto) with every skin tone, of the training emoji; its test accuracy is on held-out emoji, that
neither it nor the generative model saw. For data with one class it learns which of four rotations an image
was turned by.
Figures are comparable within these projects (per epoch, between presets and projects on the same data), not
with published FIDs.

Trained once per data and feature config, then cached beside the decoded images (`data.cache_dir`), so every
run on the same data, whatever its output folder, reuses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from scipy.spatial.distance import pdist

from common.art_config import ArtDataConfig, FeatureNetConfig
from common.config import ConfigError
from common.data.art import cache_dir, feature_splits
from common.data.splits import DataSplits

FEATURE_LAYER = "features"
VERSION = 3  # bump when the network or its data change, so that a cached one is not reused
ROTATIONS = 4
CHANNELS = 3


def build_feature_classifier(cfg: FeatureNetConfig, image_size: int, num_classes: int) -> keras.Model:
    """image (batch, size, size, 3) float32 in [0, 255] -> class probabilities; `features` is the pooled layer."""
    inputs = keras.Input((image_size, image_size, CHANNELS), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    for filters in cfg.filters:
        for stride in (1, 2):
            x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
            x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))  # stats that keep up with short training
    features = layers.GlobalAveragePooling2D(name=FEATURE_LAYER)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(layers.Dropout(0.3)(features))
    return keras.Model(inputs, outputs, name="feature_classifier")


def _task(data: DataSplits) -> str:
    return "classes" if len(data.class_names) > 1 else "rotation"


def _pairs(ds: tf.data.Dataset, task: str, augment: bool) -> tf.data.Dataset:
    """(image float32 in [0, 255], target): the label, or for `rotation` a random quarter turn and its count.
    With `augment`: random flips and shifts of up to 1/8 of the side (white fill), as an artist might vary."""

    def prepare(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.cast(image, tf.float32)
        if augment:
            size, pad = image.shape[0], max(1, image.shape[0] // 8)
            x = tf.image.random_flip_left_right(x)
            x = tf.pad(x, [[pad, pad], [pad, pad], [0, 0]], constant_values=255.0)
            x = tf.image.random_crop(x, (size, size, CHANNELS))
        if task == "rotation":
            k = tf.random.uniform((), 0, ROTATIONS, dtype=tf.int32)
            return tf.image.rot90(x, k), k
        return x, label

    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)


@dataclasses.dataclass
class FeatureSpace:
    """The trained feature network and what it was trained for."""

    model: keras.Model  # image (batch, size, size, 3) float32 in [0, 255] -> (batch, d) features
    task: str  # "classes" or "rotation"
    test_accuracy: float  # of the classifier on the held-out split (rotation: on rotated test images)
    trained_on: str  # what it learned from, for the report

    def features(self, images: np.ndarray) -> np.ndarray:
        """(n, size, size, 3) uint8 or float in [0, 255] -> (n, d) float64 features."""
        return self.model.predict(np.asarray(images, np.float32), batch_size=256, verbose=0).astype(np.float64)

    def describe(self) -> str:
        what = "category" if self.task == "classes" else "rotation"
        return (
            f"the project's own {what} classifier (trained on {self.trained_on}; held-out accuracy "
            f"{self.test_accuracy:.3f}), not Inception: comparable within this project only"
        )


def feature_key(data: ArtDataConfig, features: FeatureNetConfig) -> str:
    """A digest of what decides the feature network: it is reused while this stays the same."""
    ignored = {"flip", "online", "cache_dir"} | (
        {"vendors", "max_images", "skin_tones", "labels"} if data.source == "emoji" else set()
    )
    fields = {k: v for k, v in dataclasses.asdict(data).items() if k not in ignored}
    key = {"data": fields, "features": dataclasses.asdict(features), "version": VERSION}
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=list).encode()).hexdigest()[:12]


def feature_space(data_cfg: ArtDataConfig, f: FeatureNetConfig) -> FeatureSpace:
    """The feature network for `data_cfg`: loaded from the cache, or trained (seeded with `f.seed`) on
    `common.data.art.feature_splits` and saved."""
    root = cache_dir(data_cfg)
    path = root / f"feature_net-{feature_key(data_cfg, f)}.keras"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        model = _feature_model(keras.models.load_model(path, compile=False))
        return FeatureSpace(model, meta["task"], meta["test_accuracy"], meta["trained_on"])

    data = feature_splits(data_cfg)
    task = _task(data)
    num_classes = len(data.class_names) if task == "classes" else ROTATIONS
    trained_on = f"{data.sizes['train']} images of {data.source}"
    print(f"Training the feature network for FID ({task}: {num_classes} classes, {trained_on}, {f.epochs} epochs)")
    keras.utils.set_random_seed(f.seed)
    classifier = build_feature_classifier(f, data_cfg.image_size, num_classes)
    classifier.compile(keras.optimizers.Adam(f.learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    train = _pairs(data.train.cache().shuffle(20_000, seed=f.seed), task, augment=True).batch(f.batch_size)
    val = _pairs(data.val, task, augment=False).batch(f.batch_size)
    classifier.fit(train.prefetch(2), validation_data=val, epochs=f.epochs, shuffle=False, verbose=2)
    _, accuracy = classifier.evaluate(_pairs(data.test, task, augment=False).batch(f.batch_size), verbose=0)
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.keras")
    classifier.save(tmp)
    os.replace(tmp, path)
    meta = {"task": task, "test_accuracy": float(accuracy), "trained_on": trained_on, "test_images": data.sizes["test"]}
    meta_path.write_text(json.dumps(meta, indent=2))
    print(f"Feature network: held-out accuracy {accuracy:.3f} ({path})")
    return FeatureSpace(_feature_model(classifier), task, float(accuracy), trained_on)


def _feature_model(classifier: keras.Model) -> keras.Model:
    return keras.Model(classifier.inputs, classifier.get_layer(FEATURE_LAYER).output, name="feature_model")


def diversity(images: np.ndarray) -> float:
    """Mean pairwise Euclidean distance between (n, h, w, 3) images scaled to [0, 1], per pixel (RMS)."""
    flat = np.asarray(images, np.float64).reshape(len(images), -1) / 255.0
    return float(np.mean(pdist(flat)) / np.sqrt(flat.shape[1]))


def check_val_reference(data: DataSplits, scored: str) -> None:
    """`scored` (what a project scores against the validation split's images, so that the test split stays
    `evaluate`'s: "tune scores each trial"): raise a ConfigError naming the fix when the split has fewer than 2
    images (FID needs their covariance)."""
    count = data.sizes.get("val", 0)
    if count < 2:
        raise ConfigError(
            f"{scored} against the validation split's images, and it has {count}: "
            "set data.val_fraction above 0 (e.g. 0.1), or use more images (data.max_images)"
        )
