"""What the classifier exports: a tensor-in model for every format, and an encoded-image signature for serving.

- `serving_default` (SavedModel, TF Lite, TF.js, ONNX): `image` (batch, size, size, 3)
  float32 RGB in [0, 255], prepared as in training (transparency on white, padded to a
  square, resized) -> `probabilities` (batch, classes) float32 and `class_id` (batch,) int32.
- `serving_bytes` (SavedModel only): `image_bytes` (batch,) string, each a whole PNG, JPEG,
  GIF or BMP file of any size (TF Serving's `{"b64": ...}`) -> the same two outputs plus
  `class_name` (batch,) string and `class_names` (batch, classes) string, the name of each
  probability. Image decoding and string tensors do not convert to TF Lite, TF.js or ONNX
  with builtin ops, so there the client prepares the pixels (as the browser demo does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from common.export.layers import ClassIndex

from .images import decode_to_model_input


def build_serving_model(model: keras.Model) -> keras.Model:
    """`image` (batch, size, size, 3) float32 in [0, 255] -> {"probabilities", "class_id"}."""
    probabilities = model.output
    class_id = ClassIndex(name="class_id")(probabilities)
    return keras.Model(model.input, {"probabilities": probabilities, "class_id": class_id}, name="classifier_serving")


def encoded_image_signature(serving: keras.Model, class_names: Sequence[str]) -> Callable:
    """`serving_bytes`: (batch,) encoded image files -> probabilities, class_id, class_name, class_names."""
    size = serving.input_shape[1]
    names = tf.constant(list(class_names))
    pixels = tf.TensorSpec((size, size, 3), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")])
    def serve_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        images = tf.map_fn(lambda data: decode_to_model_input(data, size), image_bytes, fn_output_signature=pixels)
        outputs = serving(images, training=False)
        return {
            **outputs,
            "class_name": tf.gather(names, outputs["class_id"]),
            "class_names": tf.tile(names[None], [tf.shape(image_bytes)[0], 1]),
        }

    return serve_bytes
