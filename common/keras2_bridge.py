"""Keras 2 (`tf_keras`) and tensorflow-model-optimization (tfmot), kept in this one module.

tfmot prunes and quantizes only Keras 2 models, and only the layers it sees at
the top of a model. `to_keras2` rebuilds a Keras 3 model in `tf_keras`, layer by
layer from the layers' configs, and copies the weights, so both compute the same
function. A nested functional or sequential model (the classifier's
`keras.applications` backbone) is inlined: its layers are rebuilt in the copy's
own graph, by their own names. Operations on tensors outside any layer (MobileNetV3's
hard sigmoid, `x + 3.0`, `* (1 / 6)`) become `Keras3Operation` layers, and Keras 3
activations tf_keras lacks (`hard_silu`) functions of the same name. The rest wraps
tfmot's pruning and quantization-aware training of that copy.

Importing tfmot sets `TF_USE_LEGACY_KERAS=1`, which would make `tf.keras` resolve
to Keras 2 for the rest of the process. The import below first resolves `tf.keras`
(to Keras 3, unless the user chose otherwise) and then restores the variable; no
code here touches `tf.keras`, only `keras` and `tf_keras` by name.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
import tf_keras

from common.project import GRAPH_MODELS, inlined_layers

MAX_CLONE_DIFFERENCE = 1e-4  # largest |Keras 2 copy - Keras 3 model| output difference accepted by `to_keras2`
_BASE_LAYER_ARGUMENTS = {"name", "trainable", "dtype", "activity_regularizer", "autocast"}


def _import_tfmot() -> ModuleType:
    legacy = os.environ.get("TF_USE_LEGACY_KERAS")
    _ = tf.keras.Model  # resolves the lazy `tf.keras` now, before tfmot sets the variable
    try:
        import tensorflow_model_optimization
    finally:
        if legacy is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = legacy
    return tensorflow_model_optimization


tfmot = _import_tfmot()


class BridgeError(ValueError):
    """A model that cannot be copied to Keras 2 or optimized by tfmot; the message names the layer."""


def _accepted_arguments(cls: type) -> set[str]:
    names = set(_BASE_LAYER_ARGUMENTS)
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names.update(inspect.signature(klass.__init__).parameters)
    return names


@tf_keras.saving.register_keras_serializable(package="keras3")
def hard_sigmoid(x: tf.Tensor) -> tf.Tensor:
    """Keras 3's `hard_sigmoid`, relu6(x + 3) / 6 (tf_keras's of that name is another line: 0.2 x + 0.5, clipped)."""
    return tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


@tf_keras.saving.register_keras_serializable(package="keras3")
def hard_silu(x: tf.Tensor) -> tf.Tensor:
    """Keras 3's `hard_silu` (hard swish, MobileNetV3's activation), x relu6(x + 3) / 6; tf_keras has none."""
    return x * hard_sigmoid(x)


# Keras 3 activations tf_keras lacks or defines otherwise, by the name a Keras 3 config gives them.
KERAS3_ACTIVATIONS: dict[str, Callable] = {
    "hard_sigmoid": hard_sigmoid,
    "hard_silu": hard_silu,
    "hard_swish": hard_silu,
}


@tf_keras.saving.register_keras_serializable(package="keras3")
class Keras3Operation(tf_keras.layers.Layer):
    """A Keras 3 operation node as a tf_keras layer: an op applied to tensors outside any layer, which a Keras 3
    functional config lists beside its layers (MobileNetV3's hard sigmoid: `x + 3.0`, then `* (1 / 6)`).

    `arguments` are the op's positional arguments: None where a tensor goes (the layer's inputs, in order), the
    constants as they are. The output has the broadcast shape of the arguments, e.g. (batch, 1, 1, c).
    """

    FUNCTIONS: ClassVar[dict[str, Callable]] = {
        "Add": tf.math.add,
        "Subtract": tf.math.subtract,
        "Multiply": tf.math.multiply,
        "TrueDivide": tf.math.truediv,
        "Divide": tf.math.truediv,
    }

    def __init__(self, operation: str, arguments: Sequence[float | int | None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.operation, self.arguments = operation, list(arguments)

    def call(self, inputs: tf.Tensor | list[tf.Tensor]) -> tf.Tensor:
        tensors = iter(inputs if isinstance(inputs, list | tuple) else [inputs])
        return self.FUNCTIONS[self.operation](*[next(tensors) if a is None else a for a in self.arguments])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "operation": self.operation, "arguments": self.arguments}


# What tf_keras needs to rebuild a copy from its config (tfmot clones it): the bridge's own layers and activations.
BRIDGE_OBJECTS: dict[str, Any] = {"Keras3Operation": Keras3Operation, **KERAS3_ACTIVATIONS}


def _keras2_layer(class_name: str, config: dict[str, Any], own: Mapping[str, type]) -> tf_keras.layers.Layer:
    """The tf_keras layer for a Keras 3 layer's `get_config()`, from tf_keras or the project's `own` classes;
    initializers are dropped (the weights are copied)."""
    name = config.get("name")
    cls = own.get(class_name) or getattr(tf_keras.layers, class_name, None)
    if cls is None:
        raise BridgeError(f"layer {name!r} ({class_name}) has no tf_keras counterpart, so tfmot cannot optimize it")
    accepted = _accepted_arguments(cls)
    kwargs = {}
    for key, value in config.items():
        if key.endswith("_initializer"):
            continue
        if key == "dtype" and isinstance(value, dict):  # a Keras 3 DTypePolicy
            value = value["config"]["name"]
        if key == "activation" and isinstance(value, str):
            value = KERAS3_ACTIVATIONS.get(value, value)
        if key not in accepted:
            if value in (None, False):  # a Keras 3 option that is off
                continue
            raise BridgeError(f"layer {name!r} ({class_name}): option {key}={value!r} has no Keras 2 equivalent")
        kwargs[key] = value
    try:
        return cls.from_config(kwargs)
    except (ValueError, KeyError, TypeError) as err:  # an activation tf_keras lacks, a config it reads otherwise
        raise BridgeError(f"layer {name!r} ({class_name}) has no tf_keras counterpart: {err}") from err


def _keras2_operation(entry: dict[str, Any], args: list, kwargs: dict[str, Any], name: str) -> Keras3Operation:
    """The tf_keras layer for a Keras 3 operation node: its tensor arguments become the layer's inputs."""
    operation = entry["class_name"]
    plain = all(not isinstance(a, list | tuple | dict) for a in args)
    if operation not in Keras3Operation.FUNCTIONS or kwargs or not plain:
        raise BridgeError(
            f"operation {name!r} ({operation}) on tensors has no tf_keras counterpart in the bridge; "
            f"it copies {', '.join(Keras3Operation.FUNCTIONS)} of tensors and constants"
        )
    return Keras3Operation(operation, [None if tf.is_tensor(a) else a for a in args], name=name)


