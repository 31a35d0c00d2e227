"""The GAN's config and presets.

Every key can be changed from the command line, e.g. `--set data.source=fashion_mnist --set model.conditional=true`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import bounded, choice

SOURCES = ("openclipart", "fashion_mnist", "monet")


@dataclass
class DataConfig:
    source: str = choice("openclipart", SOURCES, "openclipart-png clip art, Fashion-MNIST, or tfds Monet paintings")
    online: bool = False  # monet: allow tensorflow-datasets to download cycle_gan/monet2photo
    categories: tuple[str, ...] = ()  # openclipart: only these category folders (empty: all of them)
    max_images: int = 0  # use at most N images, a seeded random choice (0 = all)
    val_fraction: float = 0.05  # held out: the feature classifier's validation split
    test_fraction: float = 0.1  # held out: FID's reference images and nearest-neighbour checks use train
    split_seed: int = 0  # seeds the shuffle before splitting
    cache_dir: str = ""  # decoded 64x64 images are cached here ("" = artifacts/gan/cache)
    flip: bool = True  # random horizontal flips of the real images


@dataclass
class ModelConfig:
    latent_dim: int = 64  # length of the noise vector
    g_filters: tuple[int, ...] = (128, 64, 32, 16)  # generator: filters at 4x4, 8x8, 16x16, 32x32 (then RGB 64x64)
    d_filters: tuple[int, ...] = (16, 32, 64, 128)  # discriminator: filters at 32x32, 16x16, 8x8, 4x4
    loss: str = choice("hinge", ("hinge", "nonsaturating"))
    spectral_norm: bool = True  # spectral normalization on every discriminator layer
    label_smoothing: float = bounded(0.0, 0.0, 0.5)  # nonsaturating loss: real targets are 1 - label_smoothing
    ema_decay: float = bounded(0.999, 0.0, 1.0, inclusive=False)  # generator weights' moving average (sampling)
    conditional: bool = False  # class-conditional generator and projection discriminator (labelled data only)


@dataclass
class GanTrainConfig:
    epochs: int = bounded(10, 1)  # epochs of `steps_per_epoch` steps
    steps_per_epoch: int = bounded(150, 0)  # discriminator+generator steps per epoch (0 = one pass over the data)
    batch_size: int = bounded(32, 2)
    g_learning_rate: float = bounded(1e-3, 0.0, inclusive=False)  # Adam, generator (high: short CPU runs)
    d_learning_rate: float = bounded(1e-3, 0.0, inclusive=False)  # Adam, discriminator
    beta_1: float = bounded(0.5, 0.0, 1.0)  # Adam's first-moment decay (0.5 or 0.0 is usual for GANs)
    beta_2: float = bounded(0.999, 0.0, 1.0)
    seed: int = 42  # seeds Python, NumPy and TensorFlow, and the fixed noise of the sample grids
    fid_samples: int = bounded(500, 16)  # generated images scored by FID/KID at the end of every epoch
    fid_reference: int = bounded(2000, 16)  # training images FID/KID compare them with
    collapse_ratio: float = bounded(0.5, 0.0, 1.0)  # warn when sample diversity falls below this share of its best


@dataclass
class FeatureNetConfig:
    """The classifier whose pooled features FID and KID compare (Inception's weights are not available offline)."""

    epochs: int = bounded(5, 1)
    batch_size: int = bounded(64, 2)
    learning_rate: float = bounded(2e-3, 0.0, inclusive=False)
    filters: tuple[int, ...] = (32, 64, 128, 128)  # one strided 3x3 convolution block per entry; features: the last


@dataclass
class GanConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: GanTrainConfig = field(default_factory=GanTrainConfig)
    features: FeatureNetConfig = field(default_factory=FeatureNetConfig)


def smoke() -> GanConfig:
    """Check that everything runs, ~40 s: 160 clip-art images, tiny networks, 2 epochs of 4 steps."""
    cfg = GanConfig()
    cfg.data.max_images = 160
    cfg.data.test_fraction = 0.2
    cfg.data.val_fraction = 0.1
    cfg.model.latent_dim = 16
    cfg.model.g_filters = (32, 16, 8, 8)
    cfg.model.d_filters = (8, 8, 16, 16)
    cfg.train.epochs = 2
    cfg.train.steps_per_epoch = 4
    cfg.train.batch_size = 16
    cfg.train.fid_samples = 64
    cfg.train.fid_reference = 64
    cfg.features.epochs = 1
    cfg.features.filters = (8, 16)
    return cfg


def default() -> GanConfig:
    """DCGAN on openclipart-png clip art at 64x64, hinge, spectral norm, EMA: FID 69 -> 14.5 in 13 min on 2 cores."""
    cfg = GanConfig()
    return cfg


def fashion() -> GanConfig:
    """Class-conditional DCGAN on Fashion-MNIST (70,000 images, 10 classes, upscaled to 64x64 RGB); not benchmarked."""
    cfg = GanConfig()
    cfg.data.source = "fashion_mnist"
    cfg.data.flip = False
    cfg.model.conditional = True
    return cfg


def monet() -> GanConfig:
    """Monet's paintings (tfds cycle_gan/monet2photo trainA, 1,072 images, downloaded once): for a GPU or patience."""
    cfg = GanConfig()
    cfg.data.source = "monet"
    cfg.data.online = True
    cfg.train.epochs = 100
    return cfg


PRESETS = {"smoke": smoke, "default": default, "fashion": fashion, "monet": monet}
DEFAULT_PRESET = "default"
COMMANDS = {"generate": "write a grid of N (default 16) new images to <output>/generated.png: generate [N] [SEED]"}
