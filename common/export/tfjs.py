"""TF.js graph model from the SavedModel, and running it in Node with @tensorflow/tfjs.

The converter runs as a subprocess: tensorflowjs imports Keras 2 (`tf_keras`) and
TensorFlow Decision Forests, which must not switch `tf.keras` in this process.
The graph model is loaded by `tfjs_predict.mjs` with the same @tensorflow/tfjs the
browser demos use (serving/web/node_modules), on its pure-JavaScript CPU backend.

The converter's graph must not depend on the machine. Where TensorFlow's oneDNN
optimisations are on (the default on some x86 CPUs, or TF_ENABLE_ONEDNN_OPTS=1),
grappler's remapper fuses MatMul + BiasAdd + Tanh (or Gelu) into one `_FusedMatMul`
whose activation TF.js 4.22 cannot run on any backend ("Activation tanh has not been
implemented"). Without oneDNN it fuses only activations TF.js has, so the converter
always runs with TF_ENABLE_ONEDNN_OPTS=0, and `check_fused_activations` refuses a
graph that would fail in the browser, naming the node.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from common.paths import REPO_ROOT

from .savedmodel import SIGNATURE
from .tools import VENV_BIN, ConversionError, run_tool

PREDICT_SCRIPT = Path(__file__).with_name("tfjs_predict.mjs")
TFJS_PACKAGE = REPO_ROOT / "serving" / "web" / "node_modules" / "@tensorflow" / "tfjs"  # where the script finds it
BATCH_SIZE = 256
# The converter's environment: oneDNN off, so grappler fuses no activation TF.js lacks (see above).
CONVERTER_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0"}
# Activations TF.js 4.22 runs inside a fused op (tfjs-core `fused_util`); names as in the graph's `fused_ops`.
TFJS_FUSED_ACTIVATIONS = frozenset({"relu", "relu6", "elu", "leakyrelu", "prelu", "sigmoid"})
# Fused-op parts that are not activations: the bias add and the batch norm folded into a convolution.
_FUSED_NON_ACTIVATIONS = frozenset({"biasadd", "fusedbatchnorm", "add", "addv2"})


def convert(savedmodel: Path, destination: Path, quantize_uint8: bool = False, verbose: bool = False) -> None:
    """Write `destination/model.json` and its weight shards; `quantize_uint8` stores weights as uint8 (1/4 size)."""
    command = [
        str(VENV_BIN / "tensorflowjs_converter"),
        "--input_format=tf_saved_model",
        "--output_format=tfjs_graph_model",
        f"--signature_name={SIGNATURE}",
        "--saved_model_tags=serve",
    ]
    if quantize_uint8:
        command.append("--quantize_uint8=*")
    run_tool([*command, str(savedmodel), str(destination)], "tensorflowjs_converter", verbose, env=CONVERTER_ENV)
    if not (destination / "model.json").exists():
        raise ConversionError(f"tensorflowjs_converter wrote no model.json in {destination}")
    check_fused_activations(destination / "model.json")


def fused_activations(model_json: Path) -> dict[str, str]:
    """{node name: activation} for every fused op of a TF.js graph model that carries an activation."""
    found = {}
    for node in json.loads(model_json.read_text())["modelTopology"]["node"]:
        encoded = node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])
        parts = [base64.b64decode(s).decode().lower() for s in encoded]
        activations = [p for p in parts if p not in _FUSED_NON_ACTIVATIONS]
        if activations:
            found[node["name"]] = activations[-1]
    return found


def check_fused_activations(model_json: Path) -> None:
    """Raise ConversionError if a fused op of the graph has an activation that TF.js cannot run."""
    unsupported = {n: a for n, a in fused_activations(model_json).items() if a not in TFJS_FUSED_ACTIVATIONS}
    if unsupported:
        listed = ", ".join(f"{node} ({act})" for node, act in sorted(unsupported.items()))
        raise ConversionError(
            f"the TF.js graph fuses activations TF.js cannot run: {listed}; convert with TF_ENABLE_ONEDNN_OPTS=0"
        )


def load(model_dir: Path, verbose: bool = False) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The graph model as numpy in, numpy out: each call runs Node once over all the inputs."""
    node = shutil.which("node")
    if node is None:
        raise ConversionError("node not found on PATH; install Node.js 18+ to run the TF.js model")
    if not TFJS_PACKAGE.is_dir():
        raise ConversionError(f"@tensorflow/tfjs is not installed in {TFJS_PACKAGE.parents[1]}; run `make install`")

    def predict(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with tempfile.TemporaryDirectory() as tmp:
            request = {"model": str(model_dir), "batch_size": BATCH_SIZE, "inputs": {}}
            for name, array in inputs.items():
                array = np.ascontiguousarray(array, np.int32 if array.dtype.kind in "iu" else np.float32)
                array.tofile(Path(tmp) / f"{name}.bin")
                request["inputs"][name] = {
                    "dtype": array.dtype.name,
                    "shape": list(array.shape),
                    "file": str(Path(tmp) / f"{name}.bin"),
                }
            (Path(tmp) / "request.json").write_text(json.dumps(request))
            stdout = run_tool([node, str(PREDICT_SCRIPT), str(Path(tmp) / "request.json")], "node (TF.js)", verbose)
        outputs = json.loads(stdout)
        return {name: np.asarray(o["data"], o["dtype"]).reshape(o["shape"]) for name, o in outputs.items()}

    return predict
