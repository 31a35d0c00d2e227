"""The GAN: emoji data, losses, DiffAugment, FID/KID/precision/recall, the training step and its EMA, the serving
model, and a smoke run end to end whose FID to held-out emoji falls well below the untrained generator's."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.config import make_config
from common.paths import ArtifactPaths
from projects.gan.config import CONFIG, PRESETS, GanConfig

from .browser import demo_page, needs_chromium
from .conftest import REPO, project_env, run_project


def smoke() -> GanConfig:
    """The smoke preset's config."""
    return make_config(CONFIG, PRESETS, "smoke")


def test_losses_reward_the_right_scores():
    import tensorflow as tf

    from projects.gan.loss import discriminator_loss, generator_loss

    confident_real, confident_fake = tf.fill((4, 1), 2.0), tf.fill((4, 1), -2.0)
    assert float(discriminator_loss("hinge", confident_real, confident_fake)) == 0.0  # both beyond the margin
    assert float(discriminator_loss("hinge", confident_fake, confident_real)) == pytest.approx(6.0)
    assert float(generator_loss("hinge", confident_fake)) == pytest.approx(2.0)
    plain = float(discriminator_loss("nonsaturating", confident_real, confident_fake))
    smoothed = float(discriminator_loss("nonsaturating", confident_real, confident_fake, label_smoothing=0.2))
    assert 0.0 < plain < smoothed  # smoothing stops rewarding ever more confident real scores
    assert float(generator_loss("nonsaturating", confident_real)) < float(
        generator_loss("nonsaturating", confident_fake)
    )


def test_fid_and_kid_measure_distance_between_feature_sets():
    from common.feature_space import diversity
    from common.generative_metrics import frechet_distance, kernel_distance

    rng = np.random.default_rng(0)
    real, same = rng.standard_normal((2000, 8)), rng.standard_normal((2000, 8))
    shifted = same + np.array([2.0] + [0.0] * 7)
    assert frechet_distance(real, same) < 0.05
    assert frechet_distance(real, shifted) == pytest.approx(4.0, rel=0.05)  # |mean shift|^2, same covariance
    assert abs(kernel_distance(real, same)) < 0.01 < kernel_distance(real, shifted)
    images = rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    assert diversity(np.repeat(images[:1], 8, axis=0)) == 0.0 < diversity(images)


def test_fid_floor_is_the_mean_over_seeded_draws_of_real_images():
    """The floor averages `draws` FIDs of `count` real images each (so it keeps their small-sample bias), reports
    their spread, draws the same rows for the same seed whatever else changes, and refuses a count it cannot draw."""
    from common.generative_metrics import frechet_distance, real_floor

    rng = np.random.default_rng(1)
    held_out, train = rng.standard_normal((300, 6)), rng.standard_normal((900, 6))
    floor = real_floor(held_out, train, count=100, draws=8, seed=3)
    again = np.random.default_rng(3)
    singles = [frechet_distance(held_out, train[np.sort(again.permutation(900)[:100])]) for _ in range(8)]
    assert floor.fid == pytest.approx(np.mean(singles)) and floor.sd == pytest.approx(np.std(singles, ddof=1))
    assert floor.sd > 0.0 and floor.draws == 8 and floor.sample.shape == (100, 6)
    assert floor.fid > frechet_distance(held_out, train)  # 100 images carry more small-sample bias than 900
    assert real_floor(held_out, train, count=100, draws=8, seed=3).fid == floor.fid
    whole = real_floor(held_out, train, count=900, draws=4)
    assert whole.sd == 0.0 and whole.fid == pytest.approx(frechet_distance(held_out, train))
    with pytest.raises(ValueError, match=r"count must be 2\.\.900"):
        real_floor(held_out, train, count=901, draws=10)


def test_precision_and_recall_tell_realism_from_coverage():
    """Same distribution: both high. Far away: neither. Collapsed onto one real mode: precise, but no recall."""
    from common.generative_metrics import precision_recall

    rng = np.random.default_rng(0)
    real = rng.standard_normal((500, 4))
    same = precision_recall(real, rng.standard_normal((500, 4)))
    assert same["precision"] > 0.85 and same["recall"] > 0.85, same
    far = precision_recall(real, rng.standard_normal((500, 4)) + 10.0)
    assert far == {"precision": 0.0, "recall": 0.0}
    collapsed = precision_recall(real, 0.05 * rng.standard_normal((500, 4)))
    assert collapsed["precision"] > 0.95 and collapsed["recall"] < 0.1, collapsed
    with pytest.raises(ValueError, match="more than 3 points"):
        precision_recall(real[:3], real)


