"""Default (anchor) boxes: a few boxes of fixed sizes and shapes centred on every cell of every feature map.

An SSD predicts, for each anchor, how to move and stretch it onto an object (the box
offsets) and what is in it (the class scores, background included). Small anchors sit
on the fine maps (many cells, small stride), large anchors on the coarse ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def anchors_per_cell(aspect_ratios: Sequence[float]) -> int:
    """One anchor per aspect ratio, plus one square anchor between this map's scale and the next."""
    return len(aspect_ratios) + 1


def anchor_boxes(feature_maps: Sequence[int], scales: Sequence[float], aspect_ratios: Sequence[float]) -> np.ndarray:
    """Every anchor as (centre y, centre x, height, width), normalized to [0, 1].

    Map k (side f_k) gets, at each cell centre ((i + 0.5) / f_k, (j + 0.5) / f_k), one box of
    side scales[k] per aspect ratio r (width / height: h = s / sqrt(r), w = s * sqrt(r)), then a
    square of side sqrt(scales[k] * scales[k + 1]). The order (map, row, column, anchor) is the
    order in which the model's heads reshape their outputs.

    Args:
        feature_maps: sides of the square feature maps, finest first, e.g. (16, 8, 4, 2).
        scales: anchor side per map as a fraction of the image, one more than `feature_maps`.
        aspect_ratios: width / height of the anchors, e.g. (1.0, 0.6, 0.35).

    Returns:
        (num_anchors, 4) float32, num_anchors = sum(f * f) * (len(aspect_ratios) + 1).

    Raises:
        ValueError: `scales` is not one longer than `feature_maps`, or a size or ratio is not positive.
    """
    if len(scales) != len(feature_maps) + 1:
        raise ValueError(
            f"model.anchor_scales has {len(scales)} values for {len(feature_maps)} feature maps; "
            f"give one per map plus one past the last ({len(feature_maps) + 1})"
        )
    if min(scales) <= 0 or min(aspect_ratios) <= 0 or min(feature_maps) <= 0:
        raise ValueError("feature map sides, anchor scales and aspect ratios must all be positive")
    boxes = []
    for k, side in enumerate(feature_maps):
        shapes = [(scales[k] / np.sqrt(r), scales[k] * np.sqrt(r)) for r in aspect_ratios]
        extra = np.sqrt(scales[k] * scales[k + 1])
        shapes.append((extra, extra))
        centres = (np.arange(side) + 0.5) / side
        cy, cx = np.meshgrid(centres, centres, indexing="ij")  # (side, side): rows, then columns
        for y, x in zip(cy.ravel(), cx.ravel(), strict=True):
            boxes.extend((y, x, h, w) for h, w in shapes)
    return np.asarray(boxes, dtype=np.float32)
