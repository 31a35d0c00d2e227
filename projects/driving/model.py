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

`augment_pairs` changes frames and labels together on training batches, each
change keeping the label true: a mirrored road negates the steering; a brighter
or darker frame keeps it; the road shifted sideways under the car (the car
stays put) needs a steering correction back towards the centre.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from .config import DataConfig, ModelConfig
from .simulator import BAR_ROWS, FRAME_SHAPE

SPEED_BAR_COLUMNS = (11, 16)  # the speed bar's columns in the telemetry bar (kept; the rest is masked)
CAR_ROWS, CAR_COLUMNS = (64, 80), (43, 53)  # where the car is drawn: it stays put when the road is shifted
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


def augment_pairs(cfg: DataConfig):
    """A tf.data map over training batches: (frames (b, 96, 96, 3) uint8, {"steering", "throttle"} (b, 1)) -> same.

    Per example: a left-right mirror of the road (steering negated) with chance 1/2 if `cfg.flip`; a brightness
    change up to `cfg.brightness` * 255; a sideways shift of the road by up to `cfg.shift` pixels under the car,
    with steering corrected by `cfg.shift_steering` per pixel. The telemetry bar is never mirrored or shifted.
    """
    road_cols = np.arange(FRAME_SHAPE[1])
    car_mask = np.zeros((1, ROAD_ROWS, FRAME_SHAPE[1], 1), np.float32)
    car_mask[:, slice(*CAR_ROWS), slice(*CAR_COLUMNS)] = 1.0

    def augment(frames: tf.Tensor, targets: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        batch = tf.shape(frames)[0]
        road, bar = tf.cast(frames[:, :ROAD_ROWS], tf.float32), tf.cast(frames[:, ROAD_ROWS:], tf.float32)
        steering = targets["steering"]
        if cfg.flip:
            flip = tf.random.uniform((batch, 1)) < 0.5
            road = tf.where(flip[:, :, None, None], tf.reverse(road, axis=[2]), road)
            steering = tf.where(flip, -steering, steering)
        if cfg.shift:
            dx = tf.random.uniform((batch,), -cfg.shift, cfg.shift + 1, dtype=tf.int32)
            columns = tf.clip_by_value(road_cols[None, :] - dx[:, None], 0, FRAME_SHAPE[1] - 1)
            shifted = tf.gather(road, columns, axis=2, batch_dims=1)
            road = car_mask * road + (1.0 - car_mask) * shifted  # the car stays where the camera keeps it
            # The road moved right under the car: the car is now left of where it was, so steer more to the right.
            steering = tf.clip_by_value(steering + cfg.shift_steering * tf.cast(dx[:, None], tf.float32), -1.0, 1.0)
        if cfg.brightness:
            road = road + tf.random.uniform((batch, 1, 1, 1), -cfg.brightness, cfg.brightness) * 255.0
        frames = tf.cast(tf.round(tf.clip_by_value(tf.concat([road, bar], axis=1), 0.0, 255.0)), tf.uint8)
        return frames, {**targets, "steering": steering}

    return augment
