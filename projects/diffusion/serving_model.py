"""The served SavedModel: seeds (and classes, DDIM steps, guidance) in, uint8 images out, the DDIM loop in the graph.

Signature `serving_default`:
    seed (batch,) int32: each image's noise, `sampling.noise_from_seeds` (the same image as `generate` draws);
    steps (batch,) int32: DDIM steps, one value for the whole batch, in [1, T];
    label (batch,) int32 and guidance (batch,) float32 >= 0: class-conditional models only, guidance applied at
    the timesteps of the export's `sampling.guidance_interval` (the plain conditional model elsewhere);
    -> image (batch, size, size, 3) uint8.
A request outside those ranges fails with InvalidArgument naming the range (the server's 400).
TF Lite, TF.js and ONNX get the denoiser alone (export.py): their clients run the loop (the browser page does).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .model import image_size_of, num_classes_of
from .sampling import ddim_step, guided, guided_timesteps, is_guided, noise_from_seeds, timestep_at


def to_pixels(images: tf.Tensor) -> tf.Tensor:
    """(batch, h, w, 3) float32 in [-1, 1] -> uint8 in [0, 255]: scaled, clipped, rounded to the nearest level."""
    return tf.cast(tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def sampling_function(
    denoiser: keras.Model, alphas_cumprod: np.ndarray, guidance_interval: tuple[float, ...] = (0.0, 1.0)
):
    """The graph's sampler: (seed, steps[, label, guidance]) -> {"image"}, checking its inputs first."""
    timesteps = len(alphas_cumprod)
    guided_steps = guided_timesteps(guidance_interval, timesteps)
    size, num_classes = image_size_of(denoiser), num_classes_of(denoiser)
    abar = tf.constant(np.append(alphas_cumprod, 1.0), tf.float32)

    def sample(seed: tf.Tensor, steps: tf.Tensor, label: tf.Tensor | None = None, guidance: tf.Tensor | None = None):
        n = tf.shape(seed)[0]
        count = steps[0]
        checks = [
            tf.debugging.assert_equal(tf.shape(steps)[0], n, message="give one steps value per seed"),
            tf.debugging.assert_equal(steps, count, message="steps must be the same for every image of a request"),
            tf.debugging.assert_greater_equal(count, 1, message=f"steps must be in [1, {timesteps}]"),
            tf.debugging.assert_less_equal(count, timesteps, message=f"steps must be in [1, {timesteps}]"),
        ]
        if num_classes:
            checks += [
                tf.debugging.assert_greater_equal(
                    label, 0, message=f"label must be a class id in [0, {num_classes - 1}]"
                ),
                tf.debugging.assert_less(
                    label, num_classes, message=f"label must be a class id in [0, {num_classes - 1}]"
                ),
                tf.debugging.assert_non_negative(guidance, message="guidance must be >= 0 (0: unconditional)"),
            ]
        with tf.control_dependencies(checks):
            x = noise_from_seeds(seed, size)

        def body(i, x):
            t, t_next = timestep_at(i, count, timesteps), timestep_at(i + 1, count, timesteps)
            if num_classes:

                def with_guidance():  # the class and "no class" in one doubled batch
                    both, ids = tf.concat([x, x], 0), tf.concat([label, tf.fill([n], num_classes)], 0)
                    eps = denoiser({"noisy": both, "timestep": tf.fill([2 * n], t), "label": ids}, training=False)
                    return guided(eps["noise"][:n], eps["noise"][n:], guidance)

                def conditional():  # outside the guidance interval: the plain conditional model, half the work
                    return denoiser({"noisy": x, "timestep": tf.fill([n], t), "label": label}, training=False)["noise"]

                eps = tf.cond(is_guided(t, guided_steps), with_guidance, conditional)
            else:
                eps = denoiser({"noisy": x, "timestep": tf.fill([n], t)}, training=False)["noise"]
            x, _ = ddim_step(x, eps, abar[t], abar[t_next])
            return i + 1, x

        _, x = tf.while_loop(lambda i, _: i < count, body, [tf.constant(0), x])
        return {"image": to_pixels(x)}

    return sample


def input_specs(denoiser: keras.Model) -> list[tf.TensorSpec]:
    """seed, steps [, label, guidance]: (batch,) each."""
    specs = [tf.TensorSpec((None,), tf.int32, name="seed"), tf.TensorSpec((None,), tf.int32, name="steps")]
    if num_classes_of(denoiser):
        specs += [tf.TensorSpec((None,), tf.int32, name="label"), tf.TensorSpec((None,), tf.float32, name="guidance")]
    return specs


def write_sampler_savedmodel(
    denoiser: keras.Model,
    alphas_cumprod: np.ndarray,
    directory: Path,
    guidance_interval: tuple[float, ...] = (0.0, 1.0),
) -> None:
    """Write the signature above, the (EMA) denoiser's weights inside, to `directory`."""
    archive = keras.export.ExportArchive()
    archive.track(denoiser)
    archive.add_endpoint(
        "serving_default",
        sampling_function(denoiser, alphas_cumprod, guidance_interval),
        input_signature=input_specs(denoiser),
    )
    archive.write_out(str(directory), verbose=False)
