"""The SSD detector's spec: generated digit scenes, the SSD and its loss, COCO evaluation, export with NMS."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np

from common import plots as common_plots
from common.cli import config_error
from common.config import to_dict
from common.data.splits import DataSplits
from common.paths import ArtifactPaths
from common.project import Project

from . import data as detector_data
from . import plots
from .anchors import anchor_boxes
from .boxes import iou_matrix
from .colours import ColourShuffle
from .config import DetectorConfig, PostprocessConfig
from .evaluation import detection_metrics, precision_recall
from .images import load_image_file
from .loss import SSDLoss, box_loss, positive_accuracy
from .model import build_model, check_feature_maps, spec_of
from .postprocess import build_serving_model
from .scenes import Scenes

PARITY_SCENES = 64  # test scenes run through every exported format
GRID_SCENES = 12
MATCH_FROM_SCORE = 0.3  # parity compares the detections scoring at least this (well above the NMS threshold)
EVAL_BATCH = 64


def serving_outputs(serving: keras.Model, images: np.ndarray, batch_size: int = EVAL_BATCH) -> dict[str, np.ndarray]:
    """The serving model's detections for (n, size, size, 3) float32 images, batch by batch, as numpy."""
    parts = [serving(images[i : i + batch_size], training=False) for i in range(0, len(images), batch_size)]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


