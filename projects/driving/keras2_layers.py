"""Keras 2 (tf_keras) twins of the model's own layers, so that `optimize` can copy PilotNet for tfmot."""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from .model import telemetry_mask


class TelemetryMask(tf_keras.layers.Layer):
    """model.py's `TelemetryMask` in Keras 2: uint8 frames (batch, 96, 96, 3) -> float32 frames, the telemetry bar
    blanked except the speed bar."""

    def call(self, frames: tf.Tensor) -> tf.Tensor:
        return tf.cast(frames, tf.float32) * tf.constant(telemetry_mask())


KERAS2_LAYERS = {"TelemetryMask": TelemetryMask}
