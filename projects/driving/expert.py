"""The expert driver: pure pursuit on the track's centre line, slowing down before curves.

It reads privileged state the camera does not show (the centre line from
`env.unwrapped.track`, the car's exact pose and speed) and answers the action a
good driver would take there. It drives the training tracks, and in DAgger it
labels the states the CNN drives into.

Steering: find the car's place on the centre line (searching only a short window
ahead of the last one, so it never jumps across to a nearby part of the track),
aim at a point `lookahead + lookahead_per_speed * speed` points further on, and
steer in proportion to the angle between the car's heading and that point.
Speed: the largest change of direction over the next `curve_window` points sets the target speed,
between `min_speed` (hairpins) and `max_speed` (straights); gas below it (less while steering hard),
brake well above it.
"""

from __future__ import annotations

import numpy as np

from .config import ExpertConfig

SEARCH_BACK = 5  # centre-line points behind the last match still searched (after a spin)
SEARCH_AHEAD = 30  # and ahead of it
LOST_DISTANCE = 15.0  # farther than this from the windowed match: search the whole track again


def _wrap(angle: np.ndarray | float) -> np.ndarray | float:
    """Angle in (-pi, pi]."""
    return (angle + np.pi) % (2 * np.pi) - np.pi


class ExpertDriver:
    """Pure pursuit over one track: `reset(track)` at the start of an episode, then `act(car)` every frame."""

    def __init__(self, cfg: ExpertConfig) -> None:
        self.cfg = cfg
        self.track = np.zeros((0, 2))
        self.index = 0

    def reset(self, track: np.ndarray) -> None:
        """`track`: the centre line, (n, 2) world coordinates in driving order."""
        self.track = np.asarray(track, np.float64)
        self.index = 0
        segment = np.roll(self.track, -1, axis=0) - self.track
        heading = np.arctan2(segment[:, 1], segment[:, 0])
        self.turn = _wrap(np.roll(heading, -1) - heading)  # signed heading change at each point, radians

    def _locate(self, position: np.ndarray) -> int:
        n = len(self.track)
        window = (self.index + np.arange(-SEARCH_BACK, SEARCH_AHEAD)) % n
        distances = np.linalg.norm(self.track[window] - position, axis=1)
        if distances.min() > LOST_DISTANCE:
            return int(np.argmin(np.linalg.norm(self.track - position, axis=1)))
        return int(window[np.argmin(distances)])

    def act(self, car) -> np.ndarray:
        """The action for the car's present state: [steering, gas, brake] float32 (steering > 0 turns right)."""
        cfg = self.cfg
        n = len(self.track)
        position = np.array(car.hull.position, np.float64)
        velocity = np.array(car.hull.linearVelocity, np.float64)
        speed = float(np.linalg.norm(velocity))
        self.index = self._locate(position)

        ahead = int(cfg.lookahead + cfg.lookahead_per_speed * speed)
        target = self.track[(self.index + ahead) % n]
        forward = np.array(car.hull.GetWorldVector((0, 1)))
        right = np.array(car.hull.GetWorldVector((1, 0)))
        offset = target - position
        heading_error = float(np.arctan2(offset @ right, offset @ forward))  # > 0: the target is to the right
        # Yaw damping (off by default, see ExpertConfig.yaw_damping): turning left fast (angular velocity > 0)
        # adds right steering against weaving. A longer lookahead and less gas while steering keep the car
        # stable without it, and leave a steering the camera frame explains.
        yaw_rate = float(car.hull.angularVelocity)
        steering = float(np.clip(cfg.steering_gain * heading_error + cfg.yaw_damping * yaw_rate, -1.0, 1.0))

        bend = np.abs(np.cumsum(self.turn[(self.index + np.arange(cfg.curve_window)) % n])).max()
        sharpness = float(np.clip(bend / cfg.sharp_turn, 0.0, 1.0))
        target_speed = cfg.max_speed - (cfg.max_speed - cfg.min_speed) * sharpness
        grip = 1.0 - cfg.steering_gas_cut * abs(steering)  # less gas while steering hard: the rear wheels slip
        gas = float(np.clip(cfg.throttle_gain * (target_speed - speed), 0.0, 1.0)) * grip
        brake = float(np.clip(cfg.brake_gain * (speed - target_speed - cfg.brake_margin), 0.0, 1.0))
        return np.array([steering, gas, brake], np.float32)
