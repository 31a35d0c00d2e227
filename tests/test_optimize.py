"""`optimize`: pruning and quantization-aware training through the tf_keras bridge, compared as TF Lite,
with `tf.keras` and `keras` still Keras 3 in the same process afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from .conftest import REPO, project_env, run_project

AFTERWARDS = """
import json, os, sys
import keras, tensorflow as tf
print("KERAS " + json.dumps({
    "tfmot imported": "tensorflow_model_optimization" in sys.modules,
    "tf.keras is Keras 3": tf.keras.Model is keras.Model and isinstance(tf.keras.layers.Dense(2), keras.layers.Layer),
    "keras version": keras.__version__,
    "TF_USE_LEGACY_KERAS": os.environ.get("TF_USE_LEGACY_KERAS"),
}))
"""

BRIDGE = """
import numpy as np, keras
from common import keras2_bridge as bridge

class Doubling(keras.layers.Layer):
    def call(self, x):
        return 2 * x

inputs = keras.Input((6,), name="x")
hidden = keras.layers.Dense(4, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-3))(inputs)
normed = keras.layers.BatchNormalization()(hidden)
outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([normed, inputs]))
model = keras.Model(inputs, outputs)
sample = np.random.default_rng(0).random((5, 6), dtype=np.float32)
copy = bridge.to_keras2(model, sample)
print("SAME", float(np.max(np.abs(copy(sample).numpy() - model(sample)))), type(copy).__module__)
for build in (lambda: bridge.to_keras2(keras.Sequential([keras.Input((6,)), Doubling()]), sample),
              lambda: bridge.check_layer_names(model, ["dense", "dense_9"], "prunable_layers")):
    try:
        build()
    except bridge.BridgeError as err:
        print("ERROR", err)
"""

NESTED = """
import json
import numpy as np, keras
from common import keras2_bridge as bridge
from common.project import inlined_layers

def backbone(name):  # MobileNetV3's pieces: batch norm, hard swish, a squeeze-excite gate of operations
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name=f"{name}_rescaling")(inputs)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(keras.layers.Conv2D(4, 3, name=f"{name}_conv")(x))
    x = keras.layers.Activation("hard_silu", name=f"{name}_hard_swish")(x)
    gate = keras.layers.Conv2D(4, 1, name=f"{name}_gate")(keras.layers.GlobalAveragePooling2D(keepdims=True)(x))
    gate = keras.layers.ReLU(6.0, name=f"{name}_relu6")(gate + 3.0) * (1.0 / 6.0)
    return keras.Model(inputs, keras.layers.Multiply(name=f"{name}_excite")([x, gate]), name=name)

shared = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="shared_dense")], name="shared")
images = keras.Input((8, 8, 3), name="image")
frozen = backbone("frozen")
pooled = [keras.layers.GlobalAveragePooling2D(name=f"pool_{k}")(features)
          for k, features in enumerate((frozen(images, training=False), backbone("tuned")(images)))]
outputs = keras.layers.Concatenate(name="both")([shared(pooled[0]), shared(pooled[1])])
model = keras.Model(images, keras.layers.Dense(2, activation="softmax", name="probabilities")(outputs))
for layer in inlined_layers(model):  # batch norm statistics other than 0 and 1
    for weight in getattr(layer, "weights", []):
        weight.assign(np.random.default_rng(len(weight.path)).uniform(0.5, 1.5, weight.shape).astype("float32"))
x = np.random.default_rng(0).uniform(0, 255, (6, 8, 8, 3)).astype(np.float32)
copy = bridge.to_keras2(model, x)
names = [layer.name for layer in inlined_layers(model) if type(layer).__name__ != "InputLayer"]
quantized = bridge.quantize(bridge.to_keras2(model, x), names)
direct = keras.Model(images, backbone("direct")(images))  # the model's output is the nested model's
configs = {layer.name: type(layer.quantize_config).__name__ for layer in quantized.layers
           if hasattr(layer, "quantize_config")}
print("NESTED " + json.dumps({
    "inference": float(np.max(np.abs(copy(x, training=False).numpy() - model(x, training=False)))),
    "training": float(np.max(np.abs(copy(x, training=True).numpy() - model(x, training=True)))),
    "copy layers": sorted(layer.name for layer in copy.layers),
    "inlined": sorted(names),
    "direct": float(np.max(np.abs(bridge.to_keras2(direct, x)(x).numpy() - direct(x)))),
    "checked": sorted(bridge.check_layer_names(model, ["frozen_conv", "shared_dense"], "prunable_layers")),
    "quantize configs": configs,
}))
clash = keras.Input((8, 8, 3))
try:
    bridge.to_keras2(keras.Model(clash, keras.layers.Conv2D(2, 1, name="tuned_conv")(backbone("tuned")(clash))), x)
except bridge.BridgeError as err:
    print("ERROR", err)
