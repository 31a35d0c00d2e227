"""MNIST models: a CNN (default) and an MLP, both ending in a 10-way softmax, and a convolutional autoencoder.

Input (batch, 28, 28, 1) float32 in [0, 1]; output (batch, 10) class probabilities.
The default CNN (two blocks of two 3x3 convolutions with batch norm, max
pooling and dropout, then one dense layer) reaches about 99% test accuracy on
the offline 8,000-digit training split; the MLP about 97.5%.
The autoencoder (`model.kind=autoencoder`) returns the digit it rebuilt from a short code,
(batch, 28, 28, 1) in [0, 1].
"""

from __future__ import annotations

import keras
from keras import layers

from .config import MnistConfig, ModelConfig

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def _regularizer(cfg: ModelConfig) -> keras.regularizers.Regularizer | None:
    return keras.regularizers.L1L2(l1=cfg.l1, l2=cfg.l2) if (cfg.l1 or cfg.l2) else None


def _dense_block(x, units: int, cfg: ModelConfig):
    """Dense -> (batch norm) -> activation -> dropout."""
    x = layers.Dense(units, use_bias=not cfg.batch_norm, kernel_regularizer=_regularizer(cfg))(x)
    if cfg.batch_norm:
        x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Activation(cfg.activation)(x)
    return layers.Dropout(cfg.dropout)(x) if cfg.dropout else x


def _conv_block(x, filters: int, cfg: ModelConfig):
    """Two 3x3 convolutions (each with batch norm and activation), 2x2 max pooling, dropout."""
    for _ in range(2):
        x = layers.Conv2D(
            filters, 3, padding="same", use_bias=not cfg.batch_norm, kernel_regularizer=_regularizer(cfg)
        )(x)
        if cfg.batch_norm:
            x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.Activation(cfg.activation)(x)
    x = layers.MaxPooling2D()(x)
    return layers.Dropout(cfg.dropout)(x) if cfg.dropout else x


def build_cnn(cfg: ModelConfig) -> keras.Model:
    """Conv blocks (one per `cfg.filters` entry), flatten, dense layers (`cfg.hidden`), softmax."""
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = inputs
    for filters in cfg.filters:
        x = _conv_block(x, filters, cfg)
    x = layers.Flatten()(x)
    for units in cfg.hidden:
        x = _dense_block(x, units, cfg)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def build_mlp(cfg: ModelConfig) -> keras.Model:
    """Flatten the 784 pixels, dense layers (`cfg.hidden`), softmax."""
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = layers.Flatten()(inputs)
    for units in cfg.hidden:
        x = _dense_block(x, units, cfg)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mnist_mlp")


def _normalized(x, cfg: ModelConfig):
    """(batch norm) -> activation."""
    if cfg.batch_norm:
        x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Activation(cfg.activation)(x)


def build_autoencoder(cfg: ModelConfig) -> keras.Model:
    """image (batch, 28, 28, 1) -> `reconstruction` (batch, 28, 28, 1) in [0, 1], through a code of `cfg.latent`.

    Encoder: one 3x3 stride-2 convolution per `cfg.filters` entry (16, 32: 28 -> 14 -> 7 px), flattened into
    the dense `code` (batch, latent), linear. Decoder, its mirror: dense back to (7, 7, 32), one 3x3 stride-2
    transposed convolution per entry in reverse order (7 -> 14 -> 28 px), a 3x3 convolution to one sigmoid
    channel. Batch norm (`model.batch_norm`) after each layer but the code and the output; no dropout: the narrow
    code is what keeps it from copying its input.

    Raises:
        ValueError: more `cfg.filters` entries than 28 px can be halved evenly (at most 2).
    """
    if not cfg.filters or INPUT_SHAPE[0] % 2 ** len(cfg.filters):
        raise ValueError(
            f"model.filters={list(cfg.filters)}: the autoencoder halves the 28 px image once per entry, so it takes "
            "1 or 2 entries (e.g. --set model.filters=16,32)"
        )
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = inputs
    for filters in cfg.filters:
        x = _normalized(layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=not cfg.batch_norm)(x), cfg)
    shape = x.shape[1:]
    code = layers.Dense(cfg.latent, name="code")(layers.Flatten()(x))
    x = _normalized(layers.Dense(shape[0] * shape[1] * shape[2], use_bias=not cfg.batch_norm)(code), cfg)
    x = layers.Reshape(shape)(x)
    for filters in reversed(cfg.filters):
        transposed = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=not cfg.batch_norm)
        x = _normalized(transposed(x), cfg)
    outputs = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="mnist_autoencoder")


def build_model(cfg: MnistConfig) -> keras.Model:
    """The model named by `cfg.model.kind`."""
    builders = {"cnn": build_cnn, "mlp": build_mlp, "autoencoder": build_autoencoder}
    return builders[cfg.model.kind](cfg.model)
