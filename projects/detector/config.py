"""The SSD detector's config and presets.

Every key can be changed from the command line, e.g. `--set model.width=1.0 --set loss.classification=focal`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import TrainConfig, bounded, choice

BACKBONES = ("mobilenet_v2", "plain")


@dataclass
class DataConfig:
    online: bool = False  # use tensorflow-datasets' voc/2007 (downloads it) instead of the generated scenes
    image_size: int = 128  # square scenes (and VOC images resized to it), image_size x image_size RGB
    train_scenes: int = 4000  # generated scenes per split; each split pastes digits from its own pool
    val_scenes: int = 500
    test_scenes: int = 500
    min_objects: int = bounded(1, 1)  # digits per scene: from min_objects to max_objects
    max_objects: int = bounded(6, 1)
    min_size: int = bounded(16, 4)  # a digit's longer side in pixels, drawn uniformly in [min_size, max_size]
    max_size: int = bounded(64, 4)
    max_overlap: float = bounded(0.15, 0.0, 1.0)  # largest IoU a new digit may have with one already placed
    seed: int = 0  # seeds the digit pools' split and every scene (train, val and test use seeds derived from it)
    cache_dir: str = ""  # generated scenes are cached here as .npz ("" = artifacts/detector/cache)
    # Training images get their colour channels shuffled and, half of the time, inverted (colours.py): right for
    # the generated scenes, whose colours are random and either light on dark or dark on light; not for photos.
    augment: bool = True


@dataclass
class ModelConfig:
    backbone: str = choice("mobilenet_v2", BACKBONES, "inverted residual blocks, or plain 3x3 convolutions")
    width: float = 0.5  # multiplies every layer's channels
    expansion: int = bounded(4, 1)  # mobilenet_v2: channels of a block's depthwise convolution / its input's
    feature_maps: tuple[int, ...] = (16, 8, 4, 2)  # sides of the feature maps predicted from (strides 8 to 64)
    anchor_scales: tuple[float, ...] = (0.12, 0.24, 0.44, 0.7, 0.9)  # anchor side per map (and one past the last)
    aspect_ratios: tuple[float, ...] = (1.0, 0.6, 0.35)  # anchor width / height on every map
    variances: tuple[float, ...] = (0.1, 0.1, 0.2, 0.2)  # box encoding: centre y, x offsets; log height, width
    head_channels: int = 48  # channels of the pyramid and of the 3x3 convolution before each map's predictions
    top_down: bool = True  # add each coarser map, upsampled, to the finer one (a feature pyramid) before the heads


@dataclass
class LossConfig:
    match_iou: float = bounded(0.5, 0.0, 1.0)  # an anchor is positive when its IoU with a box reaches this
    negatives_per_positive: float = bounded(3.0, 0.0)  # hard negative mining ratio (classification = softmax)
    classification: str = choice("softmax", ("softmax", "focal"), "cross-entropy with hard negatives, or focal")
    focal_gamma: float = 2.0  # focal loss only
    box_weight: float = 1.0  # weight of the smooth L1 box loss against the class loss


@dataclass
class PostprocessConfig:
    score_threshold: float = bounded(0.05, 0.0, 1.0)  # detections below this are dropped before NMS
    nms_iou: float = bounded(0.45, 0.0, 1.0)  # a box overlapping a better one of its class by more is suppressed
    max_detections: int = bounded(20, 1)  # per image, after NMS
    candidates: int = bounded(200, 1)  # best-scoring anchors per image that enter NMS
    display_threshold: float = bounded(0.4, 0.0, 1.0)  # grids, the browser page and Gradio show boxes from this score


@dataclass
class DetectorConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def smoke() -> DetectorConfig:
    """Check that everything runs, ~1 min: 96x96 scenes, 160 of them, a narrow network, 3 epochs; finds ~nothing."""
    cfg = DetectorConfig()
    cfg.data.image_size = 96
    cfg.data.train_scenes, cfg.data.val_scenes, cfg.data.test_scenes = 160, 32, 32
    cfg.data.min_size, cfg.data.max_size = 20, 48
    cfg.model.width = 0.25
    cfg.model.feature_maps = (12, 6, 3)
    cfg.model.anchor_scales = (0.2, 0.4, 0.6, 0.8)
    cfg.model.head_channels = 16
    cfg.postprocess.score_threshold = 0.02  # this barely trained model's scores are low: keep some boxes to compare
    cfg.train = TrainConfig(epochs=3, batch_size=32, learning_rate=3e-3)
    return cfg


def default() -> DetectorConfig:
    """MobileNetV2-style SSD from scratch, 6,000 colour-shuffled 128x128 scenes, 14 epochs: ~15 min on 2 cores."""
    cfg = DetectorConfig()
    cfg.data.train_scenes = 6000
    cfg.train = TrainConfig(epochs=14, batch_size=32, learning_rate=3e-3, schedule="cosine", warmup_epochs=0.5)
    return cfg


def full() -> DetectorConfig:
    """Twice the scenes, a full-width network and 40 epochs: for a GPU or patience."""
    cfg = DetectorConfig()
    cfg.data.train_scenes = 12000
    cfg.model.width = 1.0
    cfg.model.head_channels = 128
    cfg.train = TrainConfig(epochs=40, batch_size=32, learning_rate=3e-3, schedule="one_cycle")
    return cfg


def voc() -> DetectorConfig:
    """Pascal VOC 2007 from tensorflow-datasets (downloads ~900 MB once), 20 classes at 256x256: for a GPU."""
    cfg = full()
    cfg.data.online = True
    cfg.data.augment = False  # an inverted photo is not a photo
    cfg.data.image_size = 256
    cfg.model.feature_maps = (32, 16, 8, 4, 2)
    cfg.model.anchor_scales = (0.1, 0.2, 0.37, 0.54, 0.71, 0.88)
    cfg.model.aspect_ratios = (1.0, 2.0, 0.5)
    return cfg


PRESETS = {"smoke": smoke, "default": default, "full": full, "voc": voc}
DEFAULT_PRESET = "default"
