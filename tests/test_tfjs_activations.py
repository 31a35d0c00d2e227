"""TF.js conversion does not depend on oneDNN: every activation the projects use runs in TF.js like in Keras.

Where oneDNN is on, grappler fuses MatMul/Conv2D + BiasAdd + Tanh (or Gelu) into one op whose activation TF.js
cannot run. The converter therefore runs with oneDNN off; these tests force it on and off in the environment the
export starts from and run both graphs in Node against Keras.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from common.export import tfjs
from common.export.tools import ConversionError

# The activations the projects' default models use (mnist's choices, the driving and chatbot tanh heads, the
# detector's ReLU6, the GAN's tanh image), and GELU in its tanh form, which oneDNN fuses too. Exact GELU ("gelu")
# is left out: its Erfc op is missing from TF.js whatever oneDNN does.
DENSE_ACTIVATIONS = ("tanh", "sigmoid", "relu", "elu", "leaky_relu", "relu6")
CONV_ACTIVATIONS = ("elu", "tanh", "sigmoid", "relu")


def _gelu_tanh(x):
    return keras.activations.gelu(x, approximate=True)


def _model() -> keras.Model:
    """(batch, 8, 8, 1) float32 -> (batch, 4): convolutions and dense layers, each with its activation fused-able.

    Biases are random: the converter folds away a zero bias, and with it the BiasAdd that the fusion needs.
    """
    keras.utils.set_random_seed(0)
    bias = keras.initializers.RandomNormal(stddev=0.5)
    image = keras.Input((8, 8, 1), name="image")
    x = image
    for activation in CONV_ACTIVATIONS:
        x = keras.layers.Conv2D(4, 3, padding="same", activation=activation, bias_initializer=bias)(x)
    x = keras.layers.Flatten()(x)
    for activation in (*DENSE_ACTIVATIONS, _gelu_tanh):
        x = keras.layers.Dense(16, activation=activation, bias_initializer=bias)(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="scores")(x)
    return keras.Model(image, outputs)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[keras.Model, Path]:
    model = _model()
    path = tmp_path_factory.mktemp("activations") / "savedmodel"
    model.export(str(path), verbose=False)
    return model, path


@pytest.mark.parametrize("onednn", ["1", "0"])
def test_every_activation_runs_in_tfjs_like_keras_whatever_onednn_says(exported, tmp_path, monkeypatch, onednn):
    model, savedmodel = exported
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", onednn)
    tfjs.convert(savedmodel, tmp_path / "tfjs")

    unsupported = set(tfjs.fused_activations(tmp_path / "tfjs" / "model.json").values()) - tfjs.TFJS_FUSED_ACTIVATIONS
    assert not unsupported
    inputs = np.random.default_rng(1).normal(size=(16, 8, 8, 1)).astype(np.float32)
    (outputs,) = tfjs.load(tmp_path / "tfjs")({"image": inputs}).values()
    np.testing.assert_allclose(outputs, model.predict(inputs, verbose=0), atol=1e-5)


def _graph_with_fused(tmp_path: Path, *parts: str) -> Path:
    node = {
        "name": "dense/MatMul",
        "op": "_FusedMatMul",
        "attr": {"fused_ops": {"list": {"s": [base64.b64encode(p.encode()).decode() for p in parts]}}},
    }
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"modelTopology": {"node": [{"name": "x", "op": "Placeholder"}, node]}}))
    return path


def test_a_fused_tanh_is_refused_naming_the_node(tmp_path):
    with pytest.raises(ConversionError, match=r"dense/MatMul \(tanh\).*TF_ENABLE_ONEDNN_OPTS=0"):
        tfjs.check_fused_activations(_graph_with_fused(tmp_path, "BiasAdd", "Tanh"))


def test_fused_activations_tfjs_has_are_accepted(tmp_path):
    for parts in (("BiasAdd",), ("BiasAdd", "Relu"), ("BiasAdd", "Sigmoid"), ("FusedBatchNorm", "Relu6")):
        tfjs.check_fused_activations(_graph_with_fused(tmp_path, *parts))
