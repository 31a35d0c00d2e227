"""The SSD network: a small backbone, feature maps at several scales, and a box + class head on each.

Input `image` (batch, size, size, 3) float32 RGB in [0, 255]. Output `predictions`
(batch, anchors, 4 + classes + 1): per anchor (anchors.py), four box offsets (boxes.py)
and class logits, background first. Decoding and NMS are not part of this model: the
serving model (serving_model.py, postprocess.py) adds them for export.

Backbones (`model.backbone`), both scaled by `model.width`:
- mobilenet_v2: MobileNetV2's inverted residual blocks (1x1 expand, 3x3 depthwise, 1x1 project,
  a shortcut when the shape allows), cheap on a CPU for what they see;
- plain: pairs of 3x3 convolutions, the simplest thing that works.
Each backbone stage halves the resolution; the stages at strides 8, 16, 32, ... are the feature maps,
each summed with the upsampled map above it (a feature pyramid, `model.top_down`) before its head.
"""

from __future__ import annotations

from dataclasses import asdict

import keras
import numpy as np
from keras import layers

from .anchors import anchor_boxes, anchors_per_cell
from .config import DetectorConfig

# Channels of the stages at strides 2, 4, 8, 16, 32, 64, 128 (width 1.0), and inverted residual blocks in each.
STAGE_CHANNELS = (16, 24, 48, 80, 96, 128, 128)
STAGE_BLOCKS = (1, 1, 3, 3, 1, 1, 1)
BACKGROUND_PRIOR = 0.99  # the class head starts by calling every anchor background with this probability


def _channels(base: int, width: float) -> int:
    return max(8, round(base * width / 8) * 8)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, activation: bool = True):
    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if activation else x


