"""Augmentation of training batches that keeps the labels true: frames and targets change together.

`augment_pairs` is a tf.data map over batches of (frames (b, 96, 96, 3) uint8, {"steering", "throttle"}
(b, 1) float32). Per example: a mirrored road negates the steering; a brighter or darker frame keeps it;
the road shifted sideways under the car (the car stays put) needs a steering correction back towards
the centre. The telemetry bar at the bottom of the frame is never mirrored or shifted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from .config import DataConfig
from .model import ROAD_ROWS
from .simulator import FRAME_SHAPE

CAR_ROWS, CAR_COLUMNS = (64, 80), (43, 53)  # where the car is drawn: it stays put when the road is shifted

Targets = dict[str, tf.Tensor]


def augment_pairs(cfg: DataConfig) -> Callable[[tf.Tensor, Targets], tuple[tf.Tensor, Targets]]:
    """A tf.data map over training batches: (frames (b, 96, 96, 3) uint8, {"steering", "throttle"} (b, 1)) -> same.

    Per example: a left-right mirror of the road (steering negated) with chance 1/2 if `cfg.flip`; a brightness
    change up to `cfg.brightness` * 255; a sideways shift of the road by up to `cfg.shift` pixels under the car,
    with steering corrected by `cfg.shift_steering` per pixel. The telemetry bar is never mirrored or shifted.
    """
    road_cols = np.arange(FRAME_SHAPE[1])
    car_mask = np.zeros((1, ROAD_ROWS, FRAME_SHAPE[1], 1), np.float32)
    car_mask[:, slice(*CAR_ROWS), slice(*CAR_COLUMNS)] = 1.0

    def augment(frames: tf.Tensor, targets: Targets) -> tuple[tf.Tensor, Targets]:
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
