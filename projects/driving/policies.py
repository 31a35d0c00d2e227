"""Drivers for closed-loop runs: the CNN (frame in, action out), a random policy, and DAgger's mix with the expert.

A policy maps (frame (96, 96, 3) uint8, the expert's action for this state) to the
action applied, [steering, gas, brake] float32. Only DAgger's mix looks at the expert's action.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .episodes import Policy, action_of
from .simulator import FRAME_SHAPE


def cnn_steering(model: keras.Model):
    """A compiled batch-1 call of the model: frame (96, 96, 3) uint8 -> (steering, throttle) floats."""

    @tf.function(input_signature=[tf.TensorSpec((1, *FRAME_SHAPE), tf.uint8)], reduce_retracing=True)
    def run(frame: tf.Tensor) -> dict[str, tf.Tensor]:
        return model(frame, training=False)

    def predict(frame: np.ndarray) -> tuple[float, float]:
        out = run(tf.constant(frame[None]))
        return float(out["steering"][0, 0]), float(out["throttle"][0, 0])

    return predict


def cnn_policy(model: keras.Model, expert_share: float = 0.0, seed: int = 0) -> Policy:
    """The CNN drives; with chance `expert_share` per frame the expert's action is applied instead (DAgger's beta)."""
    predict = cnn_steering(model)
    rng = np.random.default_rng(seed)

    def policy(frame: np.ndarray, expert_action: np.ndarray) -> np.ndarray:
        action = action_of(*predict(frame))
        return expert_action if expert_share and rng.random() < expert_share else action

    return policy


def random_policy(seed: int) -> Policy:
    """Uniformly random steering, gas and brake every frame (the floor any driver must beat)."""
    rng = np.random.default_rng(seed)
    return lambda frame, expert_action: rng.uniform([-1.0, 0.0, 0.0], [1.0, 1.0, 1.0]).astype(np.float32)