def test_held_out_reference_scores_images_against_the_split_it_holds_out():
    """Both generative projects' reference: features of the split it names, the floor at the scored count, class
    frequencies of the training labels; real images score near the floor, and images of another colour far above it
    with neither precision nor recall."""
    import keras
    import tensorflow as tf

    from common.data.splits import DataSplits
    from common.feature_space import FeatureSpace
    from common.generative_metrics import frechet_distance
    from common.held_out_reference import HeldOutReference

    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        images = np.clip(rng.normal(128, 30, (n, 4, 4, 3)), 0, 255).astype(np.uint8)
        return images, rng.choice(3, n, p=[0.5, 0.3, 0.2])

    (train, labels), val, test = split(600), split(150), split(300)
    splits = {
        k: tf.data.Dataset.from_tensor_slices(v)
        for k, v in {"train": (train, labels), "val": val, "test": test}.items()
    }
    data = DataSplits(
        **splits, source="noise", sizes={"train": 600, "val": 150, "test": 300}, class_names=["a", "b", "c"]
    )
    space = FeatureSpace(keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten()]), "classes", 1.0, "pixels")

    ref = HeldOutReference(space, data, fid_samples=200, floor_draws=4)
    assert ref.features.shape == (300, 48) and ref.count == 200 and ref.floor.draws == 4
    assert HeldOutReference(space, data, fid_samples=5000, floor_draws=2, held_out="val").features.shape == (150, 48)
    assert HeldOutReference(space, data, fid_samples=5000, floor_draws=2).count == 600  # at most the training split
    np.testing.assert_allclose(ref.class_probs, np.bincount(labels, minlength=3) / 600)

    real = ref.scores(train[:200])
    assert real["fid"] == pytest.approx(frechet_distance(ref.features, space.features(train[:200])))
    assert real["fid_to_floor_ratio"] == pytest.approx(real["fid"] / ref.floor.fid) and real["fid_to_floor_ratio"] < 1.5
    dark = np.clip(rng.normal(30, 10, (200, 4, 4, 3)), 0, 255).astype(np.uint8)
    assert ref.scores(dark)["fid_to_floor_ratio"] > 20
    quality = ref.precision_recall(dark)
    assert quality["precision"] == 0.0 and quality["recall"] == 0.0 and quality["held_out_images"] == 200
    assert quality["precision_real_train"] > 0.5 and quality["recall_real_train"] > 0.5, quality
    assert ref.floor_figures() == {
        "fid_floor": ref.floor.fid,
        "fid_floor_sd": ref.floor.sd,
        "fid_floor_draws": 4,
        "fid_samples": 200,
    }


def test_idx_reader_reads_fashion_mnist_files(tmp_path):
    from common.data.art import read_idx

    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
    path.write_bytes(gzip.compress(header + images.tobytes()))
    np.testing.assert_array_equal(read_idx(path), images)


def test_fashion_mnist_gives_labelled_32px_rgb_images():
    from common.data.art import class_names, load_splits

    cfg = make_config(CONFIG, PRESETS, "fashion").data
    cfg.max_images = 300
    data = load_splits(cfg)
    assert data.source == "debian:dataset-fashion-mnist" and data.class_names == class_names(cfg)
    image, label = next(iter(data.train.as_numpy_iterator()))
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and 0 <= label < 10
    assert (image[..., 0] == image[..., 2]).all() and image.max() > 100  # grey, repeated over RGB


def test_emoji_are_composited_on_white_with_their_categories():
    from common.data.emoji import categories, load_emoji

    data = load_emoji(("twitter",), 16)
    names = categories()
    assert names[0] == "Smileys & Emotion" and "Flags" in names and "Component" not in names
    assert data.images.shape[1:] == (16, 16, 3) and data.images.dtype == np.uint8
    assert len(data.images) > 1800 and set(np.unique(data.labels)) == set(range(len(names)))
    corners = data.images[:, [0, 0, -1, -1], [0, -1, 0, -1]]  # transparent corners of most emoji: white
    assert np.median(corners) == 255
    flags = data.images[data.labels == names.index("Flags")]
    assert flags.std(axis=(1, 2, 3)).mean() > 30  # colourful pictures, not blank squares


def test_subcategory_labels_name_each_emoji_by_its_subcategory_within_its_category():
    from common.data import art
    from common.data.emoji import load_emoji

    cfg = smoke().data
    cfg.categories, cfg.labels, cfg.max_images = ("Animals & Nature", "Flags"), "subcategory", 0
    data = art.load_images(cfg)
    names = art.class_names(cfg)
    assert data.class_names == names and 10 < len(names) < 30  # the two categories' subcategories, not 2 classes
    assert set(np.unique(data.labels)) == set(range(len(names)))  # every name has pictures
    assert names[0].startswith("Animals & Nature: ") and names[-1].startswith("Flags: ")
    by_category = load_emoji(cfg.vendors, cfg.image_size, cfg.categories, cache_dir=art.cache_dir(cfg))
    assert np.array_equal(data.images, by_category.images)  # the same pictures, only the labels differ
    for image_label, category in zip(data.labels, by_category.labels, strict=True):
        assert names[image_label].split(": ")[0] == by_category.class_names[category]
    cfg.labels, cfg.vendors = "subcategory_vendor", ("twitter", "google")  # a class per subcategory and vendor
    per_vendor = art.load_images(cfg)
    both = load_emoji(cfg.vendors, cfg.image_size, cfg.categories, cache_dir=art.cache_dir(cfg))
    assert per_vendor.class_names == art.class_names(cfg) and len(per_vendor.class_names) == 2 * len(names)
    assert set(np.unique(per_vendor.labels)) == set(range(len(per_vendor.class_names)))
    for image_label, subcategory, vendor in zip(per_vendor.labels, both.subcategories, both.vendors, strict=True):
        assert per_vendor.class_names[image_label] == f"{subcategory} ({vendor})"


