"""The driving data: the expert's recorded drives as (frame, steering/throttle) examples.

- train: the expert's drives of `data.train_tracks` tracks (seeds from `data.train_seed`),
  plus, during training, DAgger's drives (the CNN at the wheel, the expert's labels);
- val: the expert's drives of the next `data.val_tracks` seeds;
- test: the expert's drive of the first held-out evaluation track (`evaluate.seed`),
  used for open-loop steering error and export parity; the closed-loop evaluation
  drives all `evaluate.tracks` held-out tracks.

Every `data.stride`-th frame is kept (neighbouring frames are nearly identical).
Targets: {"steering": (n, 1), "throttle": (n, 1)} float32, throttle = gas - brake.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from common.data.splits import DataSplits, dataset_to_numpy
from common.paths import DEFAULT_ARTIFACTS

from .config import DrivingConfig
from .episodes import Episode, expert_episodes, throttle_of

SOURCE = "gymnasium:CarRacing-v3 (expert drives)"


def cache_dir(cfg: DrivingConfig) -> Path:
    """Where the expert's drives are cached (`data.cache_dir`, default artifacts/driving/episodes)."""
    return Path(cfg.data.cache_dir).expanduser() if cfg.data.cache_dir else DEFAULT_ARTIFACTS / "driving" / "episodes"


def train_seeds(cfg: DrivingConfig) -> list[int]:
    return list(range(cfg.data.train_seed, cfg.data.train_seed + cfg.data.train_tracks))


def val_seeds(cfg: DrivingConfig) -> list[int]:
    start = cfg.data.train_seed + cfg.data.train_tracks
    return list(range(start, start + cfg.data.val_tracks))


def eval_seeds(cfg: DrivingConfig) -> list[int]:
    return list(range(cfg.evaluate.seed, cfg.evaluate.seed + cfg.evaluate.tracks))


def check_seeds(cfg: DrivingConfig) -> None:
    """Raises ValueError if a held-out evaluation track is also a training or validation track."""
    overlap = sorted(set(eval_seeds(cfg)) & set(train_seeds(cfg) + val_seeds(cfg)))
    if overlap:
        raise ValueError(
            f"evaluation track seeds {overlap} are also training or validation seeds; held-out tracks must be new: "
            f"move them apart, e.g. --set evaluate.seed=0 --set data.train_seed=1000"
        )


def examples(episodes: list[Episode], stride: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every `stride`-th frame (n, 96, 96, 3) uint8 of `episodes` and the expert's {"steering", "throttle"} (n, 1)."""
    frames = np.concatenate([e.frames[::stride] for e in episodes])
    labels = np.concatenate([e.expert[::stride] for e in episodes])
    return frames, {"steering": labels[:, :1].astype(np.float32), "throttle": throttle_of(labels)[:, None]}


def dataset(frames: np.ndarray, targets: dict[str, np.ndarray]) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((frames, targets))


def frames_and_steering(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """A split as numpy: frames (n, 96, 96, 3) uint8 and the expert's steering (n,) float32."""
    return dataset_to_numpy(ds.map(lambda frame, targets: (frame, targets["steering"][0])))


def expert_drives(cfg: DrivingConfig, seeds: list[int], max_steps: int | None = None) -> list[Episode]:
    """The expert's drives of `seeds` (recorded once, then read from the cache)."""
    return expert_episodes(seeds, max_steps or cfg.data.max_steps, cfg.expert, cache_dir(cfg))


def test_drive(cfg: DrivingConfig) -> Episode:
    """The expert's drive of the first held-out track."""
    return expert_drives(cfg, eval_seeds(cfg)[:1], cfg.evaluate.max_steps)[0]


def splits(cfg: DrivingConfig, extra_train: list[Episode] = ()) -> DataSplits:
    """Train (the expert's tracks plus `extra_train`, e.g. DAgger's drives), val and test datasets."""
    check_seeds(cfg)
    stride = cfg.data.stride
    parts = {
        "train": examples(expert_drives(cfg, train_seeds(cfg)) + list(extra_train), stride),
        "val": examples(expert_drives(cfg, val_seeds(cfg)), stride),
        "test": examples([test_drive(cfg)], stride),
    }
    return DataSplits(
        **{name: dataset(*part) for name, part in parts.items()},
        source=SOURCE,
        sizes={name: len(part[0]) for name, part in parts.items()},
    )
