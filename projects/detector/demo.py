"""How the demos feed the detector: any image, resized to the model's square, and its boxes drawn on it.

Used by the Gradio app (`python -m serving.gradio_app --project detector`: an image in, the
image with labelled boxes out) and by the client (`python -m serving.client --model detector
--image scene.png`). The SavedModel's `serving_default` takes `image` (1, size, size, 3) float32
RGB in [0, 255] and returns boxes, scores, classes and num_detections after NMS (serving_model.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from common.demo import Arrays, Demo

from .data import DIGIT_NAMES
from .images import load_image_file, to_model_input

THRESHOLD = 0.4  # boxes scoring less are not drawn (the default `postprocess.display_threshold`)
SCALE = 3  # the answer is drawn this many times larger than the model's input, so labels stay legible
COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#800000", "#000075"]


def detections(outputs: Arrays, threshold: float = THRESHOLD) -> list[tuple[np.ndarray, float, int]]:
    """(box (y1, x1, y2, x2) normalized, score, class id) of the first image's detections scoring >= threshold."""
    n = int(outputs["num_detections"][0])
    found = zip(outputs["boxes"][0][:n], outputs["scores"][0][:n], outputs["classes"][0][:n], strict=True)
    return [(box, float(score), int(label)) for box, score, label in found if score >= threshold]


class DetectorDemo(Demo):
    """An image upload in, the same image with each detection's box, class and score drawn on it out."""

    title = "SSD object detector"
    description = "Upload an image (a scene of digits works best) and press Submit: boxes with labels and scores."
    summary = "Boxes, labels and scores on an image."

    def __init__(self) -> None:
        self.size = 128  # the input side: the default preset's until `use_signature` reads the served model's

    def use_signature(self, signature: Any) -> None:
        """Read the input side from the served model's `serving_default` signature (the Gradio app calls this)."""
        self.size = int(signature.inputs["image"].shape[1])

    def image_inputs(self, path: Path) -> Arrays:
        """`image` (1, size, size, 3) float32 in [0, 255], as `serving_default` takes it.

        Raises:
            ValueError: the file is not a readable image.
        """
        return {"image": load_image_file(Path(path), self.size)[0][None]}

    def gradio_inputs(self) -> list[Any]:
        """One image upload."""
        import gradio as gr

        return [gr.Image(label="Image", type="pil", image_mode="RGB")]

    def gradio_outputs(self) -> Any:
        """The image with the boxes drawn on it."""
        import gradio as gr

        return gr.Image(label="Detections", type="pil")

    def gradio_request(self, upload: Image.Image | None) -> Arrays:
        """The model's input for the uploaded image.

        Raises:
            ValueError: nothing uploaded.
        """
        if upload is None:
            raise ValueError("Upload an image first.")
        return {"image": to_model_input(upload, self.size)[None]}

    def answer(self, inputs: Arrays, outputs: Arrays) -> Image.Image:
        """The input image, enlarged SCALE times, with each detection's box and `<class> <score>` drawn on it."""
        pixels = np.clip(inputs["image"][0], 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels).resize((pixels.shape[1] * SCALE, pixels.shape[0] * SCALE), Image.NEAREST)
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


DEMO = DetectorDemo()
