"""Detection metrics with pycocotools: COCO mAP@[.5:.95], mAP@0.5, per-class AP and precision-recall curves.

Ground truth and detections are turned into COCO's JSON form in memory (boxes in pixels as
[x, y, width, height], categories numbered from 1) and scored by `COCOeval`, whose printing is silenced.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pycocotools import coco, cocoeval

from .scenes import Scenes

# pycocotools reports progress with print(). A no-op `print` in its modules silences it in every thread
# (contextlib.redirect_stdout swaps the process-wide sys.stdout, which export's worker threads share).
coco.print = cocoeval.print = lambda *args, **kwargs: None

Detections = dict[str, np.ndarray]  # "boxes" (n, k, 4) normalized, "scores" (n, k), "classes" (n, k), "num_detections"


def _xywh(boxes: np.ndarray, size: int) -> np.ndarray:
    """(k, 4) normalized (y1, x1, y2, x2) -> (k, 4) pixel [x, y, width, height]."""
    y1, x1, y2, x2 = (boxes * size).T
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)


def coco_eval(scenes: Scenes, detections: Detections, class_names: Sequence[str]):
    """A `COCOeval` of `detections` on `scenes`, evaluated and accumulated; None if there are no detections."""
    size = scenes.images.shape[1]
    images, annotations, results = [], [], []
    for i in range(len(scenes)):
        images.append({"id": i, "width": size, "height": size})
        boxes, labels = scenes.objects(i)
        for box, label in zip(_xywh(boxes, size), labels, strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": int(label) + 1,
                    "bbox": box.tolist(),
                    "area": float(box[2] * box[3]),
                    "iscrowd": 0,
                }
            )
        n = int(detections["num_detections"][i])
        found = _xywh(detections["boxes"][i, :n], size), detections["scores"][i, :n], detections["classes"][i, :n]
        for box, score, label in zip(*found, strict=True):
            results.append({"image_id": i, "category_id": int(label) + 1, "bbox": box.tolist(), "score": float(score)})
    if not results:
        return None
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(class_names)]
    truth = coco.COCO()
    truth.dataset = {"images": images, "annotations": annotations, "categories": categories}
    truth.createIndex()
    evaluator = cocoeval.COCOeval(truth, truth.loadRes(results), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator


def detection_metrics(scenes: Scenes, detections: Detections, class_names: Sequence[str]) -> dict:
    """`map_50_95` (COCO's mAP), `map_50`, `map_75`, and `per_class_ap`: per class its AP@0.5 and object count."""
    evaluator = coco_eval(scenes, detections, class_names)
    counts = np.bincount(scenes.labels[scenes.labels >= 0], minlength=len(class_names))
    if evaluator is None:
        ap50 = np.zeros(len(class_names))
        stats = np.zeros(3)
    else:
        stats = evaluator.stats
        precision = evaluator.eval["precision"][0, :, :, 0, -1]  # IoU 0.5, all recalls, classes, all areas, 100 dets
        ap50 = np.array([p[p > -1].mean() if (p > -1).any() else 0.0 for p in precision.T])
    return {
        "map_50_95": float(stats[0]),
        "map_50": float(stats[1]),
        "map_75": float(stats[2]),
        "per_class_ap": {
            name: {"ap_50": round(float(ap), 4), "objects": int(n)}
            for name, ap, n in zip(class_names, ap50, counts, strict=True)
        },
    }


def precision_recall(scenes: Scenes, detections: Detections, class_names: Sequence[str]) -> dict[str, np.ndarray]:
    """COCOeval's interpolated precision at its 101 recall levels, IoU 0.5, per class: {name: (101,)}."""
    evaluator = coco_eval(scenes, detections, class_names)
    if evaluator is None:
        return {}
    precision = evaluator.eval["precision"][0, :, :, 0, -1]
    return {name: precision[:, k] for k, name in enumerate(class_names) if (precision[:, k] > -1).any()}
