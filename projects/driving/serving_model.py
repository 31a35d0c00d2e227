"""What the driving project exports: `frame` (batch, 96, 96, 3) uint8 -> `steering` (batch,), `throttle` (batch, 1).

The two outputs have different shapes on purpose: the TF.js converter drops the
signature's output names when two outputs share dtype and shape, and a client
could no longer tell steering from throttle.
"""

from __future__ import annotations

import keras
from keras import layers


def build_serving_model(model: keras.Model) -> keras.Model:
    """The trained PilotNet with steering as (batch,) and throttle as (batch, 1), both float32 in [-1, 1]."""
    outputs = model.output
    steering = layers.Reshape((), name="steering_flat")(outputs["steering"])
    return keras.Model(model.input, {"steering": steering, "throttle": outputs["throttle"]}, name="driving_serving")
