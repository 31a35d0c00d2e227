"""Pretraining of the backbone: SimCLR (Chen et al., 2020) on unlabelled images, or supervised on other classes.

`pretrain.method=simclr`: each image of a batch is augmented twice (random crop,
flip, shift, colour jitter, grey); the backbone and a projection head map both
views to vectors, and the NT-Xent loss pulls the two views of an image together
while pushing them away from every other image of the batch. What the backbone
learns on the way (shapes, parts, textures that survive the augmentations) is
what a classifier needs; no label is used.

`pretrain.method=supervised`: what ImageNet weights are, made offline: the
backbone and a softmax head learn to name pictures of *other* classes than the
classifier's (the emoji packages' subcategories and the openclipart categories
it does not use, `supervised_pool` in data.py), one augmented view each.

Either head is thrown away: `train` with `model.weights=pretrained` loads the
backbone's weights, trains a head on the frozen backbone (a linear probe) and
then fine-tunes it.

`pretrain` writes under `<output>/pretrain/`: backbone.weights.h5, pretrain.json
(the settings, the pool, the loss and accuracy per epoch), history.csv and the
resume backup: a killed run resumes, and a finished one with the same settings
is not repeated.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from common.config import ConfigError
from common.paths import ArtifactPaths
from common.plots import read_history
from common.training import backup_epoch, keep_finished_epochs

from .config import ClassifierConfig, PretrainConfig
from .data import pretrain_pool, supervised_pool
from .model import build_encoder

WHITE = 255.0  # what a shifted view uncovers: the white the images were padded with
BACKBONE_FILE = "backbone.weights.h5"
NOT_SUMMARISED = ("epoch", "learning_rate")  # history.csv columns pretrain.json leaves out (it keeps loss, accuracy)


def pretrain_paths(paths: ArtifactPaths) -> ArtifactPaths:
    """Where `pretrain` writes: `<output>/pretrain/` (its own history, backup and summary)."""
    return ArtifactPaths(paths.root / "pretrain", paths.serving_root)


def backbone_file(paths: ArtifactPaths) -> Path:
    """The pretrained backbone's weights, as `model.weights=pretrained` reads them."""
    return pretrain_paths(paths).root / BACKBONE_FILE


def settings(cfg: ClassifierConfig) -> dict:
    """The keys a pretrained backbone depends on: the pool's source, the architecture, `pretrain.*`.

    Not the labelled-training keys (`data.label_fraction`, `train.*`): runs with fewer labels share one backbone.
    """
    d = cfg.data
    return {
        "data": {
            "dir": d.dir,
            "classes": list(d.classes),
            "image_size": d.image_size,
            "max_per_class": d.max_per_class,
            "val_fraction": d.val_fraction,
            "test_fraction": d.test_fraction,
            "split_seed": d.split_seed,
            "max_pixels": d.max_pixels,
        },
        "model": architecture(cfg),
        "pretrain": dataclasses.asdict(cfg.pretrain),
    }


def architecture(cfg: ClassifierConfig) -> dict:
    """The `model.*` keys that shape the backbone's weights (a backbone loads only into the same architecture)."""
    m = cfg.model
    keys = {"backbone": m.backbone}
    if m.backbone == "mobilenet_v3_small":
        keys |= {"alpha": m.alpha, "minimalistic": m.minimalistic}
    if m.backbone == "vit":
        keys |= {"image_size": cfg.data.image_size, "vit_patch_size": m.vit_patch_size, "vit_dim": m.vit_dim}
        keys |= {"vit_depth": m.vit_depth, "vit_heads": m.vit_heads}
    return keys


def view_augmentation(pcfg: PretrainConfig) -> keras.Sequential:
    """Two calls give two views of a batch: (batch, size, size, 3) float32 in [0, 255] -> the same shape and range."""
    jitter = pcfg.color_jitter
    steps = [
        layers.RandomFlip("horizontal"),
        layers.RandomZoom((-(1 - pcfg.crop_scale), 0.0), fill_mode="constant", fill_value=WHITE),  # zoom in: crop
        layers.RandomTranslation(0.15, 0.15, fill_mode="constant", fill_value=WHITE),
    ]
    if jitter:
        steps.append(
            layers.RandomColorJitter(
                value_range=(0, 255),
                brightness_factor=jitter,
                contrast_factor=jitter,
                saturation_factor=(max(0.0, 0.5 - jitter), 0.5 + jitter),
                hue_factor=jitter / 4,
            )
        )
    if pcfg.grayscale:
        steps.append(layers.RandomGrayscale(pcfg.grayscale))
    return keras.Sequential(steps, name="views")


