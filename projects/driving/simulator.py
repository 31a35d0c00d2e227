"""gymnasium's CarRacing-v3, headless and seeded, with the telemetry the expert and the reports need.

A track is generated from its seed: the same seed always gives the same track, and
the same actions give the same frames. Each step returns the 96x96 camera frame
(the car seen from above, the road, and a black telemetry bar in the bottom 12 rows)
and a `Telemetry` record: speed, position, heading, tiles visited, off-track.

Reward (gymnasium's): +1000/N for each of the N track tiles visited for the first
time, -0.1 per frame; an episode ends after a lap, `max_steps` frames, or when the
car leaves the playfield (-100).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # no window: must be set before pygame is imported

import numpy as np

FRAME_SHAPE = (96, 96, 3)  # the camera frame, uint8 RGB
BAR_ROWS = 12  # the telemetry bar at the bottom of the frame (speed, ABS, steering, gyro, score)
INSTALL_HINT = "install it with `.venv/bin/pip install 'gymnasium[box2d]==1.4.0'` (or `make project=driving install`)"


class SimulatorMissingError(RuntimeError):
    """gymnasium or its box2d extra is not installed."""


def _make_env(max_steps: int):
    try:
        import Box2D  # noqa: F401  (CarRacing's physics)
        import gymnasium as gym
    except ImportError as err:
        message = f"CarRacing-v3 needs box2d, which is not installed ({err}): {INSTALL_HINT}"
        raise SimulatorMissingError(message) from None
    return gym.make("CarRacing-v3", max_episode_steps=max_steps)


@dataclass(frozen=True)
class Telemetry:
    """The car's state after a step (privileged: not in the frame except the speed bar)."""

    speed: float  # m/s-like Box2D units, as the frame's speed bar shows it
    x: float  # world position
    y: float
    angle: float  # hull angle in radians
    tiles_visited: int  # track tiles touched at least once
    tiles_total: int
    off_track: bool  # no wheel on a road tile
    lap_finished: bool

    @property
    def progress(self) -> float:
        """Share of the track's tiles visited, in [0, 1]."""
        return self.tiles_visited / max(1, self.tiles_total)


class Simulator:
    """One CarRacing-v3 environment; `reset(seed)` builds that seed's track.

    Example:
        sim = Simulator(max_steps=1000)
        frame, telemetry = sim.reset(seed=3)
        frame, reward, done, telemetry = sim.step(np.array([0.0, 0.5, 0.0]))
    """

    def __init__(self, max_steps: int = 1000) -> None:
        self.env = _make_env(max_steps)
        self.lap_finished = False

    @property
    def car(self):
        """The Box2D car (`hull.position`, `hull.angle`, `hull.linearVelocity`, `wheels`)."""
        return self.env.unwrapped.car

    @property
    def track(self) -> np.ndarray:
        """The centre line, (n, 2) float world coordinates, in driving order (point 0 is the start)."""
        return np.asarray([(x, y) for _, _, x, y in self.env.unwrapped.track], np.float64)

    def reset(self, seed: int) -> tuple[np.ndarray, Telemetry]:
        """Build the track of `seed`; the first frame (96, 96, 3) uint8 and the telemetry."""
        frame, _ = self.env.reset(seed=int(seed))
        self.lap_finished = False
        return frame, self.telemetry()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, Telemetry]:
        """Apply [steering in [-1, 1] (negative: left), gas in [0, 1], brake in [0, 1]] for one frame (1/50 s).

        Returns the new frame (96, 96, 3) uint8, the step's reward, whether the episode ended, and the telemetry.
        """
        action = np.clip(np.asarray(action, np.float64), [-1.0, 0.0, 0.0], [1.0, 1.0, 1.0])
        frame, reward, terminated, truncated, info = self.env.step(action)
        self.lap_finished = self.lap_finished or bool(info.get("lap_finished", False))
        return frame, float(reward), bool(terminated or truncated), self.telemetry()

    def telemetry(self) -> Telemetry:
        env = self.env.unwrapped
        car = env.car
        velocity = car.hull.linearVelocity
        return Telemetry(
            speed=float(np.hypot(velocity[0], velocity[1])),
            x=float(car.hull.position[0]),
            y=float(car.hull.position[1]),
            angle=float(car.hull.angle),
            tiles_visited=int(env.tile_visited_count),
            tiles_total=len(env.track),
            off_track=all(len(wheel.tiles) == 0 for wheel in car.wheels),
            lap_finished=self.lap_finished,
        )

    def close(self) -> None:
        self.env.close()
