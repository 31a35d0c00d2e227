"""Emoji art from npm packages: `emoji-datasource-twitter`, `emoji-datasource-google` and `openmoji`, with categories.

`make install` installs the packages for the browser demos (serving/web/package.json); this module reads
them straight from where npm put them, so a generative model trains offline with no download. Each
emoji-datasource package holds `img/<vendor>/64/<code points>.png` (64x64 RGBA), `emoji.json` (each emoji's
file name, code points, short name and skin-tone variants) and `categories.json` (category -> subcategory ->
short names): Smileys & Emotion, People & Body, Animals & Nature, Food & Drink, Travel & Places, Activities,
Objects, Symbols, Flags (the ninth, Component, holds skin-tone swatches and hair styles, and is left out).
`openmoji` holds `color/svg/<code points>.svg` and `data/openmoji.json`; its emoji take the short name,
category and subcategory of the emoji-datasource emoji with the same code points (its own extras, which
have none, are left out), so every vendor's picture of one emoji shares one name and class.

Licences: the emoji-datasource packages' code is MIT; Twemoji's art is CC-BY 4.0 (Twitter, Inc. and other
contributors), Noto Emoji's art is Apache 2.0 (Google), OpenMoji's art is CC BY-SA 4.0 (the OpenMoji project,
openmoji.org). A model trained on them should say so where it shows its images.

Transparency is composited onto white and the image is shrunk to `size` (box filter: a 64 -> 32 shrink
averages each 2x2 block). OpenMoji's SVGs are rendered (resvg) and cropped to their art, centred in a square,
since their art fills about 80% of the frame where the PNGs' fills all of it. Decoded arrays are cached as .npz
under `cache_dir`, so a second run starts at once.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import resvg_py
from PIL import Image

from common.paths import REPO_ROOT

NODE_MODULES = REPO_ROOT / "serving" / "web" / "node_modules"
# emoji-datasource's vendors: what the classifier's pretraining pools and the FID feature network learn from, so
# that adding a vendor changes neither
DATASOURCE_VENDORS = ("twitter", "google")
VENDORS = (*DATASOURCE_VENDORS, "openmoji")
PACKAGES = {"twitter": "emoji-datasource-twitter", "google": "emoji-datasource-google", "openmoji": "openmoji"}
NAMES_FROM = "twitter"  # the emoji-datasource package whose names and categories OpenMoji's emoji take
SVG_RENDER_SIZE = 128  # OpenMoji's SVGs are rendered at this side before the crop and the shrink
LEFT_OUT = ("Component",)  # skin-tone swatches and hair styles: not pictures of anything
CACHE_VERSION = 2  # bump when the decoding changes, so that old caches are not reused


class EmojiError(ValueError):
    """A request the emoji packages cannot answer: a missing package, an unknown vendor or category."""


@dataclass
class EmojiImages:
    """Decoded emoji with their categories; one row per (emoji, vendor, skin tone)."""

    images: np.ndarray  # (n, size, size, 3) uint8 RGB on white
    labels: np.ndarray  # (n,) int64 category ids, indices into `class_names`
    class_names: list[str]  # the categories, in categories.json's order
    names: np.ndarray  # (n,) str: the emoji's short name, the same for every vendor and skin tone of it
    subcategories: np.ndarray  # (n,) str: "<category>: <subcategory>", e.g. "Animals & Nature: animal-mammal"
    vendors: np.ndarray  # (n,) str: "twitter", "google" or "openmoji"
    source: str  # e.g. "npm:emoji-datasource-twitter@16.0.0", for the report


def package_dir(vendor: str, root: Path = NODE_MODULES) -> Path:
    """The installed package of `vendor`.

    Raises:
        EmojiError: an unknown vendor, or the package is not installed (with the command that installs it).
    """
    if vendor not in VENDORS:
        raise EmojiError(f"unknown emoji vendor {vendor!r}: choose from {', '.join(VENDORS)}")
    path = root / PACKAGES[vendor]
    if not (_table(path, vendor).is_file() and _image_dir(path, vendor).is_dir()):
        raise EmojiError(
            f"emoji art not found in {path}: run `make install` (it installs the npm package "
            f"{PACKAGES[vendor]}), or `cd serving/web && npm ci`"
        )
    return path


def _table(path: Path, vendor: str) -> Path:
    """The package's list of emoji."""
    return path / "data" / "openmoji.json" if vendor == "openmoji" else path / "emoji.json"


def _image_dir(path: Path, vendor: str) -> Path:
    """The folder of the package's pictures."""
    return path / "color" / "svg" if vendor == "openmoji" else path / "img" / vendor / "64"