def _keras2_input(config: dict[str, Any]) -> tf.Tensor:
    batch_shape = config["batch_shape"]
    return tf_keras.Input(shape=batch_shape[1:], batch_size=batch_shape[0], dtype=config["dtype"], name=config["name"])


def _is_history(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and isinstance(value[1], int)


def _resolve(value: Any, tensors: dict[tuple[str, int], list]) -> Any:
    """Replace the Keras 3 config's references to layer outputs by the tf_keras tensors built so far."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        name, node, index = value["config"]["keras_history"]
        return tensors[(name, node)][index]
    if _is_history(value):
        name, node, index = value
        return tensors[(name, node)][index]
    if isinstance(value, list | tuple):
        return [_resolve(v, tensors) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, tensors) for k, v in value.items()}
    return value


def _histories(value: list) -> list[list]:
    """A config's `input_layers` or `output_layers` as a list of [name, node, index] (one input: the one triple)."""
    return [value] if _is_history(value) else value


def _renumbered(value: Any, functional: set[str]) -> Any:
    """`input_layers` or `output_layers` with the node indices of the `functional` models' outputs lowered by one."""
    if _is_history(value):
        name, node, index = value
        return [name, node - 1 if name in functional else node, index]
    if isinstance(value, dict):
        return {k: _renumbered(v, functional) for k, v in value.items()}
    return [_renumbered(v, functional) for v in value]


def _is_operation(entry: dict[str, Any]) -> bool:
    """Whether a functional config's entry is an operation on tensors (`keras.ops`), not a layer."""
    return (entry.get("module") or "").startswith("keras.src.ops")


def _single(value: list) -> Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


class _Rebuild:
    """Rebuilds a Keras 3 functional or sequential config in tf_keras, nested models inlined.

    A nested model's layers are called in the outer graph, on the tensors its call was given; a model called twice
    calls the same layers twice (shared weights). A phase its call fixed (`backbone(x, training=False)`) is dropped, as
    Keras 3 drops it when the outer model is called with one (`fit` trains the nested model's layers too): in both, a
    non-trainable batch norm runs in inference mode.
    """

    def __init__(self, own: Mapping[str, type]) -> None:
        self.own = own
        self.layers: dict[tuple[str, ...], tf_keras.layers.Layer] = {}  # by nested models' names + the layer's name
        self.paths: dict[str, tuple[str, ...]] = {}  # layer name -> where it was found, to refuse two of one name

    def layer(self, path: tuple[str, ...], name: str, entry: dict[str, Any], args: list, kwargs: dict) -> Any:
        """The tf_keras layer for `entry`'s layer or operation node `name` in the nested models `path`, made once."""
        key = (*path, name)
        if key in self.layers:
            return self.layers[key]
        if name in self.paths:
            where = [" > ".join(p) or "the model" for p in (self.paths[name], path)]
            raise BridgeError(
                f"two layers are named {name!r} (in {where[0]} and in {where[1]}); inlined in one tf_keras model, "
                "every layer needs a name of its own"
            )
        self.paths[name] = path
        if _is_operation(entry):
            self.layers[key] = _keras2_operation(entry, args, kwargs, name)
        else:
            self.layers[key] = _keras2_layer(entry["class_name"], entry["config"], self.own)
        return self.layers[key]

    def graph(self, config: dict[str, Any], path: tuple[str, ...], inputs: list | None) -> tuple[Any, Any]:
        """(inputs, outputs) of one model's config, functional or sequential. `path`: the names of the nested models
        it is in; `inputs`: the tensors a nested model is called on (None: new tf_keras inputs)."""
        functional = "input_layers" in config
        given = {}  # input layer name -> the tensor the nested model was called on
        if inputs is not None and functional:
            names = [history[0] for history in _histories(config["input_layers"])]
            given = dict(zip(names, inputs, strict=True))
        elif inputs is not None:
            given = {config["layers"][0]["config"]["name"]: inputs[0]}
        tensors: dict[tuple[str, int], list] = {}
        previous = None if inputs is None else inputs[0]  # Sequential: each layer takes the one before
        for entry in config["layers"]:
            layer_config = entry["config"]
            name = layer_config["name"]
            if entry["class_name"] == "InputLayer":
                previous = given[name] if inputs is not None else _keras2_input(layer_config)
                tensors[(name, 0)] = [previous]
                continue
            for index, node in enumerate(entry.get("inbound_nodes") or [{"args": [previous], "kwargs": {}}]):
                args, kwargs = _resolve(node["args"], tensors), _resolve(node["kwargs"], tensors)
                if entry["class_name"] in GRAPH_MODELS and "layers" in layer_config:
                    outputs = self.graph(layer_config, (*path, name), tf.nest.flatten(args))[1]
                elif _is_operation(entry):
                    label = name if index == 0 else f"{name}_{index}"
                    operation = self.layer(path, label, entry, args, kwargs)
                    outputs = operation(_single([a for a in args if tf.is_tensor(a)]))
                else:
                    layer = self.layer(path, name, entry, args, kwargs)
                    outputs = layer(*args, **kwargs)
                tensors[(name, index)] = tf.nest.flatten(outputs)
                previous = outputs
        if not functional:
            return (
                inputs[0] if inputs is not None else tensors[(config["layers"][0]["config"]["name"], 0)][0]
            ), previous
        # The config's inputs and outputs count a nested functional model's nodes from its own first node (the one
        # linking its inputs to its outputs, which no call lists), one more than its calls' arguments do.
        nested = {e["config"]["name"] for e in config["layers"] if e["class_name"] == "Functional"}
        ends = [_renumbered(config[key], nested) for key in ("input_layers", "output_layers")]
        return _single(_resolve(ends[0], tensors)), _single(_resolve(ends[1], tensors))


def to_keras2(model: keras.Model, sample: np.ndarray, own_layers: Mapping[str, type] | None = None) -> tf_keras.Model:
    """A tf_keras copy of a Keras 3 functional or sequential `model`: same layers, names and weights.

    Nested functional and sequential models (a `keras.applications` backbone) are inlined: their layers are
    rebuilt in the copy's own graph, so that tfmot sees and wraps each of them (`inlined_layers`). Operations on
    tensors outside any layer (`x + 3.0`) become `Keras3Operation` layers named as the Keras 3 nodes.

    Args:
        sample: a few inputs as the model takes them, e.g. (n, 28, 28, 1) float32; both models must agree on them.
        own_layers: tf_keras classes for the model's own (custom) layers, by their Keras 3 class name
            (`Project.keras2_layers`).

    Raises:
        BridgeError: a layer with no Keras 2 counterpart (a custom layer, or an option Keras 2 lacks), an operation
            the bridge does not copy, two layers of one name, or a copy whose outputs differ from the model's by more
            than `MAX_CLONE_DIFFERENCE`.
    """
    inputs, outputs = _Rebuild(own_layers or {}).graph(model.get_config(), (), None)
    copy = tf_keras.Model(inputs, outputs, name=model.name)
    for source in inlined_layers(model):
        if getattr(source, "weights", None):  # operations have none
            copy.get_layer(source.name).set_weights(source.get_weights())
    outputs = tf.nest.flatten(copy(sample, training=False)), tf.nest.flatten(model(sample, training=False))
    pairs = zip(*outputs, strict=True)
    difference = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in pairs)
    if difference > MAX_CLONE_DIFFERENCE:
        raise BridgeError(f"the Keras 2 copy of {model.name} differs from it by {difference:.2e}; a layer changed")
    return copy