def test_a_grid_of_many_classes_shows_a_spread_of_them():
    from projects.gan.sampling import MAX_GRID_ROWS, grid_classes

    assert list(grid_classes(9)) == list(range(9))
    spread = grid_classes(98)
    assert len(spread) == MAX_GRID_ROWS and spread[0] == 0 and spread[-1] == 97
    assert np.all(np.diff(spread) >= 98 // MAX_GRID_ROWS)


def test_held_out_emoji_are_whole_emoji_across_vendors_and_skin_tones():
    from common.data.art import cache_dir
    from common.data.emoji import load_emoji, split_by_name

    data = load_emoji(("twitter", "google"), 16, skin_tones=True, cache_dir=cache_dir(smoke().data))  # as smoke's
    train, val, test = split_by_name(data.names, 0.1, 0.2, seed=0)
    assert len(train) + len(val) + len(test) == len(data.names)
    assert not set(data.names[test]) & set(data.names[train]) and not set(data.names[val]) & set(data.names[train])
    assert 0.15 < len(set(data.names[test])) / len(set(data.names)) < 0.25
    twitter = data.vendors == "twitter"
    _, _, test_twitter = split_by_name(data.names[twitter], 0.1, 0.2, seed=0)  # an emoji's side does not move
    assert set(data.names[twitter][test_twitter]) == set(data.names[test]) & set(data.names[twitter])


def test_openmoji_emoji_are_named_and_classed_as_twemoji_and_fill_their_frame_like_it(tmp_path):
    from common.data.emoji import EmojiError, load_emoji, read_on_white

    chosen = ("Animals & Nature", "Flags")
    twemoji = load_emoji(("twitter",), 16, chosen)
    openmoji = load_emoji(("openmoji",), 16, chosen)
    assert openmoji.source.startswith("npm:openmoji@") and set(openmoji.vendors) == {"openmoji"}
    subcategory_of = dict(zip(twemoji.names, twemoji.subcategories, strict=True))
    assert len(openmoji.names) > 0.95 * len(twemoji.names)  # nearly every emoji has an OpenMoji twin
    assert all(subcategory_of[n] == s for n, s in zip(openmoji.names, openmoji.subcategories, strict=True))

    def art_side(images: np.ndarray) -> np.ndarray:  # the longer side of the non-white box, a share of the frame
        drawn = (images < 250).any(axis=-1)
        return np.maximum(drawn.any(axis=1).sum(axis=1), drawn.any(axis=2).sum(axis=1)) / images.shape[1]

    # cropped to their art, OpenMoji's SVGs fill the frame as the PNGs do (uncropped, about 80% of it)
    assert np.median(art_side(openmoji.images)) == np.median(art_side(twemoji.images)) == 1.0
    assert openmoji.images.std(axis=(1, 2, 3)).mean() > 30  # colourful pictures, not blank squares
    (tmp_path / "broken.svg").write_text("<svg")
    with pytest.raises(EmojiError, match=r"broken\.svg: not a readable image .*make install"):
        read_on_white(tmp_path / "broken.svg", 16)


def test_bad_data_settings_name_the_problem_and_the_fix(tmp_path):
    from common.config import ConfigError
    from projects.gan.project import PROJECT

    cfg = smoke()
    cfg.data.categories = ("Animals",)
    with pytest.raises(ConfigError, match=r"unknown emoji category 'Animals': choose from .*Animals & Nature"):
        PROJECT.load_data(cfg)
    cfg = smoke()
    cfg.data.source, cfg.data.dir = "folder", str(tmp_path)
    with pytest.raises(ConfigError, match=rf"{tmp_path} has no class folders.*<class>/<image>"):
        PROJECT.load_data(cfg)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="readable"):
        PROJECT.load_data(cfg)
    cfg.data.dir = ""
    with pytest.raises(ConfigError, match=r"data\.dir"):
        PROJECT.load_data(cfg)
    cfg = smoke()  # each epoch's generator is scored against the validation images: they must exist
    cfg.data.val_fraction = 0.0
    with pytest.raises(ConfigError, match=r"train scores .* it has 0: set data\.val_fraction above 0"):
        PROJECT.train(cfg, PROJECT.load_data(cfg), ArtifactPaths.for_project("gan", tmp_path / "run"))