class DetectorProject(Project):
    name = "detector"
    monitor = ("val_loss", "min")
    metric_name = "mAP@0.5"
    # Parity is measured on detections, not raw tensors: see `output_distance`. Float formats agree to ~1e-6;
    # quantized weights move boxes by a pixel or so and scores by a few hundredths. Full-integer TF Lite has no
    # bound (it is reported, not checked): the batch-wide NMS shifts boxes by image and class, a range that int8
    # activations calibrated one image at a time cannot hold (see the README).
    float_tolerance = 1e-3
    quantized_tolerance: ClassVar[dict[str, float]] = {
        "tflite_float16": 0.02,
        "tflite_dynamic": 0.15,
        "tfjs_uint8": 0.15,
    }

    def __init__(self) -> None:
        self._postprocess: PostprocessConfig | None = None  # set while exporting: the command line's settings
        self._loaded: dict[str, detector_data.DetectorData] = {}  # by config: evaluate and export ask more than once

    def data_and_scenes(self, cfg: DetectorConfig) -> detector_data.DetectorData:
        """The datasets, the scenes they were made from and the count of degenerate boxes dropped.

        Exits with code 2 on a config that cannot work (feature maps, anchor scales, sizes).
        """
        try:
            check_feature_maps(cfg)
            anchor_boxes(cfg.model.feature_maps, cfg.model.anchor_scales, cfg.model.aspect_ratios)
        except ValueError as err:
            config_error(self.name, str(err))
        key = json.dumps(to_dict(cfg), sort_keys=True)
        try:
            if key not in self._loaded:
                self._loaded[key] = detector_data.load_splits(cfg)
            return self._loaded[key]
        except ValueError as err:
            config_error(self.name, str(err))
        except (RuntimeError, FileNotFoundError) as err:
            sys.exit(f"error: {err}")

    def load_data(self, cfg: DetectorConfig) -> DataSplits:
        """Generated scenes (or VOC 2007 with data.online): (image, anchor targets) pairs, see data.py."""
        return self.data_and_scenes(cfg).splits

    def build_model(self, cfg: DetectorConfig) -> keras.Model:
        return build_model(cfg, detector_data.class_names(cfg.data))

    def augmentation(self, cfg: DetectorConfig) -> keras.Layer | None:
        """Colour changes that keep every box where it is (colours.py): channels shuffled, half inverted."""
        return ColourShuffle(seed=cfg.train.seed) if cfg.data.augment else None

    def loss(self, cfg: DetectorConfig) -> SSDLoss:
        lc = cfg.loss
        return SSDLoss(lc.negatives_per_positive, lc.classification, lc.focal_gamma, lc.box_weight)

    def metrics(self, cfg: DetectorConfig) -> list:
        return [box_loss, positive_accuracy]

    def serving_model(self, model: keras.Model) -> keras.Model:
        """`image` (batch, size, size, 3) float32 in [0, 255] -> boxes, scores, classes, num_detections.

        Post-processing settings: the command line's while exporting, else those stored in the model.
        """
        return self.serving_model_with(model, self._postprocess)

    def serving_model_with(self, model: keras.Model, post: PostprocessConfig | None) -> keras.Model:
        """`serving_model` with these post-processing settings (None: those stored in the model)."""
        spec = spec_of(model)
        post = post or PostprocessConfig(**spec.postprocess)
        return build_serving_model(model, spec.anchors(), spec.variances, len(spec.class_names), post)

    def export(self, cfg: DetectorConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths, verbose=False):
        self._postprocess = cfg.postprocess
        try:
            return super().export(cfg, model, data, paths, verbose=verbose)
        finally:
            self._postprocess = None

    def evaluate(self, cfg: DetectorConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths):
        """COCO mAP@[.5:.95], mAP@0.5 and per-class AP on the test scenes; PR curves, a grid of detections."""
        serving = self.serving_model_with(model, cfg.postprocess)
        loaded = self.data_and_scenes(cfg)
        test = loaded.scenes["test"]
        detections = serving_outputs(serving, test.images.astype(np.float32))
        names = data.class_names
        metrics = detection_metrics(test, detections, names)
        metrics["degenerate_boxes_dropped"] = loaded.dropped_boxes
        out = []
        if paths.history_csv.exists():
            out.append(common_plots.training_curves(paths.history_csv, paths.plots / "training_curves.png"))
        ap = {name: c["ap_50"] for name, c in metrics["per_class_ap"].items()}
        metrics["tables"] = {
            "Per-class AP@0.5": [
                {"class": name, "AP@0.5": f"{c['ap_50']:.3f}", "objects": c["objects"]}
                for name, c in metrics["per_class_ap"].items()
            ]
        }
        out.append(plots.pr_curves(precision_recall(test, detections, names), ap, paths.plots / "pr_curves.png"))
        picks = np.sort(np.random.default_rng(cfg.data.seed).permutation(len(test))[:GRID_SCENES])
        threshold = cfg.postprocess.display_threshold
        out.append(plots.detection_grid(test, detections, names, paths.plots / "detections.png", threshold, picks))
        return metrics, out

    # Export and parity: detections compared as detections.

    def export_examples(self, cfg: DetectorConfig, data: DataSplits) -> tuple[np.ndarray, np.ndarray]:
        """The first PARITY_SCENES test scenes (n, size, size, 3) float32, and their objects (n, max_objects, 5):
        box (y1, x1, y2, x2) then class, class -1 for padding."""
        test = self.data_and_scenes(cfg).scenes["test"]
        n = min(PARITY_SCENES, len(test))
        objects = np.concatenate([test.boxes[:n], test.labels[:n, :, None].astype(np.float32)], axis=-1)
        return test.images[:n].astype(np.float32), objects

    def representative_inputs(self, cfg: DetectorConfig, data: DataSplits) -> np.ndarray:
        """100 training scenes, (100, size, size, 3) float32 in [0, 255], to calibrate int8 TF Lite."""
        return self.data_and_scenes(cfg).scenes["train"].images[:100].astype(np.float32)

    def final_answer(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """(n, max_detections, 6): box rounded to 1/128 of the image, score to 0.01, class; -1 past num_detections."""
        k = outputs["scores"].shape[1]
        answer = np.concatenate(
            [
                np.round(outputs["boxes"] * 128) / 128,
                np.round(outputs["scores"][..., None], 2),
                outputs["classes"][..., None].astype(np.float64),
            ],
            axis=-1,
        )
        answer[np.arange(k)[None, :] >= outputs["num_detections"][:, None]] = -1
        return answer

    def answer_metric(self, answers: np.ndarray, targets: np.ndarray) -> float:
        """mAP@0.5 (pycocotools) of the answers on the parity scenes."""
        blank = np.zeros((len(targets), 128, 128, 3), np.uint8)  # only boxes count; IoU does not depend on the size
        scenes = Scenes(blank, targets[..., :4], targets[..., 4].astype(int))
        valid = answers[..., 5] >= 0
        detections = {
            "boxes": answers[..., :4],
            "scores": answers[..., 4],
            "classes": answers[..., 5].astype(np.int64),
            "num_detections": valid.sum(axis=1),
        }
        classes = int(max(targets[..., 4].max(), answers[..., 5].max())) + 1
        return detection_metrics(scenes, detections, [str(k) for k in range(classes)])["map_50"]

    def output_distance(self, outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
        return detection_distance(outputs, reference)

    def sample_inputs(self, cfg: DetectorConfig) -> np.ndarray:
        """8 test scenes (n, size, size, 3) float32 in [0, 255], for the browser page and samples.json."""
        return self.data_and_scenes(cfg).scenes["test"].images[:8].astype(np.float32)

    def demo_extras(self, model: keras.Model) -> dict:
        """The page labels boxes with the class names and starts its slider at the display threshold."""
        spec = spec_of(model)
        return {"class_names": spec.class_names, "display_threshold": spec.postprocess["display_threshold"]}

    def predict(self, cfg: DetectorConfig, model: keras.Model, inputs: Sequence[str]) -> int:
        """Print `<file>: 7 0.98 [x1 y1 x2 y2], ...` (pixels of the file) per image; returns how many failed."""
        serving = self.serving_model(model)
        names = spec_of(model).class_names
        size = model.input_shape[1]
        failed = 0
        for name in inputs:
            try:
                image, (height, width) = load_image_file(Path(name), size)
            except (ValueError, OSError) as err:
                print(f"error: {err}")
                failed += 1
                continue
            out = serving_outputs(serving, image[None])
            shown = []
            for box, score, label in zip(out["boxes"][0], out["scores"][0], out["classes"][0], strict=True):
                if score >= cfg.postprocess.display_threshold:
                    y1, x1, y2, x2 = box * [height, width, height, width]
                    shown.append(f"{names[label]} {score:.2f} [{x1:.0f} {y1:.0f} {x2:.0f} {y2:.0f}]")
            print(f"{name}: " + (", ".join(shown) if shown else "nothing found"))
        return failed


def detection_distance(
    outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], min_score: float = MATCH_FROM_SCORE
) -> float:
    """How far a format's detections are from Keras's, after NMS, whatever their order.

    Every detection scoring >= `min_score` in either output is matched to the other output's
    detection of the same class in the same image with the highest IoU; it costs (1 - IoU) + |score
    difference|, or 1 when there is none. Returns the mean cost (0 when neither output has any).
    """
    costs = []
    for a, b in ((outputs, reference), (reference, outputs)):
        for i in range(len(a["scores"])):
            mine = np.arange(int(a["num_detections"][i]))
            theirs = np.arange(int(b["num_detections"][i]))
            for j in mine[a["scores"][i, mine] >= min_score]:
                same = theirs[b["classes"][i, theirs] == a["classes"][i, j]]
                if len(same) == 0:
                    costs.append(1.0)
                    continue
                iou = iou_matrix(a["boxes"][i, j][None], b["boxes"][i, same])[0]
                best = int(np.argmax(iou))
                costs.append(1.0 - iou[best] + abs(float(a["scores"][i, j]) - float(b["scores"][i, same[best]])))
    return float(np.mean(costs)) if costs else 0.0


PROJECT = DetectorProject()
