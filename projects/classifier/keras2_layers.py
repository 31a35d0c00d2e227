"""Keras 2 (tf_keras) twins of the classifier's own layers, so that `optimize` can copy it for tfmot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf
import tf_keras

from .model import imagenet_scaled


class ClassNames(tf_keras.layers.Layer):
    """model.py's `ClassNames` in Keras 2: the identity on (batch, classes) probabilities, keeping the names (tfmot
    clones the model from its layers' configs)."""

    def __init__(self, names: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.names = list(names)

    def call(self, probabilities: tf.Tensor) -> tf.Tensor:
        return probabilities

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "names": self.names}


class ImageNetScaling(tf_keras.layers.Layer):
    """model.py's `ImageNetScaling` in Keras 2: (batch, size, size, 3) pixels in [0, 255] -> the ResNet50 ("caffe")
    or DenseNet121 ("torch") input."""

    def __init__(self, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, images: tf.Tensor) -> tf.Tensor:
        return imagenet_scaled(images, self.mode)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}


KERAS2_LAYERS = {"ClassNames": ClassNames, "ImageNetScaling": ImageNetScaling}