def test_missing_emoji_package_says_how_to_install_it(tmp_path):
    from common.data.emoji import EmojiError, load_emoji

    with pytest.raises(EmojiError, match=r"emoji-datasource-twitter.*make install"):
        load_emoji(("twitter",), 32, root=tmp_path)
    with pytest.raises(EmojiError, match="choose from twitter, google"):
        load_emoji(("apple",), 32)


def test_unknown_category_on_the_command_line_exits_2_naming_the_valid_ones(tmp_path):
    result = run_project(
        "gan", "train", "--preset", "smoke", "--set", "data.categories=Cats", "--output-dir", str(tmp_path)
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Cats" in result.stderr and "Animals & Nature" in result.stderr


def test_diff_augment_keeps_shapes_and_lets_gradients_through():
    import tensorflow as tf

    from projects.gan.augmentation import cutout, diff_augment, parse_policy, translation

    x = tf.random.uniform((6, 16, 16, 3), -1, 1, seed=1)
    policy = parse_policy("color, translation,cutout")
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = diff_augment(x, policy)
    assert y.shape == x.shape
    assert float(tf.reduce_sum(tf.abs(tape.gradient(y, x)))) > 0  # the generator learns through it
    ones = tf.ones((64, 16, 16, 3))
    shifted = translation(ones).numpy()
    assert shifted.min() == 0.0 and shifted.max() == 1.0  # filled where shifted in, unchanged elsewhere
    holes = (cutout(ones).numpy() == 0).all(axis=-1).sum(axis=(1, 2))
    assert holes.max() <= 8 * 8 and holes.min() > 0  # one square of at most half the side in each image
    with pytest.raises(ValueError, match="unknown zoom"):
        parse_policy("color,zoom")


def _tiny_config(conditional: bool = False):
    cfg = smoke()
    cfg.data.image_size = 16
    cfg.model.latent_dim, cfg.model.conditional = 8, conditional
    cfg.train.g_learning_rate = cfg.train.d_learning_rate = 2e-3  # a visible change in a few steps
    return cfg


def test_training_moves_the_ema_generator_towards_the_data():
    """On a one-colour data set (red), a few steps turn the EMA generator's average output from grey towards red."""
    import keras
    import tensorflow as tf

    from projects.gan.project import PROJECT
    from projects.gan.sampling import generate, seeded_inputs

    keras.utils.set_random_seed(0)
    cfg = _tiny_config()
    gan = PROJECT.build_gan(cfg, num_classes=1)
    size = cfg.data.image_size
    red = np.zeros((16, size, size, 3), np.float32) + np.array([0.8, -0.8, -0.8], np.float32)
    ds = tf.data.Dataset.from_tensor_slices((red, np.zeros(16, np.int32))).batch(8).repeat()
    inputs = seeded_inputs(gan.ema_generator, 16, 0)
    before = generate(gan.ema_generator, inputs).mean(axis=(0, 1, 2))
    gan.fit(ds, steps_per_epoch=80, epochs=1, verbose=0)
    after = generate(gan.ema_generator, inputs).mean(axis=(0, 1, 2))
    assert abs(before[0] - before[1]) < 10  # grey at first
    assert after[0] - after[1] > 40 and after[0] - after[2] > 40, (before, after)
    ema, raw = gan.ema_generator.get_weights(), gan.generator.get_weights()
    assert any(not np.allclose(e, w) for e, w in zip(ema, raw, strict=True))  # a moving average, not a copy


@pytest.mark.parametrize(
    ("twin", "lecam"), [(False, True), (True, True), (False, False)], ids=["class-head", "twin", "no-lecam"]
)
def test_conditional_gan_trains_and_serves_uint8_images(twin, lecam):
    """A conditional GAN with its class head (AC-GAN), or with the twin head as well (TAC-GAN, a third output of the
    discriminator, trained on the generated images), with or without LeCam, trains and serves uint8 images."""
    import tensorflow as tf

    from projects.gan.project import PROJECT
    from projects.gan.serving_model import build_serving_model

    cfg = _tiny_config(conditional=True)
    cfg.model.twin_class_head = twin
    cfg.model.lecam_weight = 0.3 if lecam else 0.0
    gan = PROJECT.build_gan(cfg, num_classes=3)
    shapes = {name: tuple(t.shape) for name, t in gan.discriminator.output.items()}
    heads = {"class_logits": (None, 3)} | ({"twin_class_logits": (None, 3)} if twin else {})
    assert shapes == {"score": (None, 1), **heads, "reconstruction": (None, 16, 16, 3)}
    twin_before = gan.discriminator.get_layer("twin_class_logits").get_weights()[0].copy() if twin else None
    images = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 3)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((images, np.arange(8, dtype=np.int32) % 3)).batch(4)
    history = gan.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][0]) and np.isfinite(history.history["g_loss"][0])
    if twin:  # the twin head is trained (it has no other loss than the one on generated images)
        assert np.abs(gan.discriminator.get_layer("twin_class_logits").get_weights()[0] - twin_before).max() > 0
    assert (np.abs(gan.score_anchors.numpy()) > 0).all() == lecam  # LeCam's anchors move only when it is on
    serving = build_serving_model(gan.ema_generator)
    assert {t.name for t in serving.inputs} == {"noise", "label"}
    noise = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    out = serving({"noise": noise, "label": np.array([0, 2], np.int32)})
    image = np.asarray(out["image"])
    assert image.shape == (2, 16, 16, 3) and image.dtype == np.uint8
    expected = np.clip(np.round((np.asarray(gan.ema_generator([noise, np.array([0, 2])])) + 1) * 127.5), 0, 255)
    np.testing.assert_array_equal(image, expected.astype(np.uint8))


