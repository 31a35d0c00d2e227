"""The GAN as one Keras model with its own `train_step`: both networks, their optimizers and the EMA generator.

One step (TensorFlow backend, `tf.GradientTape`): a batch of noise becomes fake images; real and fake
images alike pass through DiffAugment (augmentation.py; differentiable, so the generator learns through it)
and the discriminator scores them; its loss pushes real scores up and fake ones down, the
generator's loss pushes fake scores up (loss.py); both networks take one optimizer step from the
same forward pass. Then the EMA generator's weights move towards the generator's:
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
    ) -> None:
        """`discriminator_loss(real, fake)` and `generator_loss(fake)` take the (batch, 1) logits, see loss.py;
        `augment` maps a (batch, size, size, 3) batch to the same shape (DiffAugment), or None for none.
        `lecam_weight` > 0 adds LeCam's term to the discriminator's loss (`_lecam`)."""
        super().__init__(name="gan")
        self.generator, self.discriminator, self.ema_generator = generator, discriminator, ema_generator
        self.discriminator_loss, self.generator_loss = discriminator_loss, generator_loss
        self.ema_decay = ema_decay
        self.conditional = conditional
        self.augment = augment or (lambda x: x)
        self.class_loss_weight = class_loss_weight
        self.lecam_weight = lecam_weight
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

    def train_step(self, data: tuple[tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        images, labels = data
        noise = tf.random.normal((tf.shape(images)[0], self.latent_dim))
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(self._with_label(noise, labels), training=True)
            real_score = self.discriminator(self._with_label(self.augment(images), labels), training=True)
            fake_score = self.discriminator(self._with_label(self.augment(fake), labels), training=True)
            twin = isinstance(fake_score, list | tuple) and len(fake_score) == 3
            if self.class_loss_weight > 0:  # the auxiliary head: classify real images, name the asked class on fakes
                real_score, real_classes = real_score[0], real_score[1]
                fake_score, fake_classes, *fake_twin = fake_score
            d_loss = self.discriminator_loss(real_score, fake_score)
            g_loss = self.generator_loss(fake_score)
            if self.class_loss_weight > 0:
                d_loss += self.class_loss_weight * _cross_entropy(labels, real_classes)
                g_loss += self.class_loss_weight * _cross_entropy(labels, fake_classes)
            if twin:  # TAC-GAN: the twin head learns the fakes' classes; G cancels the entropy the first head rewards
                twin_loss = _cross_entropy(labels, fake_twin[0])
                d_loss += self.class_loss_weight * twin_loss
                g_loss -= self.class_loss_weight * twin_loss
            if self.lecam_weight > 0:
                d_loss += self.lecam_weight * self._lecam(real_score, fake_score)
        d_vars, g_vars = self.discriminator.trainable_variables, self.generator.trainable_variables
        self.d_optimizer.apply(d_tape.gradient(d_loss, d_vars), d_vars)
        self.g_optimizer.apply(g_tape.gradient(g_loss, g_vars), g_vars)
        self._update_ema()

        self.step_losses.assign(tf.stack([d_loss, g_loss]))
        for name, value in (("d_loss", d_loss), ("g_loss", g_loss), ("real_score", real_score)):
            self.trackers[name].update_state(value)
        self.trackers["fake_score"].update_state(fake_score)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _update_ema(self) -> None:
        step = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema_decay, (1.0 + step) / (10.0 + step))
        for ema, weight in zip(self.ema_generator.weights, self.generator.weights, strict=True):
            ema.assign(decay * ema + (1.0 - decay) * weight)
