"""The self-driving car's config and presets.

The dataclass defaults are the `default` preset: 12 expert tracks, PilotNet, behaviour
cloning then 2 DAgger rounds, 5 held-out tracks. Every key can be changed from the
command line, e.g. `--set dagger.rounds=3 --set data.train_tracks=20`.
Track seeds: training and validation tracks start at `data.train_seed`, the held-out
evaluation tracks at `evaluate.seed`; the two ranges must not overlap (checked).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import Expected, OptimizeConfig, Preset, TrainConfig, TuneConfig, bounded

COMMANDS = {
    "collect": "drive the training tracks with the expert and record them (cached; a rerun skips recorded tracks)",
    "drive": "drive one track and write a GIF: drive [cnn|expert|random] [SEED] (default: cnn on the first test seed)",
}


@dataclass
class DataConfig:
    train_tracks: int = bounded(12, 1)  # tracks the expert drives for the first training set
    val_tracks: int = bounded(2, 1)  # tracks whose frames are the validation split (expert only)
    train_seed: int = bounded(1000, 0)  # first training track seed; validation tracks follow the training ones
    max_steps: int = bounded(1000, 10)  # frames per recorded episode (CarRacing-v3's limit is 1,000)
    stride: int = bounded(2, 1)  # train on every stride-th frame of a drive (neighbouring frames are near copies)
    cache_dir: str = ""  # recorded episodes (.npz), reused by later runs ("" = <output-dir>/episodes)
    augment: bool = True  # flips, brightness and shifts on training batches
    flip: bool = True  # mirror the road left-right, negating the steering
    brightness: float = bounded(0.2, 0.0, 1.0)  # max brightness change, as a fraction of 255
    shift: int = bounded(4, 0, 20)  # max sideways shift of the road in pixels (the car stays put)
    shift_steering: float = bounded(0.04, 0.0, 1.0)  # steering correction per pixel of shift


@dataclass
class ExpertConfig:
    """Pure pursuit on the centre line (see expert.py); speeds in Box2D units (the frame's speed bar)."""

    lookahead: float = bounded(5.0, 0.0)  # centre-line points ahead of the car that it aims at, at rest
    lookahead_per_speed: float = bounded(0.06, 0.0)  # more points ahead per unit of speed
    steering_gain: float = bounded(1.0, 0.0)  # steering per radian of heading error
    # Steering against the car's rate of turn, per radian per second. Off: the camera frame does not show the rate
    # of turn, so a CNN cannot learn that part of the steering (at 0.3, 55-75% of the steering's variance).
    yaw_damping: float = bounded(0.0, 0.0)
    min_speed: float = bounded(40.0, 0.0)  # target speed in the sharpest turns
    max_speed: float = bounded(80.0, 0.0)  # target speed on straights
    # Centre-line points ahead whose change of direction sets the speed. The camera sees about 10 (37 units; the
    # points are 3.5 apart): an expert braking for a curve out of sight could not be imitated from the frame.
    curve_window: int = bounded(10, 1)
    sharp_turn: float = bounded(1.2, 0.01)  # change of direction over the window (radians) that means min_speed
    throttle_gain: float = bounded(0.3, 0.0)  # gas per unit of speed below the target
    steering_gas_cut: float = bounded(0.9, 0.0, 1.0)  # share of the gas taken away at full steering
    brake_gain: float = bounded(0.05, 0.0)  # brake per unit of speed above the target plus the margin
    brake_margin: float = bounded(5.0, 0.0)  # no braking until this much above the target


@dataclass
class ModelConfig:
    filters: tuple[int, ...] = (24, 36, 48, 64, 64)  # PilotNet's five conv layers (5x5 stride 2, then 3x3)
    dense: tuple[int, ...] = (100, 50, 10)  # PilotNet's dense head
    dropout: float = bounded(0.2, 0.0, 0.9)  # before each dense layer


@dataclass
class DaggerConfig:
    """Dataset aggregation: the CNN drives, the expert labels what it sees, the CNN retrains on all of it."""

    rounds: int = bounded(2, 0)  # 0 = behaviour cloning only
    tracks: int = bounded(6, 1)  # training tracks the CNN drives per round (taken in turn from the training seeds)
    beta: float = bounded(0.0, 0.0, 1.0)  # chance per frame that the expert's action is applied instead of the CNN's
    epochs: int = bounded(3, 1)  # training epochs after each round (on every frame recorded so far)


@dataclass
class EvaluateConfig:
    seed: int = bounded(0, 0)  # first held-out track seed
    tracks: int = bounded(5, 1)  # held-out tracks driven by the CNN, the expert and a random policy
    max_steps: int = bounded(1000, 10)  # frames per evaluation episode
    gif_frames: int = bounded(1000, 0)  # frames of the CNN's first held-out drive in drive.gif (0 = no GIF)
    replay_frames: int = bounded(96, 8)  # frames of a held-out drive shipped to the browser page


@dataclass
class DrivingConfig:
    data: DataConfig = field(default_factory=DataConfig)
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    # Round 0 (behaviour cloning); DAgger rounds train `dagger.epochs` each with the same settings.
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=5, batch_size=64, learning_rate=1e-3, schedule="cosine")
    )
    dagger: DaggerConfig = field(default_factory=DaggerConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    # `tune` searches behaviour cloning (round 0) on the expert's drives, scored by the validation loss.
    tune: TuneConfig = field(default_factory=lambda: TuneConfig(max_epochs=5, max_trials=12))
    # `optimize` fine-tunes the trained PilotNet on every frame of the expert's drives (not DAgger's).
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(prune_epochs=3, qat_epochs=2))


