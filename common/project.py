"""The project contract: what the command line, the libraries and the programs need from each project.

A project is a folder with `config.py` (its config dataclass `CONFIG`, whose
defaults are the `default` preset, `PRESETS` and `DEFAULT_PRESET`, importable
without TensorFlow so that the command line is checked before any work) and
`project.py`, whose `PROJECT` is an instance of a `Project` subclass. The
subclass states its own recipe: `train` builds the model, compiles it with the
loss, optimizer and metrics it names, and fits it (`common.training.fit`, or its
own loop); nothing here defaults to a classifier's loss, metric or answer.
`common.export` is driven by `export_plan` (by default: `serving_model` and the
export hooks after it); `common.tuning` and `common.optimize` by `build_model`,
`loss`, `metrics`, `monitor`, `search_space`, `tune_trial`, `tune_objective`, `prunable_layers`,
`quantized_layers`, `keras2_layers`, `optimize_outputs` and `model_answer`.
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


class Project:
    """Base class of a project's spec. Subclasses set the class attributes and hooks.

    Every subclass sets `name` and `metric_name` and implements `load_data`, `train`, `evaluate`, `sample_inputs`,
    `final_answer` and `answer_metric`; one that is tuned or optimized also `build_model`, `loss`, `metrics` and
    `monitor` (one tuned in its own loop: `build_model`, `monitor` and `tune_trial`).
    """

    name: ClassVar[str]
    metric_name: ClassVar[str]  # what `answer_metric` measures, for the parity report (e.g. "accuracy")
    # Whether `answer_metric` is a share in [0, 1], higher better (accuracy): `optimize` shows changes in points.
    metric_is_share: ClassVar[bool] = True
    # Checkpoint / early-stopping / tuning metric and its mode: a Keras log name and "max" or "min".
    monitor: ClassVar[tuple[str, str]]
    # `tune`'s objective when it is not `monitor`: a name in `tune_trial`'s scores and "min" or "max". None: `monitor`.
    tune_objective: ClassVar[tuple[str, str] | None] = None
    # Export: the largest |output - Keras output| allowed per quantized format (float ones: 1e-4).
    quantized_tolerance: ClassVar[dict[str, float]] = {
        "tflite_float16": 1e-2,
        "tflite_dynamic": 0.2,
        "tflite_int8": 0.25,
        "tfjs_uint8": 0.1,
    }
    # Export: the largest `output_distance` allowed for float formats (uint8 outputs may differ by a rounding step).
    float_tolerance: ClassVar[float] = 1e-4
    # Export: True when a format passes only if every example's whole final answer equals Keras's (the chatbot's
    # greedy replies, where one differing word changes every word after it); its "answers agreeing" is then the
    # share of examples that do. False: answers are compared element by element, and only the bound is enforced.
    exact_answers: ClassVar[bool] = False

    def load_data(self, cfg: Any) -> DataSplits:
        """Train/val/test datasets of unbatched (input, target) pairs, with their source."""
        raise NotImplementedError

    def build_model(self, cfg: Any) -> keras.Model:
        """The uncompiled Keras model for `cfg` (tuning builds one per trial)."""
        raise NotImplementedError(f"project {self.name} has no build_model")

    def loss(self, cfg: Any) -> Any:
        """The training loss passed to `compile` (a name or a loss object that Keras 2 can also take)."""
        raise NotImplementedError(f"project {self.name} states no loss")

    def metrics(self, cfg: Any) -> list:
        """Metrics passed to `compile`, shown during training."""
        raise NotImplementedError(f"project {self.name} states no metrics")

    def loss_weights(self, cfg: Any) -> dict[str, float] | None:
        """Weights of a model's losses by output name, passed to `compile` (the chatbot's two tasks); None: equal."""
        return None

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
        """Build, compile and fit the model (resuming a killed run), write `paths.model`, return the model."""
        raise NotImplementedError

    def evaluate(self, cfg: Any, model: keras.Model, data: DataSplits, paths: ArtifactPaths) -> tuple[dict, list[Path]]:
        """Metrics on the test split and the plots written to `paths.plots`, for the report."""
        raise NotImplementedError

    def serving_model(self, model: keras.Model, cfg: Any) -> keras.Model:
        """The model that is exported: raw input in, final answer out."""
        return model

    def export_plan(self, cfg: Any, model: keras.Model, data: DataSplits, verbose: bool = False) -> Any | None:
        """What `common.export.export_project` writes and how it checks each format against Keras.

        None by default, meaning `common.export.standard_plan`: `serving_model` as the served SavedModel,
        converted to every format, checked on `export_examples`. A project whose served model no converter
        takes (the chatbot's string ops) returns a plan naming the parts converted instead, the formats, how a
        format's outputs are computed from its loaded parts and the files its clients need (see
        `common.export.ExportPlan`).
        `verbose`: the project's own tools (e.g. a Node script run for parity) show their logs.
        """
        return None

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

    def demo_extras(self, model: keras.Model, cfg: Any) -> dict[str, Any]:
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
        """The answer compared across formats, from the serving model's outputs (batch first), e.g. the class ids."""
        raise NotImplementedError(f"project {self.name} states no final_answer")

    def output_distance(self, outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
        """How far a format's outputs are from Keras's, compared with its bound: by default the largest |difference|.

        A project whose outputs are not aligned element by element (a detector's boxes after NMS, whose order may
        change when scores tie) overrides it, e.g. to compare IoU-matched boxes.
        """
        return max_abs_diff(outputs, reference)

    def answer_metric(self, answers: np.ndarray, targets: np.ndarray) -> float:
        """`metric_name` of the final answers against the test targets."""
        raise NotImplementedError(f"project {self.name} states no answer_metric")

    def search_space(self, cfg: Any) -> dict[str, Any]:
        """What `tune` may change: {dotted config key: a list of values, or a range {"min", "max"}}.

        A range may add "step" (integers) and "log": true (sampled on a log scale, e.g. learning rates).
        A trial is the config with these keys set, built by `build_model` and trained as `train` does.
        Empty by default: such a project is tuned with `--set tune.space=space.json` (the same form, as JSON).
        """
        return {}

    def tune_trial(self, cfg: Any, data: DataSplits, paths: ArtifactPaths) -> dict[str, float]:
        """Train one `tune` trial in the project's own loop and return its scores, for a project that `fit` does not
        train (the GAN, the diffusion model): `common.tuning` calls it instead of fitting `build_model`'s model.

        `cfg` is the trial's config (the search space's keys set, `train.epochs` = `tune.max_epochs`); `paths` is the
        trial's own folder under `tuning/`, for its checkpoints, logs and grids (a killed trial resumes from them).
        The scores, {name: value}, hold the objective (`tune_objective`, else `monitor`), e.g. {"fid": ..., "kid":
        ...}. Not overridden: keras-tuner builds, compiles and fits `build_model`'s model as `train` does.
        """
        raise NotImplementedError(f"project {self.name} is tuned with fit, not in a loop of its own")

    def prunable_layers(self, model: keras.Model) -> list[str]:
        """Names of the layers `optimize` may prune: by default every layer with a kernel (Dense, Conv), those of
        nested models too (`inlined_layers`: the Keras 2 copy holds them inlined)."""
        return [layer.name for layer in inlined_layers(model) if hasattr(layer, "kernel")]

    def optimize_outputs(self, model: keras.Model) -> list[str] | None:
        """Names of the layers whose outputs `optimize` converts to TF Lite and hands to `model_answer`; None (the
        default): the model's own outputs. The detector names its box offsets and class logits, kept apart because
        full-integer TF Lite gives each tensor one scale, which their concatenation would share."""
        return None

    def model_answer(self, outputs: dict[str, np.ndarray], cfg: Any) -> np.ndarray:
        """The final answer from the trained model's own outputs (those of `optimize_outputs`; not the serving
        model's), scored by `answer_metric` in `optimize`: by default the class id, argmax over the one output
        (batch, classes). `cfg` gives what turns raw outputs into answers (the detector's anchors and NMS)."""
        (probabilities,) = outputs.values()
        return np.argmax(probabilities, axis=-1)

    def keras2_layers(self) -> dict[str, type]:
        """tf_keras classes for the model's own layers, by Keras 3 class name, so that `optimize` can copy the
        model to Keras 2 for tfmot (`common.keras2_bridge`); none by default."""
        return {}

    def quantized_layers(self, model: keras.Model) -> list[str]:
        """Names of the layers quantization-aware training quantizes: by default all but inputs and batch norms (of
        nested models too, as `prunable_layers`).

        TF Lite folds a batch norm into the layer before it; fake-quantizing the batch norm on its own makes the
        int8 model disagree with the trained one (mnist: 49% instead of 96% test accuracy).
        """
        skipped = ("InputLayer", "BatchNormalization")
        return [layer.name for layer in inlined_layers(model) if type(layer).__name__ not in skipped]


GRAPH_MODELS = ("Functional", "Sequential")  # Keras 3 models made of layers: the Keras 2 copy inlines them when nested


def inlined_layers(model: keras.Model) -> list[keras.Operation]:
    """The layers of a Keras 3 `model` as `common.keras2_bridge.to_keras2` copies them, which `optimize`'s hooks
    name: nested functional and sequential models replaced by their own layers (recursively, their input layers left
    out), each once, and the operations on tensors outside any layer (`x + 3.0`, named e.g. "add") among them, in the
    graph's order."""
    layers = []
    for layer in getattr(model, "operations", None) or model.layers:  # a Sequential has layers only
        if type(layer).__name__ in GRAPH_MODELS:
            layers += [inner for inner in inlined_layers(layer) if type(inner).__name__ != "InputLayer"]
        else:
            layers.append(layer)
    return layers


def max_abs_diff(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    """Largest |output - reference| over the reference's float outputs (all must be present, same shapes).

    Raises:
        ValueError: an output is missing or has another shape (e.g. a converter renamed it).
    """
    worst = 0.0
    for name, ref in reference.items():
        if name not in outputs:
            raise ValueError(f"output {name!r} missing; the format returned {sorted(outputs)}")
        if outputs[name].shape != ref.shape:
            raise ValueError(f"output {name!r} has shape {outputs[name].shape}, expected {ref.shape}")
        if ref.dtype.kind == "f":
            worst = max(worst, float(np.max(np.abs(outputs[name].astype(np.float64) - ref))))
    return worst
