"""The MNIST project's spec: data, model, evaluation and predict, driven by `common.cli`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from common import plots
from common.data.splits import DataSplits, dataset_to_numpy
from common.evaluation import classification_metrics, classification_plots
from common.paths import ArtifactPaths
from common.project import Project

from . import data as mnist_data
from .config import MnistConfig
from .model import build_augmentation, build_model


class MnistProject(Project):
    name = "mnist"

    def load_data(self, cfg: MnistConfig) -> DataSplits:
        return mnist_data.load_splits(cfg.data)

    def build_model(self, cfg: MnistConfig) -> keras.Model:
        return build_model(cfg)

    def augmentation(self, cfg: MnistConfig) -> keras.Sequential | None:
        return build_augmentation(cfg)

    def evaluate(self, cfg: MnistConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths):
        """Classification metrics on the test split; plots: curves, confusion matrix, ROC, misclassified digits."""
        x, y = dataset_to_numpy(data.test)
        probs = model.predict(x, batch_size=256, verbose=0)
        metrics = classification_metrics(y, probs, data.class_names)
        plot_paths = classification_plots(y, probs, data.class_names, paths)
        pred = probs.argmax(1)
        wrong = np.flatnonzero(pred != y)[:32]
        titles = [f"true {y[i]}, pred {pred[i]} ({probs[i, pred[i]]:.0%})" for i in wrong]
        plot_paths.append(plots.image_grid(x[wrong], titles, paths.plots / "misclassified.png"))
        return metrics, plot_paths

    def sample_inputs(self, cfg: MnistConfig) -> np.ndarray:
        """The first 16 test digits, (16, 28, 28, 1) float32 in [0, 1]."""
        x, _ = dataset_to_numpy(self.load_data(cfg).test.take(16))
        return x

    def predict(self, cfg: MnistConfig, model: keras.Model, inputs: Sequence[str]) -> int:
        """Print `<file>: digit D (confidence)` per image (or per row of a .npy); returns how many failed."""
        failed = 0
        for name in inputs:
            try:
                images = mnist_data.load_predict_inputs(Path(name))
            except (ValueError, OSError) as err:
                print(f"error: {err}")
                failed += 1
                continue
            probs = model.predict(images[..., None], verbose=0)
            for i, p in enumerate(probs):
                label = name if len(probs) == 1 else f"{name}[{i}]"
                print(f"{label}: digit {int(p.argmax())} ({p.max():.1%})")
        return failed


PROJECT = MnistProject()
