"""Training: behaviour cloning on the expert's drives, then DAgger rounds.

Round 0 fits PilotNet on the expert's own drives. Each later round lets the model
of the round before drive `dagger.tracks` training tracks, has the expert label
every frame it saw (the states a cloned driver really gets into, such as drifting
towards the grass, which the expert never visits), adds those frames to the
training set and fine-tunes on all of it (Ross et al., 2011).

Each round is trained by the project's recipe (`DrivingProject.fit_round`: PilotNet
warm-started from the round before, compiled, then `common.training.fit`) in
`rounds/round<k>/` (checkpoints, history, TensorBoard logs, resume backup); a round
that already finished with the same config is skipped, and DAgger's drives are kept
in `dagger/`, so a killed run picks up where it stopped. train.json lists the reward
of each round's drives.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import replace

import keras
import numpy as np
from tqdm import tqdm

from common.config import to_dict
from common.data.splits import DataSplits
from common.paths import ArtifactPaths

from . import data as driving_data
from .config import DrivingConfig
from .episodes import Episode, drive
from .expert import ExpertDriver
from .policies import cnn_policy
from .simulator import Simulator


def _config_digest(cfg: DrivingConfig) -> str:
    """What the trained model depends on (not the evaluation settings)."""
    relevant = {k: v for k, v in to_dict(cfg).items() if k != "evaluate"}
    return hashlib.sha1(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:10]


def _finished(paths: ArtifactPaths, digest: str) -> bool:
    """True if `paths` holds a finished round trained with the config of `digest`."""
    if not (paths.model.exists() and paths.train_summary.exists()):
        return False
    return json.loads(paths.train_summary.read_text()).get("digest") == digest


def dagger_seeds(cfg: DrivingConfig, round_number: int) -> list[int]:
    """The training tracks the CNN drives in round `round_number` (>= 1), taken in turn from the training seeds."""
    seeds = driving_data.train_seeds(cfg)
    first = (round_number - 1) * cfg.dagger.tracks
    return [seeds[(first + i) % len(seeds)] for i in range(cfg.dagger.tracks)]


def dagger_drives(
    cfg: DrivingConfig, model: keras.Model, round_number: int, paths: ArtifactPaths, digest: str
) -> list[Episode]:
    """The model drives this round's tracks, the expert labels every frame; cached in `dagger/`."""
    folder = paths.root / "dagger"
    todo = {seed: folder / f"round{round_number}-seed{seed}-{digest}.npz" for seed in dagger_seeds(cfg, round_number)}
    missing = [seed for seed, path in todo.items() if not path.exists()]
    if missing:
        sim, expert = Simulator(cfg.data.max_steps), ExpertDriver(cfg.expert)
        progress = tqdm(missing, desc=f"DAgger round {round_number}: the CNN drives, the expert labels", unit="track")
        for seed in progress:
            policy = cnn_policy(model, cfg.dagger.beta, seed=seed)
            episode = drive(sim, expert, seed, policy)
            episode.save(todo[seed])
            progress.set_postfix(seed=seed, reward=f"{episode.reward:.0f}")
        sim.close()
    return [Episode.load(path) for path in todo.values()]


# One round's training: (round config, data, the round's paths, the previous round's model or None) -> the model.
FitRound = Callable[[DrivingConfig, DataSplits, ArtifactPaths, keras.Model | None], keras.Model]


def train(cfg: DrivingConfig, data: DataSplits, paths: ArtifactPaths, fit_round: FitRound) -> keras.Model:
    """Round 0 on the expert's drives, then `dagger.rounds` DAgger rounds, each trained by `fit_round` (the
    project's recipe: build, warm-start from the round before, compile, fit); writes model.keras and train.json."""
    start = time.perf_counter()
    digest = _config_digest(cfg)
    model, extra, rounds = None, [], []
    for k in range(cfg.dagger.rounds + 1):
        round_paths = ArtifactPaths(paths.root / "rounds" / f"round{k}", paths.serving_root)
        info: dict = {"round": k}
        if k > 0:
            drive_start = time.perf_counter()
            drives = dagger_drives(cfg, model, k, paths, digest)
            extra += drives
            info.update(
                drive_seconds=round(time.perf_counter() - drive_start, 1),
                drive_seeds=[e.seed for e in drives],
                drive_rewards=[round(e.reward, 1) for e in drives],
                drive_mean_reward=round(float(np.mean([e.reward for e in drives])), 1),
            )
            print(
                f"DAgger round {k}: the round-{k - 1} model drove {len(drives)} tracks, mean reward "
                f"{info['drive_mean_reward']:.0f}; retraining on {len(extra)} extra drives."
            )
            data = driving_data.splits(cfg, extra)
        if _finished(round_paths, digest):
            print(f"Round {k} already trained ({round_paths.model}); skipping.")
            model = keras.models.load_model(round_paths.model)
        else:
            epochs = cfg.train.epochs if k == 0 else cfg.dagger.epochs
            round_cfg = replace(cfg, train=replace(cfg.train, epochs=epochs))
            print(f"Round {k}: training on {data.sizes['train']} frames for {epochs} epochs.")
            model = fit_round(round_cfg, data, round_paths, model)
            summary = json.loads(round_paths.train_summary.read_text())
            round_paths.train_summary.write_text(json.dumps({**summary, "digest": digest}, indent=2))
        info["train_frames"] = data.sizes["train"]
        info["fit_seconds"] = json.loads(round_paths.train_summary.read_text())["train_seconds"]
        rounds.append(info)

    shutil.copy(round_paths.model, paths.model)
    shutil.copy(round_paths.history_csv, paths.history_csv)
    paths.train_summary.write_text(
        json.dumps(
            {
                "project": "driving",
                "config": to_dict(cfg),
                "train_seconds": round(time.perf_counter() - start, 2),
                "rounds": rounds,
                "data": data.describe(),
            },
            indent=2,
        )
    )
    return model