def nt_xent(z1: tf.Tensor, z2: tf.Tensor, temperature: float) -> tuple[tf.Tensor, tf.Tensor]:
    """NT-Xent, SimCLR's loss, over the projections of two views: z1, z2 (batch, dim) -> (loss, accuracy) scalars.

    Each of the 2 * batch vectors must pick its twin out of the other 2 * batch - 1 by cosine similarity / temperature
    (cross-entropy); accuracy is the share that does.
    """
    z = tf.math.l2_normalize(tf.concat([z1, z2], axis=0), axis=1)  # (2b, dim)
    n = tf.shape(z)[0]
    similarity = tf.matmul(z, z, transpose_b=True) / temperature - 1e9 * tf.eye(n)  # never pick itself
    half = n // 2
    twins = tf.concat([tf.range(half, n), tf.range(half)], axis=0)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(twins, similarity))
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(similarity, axis=1, output_type=tf.int32), twins), tf.float32))
    return loss, accuracy


class SimCLR(keras.Model):
    """The encoder, a projection head and the two views; `fit` on batches of images (batch, size, size, 3) uint8."""

    def __init__(self, encoder: keras.Model, pcfg: PretrainConfig, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.views = view_augmentation(pcfg)
        self.projection = keras.Sequential(
            [layers.Dense(pcfg.projection_hidden, activation="relu"), layers.Dense(pcfg.projection_dim)],
            name="projection",
        )
        self.temperature = pcfg.temperature
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="contrastive_accuracy")

    @property
    def metrics(self) -> list:
        return [self.loss_tracker, self.accuracy_tracker]

    def call(self, images, training: bool = False):
        """(batch, size, size, 3) in [0, 255] -> (batch, projection_dim) projections."""
        return self.projection(self.encoder(images, training=training), training=training)

    def train_step(self, images):
        images = tf.cast(images, tf.float32)
        view1, view2 = self.views(images, training=True), self.views(images, training=True)
        with tf.GradientTape() as tape:
            loss, accuracy = nt_xent(self(view1, training=True), self(view2, training=True), self.temperature)
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(accuracy)
        return {m.name: m.result() for m in self.metrics}


def supervised_model(encoder: keras.Model, pcfg: PretrainConfig, classes: int) -> keras.Model:
    """The encoder under a softmax head: (batch, size, size, 3) in [0, 255] -> (batch, classes) logits.

    In training each batch is augmented first (one view of `view_augmentation`).
    """
    inputs = keras.Input(encoder.input_shape[1:], name="image")
    features = encoder(view_augmentation(pcfg)(inputs))
    logits = layers.Dense(classes, name="other_classes")(layers.Dropout(0.2)(features))
    return keras.Model(inputs, logits, name="supervised")


def _task(cfg: ClassifierConfig, encoder: keras.Model) -> tuple[keras.Model, np.ndarray, np.ndarray | None, dict]:
    """The model `pretrain.method` trains around `encoder`, its images, their labels (None for SimCLR), and the
    pool's description.

    Raises:
        ConfigError: `pretrain.extra_dir` with the supervised method (its images have no labels).
    """
    pcfg = cfg.pretrain
    if pcfg.method == "supervised":
        if pcfg.extra_dir:
            raise ConfigError(
                f"pretrain.extra_dir={pcfg.extra_dir}: unlabelled images, which pretrain.method=supervised cannot "
                "learn from; pretrain them with pretrain.method=simclr, or leave pretrain.extra_dir empty"
            )
        images, labels, class_names, about = supervised_pool(cfg)
        return supervised_model(encoder, pcfg, len(class_names)), images, labels, about
    images, about = pretrain_pool(cfg)
    return SimCLR(encoder, pcfg, name="simclr"), images, None, about


def _finished(out: ArtifactPaths, cfg: ClassifierConfig) -> bool:
    summary = out.root / "pretrain.json"
    if not (summary.exists() and (out.root / BACKBONE_FILE).exists()):
        return False
    return json.loads(summary.read_text()).get("settings") == settings(cfg)


def check_pretrained(cfg: ClassifierConfig, paths: ArtifactPaths) -> Path | None:
    """The pretrained backbone's file if `pretrain` finished for `cfg`'s settings, else None.

    Raises:
        ConfigError: the backbone there was pretrained for another architecture (it would not load).
    """
    out = pretrain_paths(paths)
    summary = out.root / "pretrain.json"
    if not summary.exists() or not (out.root / BACKBONE_FILE).exists():
        return None
    stored = json.loads(summary.read_text()).get("settings", {}).get("model")
    if stored != architecture(cfg):
        raise ConfigError(
            f"the backbone in {out.root} was pretrained as {stored}, but model.* now asks for {architecture(cfg)}; "
            f"pretrain again (`python -m projects.classifier pretrain` with these settings) or set model.* to match"
        )
    return out.root / BACKBONE_FILE if _finished(out, cfg) else None


