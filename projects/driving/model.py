"""PilotNet (Bojarski et al., NVIDIA 2016) for CarRacing's 96x96 camera: frame in, steering and throttle out.

Input `frame` (batch, 96, 96, 3) uint8 RGB, the simulator's frame as is. Outputs
`steering` (batch, 1) in [-1, 1] (negative: left) and `throttle` (batch, 1) in
[-1, 1] (gas minus brake), both tanh.

1. `TelemetryMask`: the frame's bottom 12 rows are a telemetry bar (score, speed,
   ABS, steering angle, gyroscope). Only the speed bar is kept: the steering-angle
   and gyroscope bars show the previous action, and a network that reads them
   copies it instead of looking at the road (causal confusion); the score is noise.
2. Normalization to [-1, 1] (PilotNet's fixed normalization layer).
3. Five convolutions: 5x5 stride 2 (24, 36, 48 filters), then 3x3 (64, 64), ELU.
4. The dense head (100, 50, 10, ELU, dropout) and two tanh outputs.

Loss: the mean squared error of each output (project.py); augmentation.py changes frames
and labels together on training batches.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from .config import ModelConfig
from .simulator import BAR_ROWS, FRAME_SHAPE

SPEED_BAR_COLUMNS = (11, 16)  # the speed bar's columns in the telemetry bar (kept; the rest is masked)
ROAD_ROWS = FRAME_SHAPE[0] - BAR_ROWS


def telemetry_mask() -> np.ndarray:
    """(96, 96, 1) float32: 1 on the road view and the speed bar, 0 on the rest of the telemetry bar."""
    mask = np.ones((*FRAME_SHAPE[:2], 1), np.float32)
    mask[ROAD_ROWS:] = 0.0
    mask[ROAD_ROWS:, slice(*SPEED_BAR_COLUMNS)] = 1.0
    return mask


@keras.saving.register_keras_serializable(package="driving")
class TelemetryMask(layers.Layer):
    """uint8 frames (batch, 96, 96, 3) -> float32 frames with the telemetry bar blanked except the speed bar."""

    def call(self, frames):
        return keras.ops.cast(frames, "float32") * keras.ops.convert_to_tensor(telemetry_mask())


def build_model(cfg: ModelConfig) -> keras.Model:
    """PilotNet: `frame` (batch, 96, 96, 3) uint8 -> {"steering": (batch, 1), "throttle": (batch, 1)} in [-1, 1]."""
    frame = keras.Input(FRAME_SHAPE, dtype="uint8", name="frame")
    x = TelemetryMask(name="telemetry_mask")(frame)
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(x)
    for i, filters in enumerate(cfg.filters):
        big = i < 3  # PilotNet: three 5x5 stride-2 convolutions, then 3x3 stride 1
        x = layers.Conv2D(filters, 5 if big else 3, strides=2 if big else 1, activation="elu", name=f"conv{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(cfg.dense):
        x = layers.Dropout(cfg.dropout, name=f"dropout{i + 1}")(x)
        x = layers.Dense(units, activation="elu", name=f"dense{i + 1}")(x)
    steering = layers.Dense(1, activation="tanh", name="steering")(x)
    throttle = layers.Dense(1, activation="tanh", name="throttle")(x)
    return keras.Model(frame, {"steering": steering, "throttle": throttle}, name="pilotnet")
