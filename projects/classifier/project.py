"""The image classifier's spec: data, model, two-phase training, evaluation with Grad-CAM, predict and serving."""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from common import plots
from common.config import to_dict
from common.data.splits import DataSplits, dataset_to_numpy
from common.evaluation import classification_metrics, classification_plots
from common.paths import ArtifactPaths
from common.project import Project
from common.training import fit

from . import data as classifier_data
from .config import ClassifierConfig
from .gradcam import gradcam_heatmaps, overlay
from .images import load_image_file
from .model import build_augmentation, build_model, class_names_of, pretrained_weights, unfreeze_top
from .serving_model import build_serving_model, encoded_image_signature

TOP_K = 5  # classes printed by `predict`
GRADCAM_IMAGES = 16


class ClassifierProject(Project):
    name = "classifier"

    def load_data(self, cfg: ClassifierConfig) -> DataSplits:
        """Your folder, tf_flowers or openclipart-png (see data.py); a bad folder layout stops here with the fix."""
        try:
            return classifier_data.load_splits(cfg.data)
        except (classifier_data.FolderLayoutError, FileNotFoundError) as err:
            sys.exit(f"error: {err}")

    def build_model(self, cfg: ClassifierConfig) -> keras.Model:
        return build_model(cfg, classifier_data.class_names(cfg.data))

    def augmentation(self, cfg: ClassifierConfig) -> keras.Sequential | None:
        return build_augmentation(cfg.data)

    def class_weight(self, cfg: ClassifierConfig, data: DataSplits) -> dict[int, float] | None:
        """Inverse class frequency in the training split: rare classes count as much as common ones."""
        if not cfg.data.class_weights:
            return None
        _, labels = dataset_to_numpy(data.train)
        counts = np.bincount(labels, minlength=len(data.class_names))
        return {k: float(len(labels) / (len(counts) * c)) for k, c in enumerate(counts) if c}

    def train(self, cfg: ClassifierConfig, data: DataSplits, paths: ArtifactPaths) -> keras.Model:
        """From scratch: one `fit`. Pretrained: the head on a frozen backbone, then the top layers fine-tuned.

        Phase one runs in `<output>/frozen_backbone/` (its own model, history and resume
        backup, skipped when it already finished with the same config); phase two writes
        the final model.keras, and train.json adds up both.
        """
        try:
            pretrained_weights(cfg.model)
        except (ValueError, FileNotFoundError) as err:
            sys.exit(f"error: {err}")
        if cfg.model.weights == "none" or cfg.fine_tune.epochs == 0:
            return fit(self, cfg, data, paths)
        frozen = ArtifactPaths(paths.root / "frozen_backbone", paths.serving_root)
        if not _finished(frozen, cfg):
            print("Phase 1: training the head on the frozen backbone.")
            fit(self, cfg, data, frozen)
        ft = cfg.fine_tune
        print(f"Phase 2: fine-tuning the top {ft.layers} backbone layers at learning rate {ft.learning_rate:g}.")
        fine_cfg = copy.deepcopy(cfg)
        fine_cfg.train = dataclasses.replace(cfg.train, epochs=ft.epochs, learning_rate=ft.learning_rate)
        model = fit(_FineTuning(frozen.model, ft.layers), fine_cfg, data, paths)
        phases = [json.loads(p.train_summary.read_text()) for p in (frozen, paths)]
        summary = {**phases[1], "config": to_dict(cfg), "train_seconds": sum(p["train_seconds"] for p in phases)}
        summary["phase_seconds"] = {
            "frozen_backbone": phases[0]["train_seconds"],
            "fine_tune": phases[1]["train_seconds"],
        }
        paths.train_summary.write_text(json.dumps(summary, indent=2))
        return model

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

    def serving_model(self, model: keras.Model) -> keras.Model:
        """`image` (batch, size, size, 3) float32 in [0, 255] -> `probabilities` (batch, classes), `class_id`."""
        return build_serving_model(model)

    def extra_signatures(self, serving: keras.Model) -> dict[str, Callable]:
        """`serving_bytes`: encoded image files in (TF Serving's {"b64": ...}), class names out."""
        return {"serving_bytes": encoded_image_signature(serving, class_names_of(serving))}

    def demo_extras(self, model: keras.Model) -> dict[str, list[str]]:
        """The browser page labels the probabilities with these."""
        return {"class_names": class_names_of(model)}

    def final_answer(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return outputs["class_id"]

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
        """Print `<file>: <class> 91.2%, <class> 4.0%, ...` (the top 5) per image; returns how many failed."""
        names = class_names_of(model)
        size = model.input_shape[1]
        failed = 0
        for name in inputs:
            try:
                image = load_image_file(Path(name), size)
            except (ValueError, OSError) as err:
                print(f"error: {err}")
                failed += 1
                continue
            probs = model.predict(image[None], verbose=0)[0]
            top = np.argsort(probs)[::-1][:TOP_K]
            print(f"{name}: " + ", ".join(f"{names[k]} {probs[k]:.1%}" for k in top))
        return failed


class _FineTuning(ClassifierProject):
    """Phase two of `train`: the phase-one model with the top backbone layers trainable."""

    def __init__(self, frozen_model: Path, layers: int) -> None:
        self.frozen_model, self.layers = frozen_model, layers

    def build_model(self, cfg: ClassifierConfig) -> keras.Model:
        return unfreeze_top(keras.models.load_model(self.frozen_model, compile=False), self.layers)


def _finished(paths: ArtifactPaths, cfg: ClassifierConfig) -> bool:
    """True if `paths` holds a finished run of `cfg` (its model, its train.json with the same config)."""
    if not (paths.model.exists() and paths.train_summary.exists()):
        return False
    return json.loads(paths.train_summary.read_text()).get("config") == to_dict(cfg)


PROJECT = ClassifierProject()
