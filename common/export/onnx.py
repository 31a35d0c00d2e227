"""ONNX from the SavedModel with tf2onnx, checked with ONNX Runtime.

tf2onnx runs as a subprocess (`python -m tf2onnx.convert`): its `from_keras` path
fails on Keras 3 models, the SavedModel path does not, and its logs stay out of ours.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .savedmodel import SIGNATURE
from .tools import ConversionError, run_tool

OPSET = 17


def convert(savedmodel: Path, destination: Path, verbose: bool = False) -> None:
    """Write the `serving_default` signature of `savedmodel` as an ONNX file (opset 17) at `destination`."""
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(savedmodel)]
    command += ["--signature_def", SIGNATURE, "--tag", "serve", "--opset", str(OPSET), "--output", str(destination)]
    run_tool(command, "tf2onnx", verbose)
    if not destination.exists():
        raise ConversionError(f"tf2onnx wrote no file at {destination}")


def session(path: Path, threads: int = 0):
    """An ONNX Runtime CPU session over `path` (`threads` 0 = ONNX Runtime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load(path: Path, verbose: bool = False) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The ONNX model as numpy in, numpy out, outputs keyed by the SavedModel's output names."""
    sess = session(path)
    names = [o.name for o in sess.get_outputs()]

    def predict(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(names, sess.run(names, inputs), strict=True))

    return predict
