"""TF Lite from the SavedModel, in four variants, run with `ai_edge_litert`.

- float32: the graph as is.
- float16: weights stored as float16 (half the size), computed in float32.
- dynamic: weights stored as int8, activations quantized on the fly (a quarter of the size).
- int8: full-integer; weights and activations int8, calibrated on a representative
  set of training inputs. Inputs and outputs stay float32 (quantize/dequantize at
  the edges), so every variant keeps the SavedModel's signature. A model may keep some ops in float32
  (`float_nodes`: a detector's box decoding and NMS): TF Lite's selective quantization, the rest int8; and may
  scale its weights per tensor instead of per output channel (`per_channel`: a smaller file).
Every file is written without its tensors' names (`without_tensor_names`): a runtime needs only the signature's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from .savedmodel import SIGNATURE
from .tools import native_output_captured

VARIANTS = ("float32", "float16", "dynamic", "int8")


def convert(
    savedmodel: Path,
    destination: Path,
    variant: str,
    representative: dict[str, np.ndarray],
    verbose: bool = False,
    float_nodes: str | None = None,
    per_channel: bool = True,
) -> None:
    """Convert the `serving_default` signature of `savedmodel` to a `variant` .tflite file at `destination`.

    Args:
        representative: inputs by signature name, (n, ...) each; int8 calibrates on them one example at a time.
        float_nodes: int8 only: a regular expression; the ops whose output tensor names (TF's op names, e.g.
            `model/detections/NonMaxSuppressionV4`) match it stay float32, fed by dequantized int8 tensors.
            None: every op int8.
        per_channel: int8 only: a scale per output channel of each weight tensor (TF Lite's default); False: one
            per tensor, which drops a float32 scale and an int64 zero point per channel from the file.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(str(savedmodel), signature_keys=[SIGNATURE])
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        names = list(representative)
        count = len(representative[names[0]])
        converter.representative_dataset = lambda: ([representative[k][i : i + 1] for k in names] for i in range(count))
        if not float_nodes:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter._experimental_disable_per_channel = not per_channel  # no public switch: TF 2.19's converter field
    with native_output_captured(f"TF Lite {variant} conversion", verbose):
        flatbuffer = _int8_except(converter, float_nodes) if variant == "int8" and float_nodes else converter.convert()
    destination.write_bytes(without_tensor_names(flatbuffer))


def without_tensor_names(flatbuffer: bytes) -> bytes:
    """The model with its tensors' names dropped (TF's op paths, 15-20 KB in a small detector); the signature keeps
    its input and output names, which is all a runtime asks for (`get_signature_runner`). TF Lite's own
    `flatbuffer_utils.strip_strings` would drop the signature too."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            tensor.name = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _int8_except(converter: tf.lite.TFLiteConverter, float_nodes: str) -> bytes:
    """Full-integer quantization of every op but those whose output tensor names match `float_nodes`.

    TF Lite's quantization debugger calibrates the model once, then quantizes it with those ops denylisted.

    Raises:
        ValueError: no tensor matches `float_nodes` (a renamed layer would otherwise go int8 unnoticed).
    """
    from ai_edge_litert.interpreter import Interpreter

    calibration = converter.representative_dataset
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=calibration)
    calibrated = Interpreter(model_content=debugger.calibrated_model)
    pattern = re.compile(float_nodes)
    nodes = [t["name"] for t in calibrated.get_tensor_details() if pattern.search(t["name"])]
    if not nodes:
        raise ValueError(f"no tensor of the model matches float_nodes={float_nodes!r}")
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes)
    return debugger.get_nondebug_quantized_model()


def load(path: Path, verbose: bool = False) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The model's `serving_default` signature as numpy in, numpy out (the batch size follows the inputs)."""
    runner = interpreter_for(path, verbose=verbose).get_signature_runner(SIGNATURE)

    def predict(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with native_output_captured(f"running {path.name}", verbose):
            return {k: np.array(v) for k, v in runner(**inputs).items()}

    return predict


def interpreter_for(path: Path, num_threads: int | None = None, batch_size: int | None = None, verbose: bool = False):
    """An `ai_edge_litert` interpreter over a .tflite file, its tensors allocated (for `batch_size` if given).

    Builtin ops only, XNNPACK on CPU; the delegate's "INFO: Created ..." line is hidden unless `verbose`.
    """
    from ai_edge_litert.interpreter import Interpreter

    with native_output_captured(f"loading {path.name}", verbose):
        interpreter = Interpreter(model_path=os.fspath(path), num_threads=num_threads)
        for spec in interpreter.get_input_details() if batch_size else []:
            interpreter.resize_tensor_input(spec["index"], [batch_size, *spec["shape_signature"][1:]])
        interpreter.allocate_tensors()
    return interpreter
