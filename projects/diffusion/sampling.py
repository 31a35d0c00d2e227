"""Sampling: from seeded Gaussian noise to images, by DDIM (any number of steps) or ancestral DDPM (all T steps).

- DDIM (Song et al., 2021): at each of `steps` timesteps from T-1 down to 0, the denoiser's noise gives an
  estimate of the clean image x0 (clipped to [-1, 1]); the next, less noisy image mixes x0 with that noise at the
  next timestep's level. With eta = 0 nothing random is added: the same seed always gives the same image, and
  fewer steps trade quality for time.
- Ancestral DDPM (Ho et al., 2020): every one of the T steps, the posterior mean plus fresh noise.
- Classifier-free guidance (Ho & Salimans, 2022): the noise predicted with the class and without it ("no class",
  id `num_classes`), eps = eps_uncond + w (eps_cond - eps_uncond): w = 0 ignores the class, w = 1 is the plain
  conditional model, w > 1 follows the class more closely (less variety).
- Guidance interval (Kynkaanniemi et al., 2024): guidance only at the timesteps of `sampling.guidance_interval`
  (fractions of T), the plain conditional model (w = 1) elsewhere. Guiding the noisiest steps pulls every seed of a
  class towards one layout (less variety, worse FID); leaving them out lets a stronger guidance shape the details.

The step arithmetic is TensorFlow's, shared by the Python loop here and the loop in the SavedModel's graph
(serving_model.py). `Denoise` is any (noisy, timestep, label or None) -> noise function: Keras, or an exported
format's (export.py).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from common.image_grids import to_uint8

from .model import image_size_of, num_classes_of

Denoise = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]


def keras_denoise(denoiser: keras.Model) -> Denoise:
    """The Keras denoiser as a `Denoise` function (one traced graph, batches of up to 256)."""
    conditional = num_classes_of(denoiser) > 0
    call = tf.function(lambda inputs: denoiser(inputs, training=False)["noise"], reduce_retracing=True)

    def denoise(noisy, timestep, label):
        out = []
        for i in range(0, len(noisy), 256):
            inputs = {
                "noisy": tf.constant(noisy[i : i + 256], tf.float32),
                "timestep": tf.constant(timestep[i : i + 256], tf.int32),
            }
            if conditional:
                inputs["label"] = tf.constant(label[i : i + 256], tf.int32)
            out.append(call(inputs).numpy())
        return np.concatenate(out)

    return denoise


def timestep_at(i, steps, timesteps):
    """The i-th of `steps` DDIM timesteps, from T-1 down to 0 evenly, in integer arithmetic (numpy or TensorFlow
    alike, so the graph's loop visits exactly the Python loop's timesteps); past the last step: T ("clean")."""
    last = timesteps - 1
    if isinstance(i, tf.Tensor):
        return tf.where(i >= steps, timesteps, last - (last * i) // tf.maximum(steps - 1, 1))
    return timesteps if i >= steps else last - (last * i) // max(steps - 1, 1)


def noise_from_seeds(seeds, size: int) -> tf.Tensor:
    """(n,) int seeds -> (n, size, size, 3) float32 N(0, 1) noise, each image from its own seed (stateless, so the
    Python loop and the SavedModel draw the same noise for a seed)."""
    seeds = tf.cast(tf.reshape(seeds, (-1,)), tf.int32)
    return tf.map_fn(
        lambda s: tf.random.stateless_normal((size, size, 3), tf.stack([s, tf.constant(0, tf.int32)])),
        seeds,
        fn_output_signature=tf.float32,
    )


def guided(eps_cond: tf.Tensor, eps_uncond: tf.Tensor, guidance) -> tf.Tensor:
    """Classifier-free guidance: eps_uncond + w (eps_cond - eps_uncond), w a scalar or (batch,) scale."""
    w = tf.reshape(tf.cast(guidance, tf.float32), (-1, 1, 1, 1))
    return eps_uncond + w * (eps_cond - eps_uncond)


def guided_timesteps(interval: tuple[float, ...], timesteps: int) -> tuple[int, int]:
    """`sampling.guidance_interval` (fractions of T) -> the first and last timestep guided (inclusive)."""
    return round(interval[0] * timesteps), round(interval[1] * timesteps)


def is_guided(t, bounds: tuple[int, int]):
    """Whether timestep t lies within `bounds` (guided_timesteps): a Python bool for an int t, a boolean tensor for
    a tensor, so that the graph's loop guides exactly the Python loop's steps."""
    lo, hi = bounds
    return (t >= lo) & (t <= hi)


def ddim_step(x: tf.Tensor, eps: tf.Tensor, abar: tf.Tensor, abar_prev: tf.Tensor, eta=0.0, z=None):
    """One DDIM step from x_t (batch, h, w, 3) with predicted noise `eps`: (x_prev, x0 estimate).

    `abar`, `abar_prev`: the schedule's abar at this timestep and the next one visited (1.0 past the last).
    """
    x0 = tf.clip_by_value((x - tf.sqrt(1.0 - abar) * eps) / tf.sqrt(abar), -1.0, 1.0)
    eps = (x - tf.sqrt(abar) * x0) / tf.sqrt(1.0 - abar)  # the noise consistent with the clipped x0
    sigma = eta * tf.sqrt((1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev))
    x_prev = tf.sqrt(abar_prev) * x0 + tf.sqrt(tf.maximum(1.0 - abar_prev - sigma**2, 0.0)) * eps
    if z is not None:
        x_prev += sigma * z
    return x_prev, x0


class Sampler:
    """DDIM and ancestral DDPM over a `Denoise` function and the schedule's abar (T,), guiding the timesteps of
    `guidance_interval` (fractions of T; the default guides every step)."""

    def __init__(
        self,
        denoise: Denoise,
        alphas_cumprod: np.ndarray,
        num_classes: int,
        size: int,
        guidance_interval: tuple[float, ...] = (0.0, 1.0),
    ) -> None:
        self.denoise, self.num_classes, self.size = denoise, num_classes, size
        self.abar = np.asarray(alphas_cumprod, np.float32)
        self.timesteps = len(self.abar)
        self.abar_ext = np.append(self.abar, np.float32(1.0))  # index T: the clean image
        self.guided = guided_timesteps(guidance_interval, self.timesteps)

    @classmethod
    def for_keras(
        cls, denoiser: keras.Model, alphas_cumprod: np.ndarray, guidance_interval: tuple[float, ...] = (0.0, 1.0)
    ) -> Sampler:
        denoise = keras_denoise(denoiser)
        return cls(denoise, alphas_cumprod, num_classes_of(denoiser), image_size_of(denoiser), guidance_interval)

    def noise(self, x: tf.Tensor, t: int, labels: np.ndarray | None, guidance: float) -> tf.Tensor:
        """The (guided) predicted noise in x at timestep t."""
        n = x.shape[0]
        timestep = np.full(n, t, np.int32)
        if not self.num_classes:
            return tf.constant(self.denoise(x.numpy(), timestep, None))
        if guidance == 1.0 or not is_guided(t, self.guided):  # the plain conditional model: one pass
            return tf.constant(self.denoise(x.numpy(), timestep, labels))
        both = np.concatenate([x.numpy(), x.numpy()])
        ids = np.concatenate([labels, np.full(n, self.num_classes, np.int32)])
        eps = self.denoise(both, np.concatenate([timestep, timestep]), ids)
        return guided(tf.constant(eps[:n]), tf.constant(eps[n:]), guidance)

    def ddim(
        self,
        x: tf.Tensor,
        labels: np.ndarray | None,
        steps: int,
        eta: float = 0.0,
        guidance: float = 1.0,
        seed: int = 0,
        trace: list | None = None,
    ) -> tf.Tensor:
        """x_T (n, h, w, 3) -> x_0 in [-1, 1] after `steps` DDIM steps; `trace` collects (x_t, x0 estimate)."""
        rng = tf.random.Generator.from_seed(seed)
        for i in range(steps):
            t, t_next = timestep_at(i, steps, self.timesteps), timestep_at(i + 1, steps, self.timesteps)
            eps = self.noise(x, t, labels, guidance)
            z = rng.normal(x.shape) if eta > 0 else None
            x, x0 = ddim_step(x, eps, self.abar_ext[t], self.abar_ext[t_next], eta, z)
            if trace is not None:
                trace.append((x, x0))
        return x

    def ddpm(self, x: tf.Tensor, labels: np.ndarray | None, guidance: float = 1.0, seed: int = 0) -> tf.Tensor:
        """x_T -> x_0 by ancestral sampling through all T steps (posterior mean plus fresh noise)."""
        rng = tf.random.Generator.from_seed(seed)
        for t in reversed(range(self.timesteps)):
            abar, abar_prev = self.abar_ext[t], (self.abar_ext[t - 1] if t else np.float32(1.0))
            beta = 1.0 - abar / abar_prev
            eps = self.noise(x, t, labels, guidance)
            x0 = tf.clip_by_value((x - np.sqrt(1 - abar) * eps) / np.sqrt(abar), -1.0, 1.0)
            mean = (beta * np.sqrt(abar_prev) * x0 + (1 - abar_prev) * np.sqrt(1 - beta) * x) / (1 - abar)
            x = mean + (np.sqrt(beta * (1 - abar_prev) / (1 - abar)) * rng.normal(x.shape) if t else 0.0)
        return x


def class_labels(count: int, num_classes: int, label: int = -1, class_probs: np.ndarray | None = None, seed: int = 0):
    """(count,) int32 class ids: `label` for every image, or (-1) drawn with `class_probs` / cycling through the
    classes; None for an unconditional model."""
    if not num_classes:
        return None
    if label >= 0:
        return np.full(count, label, np.int32)
    if class_probs is not None:
        return np.random.default_rng(seed).choice(num_classes, size=count, p=class_probs).astype(np.int32)
    return (np.arange(count) % num_classes).astype(np.int32)


def generate(
    sampler: Sampler,
    seeds: np.ndarray,
    labels: np.ndarray | None,
    steps: int,
    eta: float = 0.0,
    guidance: float = 1.0,
    batch: int = 256,
) -> np.ndarray:
    """(n,) seeds [and class ids] -> (n, size, size, 3) uint8 images by DDIM, in batches of `batch`."""
    out = []
    for i in range(0, len(seeds), batch):
        x = noise_from_seeds(seeds[i : i + batch], sampler.size)
        chunk = None if labels is None else labels[i : i + batch]
        out.append(to_uint8(sampler.ddim(x, chunk, steps, eta, guidance, seed=int(seeds[i]))))
    return np.concatenate(out)
