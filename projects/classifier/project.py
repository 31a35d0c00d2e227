"""The image classifier's recipe: the data, the model, how it is trained, evaluated, exported and used to predict.

Training: the backbone and head of model.py, compiled with sparse categorical cross-entropy (integer labels
against the softmax, each class weighted by its inverse frequency) and Adam, fitted by `common.training.fit`
on augmented batches (augmentation.py), keeping the epoch of best validation accuracy. From scratch that is
one `fit`; from pretrained weights it is two: the head on the frozen backbone (a linear probe, `train.*`), then
the top backbone layers unfrozen and fine-tuned at a lower learning rate (`fine_tune.*`). `model.weights=pretrained`
starts from the backbone the `pretrain` command wrote (SimCLR or supervised, pretrain.py), pretraining first if none.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np

from common import plots
from common.config import ConfigError, to_dict
from common.data.image_folders import FolderLayoutError
from common.data.splits import DataSplits, dataset_to_numpy
from common.evaluation import classification_metrics, classification_plots
from common.export import FORMAT_NAMES, ExportPlan, standard_plan
from common.paths import ArtifactPaths
from common.project import Project, inlined_layers
from common.training import fit, make_optimizer, steps_per_epoch, strategy_scope

from . import data as classifier_data
from .augmentation import build_augmentation
from .config import ClassifierConfig, FineTuneConfig
from .gradcam import gradcam_heatmaps, overlay
from .images import prepare_image_file
from .model import (
    BACKBONE,
    PRETRAINED,
    build_model,
    class_names_of,
    imagenet_encoder,
    pretrained_weights,
    unfreeze_top,
)
from .pretrain import check_pretrained, encode, pretrain, pretrained_encoder
from .serving_model import build_serving_model, encoded_image_signature

TOP_K = 5  # classes printed by `predict`
# EfficientNet-Lite0's formats: all but TF.js with uint8 weights, which stores each weight tensor in 8 bits with one
# scale; the depthwise kernels (batch norm folded in) spread too widely for it. The default preset's model lost 5
# points of accuracy there (0.757 against 0.809, 87.5% of the answers the same, probabilities moved by up to 0.91);
# TF Lite's int8, one scale per output channel, kept 0.787. The browser page loads `tfjs` (float32) either way.
LITE0_FORMATS = tuple(name for name in FORMAT_NAMES if name != "tfjs_uint8")
GRADCAM_IMAGES = 16


class ClassifierProject(Project):
    name = "classifier"
    monitor = ("val_accuracy", "max")  # the checkpoint kept, and what early stopping watches
    metric_name = "accuracy"  # of the exported formats' class ids, in parity.md
    # Largest |probability difference| to Keras over the parity examples. A fine-tuned backbone's logits are large,
    # so 8-bit rounding moves a probability near 0.5 further than a small CNN's: the smoke model measured 0.295
    # (int8 TF Lite) and 0.111 (uint8 TF.js weights) on 18 examples. EfficientNet-Lite0 fine-tuned from ImageNet
    # (the default preset, then named `imagenet`, 408 test images) measured 0.0144 in float16 (every answer the
    # same) and 0.551 in int8 (95.1% of the answers the same, accuracy 0.787 against 0.809). A wrong scale or an
    # uncalibrated activation moves them by up to 1.
    quantized_tolerance: ClassVar[dict[str, float]] = {
        "tflite_float16": 3e-2,
        "tflite_dynamic": 0.3,
        "tflite_int8": 0.65,
        "tfjs_uint8": 0.2,
    }

    def load_data(self, cfg: ClassifierConfig) -> DataSplits:
        """Your folder, tf_flowers or openclipart-png (see data.py); a bad folder layout stops here with the fix."""
        try:
            return classifier_data.load_splits(cfg.data)
        except (FolderLayoutError, FileNotFoundError) as err:
            sys.exit(f"error: {err}")

    def build_model(self, cfg: ClassifierConfig) -> keras.Model:
        """Backbone and head: (batch, size, size, 3) in [0, 255] -> (batch, classes) probabilities, see model.py."""
        return build_model(cfg, classifier_data.class_names(cfg.data))

    def loss(self, cfg: ClassifierConfig) -> str:
        """Cross-entropy of the softmax against integer labels (no one-hot vectors needed)."""
        return "sparse_categorical_crossentropy"

    def metrics(self, cfg: ClassifierConfig) -> list:
        return ["accuracy"]

    def augmentation(self, cfg: ClassifierConfig) -> keras.Sequential | None:
        return build_augmentation(cfg)

    def class_weight(self, cfg: ClassifierConfig, data: DataSplits) -> dict[int, float] | None:
        """Inverse class frequency in the training split: rare classes count as much as common ones."""
        if not cfg.data.class_weights:
            return None
        _, labels = dataset_to_numpy(data.train)
        counts = np.bincount(labels, minlength=len(data.class_names))
        return {k: float(len(labels) / (len(counts) * c)) for k, c in enumerate(counts) if c}

    def train(self, cfg: ClassifierConfig, data: DataSplits, paths: ArtifactPaths) -> keras.Model:
        """Build, compile and fit the model; from pretrained weights, compile and fit it again to fine-tune.

        Phase one (the head on the frozen backbone) runs in `<output>/frozen_backbone/`: its own model,
        history and resume backup, skipped when it already finished with the same config. Phase two
        writes the final model.keras, and train.json adds up both.
        """
        cfg = self.with_pretrained_backbone(cfg, paths)
        try:
            pretrained_weights(cfg.model)  # a missing weights file stops here, before anything is trained
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError(str(err)) from None
        steps = steps_per_epoch(data, cfg.train.batch_size)
        options = {
            "monitor": self.monitor,
            "augmentation": self.augmentation(cfg),
            "class_weight": self.class_weight(cfg, data),
            "summary": {"project": self.name, "config": to_dict(cfg)},
        }
        two_phases = cfg.model.weights != "none" and cfg.fine_tune.epochs > 0
        # Phase one: every layer from scratch (the only phase), or the head on the frozen pretrained backbone.
        phase_one = ArtifactPaths(paths.root / "frozen_backbone", paths.serving_root) if two_phases else paths
        if not (two_phases and _finished(phase_one, cfg)):  # a finished phase one of the same config is kept
            if two_phases:
                print("Phase 1: training the head on the frozen backbone.")
            with strategy_scope(cfg.train):
                model = self.build_model(cfg)
                model.compile(
                    optimizer=make_optimizer(cfg.train, steps), loss=self.loss(cfg), metrics=self.metrics(cfg)
                )
            model = fit(model, data, cfg.train, phase_one, **options)
        if not two_phases:
            return model

        # Phase two: the top backbone layers unfrozen, at the lower `fine_tune.learning_rate`.
        ft = cfg.fine_tune
        epochs = fine_tune_epochs(ft, steps)
        print(
            f"Phase 2: fine-tuning the top {ft.layers} backbone layers at learning rate {ft.learning_rate:g}"
            f" for {epochs} epochs of {steps} steps."
        )
        fine_train = dataclasses.replace(cfg.train, epochs=epochs, learning_rate=ft.learning_rate)
        with strategy_scope(fine_train):
            # Phase one's saved model (its best epoch, if early stopping) with the top of the backbone unfrozen.
            model = unfreeze_top(keras.models.load_model(phase_one.model, compile=False), ft.layers)
            model.compile(optimizer=make_optimizer(fine_train, steps), loss=self.loss(cfg), metrics=self.metrics(cfg))
        model = fit(model, data, fine_train, paths, **options)
        _add_up_phases(phase_one, paths)
        return model

    def with_pretrained_backbone(self, cfg: ClassifierConfig, paths: ArtifactPaths) -> ClassifierConfig:
        """`cfg` with `model.weights=pretrained` replaced by the file `pretrain` wrote (pretraining first if needed)."""
        if cfg.model.weights != PRETRAINED:
            return cfg
        weights = check_pretrained(cfg, paths)
        if weights is None:
            print("No pretrained backbone for these settings yet: pretraining first.")
            weights = self._pretrain(cfg, paths)
        resolved = copy.deepcopy(cfg)
        resolved.model.weights = str(weights)
        return resolved

    def _pretrain(self, cfg: ClassifierConfig, paths: ArtifactPaths) -> Path:
        try:
            return pretrain(cfg, paths)
        except (FolderLayoutError, FileNotFoundError) as err:
            sys.exit(f"error: {err}")

    def run_command(self, command: str, cfg: ClassifierConfig, paths: ArtifactPaths, args) -> None:
        """`pretrain`: `pretrain.method` on its pool, the backbone written where `model.weights=pretrained` reads."""
        if command != "pretrain":
            super().run_command(command, cfg, paths, args)
        self._pretrain(cfg, paths)

    def backbone_features(self, cfg: ClassifierConfig, paths: ArtifactPaths, images: np.ndarray) -> np.ndarray:
        """Pooled features of the backbone `train` starts from: ImageNet's (`model.weights=imagenet`) or the one
        `pretrain` wrote under `paths`: (n, size, size, 3) -> (n, channels)."""
        if cfg.model.weights == "imagenet":
            return encode(imagenet_encoder(cfg.model, cfg.data.image_size), images)
        weights = check_pretrained(cfg, paths)
        if weights is None:
            raise ConfigError(f"no pretrained backbone for these settings in {paths.root}; run `pretrain` first")
        return encode(pretrained_encoder(cfg, weights), images)

    def evaluate(self, cfg: ClassifierConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths):
        """Classification metrics on the test split; plots: curves, confusion matrix, ROC, a Grad-CAM grid."""
        x, y = dataset_to_numpy(data.test)
        x = x.astype(np.float32)
        probs = model.predict(x, batch_size=64, verbose=0)
        names = data.class_names
        metrics = classification_metrics(y, probs, names)
        plot_paths = classification_plots(y, probs, names, paths)
        frozen_history = paths.root / "frozen_backbone" / "history.csv"
        if frozen_history.exists():
            plot_paths.append(
                plots.training_curves(frozen_history, paths.plots / "training_curves_frozen_backbone.png")
            )
        picks = np.sort(np.random.default_rng(cfg.data.split_seed).permutation(len(x))[:GRADCAM_IMAGES])
        pred = probs[picks].argmax(1)
        heat = gradcam_heatmaps(model, x[picks], pred)
        titles = [
            f"{names[p]} {probs[i, p]:.0%}" + ("" if p == y[i] else f"\n(true: {names[y[i]]})")
            for i, p in zip(picks, pred, strict=True)
        ]
        plot_paths.append(plots.image_grid(overlay(x[picks], heat), titles, paths.plots / "gradcam.png"))
        return metrics, plot_paths

    def serving_model(self, model: keras.Model, cfg: ClassifierConfig) -> keras.Model:
        """`image` (batch, size, size, 3) float32 in [0, 255] -> `probabilities` (batch, classes), `class_id`."""
        return build_serving_model(model)

    def extra_signatures(self, serving: keras.Model) -> dict[str, Callable]:
        """`serving_bytes`: encoded image files in (TF Serving's {"b64": ...}), class names out."""
        return {"serving_bytes": encoded_image_signature(serving, class_names_of(serving))}

    def demo_extras(self, model: keras.Model, cfg: ClassifierConfig) -> dict[str, list[str]]:
        """The browser page labels the probabilities with these."""
        return {"class_names": class_names_of(model)}

    def final_answer(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The class ids, (n,) int32, that every exported format must agree on."""
        return outputs["class_id"]

    def answer_metric(self, answers: np.ndarray, targets: np.ndarray) -> float:
        """Accuracy: the share of class ids equal to the test labels."""
        return float(np.mean(answers == targets))

    def export_plan(
        self, cfg: ClassifierConfig, model: keras.Model, data: DataSplits, verbose: bool = False
    ) -> ExportPlan | None:
        """None (the standard plan); EfficientNet-Lite0: the standard plan without TF.js uint8 (`LITE0_FORMATS`)."""
        if cfg.model.backbone != "efficientnet_lite0":
            return None
        return dataclasses.replace(standard_plan(self, cfg, model, data), formats=LITE0_FORMATS)

    def export_examples(self, cfg: ClassifierConfig, data: DataSplits) -> tuple[np.ndarray, np.ndarray]:
        """The test split as the serving model takes it: (n, size, size, 3) float32 in [0, 255], and the labels."""
        x, y = dataset_to_numpy(data.test)
        return x.astype(np.float32), y

    def representative_inputs(self, cfg: ClassifierConfig, data: DataSplits) -> np.ndarray:
        """200 training images, (200, size, size, 3) float32 in [0, 255], to calibrate int8 TF Lite."""
        x, _ = dataset_to_numpy(data.train.take(200))
        return x.astype(np.float32)

    def sample_inputs(self, cfg: ClassifierConfig) -> np.ndarray:
        """8 test images (a seeded choice), (8, size, size, 3) float32 in [0, 255]."""
        x, _ = dataset_to_numpy(self.load_data(cfg).test)
        return x[np.sort(np.random.default_rng(0).permutation(len(x))[:8])].astype(np.float32)

    def predict(self, cfg: ClassifierConfig, model: keras.Model, inputs: Sequence[str]) -> int:
        """Print `<file>: <class> 91.2%, <class> 4.0%, ...` (the top 5) per image, then what was done to the image.

        Any image PIL reads (PNG, JPEG, WebP, GIF: the first frame, ...), any size and colour mode, turned upright
        by its EXIF orientation. Returns how many files failed; each failure is printed with the file and reason.
        """
        names = class_names_of(model)
        size = model.input_shape[1]
        failed = 0
        for name in inputs:
            try:
                image, steps = prepare_image_file(Path(name), size, cfg.data.max_pixels)
            except (ValueError, OSError) as err:
                print(f"error: {err}")
                failed += 1
                continue
            probs = model.predict(image[None], verbose=0)[0]
            top = np.argsort(probs)[::-1][:TOP_K]
            print(f"{name}: " + ", ".join(f"{names[k]} {probs[k]:.1%}" for k in top))
            print(f"  prepared: {'; '.join(steps)}")
        return failed

    # Compression (`optimize`): the Keras 2 copy holds the backbone's layers inlined (common.keras2_bridge), so that
    # tfmot prunes and quantizes them one by one.

    def keras2_layers(self) -> dict[str, type]:
        """`ClassNames` and `ImageNetScaling` in tf_keras (keras2_layers.py)."""
        from .keras2_layers import KERAS2_LAYERS

        return KERAS2_LAYERS

    def prunable_layers(self, model: keras.Model) -> list[str]:
        """The backbone's convolutions but the first (on pixels, three channels in); the classification layer stays
        whole, as do the depthwise convolutions (the bridge prunes and measures `kernel`s, which tf_keras's
        `DepthwiseConv2D` lacks)."""
        convolutions = [layer.name for layer in inlined_layers(model) if type(layer).__name__ == "Conv2D"]
        return convolutions[1:]

    def quantized_layers(self, model: keras.Model) -> list[str]:
        """Every layer and operation of the backbone and the head but the input, `ClassNames` (the identity after
        the softmax), EfficientNet's `Normalization` and the batch norms that follow no convolution (DenseNet121's,
        after a concatenation): tfmot's 8-bit scheme has no rule for these.

        The other batch norms are quantized with their convolutions, which tfmot folds them into, as TF Lite does.
        MobileNetV3's hard swish, its hard sigmoid's `x + 3` and `* 1/6`, the squeeze-excite `Multiply` and the
        pixel `Rescaling` get the output quantizer of the bridge's `OutputQuantizeConfig`.
        """
        skipped = ("InputLayer", "ClassNames", "Normalization")
        after_convolution = _batch_norms_after_convolutions(model.get_layer(BACKBONE))
        return [
            layer.name
            for layer in inlined_layers(model)
            if type(layer).__name__ not in skipped
            and (type(layer).__name__ != "BatchNormalization" or layer.name in after_convolution)
        ]

    def search_space(self, cfg: ClassifierConfig) -> dict:
        """Learning rate, optimizer, dropout and zoom, plus MobileNetV3's width: what moves a small classifier most.

        With pretrained weights a trial is `build_model`'s: the head on the frozen backbone (the linear probe).
        """
        space = {
            "train.learning_rate": {"min": 5e-4, "max": 5e-3, "log": True},
            "train.optimizer": ["adam", "adamw", "nadam"],
            "model.dropout": {"min": 0.0, "max": 0.4, "step": 0.1},
            "data.zoom": [0.0, 0.15, 0.3],
        }
        if cfg.model.backbone == "mobilenet_v3_small":
            space["model.alpha"] = [0.75, 1.0]
        return space


def fine_tune_epochs(fine_tune: FineTuneConfig, steps: int) -> int:
    """Phase two's epochs of `steps` batches: `fine_tune.epochs`, raised to reach `fine_tune.min_steps`."""
    return max(fine_tune.epochs, -(-fine_tune.min_steps // max(1, steps)))


def _batch_norms_after_convolutions(backbone: keras.Model) -> set[str]:
    """Names of the backbone's batch norms whose input a convolution computes, from its functional config."""
    entries = backbone.get_config()["layers"]
    kinds = {entry["config"]["name"]: entry["class_name"] for entry in entries}
    after = set()
    for entry in entries:
        if entry["class_name"] == "BatchNormalization":
            producer = entry["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0]
            if kinds[producer] in ("Conv2D", "DepthwiseConv2D"):
                after.add(entry["config"]["name"])
    return after


def _finished(paths: ArtifactPaths, cfg: ClassifierConfig) -> bool:
    """True if `paths` holds a finished run of `cfg` (its model, its train.json with the same config)."""
    if not (paths.model.exists() and paths.train_summary.exists()):
        return False
    as_json = json.loads(json.dumps(to_dict(cfg)))  # as train.json holds it: tuples read back as lists
    return json.loads(paths.train_summary.read_text()).get("config") == as_json


def _add_up_phases(frozen: ArtifactPaths, paths: ArtifactPaths) -> None:
    """Phase two's train.json with the seconds of both phases: in total, and in `phase_seconds`."""
    phases = [json.loads(p.train_summary.read_text()) for p in (frozen, paths)]
    summary = {**phases[1], "train_seconds": sum(p["train_seconds"] for p in phases)}
    summary["phase_seconds"] = {"frozen_backbone": phases[0]["train_seconds"], "fine_tune": phases[1]["train_seconds"]}
    paths.train_summary.write_text(json.dumps(summary, indent=2))


PROJECT = ClassifierProject()
