"""The project contract: what `common.cli` needs from each `projects/<name>/project.py`.

A project is a folder with `config.py` (its config dataclass, `PRESETS` and
`DEFAULT_PRESET`, importable without TensorFlow so that the command line is
checked before any work) and `project.py`, whose `PROJECT` is an instance of a
`Project` subclass filling in the data, model and evaluation hooks. Training defaults to
`common.training.fit`; projects with their own loop (GAN, driving) override
`train`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from common.data.splits import DataSplits
from common.paths import ArtifactPaths

if TYPE_CHECKING:
    import keras
    import numpy as np


class Project:
    """Base class of a project's spec. Subclasses set the class attributes and hooks."""

    name: ClassVar[str]
    monitor: ClassVar[tuple[str, str]] = ("val_accuracy", "max")  # checkpoint / early-stopping metric and mode

    def load_data(self, cfg: Any) -> DataSplits:
        """Train/val/test datasets of unbatched (input, target) pairs, with their source."""
        raise NotImplementedError

    def build_model(self, cfg: Any) -> keras.Model:
        """A compiled-ready (uncompiled) Keras model for `cfg`."""
        raise NotImplementedError

    def loss(self, cfg: Any) -> Any:
        """The training loss passed to `compile`."""
        return "sparse_categorical_crossentropy"

    def metrics(self, cfg: Any) -> list:
        """Metrics shown during training."""
        return ["accuracy"]

    def augmentation(self, cfg: Any) -> keras.Layer | None:
        """Applied to training batches only (`training=True`); None for no augmentation."""
        return None

    def train(self, cfg: Any, data: DataSplits, paths: ArtifactPaths) -> keras.Model:
        """Train and return the model; the default is `common.training.fit`."""
        from common.training import fit

        return fit(self, cfg, data, paths)

    def evaluate(self, cfg: Any, model: keras.Model, data: DataSplits, paths: ArtifactPaths) -> tuple[dict, list[Path]]:
        """Metrics on the test split and the plots written to `paths.plots`, for the report."""
        raise NotImplementedError

    def serving_model(self, model: keras.Model) -> keras.Model:
        """The model that is exported: raw input in, final answer out."""
        return model

    def sample_inputs(self, cfg: Any) -> np.ndarray:
        """A few real test inputs for parity checks and demos."""
        raise NotImplementedError

    def predict(self, cfg: Any, model: keras.Model, inputs: Sequence[str]) -> int:
        """Print predictions for files named on the command line; returns the number that failed."""
        raise NotImplementedError(f"project {self.name} has no predict command")