"""


def _python(code: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _keras_state(stdout: str) -> dict:
    return json.loads(stdout.split("KERAS ", 1)[1].splitlines()[0])


@pytest.mark.parametrize("sparsity", ["0", "1", "1.5", "-0.2"])
def test_target_sparsity_outside_0_1_is_rejected_before_any_work(sparsity, tmp_path):
    result = run_project(
        "mnist", "optimize", "--set", f"optimize.target_sparsity={sparsity}", "--output-dir", str(tmp_path)
    )
    assert result.returncode == 2
    assert f"bad value for optimize.target_sparsity: {float(sparsity)!r}; it must be in (0.0, 1.0), ends excluded" in (
        result.stderr
    )
    assert not (tmp_path / "optimize").exists()


def test_bridge_copies_keras3_models_exactly_names_what_it_cannot_and_leaves_tf_keras_alone():
    result = _python(BRIDGE + AFTERWARDS, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    same = result.stdout.split("SAME ", 1)[1].split()
    assert float(same[0]) < 1e-6 and same[1].startswith("tf_keras")
    assert "layer 'doubling' (Doubling) has no tf_keras counterpart" in result.stdout
    assert "Project.prunable_layers gave no layer named dense_9" in result.stdout
    state = _keras_state(result.stdout)
    assert state["tfmot imported"] and state["tf.keras is Keras 3"] and state["keras version"].startswith("3.")
    assert state["TF_USE_LEGACY_KERAS"] is None


def test_bridge_inlines_nested_models_with_their_operations_and_quantizes_each_layer():
    """Backbones nested as models (one called with `training=False`, which Keras 3 overrides when the outer model is
    called with a phase), MobileNetV3's hard swish and squeeze-excite operations, and a sequential model called twice:
    the copy holds their layers inlined, by their own names, and computes what the Keras 3 model computes, in both
    phases (batch norms on the batch's statistics in training)."""
    result = _python(NESTED, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    nested = json.loads(result.stdout.split("NESTED ", 1)[1].splitlines()[0])
    assert max(nested["inference"], nested["training"], nested["direct"]) < 1e-5, nested
    inner = {f"{name}_{part}" for name in ("frozen", "tuned") for part in ("conv", "bn", "hard_swish", "excite")}
    assert inner | {"shared_dense", "add", "multiply", "add_1", "multiply_1"} <= set(nested["copy layers"])
    assert not {"frozen", "tuned", "shared"} & set(nested["copy layers"])  # no nested model left
    assert set(nested["inlined"]) == set(nested["copy layers"]) - {"image"}
    assert nested["checked"] == ["frozen_conv", "shared_dense"]
    configs = nested["quantize configs"]
    for name in (
        "quant_add",
        "quant_multiply",
        "quant_frozen_hard_swish",
        "quant_frozen_excite",
        "quant_frozen_rescaling",
    ):
        assert configs[name] == "OutputQuantizeConfig", (name, configs)
    assert configs["quant_frozen_relu6"] == configs["quant_probabilities"] == "Default8BitQuantizeConfig", configs
    assert "two layers are named 'tuned_conv' (in tuned and in the model)" in result.stdout


@pytest.mark.slow
def test_optimize_compares_pruned_and_quantized_tflite_and_keeps_keras3(mnist_smoke_run, tmp_path):
    shutil.copy(mnist_smoke_run[0] / "model.keras", tmp_path / "model.keras")
    args = ["optimize", "--preset", "smoke", "--set", "data.limit=256", "--set", "optimize.prune_epochs=1"]
    args += ["--set", "optimize.latency_runs=10", "--output-dir", str(tmp_path)]
    result = _python(f"from common.cli import main\nmain('mnist', {args!r})\n" + AFTERWARDS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    state = _keras_state(result.stdout)
    assert state["tfmot imported"] and state["tf.keras is Keras 3"] and state["keras version"].startswith("3.")
    assert state["TF_USE_LEGACY_KERAS"] is None

    summary = json.loads((tmp_path / "optimize" / "optimize.json").read_text())
    models = summary["models"]
    assert list(models) == ["baseline_float32", "ptq_int8", "pruned_float32", "pruned_int8", "qat_int8"]
    base = models["baseline_float32"]
    assert base["metric"] > 0.8 and base["latency_ms"] > 0
    for name in ("ptq_int8", "pruned_int8", "qat_int8"):
        assert models[name]["size_bytes"] < 0.35 * base["size_bytes"], name
        assert models[name]["metric"] > base["metric"] - 0.1, name  # int8 keeps the answers
    assert models["pruned_float32"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert models["pruned_float32"]["gzip_bytes"] < 0.75 * base["gzip_bytes"]
    for name, model in models.items():
        assert (tmp_path / "optimize" / model["file"]).stat().st_size == model["size_bytes"], name
    table = (tmp_path / "optimize" / "optimize.md").read_text()
    assert "| pruned, float32 | " in table and "| quantization-aware, int8 | " in table
    assert (tmp_path / "optimize" / "size_vs_accuracy.png").stat().st_size > 5_000


def test_optimize_before_train_says_what_to_run(tmp_path):
    result = run_project("mnist", "optimize", "--preset", "smoke", "--output-dir", str(tmp_path))
    assert result.returncode == 1
    assert "no trained model at" in result.stderr and "make project=mnist train" in result.stderr
