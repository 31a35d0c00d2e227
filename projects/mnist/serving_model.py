"""The model mnist exports: the trained classifier's probabilities, and the digit they pick.

`serving_default` of every exported format: `image` (batch, 28, 28, 1) float32 in [0, 1], white
digit on black (the trained model's own input) -> `probabilities` (batch, 10) float32 and `digit`
(batch,) int32. `digit` is int32 rather than a second float output so that TF.js keeps both output
names (its converter can drop names of outputs that share dtype and shape).
The autoencoder's: the same `image` -> `reconstruction` (batch, 28, 28, 1) float32 in [0, 1].
"""

from __future__ import annotations

import keras

from common.export.layers import ClassIndex


def build_serving_model(model: keras.Model) -> keras.Model:
    """`model` (image -> probabilities) with the most probable digit added as a second output."""
    probabilities = model.output
    digit = ClassIndex(name="digit")(probabilities)
    return keras.Model(model.input, {"probabilities": probabilities, "digit": digit}, name="mnist_serving")


def build_reconstruction_serving_model(model: keras.Model) -> keras.Model:
    """The autoencoder `model` (image -> reconstruction) with its output named `reconstruction`."""
    return keras.Model(model.input, {"reconstruction": model.output}, name="mnist_autoencoder_serving")