def check_layer_names(model: keras.Model | tf_keras.Model, names: Sequence[str], hook: str) -> set[str]:
    """`names` as a set, if every one is a layer of `model` (of a nested model too: `inlined_layers`) and there is at
    least one.

    Raises:
        BridgeError: no names, or a name that is not a layer; the message says which project hook returned it.
    """
    known = [layer.name for layer in (inlined_layers(model) if isinstance(model, keras.Model) else model.layers)]
    unknown = sorted(set(names) - set(known))
    if not names or unknown:
        problem = f"no layer named {', '.join(unknown)}" if unknown else "no layers"
        raise BridgeError(f"Project.{hook} gave {problem} for {model.name}; its layers: {', '.join(known)}")
    return set(names)


def prune_low_magnitude(
    model: tf_keras.Model, layer_names: Sequence[str], target_sparsity: float, end_step: int, dense_block: int = 1
) -> tf_keras.Model:
    """Wrap `layer_names` for magnitude pruning: sparsity rises from 0 to `target_sparsity` by `end_step`.

    The schedule is tfmot's polynomial decay (fast at first, gently at the end), updated 10 times on the way.
    Dense kernels, (inputs, units), lose runs of `dense_block` consecutive inputs at once: TF Lite stores
    them transposed, so each run is one stretch of zero bytes, which gzip packs better than scattered zeros.
    Train the result with `fine_tune(..., pruning=True)`, then `strip_pruning`.
    """
    sparsity = tfmot.sparsity.keras
    chosen = check_layer_names(model, layer_names, "prunable_layers")
    schedule = sparsity.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=target_sparsity,
        begin_step=0,
        end_step=end_step,
        frequency=max(1, end_step // 10),
    )

    def wrap(layer: tf_keras.layers.Layer) -> tf_keras.layers.Layer:
        if layer.name not in chosen:
            return layer
        block = (dense_block, 1) if len(layer.kernel.shape) == 2 else (1, 1)  # tfmot blocks 2-D kernels only
        return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule, block_size=block)

    return tf_keras.models.clone_model(model, clone_function=wrap)


