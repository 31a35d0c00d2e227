"""The GAN as one Keras model with its own `train_step`: both networks, their optimizers and the EMA generator.

One step (TensorFlow backend, `tf.GradientTape`): a batch of noise becomes fake images; real and fake
images alike pass through DiffAugment (augmentation.py; differentiable, so the generator learns through it)
and the discriminator scores them; its loss pushes real scores up and fake ones down, the
generator's loss pushes fake scores up (loss.py); with `model.reconstruction_weight` the discriminator
also redraws the real images it saw (model.py `_decoder`) and adds the mean absolute error; both networks take
one optimizer step from the same forward pass. Then the EMA generator's weights move towards the generator's:
`ema = d * ema + (1 - d) * w`, with d warming up as min(ema_decay, (1 + step) / (10 + step)),
so that short runs are not dominated by the random initial weights. The EMA generator is the one
that draws the progress grids, is scored by FID and is exported.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from .loss import lecam_penalty


def _cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean softmax cross-entropy of (batch,) int labels and (batch, classes) logits."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))


class GAN(keras.Model):
    """Trains `generator` against `discriminator`; `ema_generator` (same architecture) keeps the moving average.

    Batches are (images (batch, size, size, 3) float32 in [-1, 1], labels (batch,) int32). Not saved as a whole:
    training keeps it in the resume backup, and `model.keras` holds the EMA generator alone.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        ema_generator: keras.Model,
        discriminator_loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
        generator_loss: Callable[[tf.Tensor], tf.Tensor],
        ema_decay: float = 0.999,
        conditional: bool = False,
        augment: Callable[[tf.Tensor], tf.Tensor] | None = None,
        class_loss_weight: float = 0.0,
        lecam_weight: float = 0.0,
        reconstruction_weight: float = 0.0,
    ) -> None:
        """`discriminator` returns a dict (model.py `build_discriminator`): "score", and by config "class_logits",
        "twin_class_logits", "reconstruction". `discriminator_loss(real, fake)` and `generator_loss(fake)` take
        the (batch, 1) scores, see loss.py; `augment` maps a (batch, size, size, 3) batch to the same shape
        (DiffAugment), or None for none. `lecam_weight` > 0 adds LeCam's term to the discriminator's loss
        (`_lecam`), `reconstruction_weight` times the decoder's error (`_penalties`)."""
        super().__init__(name="gan")
        self.generator, self.discriminator, self.ema_generator = generator, discriminator, ema_generator
        self.discriminator_loss, self.generator_loss = discriminator_loss, generator_loss
        self.ema_decay = ema_decay
        self.conditional = conditional
        self.augment = augment or (lambda x: x)
        self.class_loss_weight = class_loss_weight
        self.lecam_weight = lecam_weight
        self.reconstruction_weight = reconstruction_weight
        # LeCam's anchors: moving averages of the discriminator's mean real and fake scores (saved with the weights).
        self.score_anchors = self.add_weight(shape=(2,), initializer="zeros", trainable=False, name="score_anchors")
        self.latent_dim = generator.inputs[0].shape[-1]
        self.ema_generator.set_weights(generator.get_weights())
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("d_loss", "g_loss", "real_score", "fake_score")
        }
        # The last step's losses, read by the per-step log (the trackers hold epoch means).
        self.step_losses = tf.Variable(tf.zeros(2), trainable=False, name="step_losses")
        self.built = True

    def compile(self, g_optimizer: keras.optimizers.Optimizer, d_optimizer: keras.optimizers.Optimizer) -> None:
        # Measured on 2 Intel Xeon cores (default preset, 400 steps each): jit_compile=True (XLA) ran a step in 102 ms
        # against 44 ms without; steps_per_execution=10 in 51 ms. So neither is set. One discriminator call on the real
        # and generated halves stacked, instead of two: 52.7 ms a step against 49.3 (300-step epochs; the decoder then
        # redraws the generated half too), not kept.
        super().compile()
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        # Built now, so that a resume backup can be loaded into them before the first step.
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers.values())

    def call(self, inputs: tf.Tensor | list[tf.Tensor]) -> tf.Tensor:
        """The EMA generator's images for noise [and labels]."""
        return self.ema_generator(inputs)

    def _with_label(self, x: tf.Tensor, labels: tf.Tensor) -> tf.Tensor | list[tf.Tensor]:
        return [x, labels] if self.conditional else x

    def _lecam(self, real_score: tf.Tensor, fake_score: tf.Tensor) -> tf.Tensor:
        """LeCam's penalty (loss.py) of (batch, 1) scores against the anchors: real scores are pulled towards the
        moving average of past fake scores and fake towards real; the anchors then move (decay 0.99)."""
        penalty = lecam_penalty(real_score, fake_score, self.score_anchors[0], self.score_anchors[1])
        means = tf.stop_gradient(tf.stack([tf.reduce_mean(real_score), tf.reduce_mean(fake_score)]))
        self.score_anchors.assign(0.99 * self.score_anchors + 0.01 * means)
        return penalty

    def _penalties(self, real: dict[str, tf.Tensor], fake: dict[str, tf.Tensor], shown: tf.Tensor) -> tf.Tensor:
        """The discriminator's extra loss terms from its outputs on the (augmented) real images `shown`
        (batch, size, size, 3) and on the generated ones: LeCam's, and the reconstruction's mean absolute error."""
        extra = tf.constant(0.0)
        if self.lecam_weight > 0:
            extra += self.lecam_weight * self._lecam(real["score"], fake["score"])
        if "reconstruction" in real:
            extra += self.reconstruction_weight * tf.reduce_mean(tf.abs(real["reconstruction"] - shown))
        return extra

    def train_step(self, data: tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        images, labels = data
        noise = tf.random.normal((tf.shape(images)[0], self.latent_dim))
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake_images = self.generator(self._with_label(noise, labels), training=True)
            shown = self.augment(images)
            real = self.discriminator(self._with_label(shown, labels), training=True)
            fake = self.discriminator(self._with_label(self.augment(fake_images), labels), training=True)
            d_loss = self.discriminator_loss(real["score"], fake["score"]) + self._penalties(real, fake, shown)
            g_loss = self.generator_loss(fake["score"])
            if "class_logits" in real:  # the auxiliary head: classify real images, name the asked class on fakes
                d_loss += self.class_loss_weight * _cross_entropy(labels, real["class_logits"])
                g_loss += self.class_loss_weight * _cross_entropy(labels, fake["class_logits"])
            if "twin_class_logits" in fake:  # TAC-GAN: the twin head learns the fakes' classes; G cancels the
                twin_loss = _cross_entropy(labels, fake["twin_class_logits"])  # entropy the first head rewards
                d_loss += self.class_loss_weight * twin_loss
                g_loss -= self.class_loss_weight * twin_loss
        d_vars, g_vars = self.discriminator.trainable_variables, self.generator.trainable_variables
        self.d_optimizer.apply(d_tape.gradient(d_loss, d_vars), d_vars)
        self.g_optimizer.apply(g_tape.gradient(g_loss, g_vars), g_vars)
        self._update_ema()

        self.step_losses.assign(tf.stack([d_loss, g_loss]))
        for name, value in (("d_loss", d_loss), ("g_loss", g_loss)):
            self.trackers[name].update_state(value)
        self.trackers["real_score"].update_state(real["score"])
        self.trackers["fake_score"].update_state(fake["score"])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _update_ema(self) -> None:
        step = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema_decay, (1.0 + step) / (10.0 + step))
        for ema, weight in zip(self.ema_generator.weights, self.generator.weights, strict=True):
            ema.assign(decay * ema + (1.0 - decay) * weight)