def _inverted_residual(x, filters: int, stride: int, expansion: int, name: str):
    """1x1 expansion (none if `expansion` is 1), 3x3 depthwise (stride), 1x1 linear projection; + input if it fits."""
    inputs = x
    if expansion > 1:
        x = _conv_bn(x, x.shape[-1] * expansion, 1, 1, f"{name}_expand")
    x = layers.DepthwiseConv2D(3, stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = _conv_bn(x, filters, 1, 1, f"{name}_project", activation=False)
    if stride == 1 and inputs.shape[-1] == filters:
        x = layers.Add(name=f"{name}_add")([inputs, x])
    return x


def _stage(x, backbone: str, filters: int, blocks: int, expansion: int, name: str):
    """Halve the resolution, then `blocks - 1` more blocks at this resolution."""
    for b in range(blocks):
        stride = 2 if b == 0 else 1
        if backbone == "plain":
            x = _conv_bn(x, filters, 3, stride, f"{name}_{b}")
        else:
            x = _inverted_residual(x, filters, stride, expansion, f"{name}_{b}")
    return x


def backbone_features(image, cfg: DetectorConfig) -> list:
    """The feature maps the heads predict from: strides 8, 16, ... up to one per `model.feature_maps` entry."""
    m = cfg.model
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale_pixels")(image)
    x = _conv_bn(x, _channels(32, m.width), 3, 2, "stem")  # stride 2
    features = []
    for s, base in enumerate(STAGE_CHANNELS[1 : 2 + len(m.feature_maps)]):  # strides 4, 8, 16, ...
        expansion = 1 if s == 0 else m.expansion  # the high-resolution first stage is not expanded, as in MobileNetV2
        x = _stage(x, m.backbone, _channels(base, m.width), STAGE_BLOCKS[s + 1], expansion, f"stage{s + 2}")
        if s >= 1:
            features.append(x)
    return features[: len(m.feature_maps)]


def top_down(features: list, channels: int) -> list:
    """Feature pyramid: each map plus the upsampled (coarser, more semantic) one above it, all `channels` wide.

    Small digits are found on the finest map, whose own features are shallow; the top-down sum lets
    them be read with what the deeper stages saw.
    """
    lateral = [layers.Conv2D(channels, 1, name=f"lateral{k}")(f) for k, f in enumerate(features)]
    merged = [lateral[-1]]
    for k in range(len(features) - 2, -1, -1):
        above = layers.UpSampling2D(2, name=f"up{k}")(merged[0])
        if above.shape[1] != lateral[k].shape[1]:  # an odd side (e.g. 3 -> 6 under 5): crop to the finer map
            above = layers.Cropping2D(((0, above.shape[1] - lateral[k].shape[1]),) * 2, name=f"crop{k}")(above)
        merged.insert(0, layers.Add(name=f"merge{k}")([lateral[k], above]))
    return merged


def _head(feature, k: int, per_cell: int, num_classes: int, channels: int):
    """(batch, f, f, c) -> (batch, f*f*per_cell, 4) offsets and (batch, f*f*per_cell, classes + 1) logits."""
    x = _conv_bn(feature, channels, 3, 1, f"head{k}")
    offsets = layers.Conv2D(per_cell * 4, 3, padding="same", name=f"head{k}_boxes")(x)
    logits = layers.Conv2D(per_cell * (num_classes + 1), 3, padding="same", name=f"head{k}_classes")(x)
    return (
        layers.Reshape((-1, 4), name=f"head{k}_boxes_flat")(offsets),
        layers.Reshape((-1, num_classes + 1), name=f"head{k}_classes_flat")(logits),
    )


def check_feature_maps(cfg: DetectorConfig) -> None:
    """The maps must be the backbone's strides 8, 16, 32, ...: image_size / 8, then halving.

    Raises:
        ValueError: with the sides that would fit the image size.
    """
    size, maps = cfg.data.image_size, tuple(cfg.model.feature_maps)
    expected = [-(-size // 8)]
    while len(expected) < len(maps):
        expected.append(-(-expected[-1] // 2))
    if maps != tuple(expected) or len(maps) > len(STAGE_CHANNELS) - 2:
        raise ValueError(
            f"model.feature_maps={','.join(map(str, maps))} does not fit data.image_size={size}: the maps are the "
            f"backbone's strides 8, 16, ... so use {','.join(map(str, expected[: len(STAGE_CHANNELS) - 2]))} "
            f"(at most {len(STAGE_CHANNELS) - 2} maps)"
        )


@keras.saving.register_keras_serializable(package="detector")
class DetectorSpec(keras.layers.Layer):
    """Identity on the predictions that carries into model.keras what turns them into boxes.

    The anchors' layout (feature maps, scales, aspect ratios), the box encoding's variances,
    the class names and the post-processing settings: the serving model is built from these.
    """

    def __init__(
        self,
        feature_maps: list[int],
        anchor_scales: list[float],
        aspect_ratios: list[float],
        variances: list[float],
        class_names: list[str],
        postprocess: dict,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.feature_maps = list(feature_maps)
        self.anchor_scales = list(anchor_scales)
        self.aspect_ratios = list(aspect_ratios)
        self.variances = list(variances)
        self.class_names = list(class_names)
        self.postprocess = dict(postprocess)

    def call(self, predictions):
        return predictions

    def anchors(self) -> np.ndarray:
        """(anchors, 4) centre form, in the order of the predictions."""
        return anchor_boxes(self.feature_maps, self.anchor_scales, self.aspect_ratios)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "feature_maps": self.feature_maps,
            "anchor_scales": self.anchor_scales,
            "aspect_ratios": self.aspect_ratios,
            "variances": self.variances,
            "class_names": self.class_names,
            "postprocess": self.postprocess,
        }


def spec_of(model: keras.Model) -> DetectorSpec:
    """The `DetectorSpec` layer of a detector built by `build_model`."""
    return model.get_layer("predictions")


def build_model(cfg: DetectorConfig, class_names: list[str]) -> keras.Model:
    """`image` (batch, size, size, 3) float32 in [0, 255] -> `predictions` (batch, anchors, 4 + classes + 1)."""
    check_feature_maps(cfg)
    num_classes = len(class_names)
    m = cfg.model
    size = cfg.data.image_size
    per_cell = anchors_per_cell(m.aspect_ratios)
    image = keras.Input((size, size, 3), name="image")
    offsets, logits = [], []
    features = backbone_features(image, cfg)
    if m.top_down:
        features = top_down(features, _channels(m.head_channels, 1.0))
    for k, feature in enumerate(features):
        o, c = _head(feature, k, per_cell, num_classes, _channels(m.head_channels, 1.0))
        offsets.append(o)
        logits.append(c)
    offsets = layers.Concatenate(axis=1, name="offsets")(offsets)
    logits = layers.Concatenate(axis=1, name="logits")(logits)
    predictions = layers.Concatenate(axis=-1, name="raw_predictions")([offsets, logits])
    spec = DetectorSpec(
        m.feature_maps, m.anchor_scales, m.aspect_ratios, m.variances, class_names, asdict(cfg.postprocess),
        name="predictions",
    )  # fmt: skip
    predictions = spec(predictions)
    model = keras.Model(image, predictions, name=f"ssd_{m.backbone}")
    _start_as_background(model, len(m.feature_maps), per_cell, num_classes)
    return model


def _start_as_background(model: keras.Model, maps: int, per_cell: int, num_classes: int) -> None:
    """Bias the class heads so every anchor starts at BACKGROUND_PRIOR background: a calm first epoch."""
    bias = np.zeros((per_cell, num_classes + 1), np.float32)
    bias[:, 0] = np.log(BACKGROUND_PRIOR * num_classes / (1 - BACKGROUND_PRIOR))
    for k in range(maps):
        model.get_layer(f"head{k}_classes").bias.assign(bias.ravel())
