"""The image classifier's config and presets.

Every key can be changed from the command line, e.g. `--set data.dir=photos/ --set model.backbone=efficientnet_b0`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import TrainConfig, choice

BACKBONES = ("mobilenet_v3_small", "efficientnet_b0", "resnet50", "densenet121", "vit")


@dataclass
class DataConfig:
    dir: str = ""  # your images, one sub-folder per class: DIR/<class>/<image>; "" = tf_flowers or openclipart-png
    classes: tuple[str, ...] = ()  # use only these class folders (empty: all; openclipart-png: six categories)
    online: bool = False  # allow tensorflow-datasets to download tf_flowers when no data.dir is given
    image_size: int = 96  # images are padded to a square (white) and resized to image_size x image_size
    max_per_class: int = 0  # use at most N images per class, a seeded random choice (0 = all)
    val_fraction: float = 0.15  # share of each class held out for validation
    test_fraction: float = 0.15  # share of each class held out for the test split
    split_seed: int = 0  # seeds the per-class shuffle before splitting
    cache_dir: str = ""  # decoded, resized images are cached here ("" = artifacts/classifier/cache)
    augment: bool = True  # random flips, rotations, zoom and contrast on training batches
    flip: bool = True  # random horizontal flips
    rotation: float = 0.05  # max rotation as a fraction of a full turn (0.05 = 18 degrees)
    zoom: float = 0.15  # max zoom in or out
    contrast: float = 0.2  # max contrast change
    class_weights: bool = True  # weight the loss by inverse class frequency (for imbalanced folders)


@dataclass
class ModelConfig:
    backbone: str = choice("mobilenet_v3_small", BACKBONES, "a keras.applications network, or a small ViT")
    weights: str = "none"  # none (train from scratch), imagenet (downloads once) or a path to a weights file
    alpha: float = 1.0  # MobileNetV3 width multiplier (0.75 or 1.0 have ImageNet weights)
    minimalistic: bool = False  # MobileNetV3 without squeeze-excite and hard-swish (faster, converts anywhere)
    dropout: float = 0.2  # before the classification layer
    vit_patch_size: int = 8  # vit: side of the square patches
    vit_dim: int = 96  # vit: token width
    vit_depth: int = 4  # vit: transformer blocks
    vit_heads: int = 4  # vit: attention heads


@dataclass
class FineTuneConfig:
    """Phase two, only with pretrained weights: after the head is trained on a frozen backbone."""

    epochs: int = 5  # 0 = keep the backbone frozen
    layers: int = 30  # unfreeze this many top layers of the backbone (batch norm layers stay frozen)
    learning_rate: float = 1e-4  # lower than phase one, so the pretrained features are only nudged


@dataclass
class ClassifierConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    fine_tune: FineTuneConfig = field(default_factory=FineTuneConfig)


def smoke() -> ClassifierConfig:
    """Check that everything runs, ~30 s: 64x64, a slim MobileNetV3Small, 2 epochs on 40 images per class."""
    cfg = ClassifierConfig()
    cfg.data.image_size = 64
    cfg.data.max_per_class = 40
    cfg.model.alpha = 0.75
    cfg.model.minimalistic = True
    cfg.train = TrainConfig(epochs=2, batch_size=16, learning_rate=2e-3)
    cfg.fine_tune.epochs = 1
    return cfg


def default() -> ClassifierConfig:
    """MobileNetV3Small from scratch, 96x96, 15 epochs: macro F1 ~0.54 on six openclipart-png categories, ~5.5 min."""
    cfg = ClassifierConfig()
    cfg.train = TrainConfig(epochs=15, batch_size=32, learning_rate=3e-3, schedule="one_cycle")
    return cfg


def full() -> ClassifierConfig:
    """EfficientNetB0 at 128x128 with ImageNet weights (downloaded once), then fine-tuned: for a GPU or patience."""
    cfg = ClassifierConfig()
    cfg.data.image_size = 128
    cfg.model.backbone = "efficientnet_b0"
    cfg.model.weights = "imagenet"
    cfg.train = TrainConfig(epochs=10, batch_size=32, learning_rate=1e-3, early_stopping_patience=4)
    cfg.fine_tune = FineTuneConfig(epochs=10, layers=40, learning_rate=1e-4)
    return cfg


PRESETS = {"smoke": smoke, "default": default, "full": full}
DEFAULT_PRESET = "default"