def strip_pruning(model: tf_keras.Model) -> tf_keras.Model:
    """The pruned model without its pruning wrappers: plain layers whose kernels hold the zeros."""
    return tfmot.sparsity.keras.strip_pruning(model)


class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """Fake-quantizes the output of a layer without weights that tfmot's default 8-bit scheme does not know: a
    `Keras3Operation` (`x + 3.0`), `Multiply`, `Rescaling`, an `Activation` such as hard swish. The layer computes
    in float, as TF Lite's int8 kernels do on the dequantized values, and its output gets the range of every value
    seen."""

    def get_weights_and_quantizers(self, layer: tf_keras.layers.Layer) -> list[tuple[Any, Any]]:
        return []

    def get_activations_and_quantizers(self, layer: tf_keras.layers.Layer) -> list[tuple[Any, Any]]:
        return []

    def set_quantize_weights(self, layer: tf_keras.layers.Layer, quantize_weights: list[tf.Tensor]) -> None:
        return None

    def set_quantize_activations(self, layer: tf_keras.layers.Layer, quantize_activations: list) -> None:
        return None

    def get_output_quantizers(self, layer: tf_keras.layers.Layer) -> list[Any]:
        # The range of every output seen, from the first batch on. tfmot's default, a moving average (decay 0.999)
        # from [-6, 6], still spans 77% of that after 256 steps: PilotNet's quantization-aware int8 lost 0.027 of
        # steering error in 2 epochs with it, against post-training int8's 0.0008.
        quantizers = tfmot.quantization.keras.quantizers
        return [quantizers.AllValuesQuantizer(8, per_axis=False, symmetric=False, narrow_range=False)]

    def get_config(self) -> dict[str, Any]:
        return {}


