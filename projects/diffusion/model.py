"""The denoiser: a small U-Net that predicts the noise in a noisy image, given the timestep (and the class).

noisy (batch, size, size, 3) float32, timestep (batch,) int32 [, label (batch,) int32] -> noise (batch, size,
size, 3) float32. Read top to bottom:
- the timestep as a sinusoidal embedding (as a Transformer's positions), through two dense layers; a
  class-conditional U-Net adds a learnt class embedding to it (id `num_classes` is "no class": classifier-free
  guidance trains one network for both);
- down: per level `res_blocks` residual blocks (group norm, swish, 3x3 convolution, the embedding added, or
  scaling and shifting the next group norm's output with `scale_shift`, again), then a strided convolution
  halving the side;
- middle, at the lowest resolution: a residual block, self-attention over its positions (by config), another;
- up: per level `res_blocks + 1` residual blocks, each on the concatenated skip connection, then nearest
  upsampling and a convolution;
- out: group norm, swish, a 3x3 convolution to 3 channels: the noise, or (`model.prediction=v`, the default) v,
  which `NoiseFromVelocity` turns into the noise with the schedule's abar_t.
Only layers every export format runs (no einsum, no custom ops): TF Lite, TF.js and ONNX take it as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers, ops

from common.config import ConfigError

from .config import ModelConfig

CHANNELS = 3
MAX_PERIOD = 10_000.0


@keras.saving.register_keras_serializable(package="diffusion")
class TimestepEmbedding(keras.layers.Layer):
    """(batch,) integer timesteps -> (batch, dim) float32: sin and cos of t at geometrically spaced frequencies."""

    def __init__(self, dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dim = dim

    def call(self, timestep):
        half = self.dim // 2
        freqs = ops.exp(-math.log(MAX_PERIOD) * ops.arange(half, dtype="float32") / half)
        angles = ops.cast(ops.reshape(timestep, (-1, 1)), "float32") * ops.expand_dims(freqs, 0)
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim}


@keras.saving.register_keras_serializable(package="diffusion")
class SelfAttention(keras.layers.Layer):
    """Single-head self-attention over the h*w positions of (batch, h, w, c), added to its input."""

    def __init__(self, groups: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.groups = groups

    def build(self, input_shape) -> None:
        c = input_shape[-1]
        self.norm = layers.GroupNormalization(self.groups, name="norm")
        self.qkv = layers.Dense(3 * c, name="qkv")
        self.proj = layers.Dense(c, kernel_initializer="zeros", name="proj")
        self.norm.build(input_shape)
        self.qkv.build(input_shape)
        self.proj.build(input_shape)

    def call(self, x):
        _, h, w, c = x.shape
        qkv = ops.reshape(self.qkv(self.norm(x)), (-1, h * w, 3 * c))
        q, k, v = qkv[..., :c], qkv[..., c : 2 * c], qkv[..., 2 * c :]
        weights = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 2, 1))) / math.sqrt(c), axis=-1)
        out = ops.reshape(ops.matmul(weights, v), (-1, h, w, c))
        return x + self.proj(out)

    def get_config(self) -> dict:
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="diffusion")
class NoiseFromVelocity(keras.layers.Layer):
    """[x_t (batch, h, w, 3), v (batch, h, w, 3), timestep (batch,)] -> the noise, sqrt(abar_t) v + sqrt(1 - abar_t)
    x_t, with the schedule's (T,) abar held in the layer (v-prediction, Salimans & Ho, 2022).

    A network that predicts the noise must, at the noisiest timesteps (abar near 0), be exact to a ten-thousandth
    for the clean image it implies, (x_t - sqrt(1 - abar) eps) / sqrt(abar), to mean anything; one that predicts v
    implies x0 = sqrt(abar) x_t - sqrt(1 - abar) v, an error of the same size as its own. The noise-space loss is
    unchanged (an error in v is sqrt(abar) times that in the noise, and Min-SNR's weights carry over), and so is
    every client: the output is still the noise."""

    def __init__(self, alphas_cumprod: list[float], **kwargs) -> None:
        super().__init__(**kwargs)
        self.alphas_cumprod = [float(a) for a in alphas_cumprod]

    def call(self, inputs):
        noisy, velocity, timestep = inputs
        abar = ops.take(ops.convert_to_tensor(self.alphas_cumprod, "float32"), ops.cast(timestep, "int32"), axis=0)
        abar = ops.reshape(abar, (-1, 1, 1, 1))
        return ops.sqrt(abar) * velocity + ops.sqrt(1.0 - abar) * noisy

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self) -> dict:
        return {**super().get_config(), "alphas_cumprod": self.alphas_cumprod}


def groups_for(filters: int) -> int:
    """Group norm's groups: 8, or fewer when `filters` is not a multiple of 8."""
    return math.gcd(8, filters)


def res_block(x, temb, filters: int, dropout: float, name: str, scale_shift: bool = False):
    """(batch, h, w, c) -> (batch, h, w, filters): two normed 3x3 convolutions. The embedding (time and class)
    enters between them: added to the first convolution's output, or, with `scale_shift`, as a per-channel scale
    and shift of the second group norm's output (FiLM, the adaptive group norm of Dhariwal & Nichol, 2021), which
    lets it switch features on and off instead of only moving them."""
    h = layers.Activation("swish")(layers.GroupNormalization(groups_for(x.shape[-1]), name=f"{name}_norm1")(x))
    h = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv1")(h)
    if scale_shift:
        # the scale starts near 1 (its bias), so an untrained block passes its features on unchanged
        scale = layers.Dense(filters, bias_initializer="ones", name=f"{name}_scale")(temb)
        shift = layers.Dense(filters, name=f"{name}_shift")(temb)
        h = layers.GroupNormalization(groups_for(filters), name=f"{name}_norm2")(h)
        h = layers.Multiply()([h, layers.Reshape((1, 1, filters))(scale)])
        h = layers.Add()([h, layers.Reshape((1, 1, filters))(shift)])
    else:
        t = layers.Reshape((1, 1, filters))(layers.Dense(filters, name=f"{name}_time")(temb))
        h = layers.GroupNormalization(groups_for(filters), name=f"{name}_norm2")(layers.Add()([h, t]))
    h = layers.Activation("swish")(h)
    if dropout:
        h = layers.Dropout(dropout)(h)
    h = layers.Conv2D(filters, 3, padding="same", kernel_initializer="zeros", name=f"{name}_conv2")(h)
    skip = x if x.shape[-1] == filters else layers.Conv2D(filters, 1, name=f"{name}_skip")(x)
    return layers.Add(name=f"{name}_out")([skip, h])


def build_denoiser(
    cfg: ModelConfig,
    image_size: int,
    alphas_cumprod: Sequence[float],
    num_classes: int = 0,
    name: str = "denoiser",
) -> keras.Model:
    """The U-Net: {"noisy", "timestep"[, "label"]} -> {"noise"}; class-conditional when `num_classes` > 0; the
    schedule's (T,) `alphas_cumprod` turn a v-prediction (`model.prediction`) into the noise.

    Raises:
        ConfigError: `image_size` cannot be halved once per level.
    """
    levels = len(cfg.multipliers)
    if image_size % 2 ** (levels - 1):
        raise ConfigError(
            f"data.image_size={image_size} cannot be halved {levels - 1} times (model.multipliers has {levels} "
            "levels): choose a multiple of " + str(2 ** (levels - 1))
        )
    base = cfg.base_filters
    temb_dim = 4 * base
    noisy = keras.Input((image_size, image_size, CHANNELS), name="noisy")
    timestep = keras.Input((), dtype="int32", name="timestep")
    inputs = {"noisy": noisy, "timestep": timestep}
    temb = TimestepEmbedding(base, name="timestep_embedding")(timestep)
    temb = layers.Dense(temb_dim, activation="swish", name="time_dense1")(temb)
    temb = layers.Dense(temb_dim, name="time_dense2")(temb)
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs["label"] = label
        embedded = layers.Embedding(num_classes + 1, temb_dim, name="class_embedding")(label)
        temb = layers.Add()([temb, embedded])
    temb = layers.Activation("swish")(temb)

    x = layers.Conv2D(base, 3, padding="same", name="stem")(noisy)
    skips = [x]
    for level, mult in enumerate(cfg.multipliers):
        for block in range(cfg.res_blocks):
            x = res_block(x, temb, base * mult, cfg.dropout, f"down{level}_{block}", cfg.scale_shift)
            skips.append(x)
        if level < levels - 1:
            x = layers.Conv2D(base * mult, 3, strides=2, padding="same", name=f"down{level}_halve")(x)
            skips.append(x)
    deepest = base * cfg.multipliers[-1]
    x = res_block(x, temb, deepest, cfg.dropout, "middle1", cfg.scale_shift)
    if cfg.attention:
        x = SelfAttention(groups_for(deepest), name="middle_attention")(x)
    x = res_block(x, temb, deepest, cfg.dropout, "middle2", cfg.scale_shift)
    for level in reversed(range(levels)):
        filters = base * cfg.multipliers[level]
        for block in range(cfg.res_blocks + 1):
            x = layers.Concatenate()([x, skips.pop()])
            x = res_block(x, temb, filters, cfg.dropout, f"up{level}_{block}", cfg.scale_shift)
        if level > 0:
            x = layers.UpSampling2D(2, interpolation="nearest")(x)
            x = layers.Conv2D(filters, 3, padding="same", name=f"up{level}_double")(x)
    x = layers.Activation("swish")(layers.GroupNormalization(groups_for(base), name="out_norm")(x))
    if cfg.prediction == "noise":
        noise = layers.Conv2D(CHANNELS, 3, padding="same", kernel_initializer="zeros", name="noise")(x)
    else:
        velocity = layers.Conv2D(CHANNELS, 3, padding="same", kernel_initializer="zeros", name="velocity")(x)
        noise = NoiseFromVelocity(alphas_cumprod, name="noise")([noisy, velocity, timestep])
    return keras.Model(inputs, {"noise": noise}, name=name)


def num_classes_of(denoiser: keras.Model) -> int:
    """The classes a class-conditional denoiser knows (its "no class" id), or 0 for an unconditional one."""
    names = [t.name for t in denoiser.inputs]
    return denoiser.get_layer("class_embedding").input_dim - 1 if "label" in names else 0


def image_size_of(denoiser: keras.Model) -> int:
    """The side of the images the denoiser takes."""
    return int(next(t for t in denoiser.inputs if t.name == "noisy").shape[1])