def test_the_discriminator_learns_to_redraw_real_images():
    """`model.reconstruction_weight` (FastGAN's self-supervised discriminator): training lowers the decoder's error on
    the real images to well under its start; at weight 0 the discriminator has no decoder."""
    import keras
    import tensorflow as tf

    from projects.gan.project import PROJECT

    keras.utils.set_random_seed(0)
    cfg = _tiny_config()
    size = cfg.data.image_size
    colours = np.random.default_rng(0).uniform(-0.6, 0.6, (8, 1, 1, 3)).astype(np.float32)
    ramp = np.broadcast_to(np.linspace(-0.4, 0.4, size, dtype=np.float32)[None, :, None], (size, size, 1))
    images = colours + ramp  # (8, size, size, 3): a colour each, brighter to the right
    gan = PROJECT.build_gan(cfg, num_classes=1)
    gan.augment = lambda x: x  # the decoder redraws what the discriminator saw: here, the images as they are

    def error() -> float:
        return float(np.abs(np.asarray(gan.discriminator(images)["reconstruction"]) - images).mean())

    before = error()
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(8, np.int32))).batch(8).repeat()
    gan.fit(ds, steps_per_epoch=150, epochs=1, verbose=0)
    assert error() < 0.4 * before, (before, error())
    cfg.model.reconstruction_weight = 0.0
    assert set(PROJECT.build_gan(cfg, num_classes=1).discriminator.output) == {"score"}


def test_class_norm_scales_and_shifts_each_class_on_its_own():
    """`model.class_norm`: every batch norm of the generator takes a per-class scale and shift, zero at the start
    (plain batch norm); a shift given to class 2 alone changes class 2's images and leaves the others'."""
    from projects.gan.config import ModelConfig
    from projects.gan.model import build_generator

    generator = build_generator(ModelConfig(latent_dim=8, g_filters=(16, 8), class_norm=True), 8, 3)
    shifts = [layer for layer in generator.layers if layer.name.startswith("class_shift_")]
    assert len(shifts) == 2 and len([la for la in generator.layers if la.name.startswith("class_gain_")]) == 2
    noise = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    labels = np.arange(3, dtype=np.int32)
    before = np.asarray(generator([noise, labels], training=False))
    table = np.zeros((3, 8), np.float32)
    table[2] = 3.0
    shifts[-1].set_weights([table])
    after = np.asarray(generator([noise, labels], training=False))
    np.testing.assert_array_equal(after[:2], before[:2])
    assert np.abs(after[2] - before[2]).mean() > 0.05


def test_self_attention_starts_as_the_identity_and_reaches_across_the_image():
    """`model.attention_side`: the SAGAN block leaves its input as it is at first (its output projection is zero);
    once that projection is not zero, a change in one corner of the map moves the opposite corner, which no 3x3
    convolution of one layer could; the generator and the discriminator each have one block at that side, and a side
    that neither has is refused."""
    import keras

    from projects.gan.config import ModelConfig
    from projects.gan.model import _self_attention, build_discriminator, build_generator

    cfg = ModelConfig(latent_dim=8, g_filters=(16, 8, 4), d_filters=(8, 16), attention_side=8)
    features = keras.Input((8, 8, 16))
    block = keras.Model(features, _self_attention(features, cfg, spectral=False))
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 16)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(block(x)), x, atol=1e-6)
    out_conv = block.layers[-2]
    out_conv.set_weights(
        [np.random.default_rng(1).standard_normal(w.shape).astype(np.float32) for w in out_conv.get_weights()]
    )
    moved = x.copy()
    moved[:, 0, 0, :] += 5.0
    change = np.abs(np.asarray(block(moved)) - np.asarray(block(x)))
    assert change[:, 7, 7, :].max() > 1e-3
    for model in (build_generator(cfg, 16, 3), build_discriminator(cfg, 16, 3)):
        assert sum(isinstance(layer, keras.layers.Attention) for layer in model.layers) == 1, model.name
    cfg.attention_side = 5  # no map has that side: a clear error, not a block silently left out
    with pytest.raises(ValueError, match=r"model.attention_side=5.*one of 4, 8, 16, or 0"):
        build_generator(cfg, 16, 3)