class KernelAndOutputQuantizeConfig(OutputQuantizeConfig):
    """Fake-quantizes a Conv or Dense layer's kernel (int8, symmetric) and, as `OutputQuantizeConfig`, its output
    after the activation.

    For layers whose activation (e.g. ELU) tfmot's default 8-bit scheme refuses: the activation runs in float
    inside the layer, as TF Lite's int8 kernels run it on the dequantized values, and the output is quantized.
    """

    def get_weights_and_quantizers(self, layer: tf_keras.layers.Layer) -> list[tuple[Any, Any]]:
        quantizers = tfmot.quantization.keras.quantizers
        return [(layer.kernel, quantizers.LastValueQuantizer(8, per_axis=False, symmetric=True, narrow_range=True))]

    def set_quantize_weights(self, layer: tf_keras.layers.Layer, quantize_weights: list[tf.Tensor]) -> None:
        layer.kernel = quantize_weights[0]


def _default_scheme_activations() -> frozenset[str]:
    """The activations tfmot's default 8-bit scheme quantizes: its `QuantizeAwareActivation`'s own lists (private
    to tfmot, read rather than copied so that they follow its version)."""
    from tensorflow_model_optimization.python.core.quantization.keras.quantize_aware_activation import (
        QuantizeAwareActivation,
    )

    return QuantizeAwareActivation._PRE_QUANT_ACTIVATIONS | QuantizeAwareActivation._POST_QUANT_ACTIVATIONS


DEFAULT_SCHEME_ACTIVATIONS = _default_scheme_activations()  # tfmot 0.8.1: gelu, linear, relu, sigmoid, softmax, ...


@functools.cache
def _default_scheme_registry() -> Any:
    """tfmot's default 8-bit scheme's registry of layer rules (private to tfmot), built once."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )

    return default_8bit_quantize_registry.Default8BitQuantizeRegistry()


def _quantize_config(layer: tf_keras.layers.Layer) -> tfmot.quantization.keras.QuantizeConfig | None:
    """How `quantize` quantizes `layer`: None for tfmot's default 8-bit scheme, which takes it as it is (a layer it
    knows; a batch norm, which it folds into the convolution before it); else one of the bridge's configs."""
    if hasattr(layer, "kernel"):
        known = getattr(getattr(layer, "activation", None), "__name__", None) in DEFAULT_SCHEME_ACTIVATIONS
        return None if known or not hasattr(layer, "activation") else KernelAndOutputQuantizeConfig()
    if layer.weights:
        return None
    registry = _default_scheme_registry()
    if not registry.supports(layer):
        return OutputQuantizeConfig()
    try:  # an `Activation` is supported or not by its function
        registry.get_quantize_config(layer).get_output_quantizers(layer)
    except ValueError:
        return OutputQuantizeConfig()
    return None


def quantize(
    model: tf_keras.Model, layer_names: Sequence[str], own_layers: Mapping[str, type] | None = None
) -> tf_keras.Model:
    """Quantization-aware copy of `model`: `layer_names` get fake-quantized (int8) weights and activations.

    Conv and Dense layers with an activation the default 8-bit scheme lacks (e.g. ELU) get
    `KernelAndOutputQuantizeConfig`; layers without weights that it lacks (operations, `Multiply`, hard swish) get
    `OutputQuantizeConfig`. `own_layers`: the model's custom tf_keras classes by name, as for `to_keras2`.

    Raises:
        BridgeError: a named layer with weights that tfmot's default 8-bit scheme does not support.
    """
    quantization = tfmot.quantization.keras
    chosen = check_layer_names(model, layer_names, "quantized_layers")

    def annotate(layer: tf_keras.layers.Layer) -> tf_keras.layers.Layer:
        if layer.name not in chosen:
            return layer
        return quantization.quantize_annotate_layer(layer, quantize_config=_quantize_config(layer))

    scope = {
        "KernelAndOutputQuantizeConfig": KernelAndOutputQuantizeConfig,
        "OutputQuantizeConfig": OutputQuantizeConfig,
        **BRIDGE_OBJECTS,
        **(own_layers or {}),
    }
    with tf_keras.utils.custom_object_scope(scope):
        annotated = tf_keras.models.clone_model(model, clone_function=annotate)
    try:
        with quantization.quantize_scope(scope):
            return quantization.quantize_apply(annotated)
    except (RuntimeError, ValueError) as err:
        raise BridgeError(
            f"tfmot cannot quantize {model.name}: {err}; leave that layer out of quantized_layers"
        ) from err


