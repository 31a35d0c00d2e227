"""The project's own commands: `collect` (record the expert's drives) and `drive` (one track, with a GIF)."""

from __future__ import annotations

from typing import Any

import numpy as np

from common.config import ConfigError
from common.paths import ArtifactPaths

from . import data as driving_data
from . import report_plots
from .config import DrivingConfig
from .episodes import drive
from .expert import ExpertDriver
from .policies import cnn_policy, random_policy
from .simulator import Simulator

DRIVERS = ("cnn", "expert", "random")


def collect(cfg: DrivingConfig) -> None:
    """Record (or find in the cache) the expert's training, validation and held-out drives; print their scores."""
    driving_data.check_seeds(cfg)
    groups = {
        "train": driving_data.expert_drives(cfg, driving_data.train_seeds(cfg)),
        "val": driving_data.expert_drives(cfg, driving_data.val_seeds(cfg)),
        "held-out": driving_data.expert_drives(cfg, driving_data.eval_seeds(cfg), cfg.evaluate.max_steps),
    }
    print(f"Expert drives in {driving_data.cache_dir(cfg)}:")
    for name, episodes in groups.items():
        rewards = [e.reward for e in episodes]
        laps = sum(e.lap for e in episodes)
        print(
            f"  {name:9s} {len(episodes)} tracks, mean reward {np.mean(rewards):.1f} (min {min(rewards):.1f}), "
            f"{laps} laps, {sum(e.off_track_events for e in episodes)} off-track events"
        )


def drive_one(cfg: DrivingConfig, paths: ArtifactPaths, words: list[str]) -> None:
    """`drive [cnn|expert|random] [SEED]`: drive one track, print the outcome, write drive-<driver>-seed<SEED>.gif."""
    driver = words[0] if words else "cnn"
    if driver not in DRIVERS or len(words) > 2 or (len(words) == 2 and not words[1].isdigit()):
        raise ConfigError(f"drive takes [{'|'.join(DRIVERS)}] [SEED], e.g. `drive cnn 3`; got {' '.join(words)}")
    seed = int(words[1]) if len(words) == 2 else cfg.evaluate.seed
    policy = None
    if driver == "cnn":
        from common.cli import load_trained_model  # here, not at the top: common.cli imports this project

        policy = cnn_policy(load_trained_model("driving", paths))
    elif driver == "random":
        policy = random_policy(seed)
    sim = Simulator(cfg.evaluate.max_steps)
    episode = drive(sim, ExpertDriver(cfg.expert), seed, policy)
    sim.close()
    print(f"{driver} on track {seed}: " + ", ".join(f"{k} {v}" for k, v in episode.summary().items()))
    gif = report_plots.drive_gif(episode, paths.root / f"drive-{driver}-seed{seed}.gif", cfg.evaluate.gif_frames)
    print(f"GIF: {gif}")


def run_command(command: str, cfg: DrivingConfig, paths: ArtifactPaths, args: Any) -> None:
    """Dispatch `collect` and `drive` (see config.COMMANDS); a bad seed or argument exits with code 2."""
    try:
        if command == "collect":
            collect(cfg)
        elif command == "drive":
            drive_one(cfg, paths, list(args.inputs))
    except ValueError as err:  # ConfigError included
        raise ConfigError(str(err)) from None
