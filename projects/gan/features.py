"""FID and KID in the feature space of a classifier this project trains on the same images.

The usual FID takes its features from ImageNet's Inception-v3, whose weights cannot be downloaded
offline. Here a small CNN is trained to tell the data's classes apart (openclipart categories,
Fashion-MNIST classes; for data with one class, which of four rotations an image was turned by), and
its pooled activations (the `features` layer) stand in for Inception's. Figures are therefore
comparable within this project (per epoch, between presets on the same data), not with published FIDs.

- FID: the Frechet distance between Gaussians fitted to the real and generated features,
  |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) (scipy.linalg.sqrtm).
- KID: the unbiased squared MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3; unlike FID,
  it is unbiased for small sample counts.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf
from keras import layers
from scipy.spatial.distance import pdist

from common.data.splits import DataSplits, dataset_to_numpy

from .config import FeatureNetConfig, GanConfig
from .data import data_key
from .model import CHANNELS, IMAGE_SIZE

FEATURE_LAYER = "features"
VERSION = 2  # bump when the network changes, so that a saved one is not reused
ROTATIONS = 4


def build_feature_classifier(cfg: FeatureNetConfig, num_classes: int) -> keras.Model:
    """image (batch, 64, 64, 3) float32 in [0, 255] -> class probabilities; `features` is the pooled layer."""
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, CHANNELS), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    for filters in cfg.filters:
        x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))  # stats that keep up with a short training
    features = layers.GlobalAveragePooling2D(name=FEATURE_LAYER)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(layers.Dropout(0.2)(features))
    return keras.Model(inputs, outputs, name="feature_classifier")


def _task(data: DataSplits) -> str:
    return "classes" if len(data.class_names) > 1 else "rotation"


def _training_pairs(ds: tf.data.Dataset, task: str) -> tf.data.Dataset:
    """(image float32 in [0, 255], target): the label, or for `rotation` a random quarter turn and its count."""

    def rotate(image: tf.Tensor, _: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        k = tf.random.uniform((), 0, ROTATIONS, dtype=tf.int32)
        return tf.image.rot90(image, k), k

    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    return ds.map(rotate) if task == "rotation" else ds


@dataclasses.dataclass
class FeatureSpace:
    """The trained feature network and what it was trained for."""

    model: keras.Model  # image (batch, 64, 64, 3) float32 in [0, 255] -> (batch, d) features
    task: str  # "classes" or "rotation"
    test_accuracy: float  # of the classifier on the test split (rotation: on rotated test images)

    def features(self, images: np.ndarray) -> np.ndarray:
        """(n, 64, 64, 3) uint8 or float in [0, 255] -> (n, d) float64 features."""
        return self.model.predict(np.asarray(images, np.float32), batch_size=256, verbose=0).astype(np.float64)

    def describe(self) -> str:
        what = "class" if self.task == "classes" else "rotation"
        return (
            f"the project's own {what} classifier (feature_net.keras, test accuracy {self.test_accuracy:.3f}), "
            "not Inception: comparable within this project only"
        )


def feature_space(cfg: GanConfig, data: DataSplits, root: Path) -> FeatureSpace:
    """The feature network for `cfg.data`: loaded from `root/feature_net.keras`, or trained first (and saved).

    It is reused while the data (its source, categories and splits) and `cfg.features` stay the same.
    """
    path, meta_path = root / "feature_net.keras", root / "feature_net.json"
    key = {"data": data_key(cfg.data), "features": dataclasses.asdict(cfg.features), "version": VERSION}
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == json.loads(json.dumps(key)):
            classifier = keras.models.load_model(path)
            return FeatureSpace(_feature_model(classifier), meta["task"], meta["test_accuracy"])

    task = _task(data)
    num_classes = len(data.class_names) if task == "classes" else ROTATIONS
    print(f"Training the feature network for FID/KID ({task}: {num_classes} classes, {cfg.features.epochs} epochs)")
    keras.utils.set_random_seed(cfg.train.seed)
    classifier = build_feature_classifier(cfg.features, num_classes)
    optimizer = keras.optimizers.Adam(cfg.features.learning_rate)
    classifier.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    bs = cfg.features.batch_size
    train = _training_pairs(data.train, task).cache().shuffle(10_000, seed=cfg.train.seed).batch(bs)
    val = _training_pairs(data.val, task).batch(bs)
    classifier.fit(train.prefetch(2), validation_data=val, epochs=cfg.features.epochs, shuffle=False, verbose=2)
    _, accuracy = classifier.evaluate(_training_pairs(data.test, task).batch(bs), verbose=0)
    root.mkdir(parents=True, exist_ok=True)
    classifier.save(path)
    meta_path.write_text(json.dumps({"key": key, "task": task, "test_accuracy": float(accuracy)}, indent=2))
    print(f"Feature network: test accuracy {accuracy:.3f} ({path})")
    return FeatureSpace(_feature_model(classifier), task, float(accuracy))


def _feature_model(classifier: keras.Model) -> keras.Model:
    return keras.Model(classifier.inputs, classifier.get_layer(FEATURE_LAYER).output, name="feature_model")


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two (n, d) feature sets (Gaussian fit of each)."""
    mu_r, mu_f = real.mean(0), fake.mean(0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # singular with fewer samples than features
        covmean = scipy.linalg.sqrtm(cov_r @ cov_f)
        if not np.isfinite(covmean).all():  # nudge both covariances, as the reference implementation does
            eps = np.eye(len(mu_r)) * 1e-6
            covmean = scipy.linalg.sqrtm((cov_r + eps) @ (cov_f + eps))
    covmean = np.real(covmean)
    return float(np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r) + np.trace(cov_f) - 2.0 * np.trace(covmean))


def kernel_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """KID: unbiased squared MMD between two (n, d) feature sets with k(x, y) = (x.y / d + 1)^3."""
    d = real.shape[1]
    k_rr = (real @ real.T / d + 1.0) ** 3
    k_ff = (fake @ fake.T / d + 1.0) ** 3
    k_rf = (real @ fake.T / d + 1.0) ** 3
    m, n = len(real), len(fake)
    return float(
        (k_rr.sum() - np.trace(k_rr)) / (m * (m - 1))
        + (k_ff.sum() - np.trace(k_ff)) / (n * (n - 1))
        - 2.0 * k_rf.mean()
    )


def diversity(images: np.ndarray) -> float:
    """Mean pairwise Euclidean distance between (n, 64, 64, 3) images scaled to [0, 1], per pixel (RMS)."""
    flat = np.asarray(images, np.float64).reshape(len(images), -1) / 255.0
    return float(np.mean(pdist(flat)) / np.sqrt(flat.shape[1]))


def reference_features(space: FeatureSpace, data: DataSplits, count: int) -> np.ndarray:
    """Features of the first `count` training images, (count, d): what generated images are compared with."""
    images, _ = dataset_to_numpy(data.train.take(count))
    return space.features(images)
