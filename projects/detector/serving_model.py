"""The model the detector exports: the trained SSD followed by decoding and NMS (postprocess.py).

`serving_default` of every exported format: `image` (batch, size, size, 3) float32 RGB in [0, 255]
-> `boxes` (batch, max_detections, 4) float32 normalized (y1, x1, y2, x2), `scores` (batch,
max_detections) float32, `classes` (batch, max_detections) int32 and `num_detections` (batch,)
int32; rows past `num_detections` are zeros. Everything it needs besides the weights (anchors,
variances, class names) comes from the `DetectorSpec` layer inside model.keras, so a model file
alone rebuilds it.
"""

from __future__ import annotations

import keras
import numpy as np

from .config import PostprocessConfig
from .model import spec_of
from .postprocess import DetectionPostprocess

EVAL_BATCH = 64  # scenes per call in `serving_outputs`
POSTPROCESS = "detections"  # the name of the `DetectionPostprocess` layer
# The TF Lite tensors of the post-processing: the ops inside that layer (TF names them `<model>/detections/<op>`,
# with a counter after the layer's name when it is traced again) and the signature's outputs, which the SavedModel
# names `StatefulPartitionedCall:<k>`. Full-integer TF Lite keeps these in float32 (see project.py).
POSTPROCESS_TENSORS = rf"/{POSTPROCESS}(_\d+)?/|^StatefulPartitionedCall:\d+$"


def build_serving_model(model: keras.Model, post: PostprocessConfig | None = None) -> keras.Model:
    """The trained SSD's `offsets` and `logits` through `DetectionPostprocess`: image in, final detections out.

    Args:
        model: built by `model.build_model` (trained or not).
        post: score threshold, NMS IoU, detections kept; None: the settings stored in the model at training.
    """
    spec = spec_of(model)
    post = post or PostprocessConfig(**spec.postprocess)
    # The two tensors apart, not their concatenation `predictions`: see DetectionPostprocess.
    offsets, logits = model.get_layer("offsets").output, model.get_layer("logits").output
    detections = DetectionPostprocess(spec.anchors(), spec.variances, len(spec.class_names), post, name=POSTPROCESS)
    return keras.Model(model.input, detections(offsets, logits), name="detector_serving")


def serving_outputs(serving: keras.Model, images: np.ndarray, batch_size: int = EVAL_BATCH) -> dict[str, np.ndarray]:
    """The serving model's detections for (n, size, size, 3) float32 images, batch by batch, as numpy."""
    parts = [serving(images[i : i + batch_size], training=False) for i in range(0, len(images), batch_size)]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
