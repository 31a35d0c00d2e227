"""The MNIST project's config and presets.

Every key can be changed from the command line: `--set model.kind=mlp --set train.epochs=5`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import OptimizeConfig, TrainConfig, TuneConfig, choice


@dataclass
class DataConfig:
    online: bool = False  # allow tensorflow-datasets to download MNIST (60k/10k) when not on disk
    val_fraction: float = 0.1  # offline source: share of the 10,000 digits held out for validation
    test_fraction: float = 0.1  # offline source: share held out for the test split
    split_seed: int = 0  # seeds the shuffle before splitting; the same seed gives the same split
    limit: int = 0  # use only the first N training examples (0 = all)
    augment: bool = True  # random shifts, rotations and zoom on training batches
    shift: float = 0.1  # max translation as a fraction of the image (0.1 = 2.8 px)
    rotation: float = 0.04  # max rotation as a fraction of a full turn (0.04 = 14 degrees)
    zoom: float = 0.1  # max zoom in or out


@dataclass
class ModelConfig:
    kind: str = choice("cnn", ("cnn", "mlp"))
    activation: str = choice("relu", ("relu", "leaky_relu", "gelu", "tanh", "sigmoid"))
    filters: tuple[int, ...] = (16, 32)  # cnn: one block of two 3x3 convolutions per entry
    hidden: tuple[int, ...] = (128,)  # dense layers before the output (mlp: all its layers)
    dropout: float = 0.25  # after each conv block and dense layer
    batch_norm: bool = True
    l1: float = 0.0  # L1 penalty on kernels
    l2: float = 0.0  # L2 penalty on kernels


@dataclass
class MnistConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)  # `tune`: the search space is in project.py
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)  # `optimize`: pruning and QAT


def smoke() -> MnistConfig:
    """Seconds-long check that everything runs: 2 epochs on 2,000 digits, ~0.93 test accuracy, ~20 s."""
    cfg = MnistConfig()
    cfg.data.limit = 2000
    cfg.model.hidden = (64,)
    cfg.train = TrainConfig(epochs=2, batch_size=64, learning_rate=2e-3)
    cfg.tune = TuneConfig(max_epochs=2, factor=2, max_trials=3)
    cfg.optimize = OptimizeConfig(prune_epochs=2, qat_epochs=1, learning_rate=5e-4, latency_runs=50)
    return cfg


def default() -> MnistConfig:
    """The CNN on the offline 8,000/1,000/1,000 split: 99.4% test accuracy in 3 to 4.5 minutes on 2 CPU cores."""
    cfg = MnistConfig()
    cfg.train = TrainConfig(
        epochs=15, batch_size=128, learning_rate=3e-3, schedule="one_cycle", early_stopping_patience=5
    )
    return cfg


def full() -> MnistConfig:
    """A wider CNN for longer: 99.4%+ test accuracy offline expected (not benchmarked), ~13 minutes on 2 cores."""
    cfg = MnistConfig()
    cfg.model.filters = (32, 64)
    cfg.model.hidden = (256,)
    cfg.train = TrainConfig(
        epochs=30, batch_size=128, learning_rate=3e-3, schedule="one_cycle", early_stopping_patience=10
    )
    return cfg


PRESETS = {"smoke": smoke, "default": default, "full": full}
DEFAULT_PRESET = "default"
