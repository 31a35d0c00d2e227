"""The GAN's two networks: a generator from noise to an RGB image, and a discriminator scoring images.

Generator: noise (batch, latent_dim) [+ class] -> dense s x s map (s = image_size / 2^(n-1) for n filter entries)
-> per further entry: bilinear upsampling x2, 3x3 convolution, batch norm, ReLU -> 3x3 convolution to RGB,
tanh -> (batch, size, size, 3) in [-1, 1]. Upsampling then convolving, rather than a transposed convolution,
avoids the checkerboard texture that strided transposed kernels leave (Odena et al., 2016); bilinear rather
than nearest-neighbour because TF Lite's full-integer converter fails on a convolution after the latter.
Discriminator: (batch, size, size, 3) in [-1, 1] [+ class] -> per entry: a 3x3 convolution and a strided 4x4
one that halves the side, leaky ReLU, spectral normalization on each (by config) -> flatten -> one score
per image (a logit; no sigmoid). By config, a decoder redraws the image from the last feature map (FastGAN's
self-supervised discriminator, Liu et al., 2021): trained on real images only, it makes the discriminator's
features describe the whole picture rather than the few traits that tell real from fake on a small dataset.
By config (`model.attention_side`), a self-attention block (SAGAN, Zhang et al., 2019) in both networks where their
maps have that side: every position attends to every other, which a stack of 3x3 convolutions reaches only slowly.
Class-conditional (by config): the generator takes a learned class embedding beside the noise, and the
discriminator adds a projection term, <embedding(class), features>, to its score (Miyato & Koyama, 2018).
"""

from __future__ import annotations

import keras
from keras import layers

from .config import ModelConfig

CHANNELS = 3


def _spectral(layer: keras.Layer, cfg: ModelConfig) -> keras.Layer:
    return layers.SpectralNormalization(layer) if cfg.spectral_norm else layer


def _batch_norm(
    x: keras.KerasTensor, label: keras.KerasTensor | None, num_classes: int, index: int
) -> keras.KerasTensor:
    """Batch norm of (batch, h, w, c) features; given the (batch,) labels, a class-conditional one (BigGAN's): the
    scale and shift are looked up per class, x_hat * (1 + gain[label]) + shift[label], both tables zero at first."""
    if label is None:
        return layers.BatchNormalization()(x)
    filters = x.shape[-1]
    x = layers.BatchNormalization(center=False, scale=False)(x)
    gain, shift = (
        layers.Reshape((1, 1, filters))(
            layers.Embedding(num_classes, filters, embeddings_initializer="zeros", name=f"class_{kind}_{index}")(label)
        )
        for kind in ("gain", "shift")
    )
    return layers.Add()([x, layers.Multiply()([x, gain]), shift])


