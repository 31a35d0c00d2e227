"""Matching ground-truth boxes to anchors, and the per-anchor training targets that follow.

An anchor is positive for a box when their IoU reaches `match_iou` (0.5); every box also
claims its single best anchor, so that a box unlike any anchor still gets one. Each anchor
takes the box it overlaps most. The rest are background.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .boxes import encode, iou_matrix, to_corners

BACKGROUND = -1


def match(boxes: np.ndarray, anchors: np.ndarray, match_iou: float = 0.5) -> np.ndarray:
    """The box each anchor is responsible for, or BACKGROUND (-1).

    Args:
        boxes: (n, 4) ground-truth corners, clean (see `boxes.clean_boxes`); n may be 0.
        anchors: (num_anchors, 4) centre form.
        match_iou: IoU from which an anchor is matched to a box.

    Returns:
        (num_anchors,) int64 box index per anchor, BACKGROUND where none.
    """
    matched = np.full(len(anchors), BACKGROUND, dtype=np.int64)
    if len(boxes) == 0:
        return matched
    iou = iou_matrix(to_corners(anchors), boxes)  # (num_anchors, n)
    best_box = iou.argmax(axis=1)
    positive = iou[np.arange(len(anchors)), best_box] >= match_iou
    matched[positive] = best_box[positive]
    # Every box keeps its best anchor, even below the threshold (boxes in turn, so a later one wins a tie).
    for k, anchor in enumerate(iou.argmax(axis=0)):
        matched[anchor] = k
    return matched


def targets(
    boxes: np.ndarray, labels: np.ndarray, anchors: np.ndarray, variances: Sequence[float], match_iou: float = 0.5
) -> np.ndarray:
    """Training targets for one image: (num_anchors, 5) float32, encoded offsets then the class.

    Column 4 holds the class id + 1 of the matched box (0 = background); background anchors have
    zero offsets, which the loss ignores.
    """
    matched = match(boxes, anchors, match_iou)
    out = np.zeros((len(anchors), 5), np.float32)
    positive = matched != BACKGROUND
    if positive.any():
        out[positive, :4] = encode(boxes[matched[positive]], anchors[positive], variances)
        out[positive, 4] = np.asarray(labels)[matched[positive]] + 1
    return out
