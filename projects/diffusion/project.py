"""The diffusion model's recipe: the art data, the U-Net denoiser, the noise-prediction loss, EMA, DDIM sampling.

Training: the denoiser of model.py and its moving average in the `Diffusion` model of diffusion.py, trained on
noised real images (schedule.py) to predict the noise (loss.py), by the loop of training.py. Sampling
(sampling.py): DDIM with any number of steps, or ancestral DDPM; classifier-free guidance for class-conditional
models. `evaluate` (evaluation.py) measures FID, KID, precision and recall in the feature space shared with the GAN
(common/feature_space.py); `tune` trains each trial in the same loop and ranks the trials by FID at a few DDIM steps
against the validation split's real images (`tune_trial`). Export: the SavedModel samples (the DDIM loop in the
graph, serving_model.py); TF Lite, TF.js and ONNX hold the denoiser alone (export.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np

from common.config import ConfigError, to_dict
from common.data.splits import DataSplits
from common.feature_space import check_val_reference, feature_space
from common.held_out_reference import HeldOutReference
from common.image_grids import mosaic, save_png
from common.loop_training import steps_csv
from common.paths import ArtifactPaths
from common.project import Project

from . import data as diffusion_data
from .config import DiffusionConfig, check_class, check_sampling
from .diffusion import Diffusion
from .evaluation import (
    ddpm_grid,
    denoising_strip,
    fid_by_steps,
    fid_inputs,
    gan_figures,
    loss_curve,
    noise_fid,
    steps_grid,
)
from .export import export_plan, sample_inputs
from .model import build_denoiser, num_classes_of
from .sampling import Sampler, class_labels, generate, guided_timesteps
from .schedule import alphas_cumprod
from .training import grid_seeds_and_labels, train_diffusion


class DiffusionProject(Project):
    name = "diffusion"
    monitor = ("loss", "min")  # what the loop reports after every epoch (lower is better)
    tune_objective = ("fid", "min")  # what `tune` ranks trials by: FID of samples, as `evaluate` judges the model
    # Outputs are uint8 pixels after a few DDIM steps, each of which carries a format's float differences along:
    # 3 grey levels leave room for a rounding step or two.
    float_tolerance: ClassVar[float] = 3.0
    metric_name = "mean-image L1 to test (grey levels)"

    def load_data(self, cfg: DiffusionConfig) -> DataSplits:
        """(image (size, size, 3) uint8, label int32) pairs of `data.source` (common/data/art.py).

        Raises:
            ConfigError: the source is missing or unreadable, or a category does not exist (exit code 2).
        """
        return diffusion_data.load_splits(cfg.data)

    def num_classes(self, cfg: DiffusionConfig) -> int:
        return len(diffusion_data.class_names(cfg.data)) if cfg.model.conditional else 0

    def build_model(self, cfg: DiffusionConfig) -> keras.Model:
        """The denoiser alone (what `model.keras` holds after training: the EMA weights)."""
        return build_denoiser(cfg.model, cfg.data.image_size, self.schedule(cfg), self.num_classes(cfg))

    def schedule(self, cfg: DiffusionConfig) -> np.ndarray:
        """(T,) abar_t of `schedule.kind`."""
        return alphas_cumprod(cfg.schedule.kind, cfg.schedule.timesteps)

    def build_diffusion(self, cfg: DiffusionConfig, num_classes: int, total_steps: int) -> Diffusion:
        """The denoiser, its EMA copy and Adam (warm-up, then cosine decay to a tenth at `total_steps`), compiled.

        Raises:
            ConfigError: a class-conditional model asked of data with fewer than two classes, sizes that do not fit.
        """
        m, t = cfg.model, cfg.train
        if m.conditional and num_classes < 2:
            raise ConfigError(
                f"model.conditional=true needs labelled data with 2 or more classes; data.source={cfg.data.source} "
                f"has {num_classes}: set model.conditional=false"
            )
        classes = num_classes if m.conditional else 0
        size, abar = cfg.data.image_size, self.schedule(cfg)
        model = Diffusion(
            build_denoiser(m, size, abar, classes),
            build_denoiser(m, size, abar, classes, name="ema_denoiser"),
            abar,
            num_classes=classes,
            class_dropout=m.class_dropout,
            ema_decay=m.ema_decay,
            min_snr_gamma=t.min_snr_gamma,
        )
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0,
            max(total_steps - t.warmup_steps, 1),
            alpha=0.1,
            warmup_target=t.learning_rate,
            warmup_steps=t.warmup_steps,
        )
        model.compile(keras.optimizers.Adam(schedule))
        return model

    def train(self, cfg: DiffusionConfig, data: DataSplits, paths: ArtifactPaths) -> keras.Model:
        """The Diffusion model built and compiled, then its loop (training.py); returns the EMA denoiser."""
        check_sampling(
            cfg.sampling.steps, cfg.schedule.timesteps, cfg.sampling.guidance, cfg.sampling.guidance_interval
        )
        return self._train(cfg, data, paths)

    def search_space(self, cfg: DiffusionConfig) -> dict[str, list]:
        """The learning rate (the preset's, half and twice it), the noise schedule, the EMA decay and the U-Net's width
        (the preset's and half: cheaper, does FID suffer?). Lists only, so `tune.algorithm=grid` can walk it
        (3 x 2 x 3 x 2 = 36 combinations; its first is the default preset's)."""
        rate, width = cfg.train.learning_rate, cfg.model.base_filters
        return {
            "train.learning_rate": [rate, rate / 2, 2 * rate],
            "schedule.kind": ["cosine", "linear"],
            "model.ema_decay": [0.999, 0.99, 0.95],
            "model.base_filters": [width, width // 2],
        }

    def tune_trial(self, cfg: DiffusionConfig, data: DataSplits, paths: ArtifactPaths) -> dict[str, float]:
        """Train the trial's model in the loop `train` runs, in `paths` (the trial's folder under tuning/), and score
        its EMA denoiser's DDIM samples at `sampling.tune_steps` steps (few, for speed) against the validation
        split's real images, so that the test split stays `evaluate`'s.

        Returns:
            {"fid" (the objective, lower better), "kid", "fid_floor", "fid_to_floor_ratio"}.

        Raises:
            ConfigError: DDIM steps or guidance out of range, or a validation split of fewer than 2 images.
        """
        s = cfg.sampling
        check_sampling(s.tune_steps, cfg.schedule.timesteps, s.guidance, s.guidance_interval)
        check_val_reference(data, "tune scores each trial")
        f = cfg.train
        ref = HeldOutReference(feature_space(cfg.data, cfg.features), data, f.fid_samples, f.fid_floor_draws, "val")
        sampler = self.sampler(cfg, self._train(cfg, data, paths))
        seeds, labels = fid_inputs(sampler, cfg, ref)
        scores = ref.scores(generate(sampler, seeds, labels, s.tune_steps, s.eta, s.guidance))
        return {**scores, "fid_floor": ref.floor.fid}

    def _train(self, cfg: DiffusionConfig, data: DataSplits, paths: ArtifactPaths) -> keras.Model:
        """The Diffusion model built and compiled, then trained (or resumed) in `paths` by the loop of training.py;
        returns the EMA denoiser."""
        keras.utils.set_random_seed(cfg.train.seed)  # the same initial network every run
        t = cfg.train
        total = t.epochs * data.epoch_steps(t.batch_size, t.steps_per_epoch)
        model = self.build_diffusion(cfg, len(data.class_names), total)
        return train_diffusion(model, cfg, data, paths, {"project": self.name, "config": to_dict(cfg)})

    def sampler(self, cfg: DiffusionConfig, model: keras.Model) -> Sampler:
        return Sampler.for_keras(model, self.schedule(cfg), cfg.sampling.guidance_interval)

    def evaluate(self, cfg: DiffusionConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths):
        """The EMA denoiser against held-out real images at each DDIM step count: FID to the floor, KID, precision,
        recall, seconds per image; pure noise's FID; the GAN's committed figures; grids, a strip and DDPM."""
        s = cfg.sampling
        check_sampling(s.steps, cfg.schedule.timesteps, s.guidance, s.guidance_interval)
        space = feature_space(cfg.data, cfg.features)
        ref = HeldOutReference(space, data, cfg.train.fid_samples, cfg.train.fid_floor_draws)
        sampler = self.sampler(cfg, model)
        rows, images = fid_by_steps(sampler, cfg, ref)
        chosen = next(r for r in rows if r["ddim_steps"] == s.steps)
        metrics: dict[str, Any] = {
            "fid_to_floor_ratio": chosen["fid_to_floor_ratio"],  # at sampling.steps DDIM steps
            "fid": chosen["fid"],
            **ref.floor_figures(),
            "fid_noise": noise_fid(ref, sampler.size, cfg.train.seed),  # pure Gaussian noise shown as images
            "kid": chosen["kid"],
            **ref.precision_recall(images),
            "ddim_steps": s.steps,
            "guidance": s.guidance,
            "guidance_interval": list(s.guidance_interval),
            "seconds_per_image": chosen["seconds_per_image"],
            "feature_net_test_accuracy": space.test_accuracy,
            "fid_features": space.describe(),
            "tables": {"FID by DDIM steps": [_rounded(r) for r in rows]},
        }
        gan = gan_figures()
        if gan:
            metrics["tables"]["The GAN's committed benchmark (benchmarks/results/gan.json)"] = [
                {"key": k, "value": json_text(v)} for k, v in gan.items()
            ]
        plots = []
        if steps_csv(paths).exists():
            plots.append(loss_curve(steps_csv(paths), paths.plots / "loss.png"))
        plots.append(self._final_grid(cfg, sampler, paths))
        plots.append(steps_grid(sampler, cfg, [r["ddim_steps"] for r in rows], paths.plots / "steps_comparison.png"))
        plots.append(denoising_strip(sampler, cfg, paths.plots / "denoising_strip.png"))
        plots.append(ddpm_grid(sampler, cfg, paths.plots / "ddpm_grid.png"))
        if (paths.plots / "progress.gif").exists():
            plots.append(paths.plots / "progress.gif")
        return metrics, plots

    @staticmethod
    def _final_grid(cfg: DiffusionConfig, sampler: Sampler, paths: ArtifactPaths):
        seeds, labels = grid_seeds_and_labels(sampler.num_classes, cfg.train.seed)
        s = cfg.sampling
        return save_png(
            mosaic(generate(sampler, seeds, labels, s.steps, s.eta, s.guidance)), paths.plots / "final_grid.png"
        )

    def export_plan(self, cfg: DiffusionConfig, model: keras.Model, data: DataSplits, verbose: bool = False):
        """The sampling SavedModel served; the denoiser alone as TF Lite, TF.js and ONNX (export.py)."""
        return export_plan(cfg, model, data, self.schedule(cfg))

    def sample_inputs(self, cfg: DiffusionConfig) -> dict[str, np.ndarray]:
        """4 noisy images, timesteps [and classes] for the browser demo's check of the denoiser against Keras."""
        return sample_inputs(cfg, self.num_classes(cfg))

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

    def demo_extras(self, model: keras.Model, cfg: DiffusionConfig) -> dict[str, Any]:
        """What the browser page's DDIM loop needs: the schedule's abar, T, the guidance and the class names."""
        classes = num_classes_of(model)
        names = diffusion_data.class_names(cfg.data)
        return {
            "alphas_cumprod": [round(float(a), 8) for a in self.schedule(cfg)],
            "timesteps": cfg.schedule.timesteps,
            "image_size": cfg.data.image_size,
            "guidance": cfg.sampling.guidance,
            "guided_timesteps": list(guided_timesteps(cfg.sampling.guidance_interval, cfg.schedule.timesteps)),
            "default_steps": cfg.sampling.steps,
            "num_classes": classes,
            "class_names": names if len(names) == classes else [f"class {k}" for k in range(classes)],
        }

    def run_command(self, command: str, cfg: DiffusionConfig, paths: ArtifactPaths, args: Any) -> None:
        """`generate [N] [SEED] [CLASS]`: N images (default 16) from seeds SEED, SEED+1, ... into generated.png."""
        from common.cli import load_trained_model  # here: common.cli finds this module through the registry

        try:
            count, seed, label = ([int(a) for a in args.inputs] + [16, 0, -1][len(args.inputs) :])[:3]
        except ValueError:
            raise ConfigError(
                f"generate takes a count, a seed and a class id (integers), got {' '.join(args.inputs)}"
            ) from None
        if count < 1:
            raise ConfigError(f"generate makes at least 1 image, got {count}")
        s = cfg.sampling
        check_sampling(s.steps, cfg.schedule.timesteps, s.guidance, s.guidance_interval)
        model = load_trained_model(self.name, paths)
        classes = num_classes_of(model)
        check_class(label, classes)
        sampler = self.sampler(cfg, model)
        seeds = np.arange(count, dtype=np.int32) + seed
        images = generate(sampler, seeds, class_labels(count, classes, label), s.steps, s.eta, s.guidance)
        path = save_png(mosaic(images), paths.root / "generated.png")
        print(f"{count} images (seeds {seed}..{seed + count - 1}, {s.steps} DDIM steps): {path}")


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}


def json_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


PROJECT = DiffusionProject()