@pytest.mark.parametrize("class_norm", [False, True], ids=["input-embedding", "class-norm"])
def test_auxiliary_class_head_learns_the_classes_and_steers_the_generator(class_norm):
    """Three one-colour classes (red, green, blue): the discriminator's class head learns to name each, and the
    generator, trained only to make that head name the asked class (its adversarial loss switched off here, so the
    projection cannot teach it), draws each class in its own colour: with the class beside the noise alone, and
    with per-class batch-norm scales and shifts as well (`model.class_norm`)."""
    import keras
    import tensorflow as tf

    from projects.gan.project import PROJECT
    from projects.gan.sampling import generate

    keras.utils.set_random_seed(0)
    cfg = _tiny_config(conditional=True)
    cfg.model.class_loss_weight, cfg.model.class_norm = 1.0, class_norm
    cfg.model.twin_class_head = False  # the class head alone teaches the generator here
    gan = PROJECT.build_gan(cfg, num_classes=3)
    gan.generator_loss = lambda fake: 0.0 * tf.reduce_mean(fake)
    assert tuple(gan.discriminator.output["class_logits"].shape) == (None, 3)
    size, labels = cfg.data.image_size, np.arange(24, dtype=np.int32) % 3
    colours = np.full((3, 3), -0.8, np.float32) + 1.6 * np.eye(3, dtype=np.float32)  # red, green, blue in [-1, 1]
    images = np.broadcast_to(colours[labels][:, None, None, :], (24, size, size, 3)).copy()
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(24, seed=0).batch(8).repeat()
    gan.fit(ds, steps_per_epoch=120, epochs=1, verbose=0)
    class_logits = gan.discriminator([images, labels])["class_logits"]
    assert (np.argmax(class_logits, axis=-1) == labels).all()
    noise = np.random.default_rng(1).standard_normal((24, cfg.model.latent_dim)).astype(np.float32)
    drawn = generate(gan.ema_generator, {"noise": noise, "label": labels}).mean(axis=(1, 2))  # (24, 3) mean colour
    # Each class's own channel is brighter in its images than in the other classes' (an untrained generator: ~0).
    lift = [drawn[labels == c, c].mean() - drawn[labels != c, c].mean() for c in range(3)]
    assert min(lift) > 20, (lift, drawn.round())


def test_learning_rates_fall_to_zero_after_decay_from():
    from projects.gan.project import PROJECT

    cfg = _tiny_config()
    cfg.train.decay_from = 0.5
    gan = PROJECT.build_gan(cfg, num_classes=1, total_steps=100)
    rates = []
    for step in (0, 50, 75, 100):
        gan.g_optimizer.iterations.assign(step)
        gan.d_optimizer.iterations.assign(step)
        rates.append((float(gan.g_optimizer.learning_rate), float(gan.d_optimizer.learning_rate)))
    np.testing.assert_allclose(rates, [(2e-3, 2e-3), (2e-3, 2e-3), (1e-3, 1e-3), (0, 0)], atol=1e-7)
    cfg.train.decay_from = 1.0
    constant = PROJECT.build_gan(cfg, num_classes=1, total_steps=100)
    assert float(constant.g_optimizer.learning_rate) == pytest.approx(2e-3)


def test_lecam_pulls_scores_towards_the_other_sides_moving_average():
    """LeCam: no penalty while real scores sit below the fake anchor and fake scores above the real one; a real
    score 2 above the fake anchor costs 2 squared; each call moves the anchors 1% towards the batch means."""
    import tensorflow as tf

    from projects.gan.project import PROJECT

    cfg = _tiny_config()
    cfg.model.lecam_weight = 0.3
    gan = PROJECT.build_gan(cfg, num_classes=1)
    gan.score_anchors.assign([1.0, -1.0])  # real anchor, fake anchor
    assert float(gan._lecam(tf.fill((4, 1), -2.0), tf.fill((4, 1), 2.0))) == 0.0
    np.testing.assert_allclose(gan.score_anchors.numpy(), [0.99 - 0.02, -0.99 + 0.02], atol=1e-6)
    gan.score_anchors.assign([1.0, -1.0])
    assert float(gan._lecam(tf.fill((4, 1), 1.0), tf.fill((4, 1), 2.0))) == pytest.approx(4.0)


def test_conditional_needs_labelled_data():
    from common.config import ConfigError
    from projects.gan.project import PROJECT

    with pytest.raises(ConfigError, match=r"model\.conditional=false"):
        PROJECT.build_gan(_tiny_config(conditional=True), num_classes=1)