def _self_attention(x: keras.KerasTensor, cfg: ModelConfig, spectral: bool) -> keras.KerasTensor:
    """SAGAN's self-attention block (Zhang et al., 2019) on (batch, h, w, c) features -> the same shape: every position
    attends to every other one (queries and keys of c/8 channels, values of c/2), the result is mapped back to c
    channels by a 1x1 convolution that starts at zero and added to the input, so the block starts as the identity."""
    side, channels = x.shape[1], x.shape[-1]
    key_width, value_width = max(1, channels // 8), max(1, channels // 2)

    def project(width: int, initializer: str = "glorot_uniform") -> keras.Layer:
        conv = layers.Conv2D(width, 1, use_bias=False, kernel_initializer=initializer)
        return _spectral(conv, cfg) if spectral else conv

    query, key, value = (
        layers.Reshape((side * side, width))(project(width)(x)) for width in (key_width, key_width, value_width)
    )
    attended = layers.Reshape((side, side, value_width))(layers.Attention()([query, value, key]))
    return layers.Add()([x, project(channels, "zeros")(attended)])


def check_attention_side(cfg: ModelConfig, image_size: int) -> None:
    """Raises ValueError when `model.attention_side` is set but neither network has a map of that side, which would
    otherwise leave the option silently without effect."""
    generator_sides = {start_side(cfg, image_size) * 2**i for i in range(1, len(cfg.g_filters))}
    discriminator_sides = {image_size // 2**i for i in range(1, len(cfg.d_filters) + 1)}
    sides = sorted(generator_sides | discriminator_sides)
    if cfg.attention_side and cfg.attention_side not in sides:
        raise ValueError(
            f"model.attention_side={cfg.attention_side}: no map of the generator or the discriminator has that side "
            f"at data.image_size={image_size}; use one of {', '.join(map(str, sides))}, or 0 for none"
        )


def start_side(cfg: ModelConfig, image_size: int) -> int:
    """The side of the generator's first map: `image_size` halved once per upsampling block.

    Raises:
        ValueError: `image_size` does not halve that many times into a whole side of at least 2.
    """
    halvings = len(cfg.g_filters) - 1
    side = image_size // 2**halvings
    if len(cfg.g_filters) < 2 or side < 2 or side * 2**halvings != image_size:
        raise ValueError(
            f"model.g_filters has {len(cfg.g_filters)} entries: data.image_size={image_size} must halve "
            f"{halvings} times into a whole side of at least 2 (e.g. 32 with 4 entries, 16 with 3, 64 with 5)"
        )
    return side


def build_generator(cfg: ModelConfig, image_size: int, num_classes: int = 0, name: str = "generator") -> keras.Model:
    """noise (batch, latent_dim) float32 [, label (batch,) int32] -> image (batch, size, size, 3) float32 in [-1, 1]."""
    side = start_side(cfg, image_size)
    check_attention_side(cfg, image_size)
    noise = keras.Input((cfg.latent_dim,), name="noise")
    inputs = [noise]
    z = noise
    if cfg.conditional:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        z = layers.Concatenate()([z, layers.Embedding(num_classes, cfg.latent_dim, name="class_embedding")(label)])
    x = layers.Dense(side * side * cfg.g_filters[0], use_bias=False)(z)
    x = layers.Reshape((side, side, cfg.g_filters[0]))(x)
    per_class = label if cfg.conditional and cfg.class_norm else None
    x = layers.ReLU()(_batch_norm(x, per_class, num_classes, 0))
    for index, filters in enumerate(cfg.g_filters[1:], 1):
        x = layers.UpSampling2D(interpolation="bilinear")(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.ReLU()(_batch_norm(x, per_class, num_classes, index))
        if x.shape[1] == cfg.attention_side:
            x = _self_attention(x, cfg, spectral=False)
    image = layers.Conv2D(CHANNELS, 3, padding="same", activation="tanh", name="image")(x)
    return keras.Model(inputs if cfg.conditional else noise, image, name=name)


def _decoder(feature_map: keras.KerasTensor, cfg: ModelConfig) -> keras.KerasTensor:
    """The discriminator's last (batch, s, s, c) feature map -> (batch, s * 2^n, s * 2^n, 3) in [-1, 1], n = number of
    discriminator blocks: bilinear upsampling x2, 3x3 convolution, ReLU per block, then a 3x3 convolution to RGB."""
    x = feature_map
    for filters in (*cfg.d_filters[-2::-1], max(8, cfg.d_filters[0] // 2)):
        x = layers.UpSampling2D(interpolation="bilinear")(x)
        x = layers.ReLU()(layers.Conv2D(filters, 3, padding="same")(x))
    return layers.Conv2D(CHANNELS, 3, padding="same", activation="tanh", name="reconstruction")(x)


def build_discriminator(cfg: ModelConfig, image_size: int, num_classes: int = 0) -> keras.Model:
    """image (batch, size, size, 3) float32 in [-1, 1] [, label (batch,) int32] -> a dict: "score" (batch, 1) float32
    logit; conditional with `class_loss_weight` > 0, "class_logits" (batch, num_classes) [and "twin_class_logits"
    with `twin_class_head`]; with `reconstruction_weight` > 0, "reconstruction" (batch, size, size, 3) in [-1, 1]."""
    if not cfg.d_filters or image_size % 2 ** len(cfg.d_filters):
        raise ValueError(
            f"model.d_filters has {len(cfg.d_filters)} entries: data.image_size={image_size} must halve that often"
        )
    image = keras.Input((image_size, image_size, CHANNELS), name="image")
    x = image
    for filters in cfg.d_filters:
        x = layers.LeakyReLU(0.2)(_spectral(layers.Conv2D(filters, 3, padding="same"), cfg)(x))
        x = layers.LeakyReLU(0.2)(_spectral(layers.Conv2D(filters, 4, strides=2, padding="same"), cfg)(x))
        if x.shape[1] == cfg.attention_side:
            x = _self_attention(x, cfg, spectral=cfg.spectral_norm)
    features = layers.Flatten()(x)
    outputs = {"score": _spectral(layers.Dense(1), cfg)(features)}
    if cfg.reconstruction_weight > 0:
        outputs["reconstruction"] = _decoder(x, cfg)
    if not cfg.conditional:
        return keras.Model(image, outputs, name="discriminator")
    label = keras.Input((), dtype="int32", name="label")
    embedded = layers.Embedding(num_classes, features.shape[-1], name="class_projection")(label)
    projection = layers.Dot(axes=1)([embedded, features])
    outputs["score"] = layers.Add()([outputs["score"], projection])
    if cfg.class_loss_weight > 0:
        outputs["class_logits"] = layers.Dense(num_classes, name="class_logits")(features)
        if cfg.twin_class_head:
            outputs["twin_class_logits"] = layers.Dense(num_classes, name="twin_class_logits")(features)
    return keras.Model([image, label], outputs, name="discriminator")
