"""How the demos feed the detector: any image, resized to the model's square, and its boxes drawn on it.

Used by the Gradio app (`python -m serving.gradio_app --project detector`: an image in, the
image with labelled boxes out) and by the client (`python -m serving.client --model detector
--image scene.png`). The SavedModel's `serving_default` takes `image` (1, size, size, 3) float32
RGB in [0, 255] and returns boxes, scores, classes and num_detections after NMS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .data import DIGIT_NAMES
from .images import load_image_file, to_model_input

TITLE = "SSD object detector"
DESCRIPTION = "Upload an image (a scene of digits works best) and press Submit: boxes with labels and scores."
MODEL: dict[str, int] = {"size": 128}  # the input side: the default preset's, or the served model's (`use_signature`)
THRESHOLD = 0.4  # boxes scoring less are not drawn
COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#800000", "#000075"]


def use_signature(signature: Any) -> None:
    """Read the input side from the served model's `serving_default` signature (the Gradio app calls this)."""
    MODEL["size"] = int(signature.inputs["image"].shape[1])


def image_inputs(path: Path) -> dict[str, np.ndarray]:
    """`image` (1, size, size, 3) float32 in [0, 255], as `serving_default` takes it.

    Raises:
        ValueError: the file is not a readable image.
    """
    return {"image": load_image_file(Path(path), MODEL["size"])[0][None]}


def gradio_inputs() -> list[Any]:
    """One image upload."""
    import gradio as gr

    return [gr.Image(label="Image", type="pil", image_mode="RGB")]


def gradio_outputs() -> Any:
    """The image with the boxes drawn on it."""
    import gradio as gr

    return gr.Image(label="Detections", type="pil")


def gradio_request(upload: Image.Image | None) -> dict[str, np.ndarray]:
    """The model's input for the uploaded image.

    Raises:
        ValueError: nothing uploaded.
    """
    if upload is None:
        raise ValueError("Upload an image first.")
    return {"image": to_model_input(upload, MODEL["size"])[None]}


def detections(outputs: dict[str, np.ndarray], threshold: float = THRESHOLD) -> list[tuple[np.ndarray, float, int]]:
    """(box (y1, x1, y2, x2) normalized, score, class id) of the first image's detections scoring >= threshold."""
    n = int(outputs["num_detections"][0])
    found = zip(outputs["boxes"][0][:n], outputs["scores"][0][:n], outputs["classes"][0][:n], strict=True)
    return [(box, float(score), int(label)) for box, score, label in found if score >= threshold]


def annotate(inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray], scale: int = 3) -> Image.Image:
    """The input image, enlarged `scale` times, with each detection's box and `<class> <score>` drawn on it."""
    pixels = np.clip(inputs["image"][0], 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels).resize((pixels.shape[1] * scale, pixels.shape[0] * scale), Image.NEAREST)
    draw = ImageDraw.Draw(image)
    for box, score, label in detections(outputs):
        y1, x1, y2, x2 = box * [image.height, image.width, image.height, image.width]
        colour = COLOURS[label % len(COLOURS)]
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=3)
        text = f"{DIGIT_NAMES[label] if label < len(DIGIT_NAMES) else label} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), text)
        draw.rectangle((x1, y1 - (bottom - top) - 4, x1 + right - left + 4, y1), fill=colour)
        draw.text((x1 + 2, y1 - (bottom - top) - 3), text, fill="white")
    return image


def labels(outputs: dict[str, np.ndarray]) -> dict[str, float]:
    """{class name: its best score} over the detections drawn (the answer as labels, e.g. for the client)."""
    best: dict[str, float] = {}
    for _, score, label in detections(outputs):
        name = DIGIT_NAMES[label] if label < len(DIGIT_NAMES) else str(label)
        best[name] = max(best.get(name, 0.0), score)
    return best
