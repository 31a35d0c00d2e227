"""The MNIST project's spec: data, model, evaluation and predict, driven by `common.cli`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np

from common import plots
from common.data.splits import DataSplits, dataset_to_numpy
from common.evaluation import classification_metrics, classification_plots
from common.export.layers import ClassIndex
from common.paths import ArtifactPaths
from common.project import Project

from . import data as mnist_data
from .config import MnistConfig
from .model import build_augmentation, build_model


class MnistProject(Project):
    name = "mnist"
    # Largest |probability - Keras probability| allowed on any test digit, per quantized format: about
    # 2-4x the largest measured on the smoke and default models (README.md, "Export").
    quantized_tolerance: ClassVar[dict[str, float]] = {
        "tflite_float16": 5e-3,
        "tflite_dynamic": 0.15,
        "tflite_int8": 0.15,
        "tfjs_uint8": 0.1,
    }

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

    def serving_model(self, model: keras.Model) -> keras.Model:
        """`image` (batch, 28, 28, 1) float32 in [0, 1] -> `probabilities` (batch, 10) float32, `digit` (batch,) int32.

        The input is the trained model's own: pixels scaled to [0, 1], white digit on black, channel last.
        """
        probabilities = model.output
        digit = ClassIndex(name="digit")(probabilities)
        return keras.Model(model.input, {"probabilities": probabilities, "digit": digit}, name="mnist_serving")

    def final_answer(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return outputs["digit"]

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

    def search_space(self, cfg: MnistConfig) -> dict:
        """Model kind and width, dropout, learning rate and optimizer: what moves a small classifier most."""
        return {
            "model.kind": ["cnn", "mlp"],
            "model.filters": [[16, 32], [32, 64]],  # cnn: filters per conv block
            "model.hidden": [[64], [128], [256]],  # units of the dense layer
            "model.dropout": {"min": 0.0, "max": 0.5, "step": 0.125},
            "train.learning_rate": {"min": 3e-4, "max": 1e-2, "log": True},
            "train.optimizer": ["adam", "nadam", "momentum", "rmsprop"],
        }

    def prunable_layers(self, model: keras.Model) -> list[str]:
        """Every kernel but the first convolution's (144 weights on raw pixels) and the output layer's."""
        kernels = [layer for layer in model.layers if hasattr(layer, "kernel")]
        first_conv = next((layer for layer in kernels if isinstance(layer, keras.layers.Conv2D)), None)
        return [layer.name for layer in kernels if layer is not first_conv and layer.name != "probabilities"]


PROJECT = MnistProject()