def pretrain(cfg: ClassifierConfig, paths: ArtifactPaths) -> Path:
    """`pretrain.method` (SimCLR or supervised), resuming a killed run; returns the backbone's weights file.

    A finished run with the same `settings(cfg)` is kept as it is.
    """
    out = pretrain_paths(paths)
    pcfg = cfg.pretrain
    if _finished(out, cfg):
        print(f"Pretrained backbone already in {out.root} for these settings; delete the folder to pretrain again.")
        return out.root / BACKBONE_FILE
    keras.utils.set_random_seed(pcfg.seed)
    encoder, backbone = build_encoder(cfg.model, cfg.data.image_size)
    model, pool, labels, about = _task(cfg, encoder)
    if len(pool) < pcfg.batch_size:
        more = "add images with pretrain.extra_dir=PATH" if labels is None else "raise pretrain.max_images"
        raise ConfigError(
            f"the pretraining pool has {len(pool)} images, fewer than pretrain.batch_size={pcfg.batch_size}; "
            f"lower the batch size or {more}"
        )
    classes = f", {about['classes']} classes" if "classes" in about else ""
    sources = ", ".join(f"{k}: {v}" for k, v in about["sources"].items())
    print(f"Pretraining pool ({pcfg.method}): {about['images']} images{classes} ({sources})")

    steps = len(pool) // pcfg.batch_size
    warmup = min(steps, steps * pcfg.epochs // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, steps * pcfg.epochs - warmup), warmup_target=pcfg.learning_rate, warmup_steps=warmup
    )
    if labels is None:  # SimCLR: the loss is computed in its train_step
        model.compile(optimizer=keras.optimizers.Adam(schedule))
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=["accuracy"])
    model(tf.zeros((1, *pool.shape[1:])))  # build the variables, so a backup can be restored into them
    model.optimizer.build(model.trainable_variables)

    done = backup_epoch(out)
    if done is None and out.history_csv.exists():
        out.history_csv.unlink()  # a fresh run: an old history would mix two runs in one curve
    elif done is not None:
        print(f"Resuming from the backup in {out.backup_dir}: {done} of {pcfg.epochs} epochs already done.")
        keep_finished_epochs(out)
    out.root.mkdir(parents=True, exist_ok=True)
    batches = (
        tf.data.Dataset.from_tensor_slices(pool if labels is None else (pool, labels))
        .shuffle(len(pool), seed=pcfg.seed, reshuffle_each_iteration=True)
        .batch(pcfg.batch_size, drop_remainder=True)  # NT-Xent needs whole batches of negatives
        .prefetch(tf.data.AUTOTUNE)
    )
    callbacks = [  # the backup last: an epoch counts as done for resuming only once its row is written
        keras.callbacks.CSVLogger(str(out.history_csv), append=True),
        keras.callbacks.BackupAndRestore(str(out.backup_dir), double_checkpoint=True),
    ]
    start = time.perf_counter()
    try:
        model.fit(batches, epochs=pcfg.epochs, callbacks=callbacks, verbose=2 if os.environ.get("CI") else 1)
    except KeyboardInterrupt:
        print(f"\nInterrupted. The last finished epoch is kept in {out.backup_dir}; rerun the same command to resume.")
        raise
    seconds = time.perf_counter() - start

    weights = out.root / BACKBONE_FILE
    tmp = out.root / f".tmp-{os.getpid()}.{BACKBONE_FILE}"
    backbone.save_weights(tmp)
    os.replace(tmp, weights)
    history = {key: values for key, values in read_history(out.history_csv).items() if values}
    summary = {
        "settings": settings(cfg),
        "pool": about,
        "train_seconds": round(seconds, 2),
        "resumed_from_epoch": done,
        **{key: [round(x, 4) for x in values] for key, values in history.items() if key not in NOT_SUMMARISED},
    }
    (out.root / "pretrain.json").write_text(json.dumps(summary, indent=2))
    shutil.rmtree(out.backup_dir, ignore_errors=True)
    print(f"Backbone written to {weights}; train from it with --set model.weights=pretrained")
    return weights


def pretrained_encoder(cfg: ClassifierConfig, weights: Path | None) -> keras.Model:
    """`build_encoder` for `cfg.model`, its backbone loaded from `weights` (None: randomly initialised, seeded)."""
    keras.utils.set_random_seed(cfg.pretrain.seed)
    encoder, backbone = build_encoder(cfg.model, cfg.data.image_size)
    if weights is not None:
        backbone.load_weights(weights)
    return encoder


def encode(encoder: keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Pooled backbone features: (n, size, size, 3) uint8 or float in [0, 255] -> (n, channels) float32."""
    return encoder.predict(images.astype(np.float32), batch_size=batch_size, verbose=0)