def _names_package(vendor: str, root: Path) -> Path:
    """The emoji-datasource package that names `vendor`'s emoji and holds their categories.json."""
    return package_dir(NAMES_FROM if vendor == "openmoji" else vendor, root)


def categories(vendor: str = VENDORS[0], root: Path = NODE_MODULES) -> list[str]:
    """The emoji categories of categories.json, in its order, without `LEFT_OUT`."""
    table = json.loads((_names_package(vendor, root) / "categories.json").read_text())
    return [name for name in table if name not in LEFT_OUT]


def check_categories(chosen: Sequence[str], vendor: str = VENDORS[0], root: Path = NODE_MODULES) -> list[str]:
    """`chosen` (or every category when empty), in categories.json's order.

    Raises:
        EmojiError: a chosen category that does not exist, naming the valid ones.
    """
    known = categories(vendor, root)
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise EmojiError(f"unknown emoji category {', '.join(map(repr, unknown))}: choose from {', '.join(known)}")
    return [c for c in known if c in chosen] if chosen else known


def subcategory_names(
    chosen: Sequence[str],
    vendors: Sequence[str],
    skin_tones: bool = False,
    root: Path = NODE_MODULES,
    by_vendor: bool = False,
) -> list[str]:
    """The "<category>: <subcategory>" names of the emoji `vendors` draw in the `chosen` categories (all when
    empty), as `load_emoji` fills `subcategories`: by category in categories.json's order, then in emoji.json's.
    `by_vendor`: one name per subcategory and vendor that draws it, `vendor_label` of them, vendors in `vendors`'
    order.

    Raises:
        EmojiError: a package missing, an unknown vendor or category.
    """
    if not vendors:
        raise EmojiError(f"no emoji vendor chosen: choose one or more of {', '.join(VENDORS)}")
    kept = check_categories(chosen, vendors[0], root)
    seen = {category: {} for category in kept}
    for vendor in vendors:
        for _, category, subcategory, _ in _entries(vendor, root, skin_tones):
            if category in seen:
                seen[category].setdefault(subcategory, {})[vendor] = None
    if by_vendor:
        return [vendor_label(sub, v) for c in kept for sub, drawn in seen[c].items() for v in vendors if v in drawn]
    return [subcategory for category in kept for subcategory in seen[category]]


def vendor_label(subcategory: str, vendor: str) -> str:
    """A class of one subcategory in one vendor's style: "Animals & Nature: animal-mammal (twitter)"."""
    return f"{subcategory} ({vendor})"


def _code_key(code_points: str) -> str:
    """Code points without the emoji presentation selector (which packages differ on): "263A-FE0F" -> "263A"."""
    return "-".join(part for part in code_points.upper().split("-") if part != "FE0F")


def _entries(vendor: str, root: Path, skin_tones: bool) -> list[tuple[str, str, str, str]]:
    """(short name, category, subcategory, image file) of every emoji `vendor` draws, skin-tone variants when asked."""
    if vendor == "openmoji":
        return _openmoji_entries(root, skin_tones)
    path = package_dir(vendor, root)
    table = json.loads((path / "categories.json").read_text())
    category_of = {name: category for category, subs in table.items() for names in subs.values() for name in names}
    found = []
    for emoji in json.loads((path / "emoji.json").read_text()):
        category = category_of.get(emoji["short_name"], emoji["category"])
        if category in LEFT_OUT:
            continue
        variants = [emoji, *(emoji.get("skin_variations") or {}).values()] if skin_tones else [emoji]
        subcategory = f"{category}: {emoji['subcategory']}"
        found += [
            (emoji["short_name"], category, subcategory, v["image"]) for v in variants if v.get(f"has_img_{vendor}")
        ]
    return found


def _openmoji_entries(root: Path, skin_tones: bool) -> list[tuple[str, str, str, str]]:
    """`_entries` of OpenMoji: each of its emoji named and classed as emoji-datasource's with the same code points
    (skin-tone variants by their own code points); OpenMoji's own extras, without such a twin, are left out."""
    path = package_dir("openmoji", root)
    named = {}  # code key -> (short name, category, subcategory), of every emoji Twemoji draws
    for name, category, subcategory, image in _entries(NAMES_FROM, root, skin_tones=True):
        named[_code_key(Path(image).stem)] = (name, category, subcategory)
    found, seen = [], set()
    for emoji in json.loads(_table(path, "openmoji").read_text()):
        key = _code_key(emoji["hexcode"])
        if key not in named or key in seen or (emoji["skintone"] and not skin_tones):
            continue
        seen.add(key)
        found.append((*named[key], f"{emoji['hexcode']}.svg"))
    return found


