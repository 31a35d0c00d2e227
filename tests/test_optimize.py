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
