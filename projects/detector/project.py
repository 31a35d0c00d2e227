"""The SSD detector's recipe: generated digit scenes, the SSD and its loss, COCO evaluation, export with NMS.

Training: the SSD of model.py, compiled with the SSD loss (loss.py: smooth L1 on the matched
anchors' boxes plus cross-entropy with hard negative mining) and Adam on a cosine schedule,
fitted by `common.training.fit` on colour-shuffled scenes (augmentation.py), keeping the epoch
of lowest validation loss.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np

from common import plots as common_plots
from common.config import ConfigError, to_dict
from common.data.splits import DataSplits
from common.export import ExportPlan, standard_plan
from common.paths import ArtifactPaths
from common.project import Project
from common.training import fit, make_optimizer, steps_per_epoch, strategy_scope

from . import data as detector_data
from . import plots
from .anchors import anchor_boxes
from .augmentation import build_augmentation
from .boxes import iou_matrix
from .config import DetectorConfig
from .evaluation import detection_metrics, precision_recall
from .images import read_image
from .loss import SSDLoss, box_loss, positive_accuracy
from .model import build_model, check_feature_maps, spec_of
from .postprocess import DetectionPostprocess
from .scenes import Scenes
from .serving_model import EVAL_BATCH, POSTPROCESS_TENSORS, build_serving_model, serving_outputs

PARITY_SCENES = 64  # test scenes run through every exported format
GRID_SCENES = 12
MATCH_FROM_SCORE = 0.3  # parity compares the detections scoring at least this (well above the NMS threshold)
HEAD_OUTPUT = re.compile(r"head\d+_(boxes|classes)")  # the convolutions whose outputs are the offsets and logits
INT8_MAP_BOUND = 0.03  # full-integer TF Lite's mAP@0.5 on the parity scenes differs from Keras's by at most this


class DetectorProject(Project):
    name = "detector"
    monitor = ("val_loss", "min")  # the checkpoint kept and what early stopping watches (no accuracy to watch)
    metric_name = "mAP@0.5"  # of the exported formats' detections, in parity.md
    # Parity is measured on detections, not raw tensors: see `output_distance`. Float formats agree to ~1e-6;
    # quantized weights move boxes by a pixel or so and scores by a few hundredths. Full-integer TF Lite quantizes
    # the SSD only and keeps decoding and NMS in float32 (`export_plan`); its mAP@0.5 is bounded too.
    float_tolerance = 1e-3
    quantized_tolerance: ClassVar[dict[str, float]] = {
        "tflite_float16": 0.02,
        "tflite_dynamic": 0.15,
        "tflite_int8": 0.15,
        "tfjs_uint8": 0.15,
    }

    def __init__(self) -> None:
        # Loaded data by config (as JSON): evaluate and export ask for the same scenes more than once.
        self._loaded: dict[str, detector_data.DetectorData] = {}

    def data_and_scenes(self, cfg: DetectorConfig) -> detector_data.DetectorData:
        """The datasets, the scenes they were made from and the count of degenerate boxes dropped.

        Raises:
            ConfigError: a config that cannot work (feature maps, anchor scales, sizes); the command line exits
                with code 2 and the message.
        """
        try:
            check_feature_maps(cfg)
            anchor_boxes(cfg.model.feature_maps, cfg.model.anchor_scales, cfg.model.aspect_ratios)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        key = json.dumps(to_dict(cfg), sort_keys=True)
        try:
            if key not in self._loaded:
                self._loaded[key] = detector_data.load_splits(cfg)
            return self._loaded[key]
        except ValueError as err:
            raise ConfigError(str(err)) from None
        except (RuntimeError, FileNotFoundError) as err:  # VOC unavailable offline, or the npm digits not installed
            sys.exit(f"error: {err}")

    def load_data(self, cfg: DetectorConfig) -> DataSplits:
        """Generated scenes (or VOC 2007 with data.online): (image, anchor targets) pairs, see data.py."""
        return self.data_and_scenes(cfg).splits

    def build_model(self, cfg: DetectorConfig) -> keras.Model:
        """`image` (batch, size, size, 3) float32 in [0, 255] -> `predictions` (batch, anchors, 4 + classes + 1)."""
        return build_model(cfg, detector_data.class_names(cfg.data))

    def loss(self, cfg: DetectorConfig) -> SSDLoss:
        """(classification + box_weight * smooth L1) per positive anchor, hard negatives or focal (loss.py)."""
        lc = cfg.loss
        return SSDLoss(lc.negatives_per_positive, lc.classification, lc.focal_gamma, lc.box_weight)

    def metrics(self, cfg: DetectorConfig) -> list:
        """The box part of the loss alone, and the share of positive anchors given their object's class."""
        return [box_loss, positive_accuracy]

    def augmentation(self, cfg: DetectorConfig) -> keras.Layer | None:
        """The colour shuffle of training scenes (augmentation.py; the boxes need no change), or None (VOC)."""
        return build_augmentation(cfg)

    def search_space(self, cfg: DetectorConfig) -> dict:
        """The network's width, expansion and head channels, the learning rate and batch size: what moves the
        SSD loss on the validation scenes (and so mAP). Lists only, so `tune.algorithm=grid` can walk it
        (3 x 2 x 3 x 3 x 2 = 108 combinations)."""
        return {
            "model.width": [0.35, 0.5, 0.75],
            "model.expansion": [3, 4],
            "model.head_channels": [32, 48, 64],
            "train.learning_rate": [1e-3, 3e-3, 6e-3],
            "train.batch_size": [16, 32],
        }

    def train(self, cfg: DetectorConfig, data: DataSplits, paths: ArtifactPaths) -> keras.Model:
        """Build the SSD, compile it with the loss, optimizer and metrics above, fit it on colour-shuffled scenes."""
        with strategy_scope(cfg.train):
            model = self.build_model(cfg)
            model.compile(
                optimizer=make_optimizer(cfg.train, steps_per_epoch(data, cfg.train.batch_size)),
                loss=self.loss(cfg),
                metrics=self.metrics(cfg),
            )
        return fit(
            model,
            data,
            cfg.train,
            paths,
            monitor=self.monitor,
            augmentation=self.augmentation(cfg),
            summary={"project": self.name, "config": to_dict(cfg)},
        )

    def serving_model(self, model: keras.Model, cfg: DetectorConfig) -> keras.Model:
        """`image` (batch, size, size, 3) float32 in [0, 255] -> boxes, scores, classes, num_detections, with the
        post-processing settings of `cfg` (the command line's): see serving_model.py."""
        return build_serving_model(model, cfg.postprocess)

    def evaluate(
        self, cfg: DetectorConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths
    ) -> tuple[dict, list[Path]]:
        """COCO mAP@[.5:.95], mAP@0.5 and per-class AP on the test scenes; PR curves, a grid of detections."""
        serving = self.serving_model(model, cfg)
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

    def export_plan(
        self, cfg: DetectorConfig, model: keras.Model, data: DataSplits, verbose: bool = False
    ) -> ExportPlan:
        """Every format from the serving model (the standard plan), with full-integer TF Lite quantizing the SSD
        only: decoding and NMS stay float32 (`POSTPROCESS_TENSORS`), and its mAP@0.5 must stay within
        `INT8_MAP_BOUND` of Keras's on the parity scenes.

        Why, measured on a 7-epoch default-preset model (Keras mAP@0.5 0.848 on the 64 parity scenes):
        everything in int8, 0.566 (distance 0.31), and 0.574 with per-tensor weights, so per-channel scales are
        not the cause; int8 up to the NMS, with only the batch-wide NMS (boxes shifted by 2 x (image x classes +
        class), a range int8 cannot resolve to a pixel) in float32, 0.847; decoding and NMS in float32, 0.844
        (distance 0.033), 441 KB against float32's 1,197 KB (0.37x: the int8 weights are 0.24x; per-channel
        scales, the float anchors and the graph add the rest; per-tensor weights, 371 KB, 0.31x, mAP 0.842).
        So the weights are scaled per tensor (`int8_per_channel`): on the smoke model 122 KB instead of 152 KB
        (float32: 271 KB), mAP@0.5 0.2101 against 0.2112 per channel; tensor names, dropped from every TF Lite
        file, took another 17 KB of it. The default model at 35943cb: 352 KB against float32's 1,177 KB, mAP@0.5
        0.9166 against Keras's 0.9114 on the parity scenes.
        """
        plan = standard_plan(self, cfg, model, data)
        plan.int8_float_nodes = POSTPROCESS_TENSORS
        plan.int8_per_channel = False
        plan.metric_bounds = {"tflite_int8": INT8_MAP_BOUND}
        return plan

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

    # Compression (`optimize`): the SSD is pruned and quantized, its decoding and NMS stay float32 outside it.

    def keras2_layers(self) -> dict[str, type]:
        """`DetectorSpec` in tf_keras (keras2_layers.py)."""
        from .keras2_layers import KERAS2_LAYERS

        return KERAS2_LAYERS

    def prunable_layers(self, model: keras.Model) -> list[str]:
        """The plain convolutions but the stem (on raw pixels, three channels in) and the heads' last ones, which
        compute the box offsets and class logits themselves. The depthwise convolutions (9 weights a channel) stay
        whole: the bridge prunes and measures `kernel`s, which tf_keras's `DepthwiseConv2D` lacks."""
        return [
            layer.name
            for layer in model.layers
            if type(layer).__name__ == "Conv2D" and layer.name != "stem_conv" and not HEAD_OUTPUT.fullmatch(layer.name)
        ]

    def quantized_layers(self, model: keras.Model) -> list[str]:
        """Every layer but the input, the pixel scaling (tfmot has no 8-bit scheme for `Rescaling`) and what follows
        the two outputs `optimize` converts (their concatenation, `DetectorSpec`).

        The batch norms are quantized with their convolutions, unlike the default's: tfmot then folds each into the
        convolution before it, as TF Lite does. Measured on the smoke model (1 epoch at a rate of 2e-4): left out,
        each stayed a multiply and an add of its own inside the int8 model (54 more ops; latency 1.1 ms, not 0.6), and
        quantization-aware int8 scored mAP@0.5 0.18 instead of 0.24 (post-training int8: 0.27).
        """
        skipped = ("InputLayer", "Rescaling", "DetectorSpec")
        return [
            layer.name
            for layer in model.layers
            if type(layer).__name__ not in skipped and layer.name != "raw_predictions"
        ]

    def optimize_outputs(self, model: keras.Model) -> list[str]:
        """The box offsets (batch, anchors, 4) and class logits (batch, anchors, classes + 1), apart, as the serving
        model's post-processing takes them (see `DetectionPostprocess`)."""
        return ["offsets", "logits"]

    def model_answer(self, outputs: dict[str, np.ndarray], cfg: DetectorConfig) -> np.ndarray:
        """`final_answer` (n, max_detections, 6) from the SSD's `offsets` (n, anchors, 4) and `logits` (n, anchors,
        classes + 1): decoded on `cfg`'s anchors and NMS-filtered with `cfg.postprocess` in float32, as the serving
        model does.

        Raises:
            ConfigError: `cfg`'s anchors are not the model's (another preset or `model.*` setting than at training).
        """
        offsets, logits = outputs["offsets"], outputs["logits"]
        m = cfg.model
        anchors = anchor_boxes(m.feature_maps, m.anchor_scales, m.aspect_ratios)
        if len(anchors) != offsets.shape[1]:
            raise ConfigError(
                f"the model predicts for {offsets.shape[1]} anchors, but model.feature_maps, model.anchor_scales and "
                f"model.aspect_ratios make {len(anchors)}: use the preset and --set options the model was trained with"
            )
        postprocess = DetectionPostprocess(anchors, m.variances, logits.shape[-1] - 1, cfg.postprocess)
        parts = [
            postprocess(offsets[i : i + EVAL_BATCH], logits[i : i + EVAL_BATCH])
            for i in range(0, len(offsets), EVAL_BATCH)
        ]
        return self.final_answer({k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]})

    def sample_inputs(self, cfg: DetectorConfig) -> np.ndarray:
        """8 test scenes (n, size, size, 3) float32 in [0, 255], for the browser page and samples.json."""
        return self.data_and_scenes(cfg).scenes["test"].images[:8].astype(np.float32)

    def demo_extras(self, model: keras.Model, cfg: DetectorConfig) -> dict:
        """The page labels boxes with the model's class names and starts its slider at its display threshold."""
        spec = spec_of(model)
        return {"class_names": spec.class_names, "display_threshold": spec.postprocess["display_threshold"]}

    def predict(self, cfg: DetectorConfig, model: keras.Model, inputs: Sequence[str]) -> int:
        """Print `<file>: 7 0.98 [x1 y1 x2 y2], ...  (what was done to it)` (pixels of the upright file) per image;
        returns how many failed.

        Any image file is accepted (images.py says what it did: size, format, EXIF turn, first frame,
        transparency, resize). NMS runs with the settings stored in the model at training;
        `postprocess.display_threshold` picks what is printed.
        """
        serving = build_serving_model(model)
        names = spec_of(model).class_names
        size = model.input_shape[1]
        failed = 0
        for name in inputs:
            try:
                image, (height, width), done = read_image(Path(name), size)
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
            print(f"{name}: " + (", ".join(shown) if shown else "nothing found") + f"  ({done})")
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
