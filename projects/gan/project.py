"""The GAN's recipe: the data, the two networks, their losses and optimizers, its own loop, FID/KID, a uint8 export.

Training: the generator and discriminator of model.py (plus the generator's moving average, which is what
gets scored and exported) in the `GAN` model of gan.py, with the losses of loss.py and one Adam optimizer
per network, trained by the loop of training.py on flipped real images, with DiffAugment before the
discriminator (augmentation.py). FID, KID, precision and recall compare generated images with held-out real
ones in the feature space of a small classifier trained first on more images than the GAN sees
(common/feature_space.py). `tune` trains each trial in the same loop and ranks the trials by FID against the
validation split's real images (`tune_trial`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np

from common.config import ConfigError, to_dict
from common.data import art as art_data
from common.data.splits import DataSplits, dataset_to_numpy
from common.export import ExportPlan, standard_plan
from common.feature_space import check_val_reference, feature_space
from common.image_grids import mosaic, save_png
from common.loop_training import steps_csv
from common.paths import ArtifactPaths
from common.project import Project

from .augmentation import build_augmentation, diff_augment, parse_policy
from .config import GanConfig
from .gan import GAN
from .loss import discriminator_loss, generator_loss
from .model import build_discriminator, build_generator
from .report_plots import fid_curve, loss_curves, nearest_neighbours
from .sampling import generate, grid_inputs, is_conditional, latent_dim, seeded_inputs, slerp
from .serving_model import build_serving_model
from .training import Scorer, best_json, initial_generator, initial_json, train_gan

EXPORT_EXAMPLES = 64  # noise vectors run through every format
INTERPOLATION_ROWS, INTERPOLATION_STEPS = 4, 10
NEIGHBOUR_SAMPLES, NEIGHBOURS = 8, 4
SAMPLE_SEED = 7  # the browser demo's fixed noise
# Int8 weights (TF Lite dynamic range and int8, uint8 TF.js): the largest |mean-image L1 to test - Keras's| in grey
# levels. Measured: int8 0.02 (default preset with categories), 1.97 (with subcategories; dynamic range 0.05, uint8
# TF.js 0.20); the 600-step smoke generator, whose activations are less settled, 4.05 in one full-suite run. A
# generator whose output collapsed to one colour moves it by tens of levels.
INT8_MEAN_IMAGE_BOUND = 8.0


def _rate(rate: float, decay_from: float, total_steps: int) -> float | keras.optimizers.schedules.CosineDecay:
    """`rate` for the first `decay_from` of `total_steps`, then a half cosine down to 0 (constant: 1.0 or no total)."""
    start = int(decay_from * total_steps)
    if decay_from >= 1.0 or start >= total_steps:
        return rate
    # CosineDecay's warm-up from `rate` to `rate` is the constant part.
    return keras.optimizers.schedules.CosineDecay(rate, total_steps - start, warmup_target=rate, warmup_steps=start)


class GanProject(Project):
    name = "gan"
    monitor = ("val_fid", "min")  # what the loop reports after every epoch (lower is better)
    tune_objective = ("fid", "min")  # what `tune_trial` returns: its kept generator's validation FID
    # Outputs are uint8 pixels: a float format may land on the other side of a rounding step (1 grey level);
    # 2 leaves room for two such steps in a row. Quantized weights move pixels further (README.md, "Export").
    float_tolerance: ClassVar[float] = 2.0
    quantized_tolerance: ClassVar[dict[str, float]] = {
        "tflite_float16": 8.0,
        # Int8 weights (dynamic range, uint8 TF.js) and activations re-quantized at every layer (int8) move some
        # pixels far: a few of the smoke parity images' 49,152 pixels by 160 grey levels in int8, one of the
        # default generator's by 100 in dynamic range (55 in uint8 TF.js): any pixel may move (255); the images'
        # mean colours may not (`INT8_MEAN_IMAGE_BOUND`, checked in `export_plan`).
        "tflite_dynamic": 255.0,
        "tflite_int8": 255.0,
        "tfjs_uint8": 255.0,
    }
    metric_name = "mean-image L1 to test (grey levels)"

    def load_data(self, cfg: GanConfig) -> DataSplits:
        """(image (size, size, 3) uint8, label int32) pairs of `data.source` (see data.py).

        Raises:
            ConfigError: the source is missing or unreadable, or a category does not exist (exit code 2).
        """
        return art_data.load_splits(cfg.data)

    def build_model(self, cfg: GanConfig) -> keras.Model:
        """The generator alone (what `model.keras` holds after training)."""
        num_classes = len(art_data.class_names(cfg.data)) if cfg.model.conditional else 0
        return build_generator(cfg.model, cfg.data.image_size, num_classes)

    def build_gan(self, cfg: GanConfig, num_classes: int, total_steps: int = 0) -> GAN:
        """The generator, the discriminator and the generator's moving average, with their losses and optimizers.

        `total_steps`, the steps the run will take, places the learning rates' decay (`train.decay_from`); with 0
        the rates stay constant.

        Raises:
            ConfigError: a class-conditional GAN asked of data with fewer than two classes, sizes that do not fit
                together, or an unknown DiffAugment policy.
        """
        m, t, size = cfg.model, cfg.train, cfg.data.image_size
        if m.conditional and num_classes < 2:
            raise ConfigError(
                f"model.conditional=true needs labelled data with 2 or more classes; data.source={cfg.data.source} "
                f"has {num_classes}: set model.conditional=false"
            )
        try:
            policy = parse_policy(t.diff_augment)
            generator = build_generator(m, size, num_classes)
            discriminator = build_discriminator(m, size, num_classes)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        gan = GAN(
            generator=generator,
            discriminator=discriminator,
            ema_generator=build_generator(m, size, num_classes, name="ema_generator"),
            discriminator_loss=functools.partial(discriminator_loss, m.loss, label_smoothing=m.label_smoothing),
            generator_loss=functools.partial(generator_loss, m.loss),
            ema_decay=m.ema_decay,
            conditional=m.conditional,
            augment=functools.partial(diff_augment, policy=policy) if policy else None,
            class_loss_weight=m.class_loss_weight if m.conditional else 0.0,
            lecam_weight=m.lecam_weight,
            reconstruction_weight=m.reconstruction_weight,
        )
        g_rate, d_rate = (_rate(rate, t.decay_from, total_steps) for rate in (t.g_learning_rate, t.d_learning_rate))
        gan.compile(
            g_optimizer=keras.optimizers.Adam(g_rate, beta_1=t.beta_1, beta_2=t.beta_2),
            d_optimizer=keras.optimizers.Adam(d_rate, beta_1=t.beta_1, beta_2=t.beta_2),
        )
        return gan

    def train(self, cfg: GanConfig, data: DataSplits, paths: ArtifactPaths) -> keras.Model:
        """The FID/KID scorer, the GAN built and compiled, then its loop (training.py); returns the EMA generator
        (with `train.keep_best`, of the epoch with the lowest validation FID).

        FID and KID after every epoch compare features of a small classifier, trained first and then reused while
        the data stays the same (common/feature_space.py), of generated and validation images.

        Raises:
            ConfigError: the validation split has fewer than 2 images.
        """
        check_val_reference(data, "train scores the generator after every epoch")
        return self._train(cfg, data, paths, Scorer(cfg, feature_space(cfg.data, cfg.features), data, "val"))

    def search_space(self, cfg: GanConfig) -> dict[str, list]:
        """Both learning rates (the preset's, half and twice it), DiffAugment's policy (all three, two, none), the EMA
        decay and the loss: what moves FID on a few thousand images. Lists only, so `tune.algorithm=grid` can walk it
        (3 x 3 x 3 x 2 x 2 = 108 combinations; its first is the preset's own rates)."""
        g, d = cfg.train.g_learning_rate, cfg.train.d_learning_rate
        return {
            "train.g_learning_rate": [g, g / 2, 2 * g],
            "train.d_learning_rate": [d, d / 2, 2 * d],
            "train.diff_augment": ["color,translation,cutout", "translation,cutout", ""],
            "model.ema_decay": [0.999, 0.99],
            "model.loss": ["hinge", "nonsaturating"],
        }

    def tune_trial(self, cfg: GanConfig, data: DataSplits, paths: ArtifactPaths) -> dict[str, float]:
        """Train the trial's GAN in the loop `train` runs, in `paths` (the trial's folder under tuning/), and score
        its EMA generator against the validation split's real images, so that the test split stays `evaluate`'s.

        Returns:
            {"fid" (the objective, lower better), "kid", "fid_floor", "fid_to_floor_ratio", "diversity_ratio"}.

        Raises:
            ConfigError: the validation split has fewer than 2 images, or the trial's networks cannot be built.
        """
        check_val_reference(data, "tune scores each trial")
        scorer = Scorer(cfg, feature_space(cfg.data, cfg.features), data, held_out="val")
        scores = scorer.score(self._train(cfg, data, paths, scorer))
        return {
            "fid": scores["fid"],
            "kid": scores["kid"],
            "fid_floor": scorer.floor.fid,
            "fid_to_floor_ratio": scores["fid_to_floor_ratio"],
            "diversity_ratio": scores["diversity"] / scorer.real_diversity,
        }

    def _train(self, cfg: GanConfig, data: DataSplits, paths: ArtifactPaths, scorer: Scorer) -> keras.Model:
        """The GAN built and compiled, then trained (or resumed) in `paths` by the loop of training.py, scored by
        `scorer` after every epoch; returns the EMA generator."""
        keras.utils.set_random_seed(cfg.train.seed)  # the same initial networks every run
        t = cfg.train
        gan = self.build_gan(cfg, len(data.class_names), t.epochs * data.epoch_steps(t.batch_size, t.steps_per_epoch))
        return train_gan(
            gan,
            scorer,
            cfg,
            data,
            paths,
            augmentation=build_augmentation(cfg),
            summary={"project": self.name, "config": to_dict(cfg)},
        )

    def evaluate(self, cfg: GanConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths):
        """The EMA generator against held-out real images: FID to the floor, KID, precision and recall; the grid,
        an interpolation and each sample beside its nearest training images."""
        space = feature_space(cfg.data, cfg.features)
        scorer = Scorer(cfg, space, data)
        images = scorer.samples(model)
        scores = scorer.scores(images)
        metrics: dict[str, Any] = {
            "fid_to_floor_ratio": scores["fid_to_floor_ratio"],
            "fid": scores["fid"],  # generated vs held-out real images
            **scorer.floor_figures(),
            "kid": scores["kid"],
            **scorer.precision_recall(images),
            "diversity_ratio": scores["diversity"] / scorer.real_diversity,
            "feature_net_test_accuracy": space.test_accuracy,
            "fid_features": space.describe(),
        }
        if initial_generator(paths).exists():  # the untrained generator, against the same test images
            initial = scorer.score(keras.models.load_model(initial_generator(paths)))
            metrics.update(fid_initial=initial["fid"], kid_initial=initial["kid"])
            metrics["fid_ratio"] = initial["fid"] / scores["fid"]
        if best_json(paths).exists():
            metrics["kept_epoch"] = json.loads(best_json(paths).read_text())["epoch"]

        plot_paths = []
        if steps_csv(paths).exists():
            plot_paths.append(loss_curves(steps_csv(paths), paths.plots / "losses.png"))
        if paths.history_csv.exists() and initial_json(paths).exists():
            val_initial = json.loads(initial_json(paths).read_text())["fid"]
            plot_paths.append(fid_curve(paths.history_csv, val_initial, paths.plots / "fid.png"))
        grid = mosaic(generate(model, grid_inputs(model, cfg.train.seed)))
        plot_paths.append(save_png(grid, paths.plots / "final_grid.png"))
        plot_paths.append(self._interpolation(model, cfg.train.seed, paths.plots / "interpolation.png"))
        samples = generate(model, seeded_inputs(model, NEIGHBOUR_SAMPLES, cfg.train.seed + 5, scorer.class_probs))
        plot_paths.append(self._neighbours(samples, data, paths.plots / "nearest_neighbours.png"))
        if (paths.plots / "progress.gif").exists():
            plot_paths.append(paths.plots / "progress.gif")
        return metrics, plot_paths

    @staticmethod
    def _interpolation(generator: keras.Model, seed: int, path: Path) -> Path:
        """Rows of images along a spherical path between two noise vectors (same class when conditional)."""
        ends = seeded_inputs(generator, 2 * INTERPOLATION_ROWS, seed + 2)
        t = np.linspace(0.0, 1.0, INTERPOLATION_STEPS)
        noise = np.concatenate(
            [slerp(ends["noise"][2 * r], ends["noise"][2 * r + 1], t) for r in range(INTERPOLATION_ROWS)]
        )
        inputs = {"noise": noise}
        if is_conditional(generator):
            inputs["label"] = np.repeat(ends["label"][::2], INTERPOLATION_STEPS).astype(np.int32)
        picture = mosaic(generate(generator, inputs), cols=INTERPOLATION_STEPS)
        return save_png(picture, path)

    @staticmethod
    def _neighbours(samples: np.ndarray, data: DataSplits, path: Path) -> Path:
        """Each sample beside its nearest training images by RMS pixel distance."""
        train, _ = dataset_to_numpy(data.train)
        flat = samples.reshape(len(samples), -1).astype(np.float32) / 255.0
        dist = np.empty((len(samples), len(train)), np.float32)
        for i in range(0, len(train), 1024):
            chunk = train[i : i + 1024].reshape(-1, flat.shape[1]).astype(np.float32) / 255.0
            dist[:, i : i + 1024] = np.sqrt(((flat[:, None] - chunk[None]) ** 2).mean(-1))
        nearest = np.argsort(dist, axis=1)[:, :NEIGHBOURS]
        return nearest_neighbours(samples, train[nearest], np.take_along_axis(dist, nearest, 1), path)

    def serving_model(self, model: keras.Model, cfg: GanConfig) -> keras.Model:
        """`noise` (batch, latent_dim) float32 [, `label` (batch,) int32] -> `image` (batch, size, size, 3) uint8."""
        return build_serving_model(model)

    def _inputs(self, cfg: GanConfig, count: int, seed: int) -> dict[str, np.ndarray] | np.ndarray:
        generator = self.build_model(cfg)
        inputs = seeded_inputs(generator, count, seed)
        return inputs if is_conditional(generator) else inputs["noise"]

    def export_plan(self, cfg: GanConfig, model: keras.Model, data: DataSplits, verbose: bool = False) -> ExportPlan:
        """Every format from the serving model (the standard plan); the formats with int8 weights are held to the
        images' mean colours (`INT8_MEAN_IMAGE_BOUND`) rather than to every pixel."""
        plan = standard_plan(self, cfg, model, data)
        plan.metric_bounds = {name: INT8_MEAN_IMAGE_BOUND for name in ("tflite_dynamic", "tflite_int8", "tfjs_uint8")}
        return plan

    def export_examples(self, cfg: GanConfig, data: DataSplits) -> tuple[Any, np.ndarray]:
        """64 seeded noise vectors [and classes], and 64 real test images (n, size, size, 3) uint8 (`answer_metric`)."""
        images, _ = dataset_to_numpy(data.test.take(EXPORT_EXAMPLES))
        return self._inputs(cfg, EXPORT_EXAMPLES, cfg.train.seed + 3), images

    def representative_inputs(self, cfg: GanConfig, data: DataSplits) -> Any:
        """200 noise vectors [and classes] to calibrate int8 TF Lite."""
        return self._inputs(cfg, 200, cfg.train.seed + 4)

    def sample_inputs(self, cfg: GanConfig) -> Any:
        """8 fixed noise vectors [and classes] for the browser demo's check against Keras."""
        return self._inputs(cfg, 8, SAMPLE_SEED)

    def final_answer(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The image itself, (n, size, size, 3) uint8: "answers agreeing" is the share of identical pixel values."""
        return outputs["image"]

    def output_distance(self, outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
        """The largest |difference| of any pixel to Keras's image, in grey levels (uint8 compared as integers)."""
        if outputs["image"].shape != reference["image"].shape:
            raise ValueError(f"output image has shape {outputs['image'].shape}, expected {reference['image'].shape}")
        return float(np.max(np.abs(outputs["image"].astype(np.int32) - reference["image"].astype(np.int32))))

    def answer_metric(self, answers: np.ndarray, targets: np.ndarray) -> float:
        """Mean |mean generated image - mean test image| in grey levels: how well the average colours match."""
        return float(np.mean(np.abs(answers.astype(np.float64).mean(0) - targets.astype(np.float64).mean(0))))

    def demo_extras(self, model: keras.Model, cfg: GanConfig) -> dict[str, Any]:
        """The browser page needs the noise length, and the class names of a conditional generator.

        The names come from `cfg.data`; "class 0", "class 1", ... where they cannot be found (no clip art
        installed here) or do not match the generator's classes.
        """
        extras: dict[str, Any] = {"latent_dim": latent_dim(model), "conditional": is_conditional(model)}
        if is_conditional(model):
            num_classes = model.get_layer("class_embedding").input_dim
            names = art_data.class_names(cfg.data)
            extras["class_names"] = names if len(names) == num_classes else [f"class {k}" for k in range(num_classes)]
        return extras

    def run_command(self, command: str, cfg: GanConfig, paths: ArtifactPaths, args: Any) -> None:
        """`generate [N] [SEED]`: N new images (default 16) from noise seeded with SEED into generated.png."""
        from common.cli import load_trained_model  # here: common.cli finds this module through the registry

        try:
            count, seed = ([int(a) for a in args.inputs] + [16, 0][len(args.inputs) :])[:2]
        except ValueError:
            raise ConfigError(f"generate takes a count and a seed (integers), got {' '.join(args.inputs)}") from None
        model = load_trained_model(self.name, paths)
        images = generate(model, seeded_inputs(model, count, seed))
        picture = mosaic(images)
        path = save_png(picture, paths.root / "generated.png")
        print(f"{count} images (seed {seed}): {path}")


PROJECT = GanProject()
