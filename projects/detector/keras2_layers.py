"""Keras 2 (tf_keras) twins of the SSD's own layers, so that `optimize` can copy it for tfmot."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tf_keras


class DetectorSpec(tf_keras.layers.Layer):
    """model.py's `DetectorSpec` in Keras 2: the identity on the predictions (batch, anchors, 4 + classes + 1),
    carrying the same settings (tfmot clones the model from its layers' configs)."""

    def __init__(
        self,
        feature_maps: list[int],
        anchor_scales: list[float],
        aspect_ratios: list[float],
        variances: list[float],
        class_names: list[str],
        postprocess: dict,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = {
            "feature_maps": list(feature_maps),
            "anchor_scales": list(anchor_scales),
            "aspect_ratios": list(aspect_ratios),
            "variances": list(variances),
            "class_names": list(class_names),
            "postprocess": dict(postprocess),
        }

    def call(self, predictions: tf.Tensor) -> tf.Tensor:
        return predictions

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.settings}


KERAS2_LAYERS = {"DetectorSpec": DetectorSpec}
