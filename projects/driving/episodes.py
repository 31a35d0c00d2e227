"""Recorded drives: what the camera saw at each frame, what the expert would do there, and what was done.

An episode is one drive of one track by one driver (the expert, the CNN, a random
policy), kept as a compressed .npz. Every frame carries the expert's action for that
state, whoever was driving: that is what DAgger aggregates.

Arrays (T = frames driven):
- frames (T, 96, 96, 3) uint8: the camera frame the driver saw before acting;
- expert (T, 3) float32: the expert's [steering, gas, brake] for that state (the labels);
- applied (T, 3) float32: the action actually applied;
- speed, x, y (T,) float32 and off_track (T,) bool: telemetry after each step;
- track (n, 2) float32: the centre line; reward, tiles, tiles_total, lap, seed: the outcome.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .config import ExpertConfig
from .expert import ExpertDriver
from .simulator import Simulator

CACHE_VERSION = 1  # bump when the recording format changes
Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (frame, expert action) -> action applied


@dataclass
class Episode:
    frames: np.ndarray
    expert: np.ndarray
    applied: np.ndarray
    speed: np.ndarray
    x: np.ndarray
    y: np.ndarray
    off_track: np.ndarray
    track: np.ndarray
    reward: float
    tiles: int
    tiles_total: int
    lap: bool
    seed: int

    @property
    def off_track_events(self) -> int:
        """Times the car left the road (an on-road frame followed by an off-road one)."""
        off = self.off_track.astype(np.int8)
        return int(np.sum(np.diff(np.concatenate([[0], off])) == 1))

    def summary(self) -> dict[str, float | int]:
        """reward, tiles visited, share of the track, laps completed, off-track events, frames."""
        return {
            "reward": round(float(self.reward), 1),
            "tiles_visited": int(self.tiles),
            "track_progress": round(self.tiles / max(1, self.tiles_total), 3),
            "laps": int(self.lap),
            "off_track_events": self.off_track_events,
            "frames": len(self.frames),
        }

    def save(self, path: Path) -> None:
        """Write a compressed .npz through a temporary file (a killed run leaves no half-written episode)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
        np.savez_compressed(tmp, **asdict(self))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Episode:
        with np.load(path) as stored:
            values = {k: stored[k] for k in stored.files}
        for key in ("reward",):
            values[key] = float(values[key])
        for key in ("tiles", "tiles_total", "seed"):
            values[key] = int(values[key])
        values["lap"] = bool(values["lap"])
        return cls(**values)


def drive(
    sim: Simulator, expert: ExpertDriver, seed: int, policy: Policy | None = None, keep_frames: bool = True
) -> Episode:
    """Drive the track of `seed` to the end of the episode with `policy` (None: the expert drives).

    The expert labels every frame either way. `keep_frames=False` stores no frames (a (0, 96, 96, 3) array).
    """
    frame, telemetry = sim.reset(seed)
    expert.reset(sim.track)
    frames, labels, applied, telemetries, reward, done = [], [], [], [], 0.0, False
    while not done:
        label = expert.act(sim.car)
        action = label if policy is None else np.asarray(policy(frame, label), np.float32)
        if keep_frames:
            frames.append(frame)
        labels.append(label)
        applied.append(action)
        frame, step_reward, done, telemetry = sim.step(action)
        telemetries.append(telemetry)
        reward += step_reward
    return Episode(
        frames=np.stack(frames) if frames else np.zeros((0, *frame.shape), np.uint8),
        expert=np.stack(labels),
        applied=np.stack(applied),
        speed=np.array([t.speed for t in telemetries], np.float32),
        x=np.array([t.x for t in telemetries], np.float32),
        y=np.array([t.y for t in telemetries], np.float32),
        off_track=np.array([t.off_track for t in telemetries]),
        track=sim.track.astype(np.float32),
        reward=reward,
        tiles=telemetry.tiles_visited,
        tiles_total=telemetry.tiles_total,
        lap=telemetry.lap_finished,
        seed=int(seed),
    )


def expert_episode_path(cache_dir: Path, seed: int, max_steps: int, expert_cfg: ExpertConfig) -> Path:
    """Where the expert's drive of `seed` is cached: named by the seed and a digest of what it depends on."""
    key = json.dumps([CACHE_VERSION, seed, max_steps, asdict(expert_cfg)], sort_keys=True)
    return cache_dir / f"expert-seed{seed}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.npz"


def expert_episodes(seeds: list[int], max_steps: int, expert_cfg: ExpertConfig, cache_dir: Path) -> list[Episode]:
    """The expert's drives of `seeds`, recorded once and read from `cache_dir` afterwards."""
    paths = {seed: expert_episode_path(cache_dir, seed, max_steps, expert_cfg) for seed in seeds}
    missing = [seed for seed in seeds if not paths[seed].exists()]
    if missing:
        sim, expert = Simulator(max_steps), ExpertDriver(expert_cfg)
        progress = tqdm(missing, desc="Expert driving tracks (cached for later runs)", unit="track")
        for seed in progress:
            episode = drive(sim, expert, seed)
            episode.save(paths[seed])
            progress.set_postfix(seed=seed, reward=f"{episode.reward:.0f}")
        sim.close()
    return [Episode.load(paths[seed]) for seed in seeds]


def throttle_of(actions: np.ndarray) -> np.ndarray:
    """Gas minus brake, (T,) in [-1, 1], from [steering, gas, brake] actions (T, 3)."""
    return np.clip(actions[:, 1] - actions[:, 2], -1.0, 1.0)


def action_of(steering: float, throttle: float) -> np.ndarray:
    """[steering, gas, brake] float32 from the model's steering and throttle (gas if > 0, brake if < 0)."""
    return np.array([np.clip(steering, -1, 1), max(throttle, 0.0), max(-throttle, 0.0)], np.float32)
