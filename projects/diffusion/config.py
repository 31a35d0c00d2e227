"""The diffusion model's config: its defaults are the `default` preset; `smoke` changes keys.

Every key can be changed from the command line, e.g. `--set schedule.kind=linear`,
`--set sampling.steps=25 --set sampling.guidance=3` or `--set model.conditional=false`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.art_config import ArtDataConfig, FeatureNetConfig
from common.config import ConfigError, Expected, Preset, TuneConfig, bounded, choice


@dataclass
class ModelConfig:
    base_filters: int = bounded(32, 4)  # filters of the U-Net's first level
    multipliers: tuple[int, ...] = (1, 2, 2)  # filters of each level, times base_filters; each level halves the side
    res_blocks: int = bounded(1, 1, 4)  # residual blocks per level, on the way down (one more on the way up)
    attention: bool = True  # self-attention at the lowest resolution
    scale_shift: bool = True  # time and class scale and shift each block's features (FiLM) instead of adding to them
    dropout: float = bounded(0.0, 0.0, 0.9)
    # What the network's last layer predicts: the noise itself, or v = sqrt(abar) eps - sqrt(1 - abar) x0, turned
    # into the noise inside the model (model.py), so that the x0 it implies stays sane at the noisiest timesteps.
    prediction: str = choice("v", ("v", "noise"), "the network's output: v (velocity) or noise")
    conditional: bool = True  # class-conditional (labelled data only), with classifier-free guidance
    class_dropout: float = bounded(0.1, 0.0, 1.0)  # share of training examples shown without their class
    ema_decay: float = bounded(0.999, 0.0, 1.0, inclusive=False)  # moving average of the weights (what samples)


@dataclass
class ScheduleConfig:
    kind: str = choice("cosine", ("cosine", "linear"), "noise schedule: cosine (Nichol & Dhariwal) or linear (Ho)")
    timesteps: int = bounded(1000, 2, 4000)  # T: noising steps of training (and of ancestral DDPM sampling)


@dataclass
class DiffusionTrainConfig:
    epochs: int = bounded(16, 1)  # epochs of `steps_per_epoch` steps
    steps_per_epoch: int = bounded(750, 0)  # steps per epoch (0 = one pass over the data)
    # A step costs about the same per image at batch 8, 16 or 32 on 2 cores: batch 8 buys 4x the updates of batch 32.
    batch_size: int = bounded(8, 2)
    learning_rate: float = bounded(1e-3, 0.0, inclusive=False)  # Adam, after a warm-up of `warmup_steps`
    warmup_steps: int = bounded(200, 0)
    min_snr_gamma: float = bounded(5.0, 0.0)  # Min-SNR-gamma loss weights (loss.py; 5 as in the paper), 0 = unweighted
    seed: int = 42  # seeds Python, NumPy and TensorFlow, and the fixed noise of the sample grids
    fid_samples: int = bounded(300, 16)  # generated images (and real training images, for the floor) per FID
    fid_floor_draws: int = bounded(10, 1)  # the floor: the mean over this many draws of real training images


@dataclass
class SamplingConfig:
    steps: int = bounded(50, 1)  # DDIM steps (at most schedule.timesteps)
    eta: float = bounded(0.0, 0.0, 1.0)  # DDIM's noise: 0 deterministic, 1 as stochastic as DDPM
    guidance: float = 2.0  # classifier-free guidance scale: 0 unconditional, 1 conditional, > 1 stronger
    # Fractions of T where guidance applies (the plain conditional model elsewhere; sampling.py): every step, as
    # the v-predicting network is sane at the noisiest ones (a noise-predicting one scored better without the top 6%).
    guidance_interval: tuple[float, ...] = (0.0, 1.0)
    grid_steps: int = bounded(10, 1)  # DDIM steps of the per-epoch progress grid (its time counts as training's)
    compared_steps: tuple[int, ...] = (10, 25, 50, 250)  # `evaluate`: FID at each of these DDIM step counts
    tune_steps: int = bounded(10, 1)  # `tune`: DDIM steps of each trial's FID (few, for speed)


@dataclass
class DiffusionConfig:
    """The default preset: a class-conditional DDPM on Twemoji art at 32x32 (cosine schedule, EMA, DDIM sampling)."""

    data: ArtDataConfig = field(default_factory=ArtDataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: DiffusionTrainConfig = field(default_factory=DiffusionTrainConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    features: FeatureNetConfig = field(default_factory=FeatureNetConfig)
    # `tune`: trials of 3 x 200 steps in the model's own loop, scored by FID (search space: project.py). Hyperband
    # would carry Keras weights between rounds, which a trial of this loop does not leave: random, bayesian, grid.
    tune: TuneConfig = field(default_factory=lambda: TuneConfig(algorithm="random", max_epochs=3, max_trials=6))


def check_sampling(steps: int, timesteps: int, guidance: float, interval: tuple[float, ...] = (0.0, 1.0)) -> None:
    """Raise a ConfigError naming the valid range when DDIM `steps`, the guidance scale or its interval cannot be
    used."""
    if not 1 <= steps <= timesteps:
        raise ConfigError(f"sampling steps must be in [1, {timesteps}] (schedule.timesteps), got {steps}")
    if guidance < 0:
        raise ConfigError(f"guidance scale must be >= 0 (0 unconditional, 1 conditional), got {guidance:g}")
    if len(interval) != 2 or not 0.0 <= interval[0] <= interval[1] <= 1.0:
        raise ConfigError(
            "sampling.guidance_interval must be two fractions of T, 0 <= start <= end <= 1 (0,1: every step), got "
            + ",".join(f"{v:g}" for v in interval)
        )


def check_class(label: int, num_classes: int) -> None:
    """Raise a ConfigError naming the valid class ids when `label` is not one of them (-1: cycle through them)."""
    if num_classes and not -1 <= label < num_classes:
        raise ConfigError(f"unknown class {label}: valid class ids are 0 to {num_classes - 1} (-1: each in turn)")
    if not num_classes and label not in (-1, 0):
        raise ConfigError(f"class {label} given to an unconditional model: leave it out (or -1)")


CONFIG = DiffusionConfig
PRESETS = {
    "smoke": Preset(
        "check that everything runs: 400 emoji at 16x16, a tiny U-Net, T=200, 2 epochs of 60 steps",
        # A ceiling that only catches a broken run: pure noise scores far above it.
        Expected("fid_to_floor_ratio", 40.0, 3.0, higher_is_better=False),
        changes={
            "data.max_images": 400,
            "data.image_size": 16,
            "model.base_filters": 16,
            "model.multipliers": (1, 2),
            "schedule.timesteps": 200,
            "train.epochs": 2,
            "train.steps_per_epoch": 60,
            "train.batch_size": 16,
            "train.learning_rate": 2e-3,
            "train.warmup_steps": 20,
            "train.fid_samples": 100,
            "model.ema_decay": 0.95,  # a short run: the average must follow the weights within a few dozen steps
            "sampling.steps": 10,
            "sampling.compared_steps": (5, 10, 25),
            "sampling.tune_steps": 5,
            "sampling.guidance_interval": (0.0, 0.94),  # T=200: the first DDIM step (t=199) unguided, the rest guided
            "features.epochs": 3,
            "features.filters": (16, 32),
            "tune.max_epochs": 1,
            "tune.max_trials": 2,
        },
    ),
    "default": Preset(
        "class-conditional DDPM on Twemoji at 32x32: U-Net with attention at 8x8, cosine schedule, EMA, 16 x 750 steps",
        # The goal: FID at 50 DDIM steps at most 3 times the floor; measured 1.93 in 25 minutes (diffusion.json).
        Expected("fid_to_floor_ratio", 3.0, 30.0, higher_is_better=False),
    ),
}
DEFAULT_PRESET = "default"
COMMANDS = {
    "generate": "write a grid of N (default 16) new images to <output>/generated.png: generate [N] [SEED] [CLASS] "
    "(DDIM steps, eta and guidance from sampling.*)"
}
