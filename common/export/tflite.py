"""TF Lite from the SavedModel, in four variants, run with `ai_edge_litert`.

- float32: the graph as is.
- float16: weights stored as float16 (half the size), computed in float32.
- dynamic: weights stored as int8, activations quantized on the fly (a quarter of the size).
- int8: full-integer; weights and activations int8, calibrated on a representative
  set of training inputs. Inputs and outputs stay float32 (quantize/dequantize at
  the edges), so every variant keeps the SavedModel's signature.
"""

from __future__ import annotations

import os
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
) -> None:
    """Convert the `serving_default` signature of `savedmodel` to a `variant` .tflite file at `destination`.

    Args:
        representative: inputs by signature name, (n, ...) each; int8 calibrates on them one example at a time.
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
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with native_output_captured(f"TF Lite {variant} conversion", verbose):
        flatbuffer = converter.convert()
    destination.write_bytes(flatbuffer)


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