def test_demo_request_follows_the_served_signature():
    """The Gradio demo draws noise of the served length from the seed, and adds the class only when one is taken."""
    from types import SimpleNamespace

    from projects.gan.demo import DEMO, noise_from_seed

    DEMO.use_signature(SimpleNamespace(inputs={"noise": SimpleNamespace(shape=(None, 16))}))
    request = DEMO.gradio_request(3, 5)
    assert set(request) == {"noise"} and request["noise"].shape == (1, 16)
    np.testing.assert_array_equal(request["noise"], noise_from_seed(3, 16))
    DEMO.use_signature(SimpleNamespace(inputs={"noise": SimpleNamespace(shape=(None, 8)), "label": None}))
    assert DEMO.gradio_request(3, 5)["label"].tolist() == [5]
    with pytest.raises(ValueError, match="seed"):
        DEMO.gradio_request(None, 0)
    image = DEMO.answer(request, {"image": np.zeros((1, 32, 32, 3), np.uint8)})
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`train --preset smoke` killed once its first epoch is backed up, then `all`, which resumes from there."""
    out = tmp_path_factory.mktemp("gan_smoke")
    command = [sys.executable, "-m", "projects.gan", "train", "--preset", "smoke", "--output-dir", str(out)]
    first = subprocess.Popen(command, cwd=REPO, env=project_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backup = out / "checkpoints" / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 600
    while not backup.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    first.kill()
    assert first.wait() != 0, "the first run finished before it could be killed"
    result = run_project("gan", "all", "--preset", "smoke", "--output-dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


@pytest.mark.slow
def test_smoke_run_resumes_and_reports_progress(smoke_run):
    out, result = smoke_run
    steps_per_epoch = smoke().train.steps_per_epoch
    assert "Resuming from the backup" in result.stdout and "1 of 2 epochs already done" in result.stdout
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "val_fid_to_floor_ratio" in history[0]  # header + one row per epoch, two processes
    # The kept generator is the epoch with the lowest validation FID across both processes (the resumed one read
    # the first's best), and it is what model.keras holds and the report scored.
    val_fid = [float(row["val_fid"]) for row in csv.DictReader(history)]
    best = json.loads((out / "checkpoints" / "best.json").read_text())
    assert best["epoch"] == 1 + int(np.argmin(val_fid)) and best["val_fid"] == pytest.approx(min(val_fid), rel=1e-6)
    assert json.loads((out / "report.json").read_text())["metrics"]["kept_epoch"] == best["epoch"]
    assert (out / "model.keras").read_bytes() == (out / "checkpoints" / "best.keras").read_bytes()
    steps = (out / "steps.csv").read_text().splitlines()  # the optimizer's step count was restored too
    assert steps[0] == "step,d_loss,g_loss"
    assert [int(r.split(",")[0]) for r in steps[1:]] == list(range(1, 2 * steps_per_epoch + 1))
    grids = sorted(p.name for p in (out / "plots" / "samples").glob("*.png"))
    assert grids == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    from PIL import Image

    with Image.open(out / "plots" / "progress.gif") as gif:
        assert gif.n_frames == 3
    report = (out / "report.md").read_text()
    assert "not Inception" in report and "held-out accuracy" in report
    for plot in ("losses", "fid", "final_grid", "interpolation", "nearest_neighbours"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 2_000, plot
    assert any((out / "logs" / "samples").iterdir())  # the grids in TensorBoard
    # train.intra_op_threads (1 in every preset) reached TensorFlow before its first op, in the resumed process too
    assert json.loads((out / "train.json").read_text())["intra_op_threads"] == smoke().train.intra_op_threads == 1


@pytest.mark.slow
def test_smoke_training_brings_generated_images_towards_held_out_emoji(smoke_run):
    """FID to held-out real emoji: well below the untrained generator's (same noise, same features), and the
    floor (real training emoji against the same held-out ones) far below both; precision and recall in range."""
    out, _ = smoke_run
    m = json.loads((out / "report.json").read_text())["metrics"]
    assert m["fid"] < 0.6 * m["fid_initial"], m
    assert m["fid_floor"] < 0.5 * m["fid"] and m["fid_to_floor_ratio"] == pytest.approx(m["fid"] / m["fid_floor"])
    assert m["fid_floor_draws"] == 10 and 0.0 < m["fid_floor_sd"] < m["fid_floor"], m  # a mean over draws
    assert m["precision_real_train"] > 0.5 and m["recall_real_train"] > 0.5, m  # real images cover each other
    assert 0.0 <= m["precision"] <= 1.0 and 0.0 <= m["recall"] <= 1.0
    assert m["feature_net_test_accuracy"] > 0.5, m  # categories of emoji it never saw, 9 classes (chance 0.24)
    assert m["held_out_images"] == json.loads((out / "report.json").read_text())["data"]["splits"]["test"]


@pytest.mark.slow
def test_generate_writes_a_grid(smoke_run):
    from types import SimpleNamespace

    from PIL import Image

    from common.image_grids import display_scale
    from projects.gan.project import PROJECT

    out, _ = smoke_run
    PROJECT.run_command("generate", smoke(), ArtifactPaths.for_project("gan", out), SimpleNamespace(inputs=["4", "3"]))
    side = smoke().data.image_size
    width, height = 4 * (side + 2) + 2, side + 4  # 4 images with 2 px gaps, enlarged
    scale = display_scale(np.zeros((height, width, 3)))
    with Image.open(out / "generated.png") as img:
        assert img.size == (scale * width, scale * height)


@pytest.fixture(scope="module")
def smoke_export(smoke_run) -> Path:
    out, _ = smoke_run
    result = run_project("gan", "export", "--preset", "smoke", "--output-dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_export_matches_keras_in_every_format(smoke_export):
    from projects.gan.project import INT8_MEAN_IMAGE_BOUND, PROJECT

    parity = json.loads((smoke_export / "parity.json").read_text())
    assert parity["ok"] is True, parity
    side, latent = smoke().data.image_size, smoke().model.latent_dim
    assert parity["signature"] == {
        "inputs": {"label": "int32 (None,)", "noise": f"float32 (None, {latent})"},
        "outputs": {"image": f"uint8 (None, {side}, {side}, 3)"},
    }
    rows = {r["format"]: r for r in parity["formats"]}
    for name in ("savedmodel", "tflite_float32", "tfjs", "onnx"):
        assert rows[name]["max_abs_diff"] <= PROJECT.float_tolerance and rows[name]["agreement"] > 0.99, name
    for name in ("tflite_dynamic", "tflite_int8", "tfjs_uint8"):  # int8 weights: held to the mean colours
        assert rows[name]["metric_bound"] == INT8_MEAN_IMAGE_BOUND, rows[name]
        assert rows[name]["metric_gap"] <= INT8_MEAN_IMAGE_BOUND, rows[name]


@pytest.mark.slow
def test_server_answers_a_class_and_refuses_a_latent_of_the_wrong_size(smoke_export):
    import httpx

    from serving.server import ModelServer

    latent = smoke().model.latent_dim
    with (
        ModelServer(smoke_export / "serving", rest_port=0, grpc_port=0, report=lambda line: None) as server,
        httpx.Client(base_url=server.rest_url, timeout=60) as client,
    ):
        good = {"inputs": {"noise": [[0.1] * latent], "label": [2]}}
        answer = client.post("/v1/models/gan:predict", json=good)
        assert answer.status_code == 200, answer.text
        side = smoke().data.image_size
        assert np.asarray(answer.json()["outputs"]).shape == (1, side, side, 3)
        bad = {"inputs": {"noise": [[0.1] * (latent + 3)], "label": [2]}}
        refused = client.post("/v1/models/gan:predict", json=bad)
        assert refused.status_code == 400
        assert f"float32 (None, {latent})" in refused.json()["error"] and str(latent + 3) in refused.json()["error"]


@pytest.mark.slow
def test_gradio_demo_answers_a_seed_with_the_image_generate_draws(smoke_export):
    from serving.gradio_app import predictor

    predict, source = predictor("gan", smoke_export / "serving")
    image = predict(3, 0)
    side = smoke().data.image_size
    scale = 256 // side
    assert image.shape == (side * scale, side * scale, 3) and image.dtype == np.uint8 and "version 1" in source
    import keras

    from projects.gan.sampling import generate, seeded_inputs

    model = keras.models.load_model(smoke_export / "model.keras")
    expected = generate(model, seeded_inputs(model, 1, 3))[0]  # class 0, as the demo's default
    assert np.max(np.abs(image[::scale, ::scale].astype(int) - expected.astype(int))) <= 1


@pytest.mark.slow
@needs_chromium
def test_browser_page_matches_keras_and_draws_the_grid(smoke_export):
    from common.web_demo import write_samples
    from projects.gan.project import PROJECT

    out = smoke_export
    write_samples(PROJECT, smoke(), ArtifactPaths.for_project("gan", out))
    side = smoke().data.image_size
    with demo_page("gan", out) as (page, errors):
        samples = page.evaluate("window.demo.samples")
        assert samples["latent_dim"] == smoke().model.latent_dim and samples["conditional"] is True
        assert samples["class_names"][2] == "Animals & Nature"
        in_browser = np.asarray(page.evaluate("window.demo.predictSamples()")["image"])
        in_keras = np.asarray(samples["outputs"]["image"]["data"])
        assert in_browser.shape == in_keras.shape == (8 * side * side * 3,)
        assert np.max(np.abs(in_browser - in_keras)) <= PROJECT.float_tolerance
        assert page.locator("#grid canvas").count() == 16 and page.locator("#variations canvas").count() == 8
        assert page.locator("#label option").nth(8).inner_text() == "Flags"  # the class picker
        page.select_option("#label", "8")  # a new grid, of flags
        page.locator("#grid canvas").nth(3).click()  # vary the fourth image
        page.fill("#t", "0.25")
        page.dispatch_event("#t", "input")
        assert not errors, errors