CONFIG = DrivingConfig
PRESETS = {
    "smoke": Preset(
        "check that everything runs: 100-frame drives of 2 tracks, a slim PilotNet, 1 DAgger round",
        # Measured over train.seed 0-4 and 6-8: 63-85 (the random policy's: 4). At 2 epochs and 1 DAgger epoch (8
        # and 4 gradient steps) it was 56-83 over seeds 1-6 and 42, and once 17 in CI (a CNN that barely drove);
        # the extra epochs cost ~3 s.
        Expected("cnn_mean_reward", 30, 3),
        changes={
            "data.train_tracks": 2,
            "data.val_tracks": 1,
            "data.max_steps": 100,
            "model.filters": (8, 12, 16, 16, 16),
            "model.dense": (32, 16),
            "train.epochs": 8,
            "train.batch_size": 32,
            "train.schedule": "constant",
            "dagger.rounds": 1,
            "dagger.tracks": 1,
            "dagger.epochs": 4,
            "evaluate.tracks": 2,
            "evaluate.max_steps": 100,
            "evaluate.gif_frames": 30,
            "evaluate.replay_frames": 12,
            "tune.algorithm": "grid",
            "tune.max_epochs": 1,
            "tune.max_trials": 2,
            "optimize.prune_epochs": 1,
            "optimize.qat_epochs": 1,
            "optimize.latency_runs": 10,
        },
    ),
    # Measured (benchmarks/results/driving.json): mean reward 817.2 against the expert's 914.6 on the 5 held-out
    # tracks (ratio 0.894; 0.941 in an earlier run of the same code); 1,237 s in all, 1,006 CPU s of them training
    # (data collection included).
    "default": Preset(
        "12 expert tracks + 2 DAgger rounds, PilotNet, 5 + 3 + 3 epochs",
        Expected("reward_ratio", 0.894, 21),
    ),
    # Not measured: the value is the default preset's, the time an estimate from its parts.
    "full": Preset(
        "more tracks, more rounds, longer training: for a faster machine",
        Expected("reward_ratio", 0.894, 90),
        changes={
            "data.train_tracks": 30,
            "dagger.rounds": 4,
            "dagger.tracks": 10,
            "dagger.epochs": 6,
            "train.epochs": 10,
            "evaluate.tracks": 10,
        },
    ),
}
DEFAULT_PRESET = "default"
