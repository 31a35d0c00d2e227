"""The real images a generative model's samples are measured against, in one feature space.

Shared by the generative projects (gan, diffusion): the held-out split's features, the floor (real training images
scored against them exactly as generated images are: common/generative_metrics.py `real_floor`), the class
frequencies generated images are drawn with, and the scores of a set of generated images against all of that.
"""

from __future__ import annotations

import numpy as np

from common.data.splits import DataSplits, dataset_to_numpy
from common.feature_space import FeatureSpace
from common.generative_metrics import frechet_distance, kernel_distance, precision_recall, real_floor

PR_NEIGHBOURS = 3  # k of the k-NN manifolds of precision and recall (Kynkaanniemi et al. use 3)


class HeldOutReference:
    """Held-out real images in `space`: the test split (`evaluate`), or the validation split (`train` and `tune`,
    which leave the test split to `evaluate`).

    `count` (`fid_samples`, at most the training split's size) is how many generated images a score takes; the
    floor is the mean FID of `floor_draws` draws of as many real training images, so that both carry the same
    small-sample bias and their ratio is the headline.
    """

    def __init__(
        self, space: FeatureSpace, data: DataSplits, fid_samples: int, floor_draws: int, held_out: str = "test"
    ) -> None:
        self.space = space
        images, _ = dataset_to_numpy(getattr(data, held_out))
        self.features = space.features(images)  # (m, d)
        self.train_images, labels = dataset_to_numpy(data.train)  # (n, size, size, 3) uint8, (n,)
        self.count = min(fid_samples, len(self.train_images))
        self.floor = real_floor(self.features, space.features(self.train_images), self.count, floor_draws)
        self.class_probs = np.bincount(labels, minlength=max(1, len(data.class_names))) / len(labels)

    def scores(self, images: np.ndarray) -> dict[str, float]:
        """{"fid", "kid", "fid_to_floor_ratio"} of (n, size, size, 3) images in [0, 255] against the held-out ones."""
        fake = self.space.features(images)
        fid = frechet_distance(self.features, fake)
        return {"fid": fid, "kid": kernel_distance(self.features, fake), "fid_to_floor_ratio": fid / self.floor.fid}

    def floor_figures(self) -> dict[str, float | int]:
        """The report's keys for the floor and the counts it was measured at."""
        return {
            "fid_floor": self.floor.fid,  # real training images vs the same held-out ones, as many (mean of draws)
            "fid_floor_sd": self.floor.sd,  # how much one draw of them moves the floor
            "fid_floor_draws": self.floor.draws,
            "fid_samples": self.count,
        }

    def precision_recall(self, images: np.ndarray) -> dict[str, float | int]:
        """Precision and recall of (n, size, size, 3) generated images, and of the floor's real training images (the
        ceiling of each), against as many held-out images: sets of one size, as the k-NN radii depend on it."""
        n = min(len(self.features), len(images), len(self.floor.sample))
        quality = precision_recall(self.features[:n], self.space.features(images[:n]), PR_NEIGHBOURS)
        real = precision_recall(self.features[:n], self.floor.sample[:n], PR_NEIGHBOURS)
        return {
            **quality,
            "precision_real_train": real["precision"],
            "recall_real_train": real["recall"],
            "held_out_images": n,
        }
