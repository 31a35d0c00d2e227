"""The DCGAN: a generator from noise to 64x64 RGB, and a discriminator scoring images as real or generated.

Generator: noise (batch, latent_dim) [+ class id] -> dense 4x4 map -> transposed 4x4 convolutions
(stride 2, batch norm, ReLU) doubling the side each time -> (batch, 64, 64, 3) in [-1, 1] (tanh).
Discriminator: (batch, 64, 64, 3) in [-1, 1] [+ class id] -> strided 4x4 convolutions with leaky ReLU,
each wrapped in spectral normalization (by config) -> one score per image (a logit; no sigmoid).
Class-conditional (by config): the generator multiplies the noise by a learned class embedding, and the
discriminator adds a projection term, <embedding(class), features>, to its score (Miyato & Koyama, 2018).
"""

from __future__ import annotations

import keras
from keras import layers

from .config import ModelConfig

IMAGE_SIZE = 64
CHANNELS = 3


def _spectral(layer: keras.Layer, cfg: ModelConfig) -> keras.Layer:
    return layers.SpectralNormalization(layer) if cfg.spectral_norm else layer


def build_generator(cfg: ModelConfig, num_classes: int = 0, name: str = "generator") -> keras.Model:
    """noise (batch, latent_dim) float32 [, label (batch,) int32] -> image (batch, 64, 64, 3) float32 in [-1, 1]."""
    if len(cfg.g_filters) != 4:
        raise ValueError(f"model.g_filters needs 4 entries (4x4, 8x8, 16x16, 32x32), got {cfg.g_filters}")
    noise = keras.Input((cfg.latent_dim,), name="noise")
    inputs = [noise]
    z = noise
    if cfg.conditional:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        z = layers.Multiply()([z, layers.Embedding(num_classes, cfg.latent_dim, name="class_embedding")(label)])
    x = layers.Dense(4 * 4 * cfg.g_filters[0], use_bias=False)(z)
    x = layers.Reshape((4, 4, cfg.g_filters[0]))(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for filters in cfg.g_filters[1:]:
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    image = layers.Conv2DTranspose(CHANNELS, 4, strides=2, padding="same", activation="tanh", name="image")(x)
    return keras.Model(inputs if cfg.conditional else noise, image, name=name)


def build_discriminator(cfg: ModelConfig, num_classes: int = 0) -> keras.Model:
    """image (batch, 64, 64, 3) float32 in [-1, 1] [, label (batch,) int32] -> score (batch, 1) float32 logit."""
    if len(cfg.d_filters) != 4:
        raise ValueError(f"model.d_filters needs 4 entries (32x32, 16x16, 8x8, 4x4), got {cfg.d_filters}")
    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, CHANNELS), name="image")
    x = image
    for filters in cfg.d_filters:
        x = _spectral(layers.Conv2D(filters, 4, strides=2, padding="same"), cfg)(x)
        x = layers.LeakyReLU(0.2)(x)
    features = layers.Flatten()(x)
    score = _spectral(layers.Dense(1), cfg)(features)
    if not cfg.conditional:
        return keras.Model(image, score, name="discriminator")
    label = keras.Input((), dtype="int32", name="label")
    embedded = layers.Embedding(num_classes, features.shape[-1], name="class_projection")(label)
    projection = layers.Dot(axes=1)([embedded, features])
    return keras.Model([image, label], layers.Add()([score, projection]), name="discriminator")
