"""The project contract: what `common.cli` needs from each `projects/<name>/project.py`.

A project is a folder with `config.py` (its config dataclass, `PRESETS` and
`DEFAULT_PRESET`, importable without TensorFlow so that the command line is
checked before any work) and `project.py`, whose `PROJECT` is an instance of a
`Project` subclass filling in the data, model and evaluation hooks. Training defaults to
`common.training.fit`; projects with their own loop (GAN, driving) override
`train`. `common.export` is driven by `serving_model` and the export hooks at
the end, whose defaults fit a classifier whose test split the serving model
takes as is. `common.tuning` and `common.optimize` read `search_space`,
`prunable_layers` and `quantized_layers`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from common.data.splits import DataSplits, dataset_to_numpy
from common.paths import ArtifactPaths

if TYPE_CHECKING:
    import keras

    from common.export import ExportResult


class Project:
    """Base class of a project's spec. Subclasses set the class attributes and hooks."""

    name: ClassVar[str]
    monitor: ClassVar[tuple[str, str]] = ("val_accuracy", "max")  # checkpoint / early-stopping metric and mode
    # Export: the largest |output - Keras output| allowed per quantized format (float ones: 1e-4).
    quantized_tolerance: ClassVar[dict[str, float]] = {
        "tflite_float16": 1e-2,
        "tflite_dynamic": 0.2,
        "tflite_int8": 0.25,
        "tfjs_uint8": 0.1,
    }
    metric_name: ClassVar[str] = "accuracy"  # what `answer_metric` measures, for the parity report
    # Export: the largest `output_distance` allowed for float formats (uint8 outputs may differ by a rounding step).
    float_tolerance: ClassVar[float] = 1e-4

    def load_data(self, cfg: Any) -> DataSplits:
        """Train/val/test datasets of unbatched (input, target) pairs, with their source."""
        raise NotImplementedError

    def build_model(self, cfg: Any) -> keras.Model:
        """A compiled-ready (uncompiled) Keras model for `cfg`."""
        raise NotImplementedError

    def loss(self, cfg: Any) -> Any:
        """The training loss passed to `compile`."""
        return "sparse_categorical_crossentropy"

    def metrics(self, cfg: Any) -> list:
        """Metrics shown during training."""
        return ["accuracy"]

    def augmentation(self, cfg: Any) -> keras.Layer | None:
        """Applied to training batches only (`training=True`); None for no augmentation."""
        return None

    def augment_pairs(self, cfg: Any) -> Callable | None:
        """Maps training batches (inputs, targets) -> (inputs, targets) in tf.data, after `augmentation`: for changes
        that must change the targets too (a mirrored road negates the steering). None for none."""
        return None

    def class_weight(self, cfg: Any, data: DataSplits) -> dict[int, float] | None:
        """Loss weight per class id for `fit` (e.g. to balance an imbalanced training split); None weighs all alike."""
        return None

    def train(self, cfg: Any, data: DataSplits, paths: ArtifactPaths) -> keras.Model:
        """Train and return the model; the default is `common.training.fit`."""
        from common.training import fit

        return fit(self, cfg, data, paths)

    def evaluate(self, cfg: Any, model: keras.Model, data: DataSplits, paths: ArtifactPaths) -> tuple[dict, list[Path]]:
        """Metrics on the test split and the plots written to `paths.plots`, for the report."""
        raise NotImplementedError

    def export(
        self, cfg: Any, model: keras.Model, data: DataSplits, paths: ArtifactPaths, verbose: bool = False
    ) -> ExportResult:
        """Export to every format and check each against Keras; the default is `common.export.export_project`.

        A project whose formats cannot all take the serving model as is (the chatbot's string ops) overrides it.
        """
        from common.export import export_project

        return export_project(self, cfg, model, data, paths, verbose=verbose)

    def serving_model(self, model: keras.Model) -> keras.Model:
        """The model that is exported: raw input in, final answer out."""
        return model

    def sample_inputs(self, cfg: Any) -> np.ndarray:
        """A few real test inputs for parity checks and demos."""
        raise NotImplementedError

    def predict(self, cfg: Any, model: keras.Model, inputs: Sequence[str]) -> int:
        """Print predictions for files named on the command line; returns the number that failed."""
        raise NotImplementedError(f"project {self.name} has no predict command")

    def run_command(self, command: str, cfg: Any, paths: ArtifactPaths, args: Any) -> None:
        """Carry out one of the project's own commands (named in its config module's `COMMANDS`).

        `args` is the parsed command line (`args.inputs`: the words after the command; `args.verbose`, `args.port`).
        """
        raise NotImplementedError(f"project {self.name} has no command {command!r}")

    def extra_signatures(self, serving: keras.Model) -> dict[str, Callable]:
        """SavedModel signatures beside `serving_default`, e.g. one taking encoded images that no converter takes.

        By signature name: tf.functions with an `input_signature` that call `serving`. Only the SavedModel has them.
        """
        return {}

    def demo_extras(self, model: keras.Model) -> dict[str, Any]:
        """Keys added to the browser demo's samples.json beside the inputs and outputs (e.g. class names)."""
        return {}

    @property
    def serving_name(self) -> str:
        """The model's name in the serving repository (`artifacts/serving/<name>/`) and in TF Serving's URLs."""
        return self.name

    def export_examples(self, cfg: Any, data: DataSplits) -> tuple[np.ndarray, np.ndarray]:
        """Real test inputs as the serving model takes them, and their targets: by default the whole test split."""
        return dataset_to_numpy(data.test)

    def representative_inputs(self, cfg: Any, data: DataSplits) -> np.ndarray:
        """Training inputs that calibrate full-integer TF Lite: by default the first 200 of the training split."""
        return dataset_to_numpy(data.train.take(200))[0]

    def final_answer(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The answer compared across formats, from the serving model's outputs (batch first).

        By default the argmax of its one output; a serving model with several outputs must say which is the answer.
        """
        if len(outputs) != 1:
            raise NotImplementedError(f"{self.name}: outputs {sorted(outputs)}; override final_answer to pick one")
        return np.argmax(next(iter(outputs.values())), axis=-1)

    def output_distance(self, outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
        """How far a format's outputs are from Keras's, compared with its bound: by default the largest |difference|.

        A project whose outputs are not aligned element by element (a detector's boxes after NMS, whose order may
        change when scores tie) overrides it, e.g. to compare IoU-matched boxes.
        """
        from common.export.parity import max_abs_diff

        return max_abs_diff(outputs, reference)

    def answer_metric(self, answers: np.ndarray, targets: np.ndarray) -> float:
        """`metric_name` of the final answers against the test targets: accuracy by default."""
        return float(np.mean(answers == targets))

    def search_space(self, cfg: Any) -> dict[str, Any]:
        """What `tune` may change: {dotted config key: a list of values, or a range {"min", "max"}}.

        A range may add "step" (integers) and "log": true (sampled on a log scale, e.g. learning rates).
        A trial is the config with these keys set, built by `build_model` and trained as `train` does.
        Empty by default: such a project is tuned with `--set tune.space=space.json` (the same form, as JSON).
        """
        return {}

    def prunable_layers(self, model: keras.Model) -> list[str]:
        """Names of the layers `optimize` may prune: by default every layer with a kernel (Dense, Conv)."""
        return [layer.name for layer in model.layers if hasattr(layer, "kernel")]

    def quantized_layers(self, model: keras.Model) -> list[str]:
        """Names of the layers quantization-aware training quantizes: by default all but inputs and batch norms.

        TF Lite folds a batch norm into the layer before it; fake-quantizing the batch norm on its own makes the
        int8 model disagree with the trained one (mnist: 49% instead of 96% test accuracy).
        """
        skipped = ("InputLayer", "BatchNormalization")
        return [layer.name for layer in model.layers if type(layer).__name__ not in skipped]