def fine_tune(
    model: tf_keras.Model,
    train: tf.data.Dataset,
    val: tf.data.Dataset,
    *,
    epochs: int,
    learning_rate: float,
    loss: str | Callable | dict[str, str],
    metrics: Sequence[str | Callable] | dict[str, list[str]],
    pruning: bool = False,
) -> dict[str, list[float]]:
    """Compile `model` with Adam and train it on batched (input, target) datasets; returns the history.

    `loss` and `metrics` are names both Keras versions know (e.g. "sparse_categorical_crossentropy", "accuracy"),
    or dicts of them by output name (e.g. {"steering": "mse"}, {"steering": ["mae"]}), or functions of
    (y_true, y_pred) made of TensorFlow ops, which tf_keras calls as they are: a Keras 3 loss object such as the
    detector's `SSDLoss` (tf_keras averages the scalar it returns, which leaves it unchanged), or a metric function.

    Raises:
        BridgeError: a Keras 3 metric object (its state lives in Keras 3 variables, which tf_keras never resets or
            reads) or anything else neither a name nor callable.
    """
    for item in tf.nest.flatten((loss, metrics)):
        if isinstance(item, keras.metrics.Metric) or not (isinstance(item, str) or callable(item)):
            raise BridgeError(
                f"tfmot fine-tuning takes losses and metrics by name or as functions (y_true, y_pred), got {item!r}; "
                "give a Keras 3 metric object by its name (e.g. 'mae') or as such a function"
            )
    metrics = metrics if isinstance(metrics, dict) else list(metrics)
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep()] if pruning else []
    verbose = 2 if os.environ.get("CI") else 1
    return model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=verbose).history


def kernel_sparsity(model: tf_keras.Model, layer_names: Sequence[str]) -> float:
    """The share of zeros over the kernels of `layer_names` (after `strip_pruning`)."""
    kernels = [model.get_layer(name).kernel.numpy() for name in layer_names]
    return float(sum(np.sum(k == 0) for k in kernels) / sum(k.size for k in kernels))


def write_savedmodel(model: tf_keras.Model, directory: Path, outputs: Sequence[str] | None = None) -> None:
    """Save `model` as a SavedModel whose `serving_default` takes each input by its layer name and returns each
    output by its layer's name before tfmot wrapped it (quantization-aware wrappers prefix `quant_`).

    `outputs`: names of the layers whose outputs it returns instead of the model's (`Project.optimize_outputs`),
    found under their own name or the quantization-aware `quant_<name>`.
    """
    if outputs is not None:
        layers = {layer.name.removeprefix("quant_"): layer for layer in model.layers}
        # A layer's last call is in `model`: each model here is built from the one before, and the layers it keeps
        # (`strip_pruning` keeps the unpruned ones) were called in every one of them, in that order.
        tensors = [layers[name].get_output_at(-1) for name in outputs]
        model = tf_keras.Model(model.inputs, tensors, name=model.name)
    names = [name.removeprefix("quant_") for name in model.output_names]
    specs = [
        tf.TensorSpec(tensor.shape, tensor.dtype, name=name)
        for tensor, name in zip(model.inputs, model.input_names, strict=True)
    ]

    @tf.function(input_signature=specs)
    def serve(*inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
        if isinstance(outputs, dict):
            return {key.removeprefix("quant_"): value for key, value in outputs.items()}
        return dict(zip(names, tf.nest.flatten(outputs), strict=True))

    # Without each layer's traced functions: only `serving_default` is converted. Tracing them took most of the
    # time of saving the classifier's quantization-aware copy (180 layers): 18 s instead of 65 s with the conversion.
    model.save(
        str(directory),
        save_format="tf",
        include_optimizer=False,
        signatures={"serving_default": serve},
        save_traces=False,
    )
