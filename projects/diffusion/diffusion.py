"""The diffusion model as one Keras model with its own `train_step`: the denoiser, its optimizer and its EMA copy.

One step: a batch of real images x0 in [-1, 1], a random timestep t per image, Gaussian noise eps; the noisy
images x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (schedule.py) go through the denoiser, whose loss is the
mean squared error to eps (loss.py; weighted per timestep by Min-SNR-gamma if `min_snr_gamma` > 0). A
class-conditional denoiser sees "no class" (id `num_classes`) for a `class_dropout` share of the batch, so one
network learns both what classifier-free guidance needs. Then the EMA weights move towards the denoiser's:
`ema = d * ema + (1 - d) * w`, d warming up as min(ema_decay, (1 + step) / (10 + step)). The EMA denoiser draws
the progress grids, is scored and exported.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .loss import min_snr_weights, noise_mse


class Diffusion(keras.Model):
    """Trains `denoiser` to predict noise; `ema_denoiser` (same architecture) keeps the moving average.

    Batches are (images (batch, size, size, 3) float32 in [-1, 1], labels (batch,) int32). Not saved as a whole:
    training keeps it in the resume backup, and `model.keras` holds the EMA denoiser alone.
    """

    def __init__(
        self,
        denoiser: keras.Model,
        ema_denoiser: keras.Model,
        alphas_cumprod: np.ndarray,
        num_classes: int = 0,
        class_dropout: float = 0.1,
        ema_decay: float = 0.999,
        min_snr_gamma: float = 0.0,
    ) -> None:
        super().__init__(name="diffusion")
        self.denoiser, self.ema_denoiser = denoiser, ema_denoiser
        self.ema_denoiser.trainable = False
        self.abar = tf.constant(alphas_cumprod, tf.float32)
        self.timesteps = len(alphas_cumprod)
        self.num_classes, self.class_dropout, self.ema_decay = num_classes, class_dropout, ema_decay
        self.min_snr_gamma = min_snr_gamma
        self.ema_denoiser.set_weights(denoiser.get_weights())
        self.tracker = keras.metrics.Mean(name="loss")
        self.step_loss = tf.Variable(0.0, trainable=False, name="step_loss")  # the last step's, for the step log
        self.built = True

    def compile(self, optimizer: keras.optimizers.Optimizer) -> None:
        super().compile(optimizer=optimizer)
        # Built now, so that a resume backup can be loaded into it before the first step.
        optimizer.build(self.denoiser.trainable_variables)

    @property
    def metrics(self) -> list:
        return [self.tracker]

    @staticmethod
    def noisy(images: tf.Tensor, abar: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps for (batch, h, w, 3) images and their (batch,) abar_t."""
        abar = tf.reshape(abar, (-1, 1, 1, 1))
        return tf.sqrt(abar) * images + tf.sqrt(1.0 - abar) * noise

    def train_step(self, data):
        images, labels = data
        n = tf.shape(images)[0]
        timestep = tf.random.uniform((n,), 0, self.timesteps, dtype=tf.int32)
        noise = tf.random.normal(tf.shape(images))
        abar = tf.gather(self.abar, timestep)
        inputs = {"noisy": self.noisy(images, abar, noise), "timestep": timestep}
        if self.num_classes:
            dropped = tf.random.uniform((n,)) < self.class_dropout
            inputs["label"] = tf.where(dropped, self.num_classes, tf.cast(labels, tf.int32))
        with tf.GradientTape() as tape:
            weights = min_snr_weights(abar, self.min_snr_gamma)
            loss = noise_mse(noise, self.denoiser(inputs, training=True)["noise"], weights)
        variables = self.denoiser.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        step = tf.cast(self.optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema_decay, (1.0 + step) / (10.0 + step))
        for ema, weight in zip(self.ema_denoiser.weights, self.denoiser.weights, strict=True):
            ema.assign(decay * ema + (1.0 - decay) * weight)
        self.step_loss.assign(loss)
        self.tracker.update_state(loss)
        return {"loss": self.tracker.result()}