def _render_svg(path: Path) -> Image.Image:
    """One SVG -> RGBA image cropped to its art (the box of its non-transparent pixels), centred in a square."""
    rendered = resvg_py.svg_to_bytes(svg_path=str(path), width=SVG_RENDER_SIZE, height=SVG_RENDER_SIZE)
    with Image.open(io.BytesIO(bytes(rendered))) as img:
        rgba = img.convert("RGBA")
    box = rgba.getchannel("A").getbbox()
    if box is None:
        raise ValueError("nothing drawn")
    art = rgba.crop(box)
    side = max(art.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 0))
    square.paste(art, ((side - art.width) // 2, (side - art.height) // 2))
    return square


def read_on_white(path: Path, size: int) -> np.ndarray:
    """One emoji PNG or SVG -> (size, size, 3) uint8 RGB: alpha composited onto white, shrunk with a box filter
    (an SVG rendered and cropped to its art first).

    Raises:
        EmojiError: the file is not a readable image.
    """
    try:
        if path.suffix == ".svg":
            rgba = _render_svg(path)
        else:
            with Image.open(path) as img:
                rgba = img.convert("RGBA")
    except (OSError, ValueError, SyntaxError) as err:
        raise EmojiError(f"{path}: not a readable image ({err}); reinstall the package with `make install`") from None
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BOX)
    return np.asarray(rgb, np.uint8)


def _version(vendor: str, root: Path) -> str:
    return json.loads((package_dir(vendor, root) / "package.json").read_text()).get("version", "?")


def load_emoji(
    vendors: Sequence[str] = VENDORS[:1],
    size: int = 32,
    chosen: Sequence[str] = (),
    skin_tones: bool = False,
    cache_dir: Path | None = None,
    root: Path = NODE_MODULES,
) -> EmojiImages:
    """The emoji of `vendors` in the `chosen` categories (all when empty), decoded at `size`, cached.

    Raises:
        EmojiError: a package missing, an unknown vendor or category, an unreadable file.
    """
    if not vendors:
        raise EmojiError(f"no emoji vendor chosen: choose one or more of {', '.join(VENDORS)}")
    class_names = check_categories(chosen, vendors[0], root)
    source = ", ".join(f"npm:{PACKAGES[v]}@{_version(v, root)}" for v in vendors)
    key = json.dumps([CACHE_VERSION, list(vendors), size, class_names, skin_tones, source])
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"emoji-{size}px-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
        if cache.exists():
            with np.load(cache) as stored:
                return EmojiImages(
                    stored["images"],
                    stored["labels"],
                    class_names,
                    stored["names"],
                    stored["subcategories"],
                    stored["vendors"],
                    source,
                )
    images, labels, names, subcategories, owners = [], [], [], [], []
    for vendor in vendors:
        folder = _image_dir(package_dir(vendor, root), vendor)
        for name, category, subcategory, file in _entries(vendor, root, skin_tones):
            if category in class_names:
                images.append(read_on_white(folder / file, size))
                labels.append(class_names.index(category))
                names.append(name)
                subcategories.append(subcategory)
                owners.append(vendor)
    data = EmojiImages(
        np.stack(images),
        np.asarray(labels, np.int64),
        class_names,
        np.asarray(names),
        np.asarray(subcategories),
        np.asarray(owners),
        source,
    )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.stem}.tmp-{os.getpid()}.npz")
        arrays = {"names": data.names, "subcategories": data.subcategories, "vendors": data.vendors}
        np.savez(tmp, images=data.images, labels=data.labels, **arrays)
        os.replace(tmp, cache)
    return data


def split_by_name(
    names: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test row indices, each emoji's side decided by a seeded hash of its short name.

    Every vendor's and skin tone's picture of one emoji falls on the same side, so a held-out emoji is one no
    model has seen drawn by anyone; and the side of an emoji does not depend on which others are loaded.
    The fractions are of the distinct emoji, met approximately.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise EmojiError(f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in [0, 1), sum < 1")
    position = np.asarray(
        [int.from_bytes(hashlib.sha1(f"{seed}:{n}".encode()).digest()[:8], "big") / 2**64 for n in names]
    )
    test = position < test_fraction
    val = ~test & (position < test_fraction + val_fraction)
    return np.flatnonzero(~test & ~val), np.flatnonzero(val), np.flatnonzero(test)
