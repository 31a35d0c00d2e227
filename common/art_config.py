"""The config of the art images and of the feature network that the generative projects (gan, diffusion) share.

No TensorFlow import: a project's config.py builds on these dataclasses and is checked before TensorFlow loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.config import bounded, choice

ART_SOURCES = ("emoji", "openclipart", "folder", "fashion_mnist", "monet")


@dataclass
class ArtDataConfig:
    source: str = choice(
        "emoji", ART_SOURCES, "emoji art (npm), openclipart-png, an image folder, Fashion-MNIST, Monet"
    )
    vendors: tuple[str, ...] = ("twitter",)  # emoji: whose art is learnt (twitter: Twemoji, google: Noto, openmoji)
    # emoji: a conditional model's classes, the 9 categories or their 98 subcategories (as categories.json names
    # them, e.g. "Animals & Nature: animal-mammal"), or one class per subcategory and vendor (`subcategory_vendor`:
    # "Animals & Nature: animal-mammal (twitter)"), so that the model is told whose style to draw; other sources
    # have one kind of label, their classes
    labels: str = choice(
        "category",
        ("category", "subcategory", "subcategory_vendor"),
        "emoji: classes are categories, subcategories, or subcategories per vendor",
    )
    categories: tuple[str, ...] = ()  # emoji or openclipart: only these categories (empty: all of them)
    skin_tones: bool = False  # emoji: add the skin-tone variants (five near-copies of most People & Body emoji)
    dir: str = ""  # folder: DIR/<class>/<image>, any image format
    online: bool = False  # monet: allow tensorflow-datasets to download cycle_gan/monet2photo
    image_size: int = bounded(32, 8, 128)  # side of the square images
    max_images: int = 0  # use at most N images, a seeded random choice (0 = all)
    val_fraction: float = 0.1  # held out: the feature network's validation split
    test_fraction: float = 0.2  # held out: the real images FID, precision and recall compare generated ones with
    split_seed: int = 0  # seeds the shuffle before splitting (emoji: of the distinct emoji, see common/data/emoji.py)
    cache_dir: str = ""  # decoded images and the feature network are cached here ("" = artifacts/gan/cache)
    flip: bool = True  # random horizontal flips of the real images


@dataclass
class FeatureNetConfig:
    """The classifier whose pooled features FID, KID, precision and recall compare (no Inception offline)."""

    epochs: int = bounded(12, 1)
    batch_size: int = bounded(64, 2)
    learning_rate: float = bounded(2e-3, 0.0, inclusive=False)
    filters: tuple[int, ...] = (32, 64, 128)  # one block (3x3 convolution, then a strided one) per entry
    seed: int = 0  # the instrument's own seed: the same network whichever model (or seed) asks for it first
