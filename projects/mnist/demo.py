"""How the demos feed the mnist model: a drawing or a photo of one digit, made to look like MNIST.

Used by the Gradio app (`python -m serving.gradio_app --project mnist`) and by the
client (`python -m serving.client --model mnist --image digit.png`). The image goes
through `data.load_digit_image`, the preparation of `predict` (preparation.py): grey,
inverted to white on black if needed, shadows out, thresholded, cropped, scaled into
20x20 and centred by its centre of mass in 28x28.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.demo import Arrays, Demo

from .data import load_digit_image


class MnistDemo(Demo):
    """A sketchpad or an upload in, the probability of each digit out (the standard label widget)."""

    title = "Handwritten digit recognizer"
    description = "Draw a digit (0-9) on the sketchpad, or upload a photo of one, and press Submit."
    summary = "Draw a digit; a CNN reads it."

    def image_inputs(self, path: Path) -> Arrays:
        """The serving model's input for an image file: `image` (1, 28, 28, 1) float32 in [0, 1], white on black.

        Raises:
            ValueError: the file is not an image, or is blank.
        """
        return {"image": load_digit_image(Path(path))[None, :, :, None]}

    def gradio_inputs(self) -> list[Any]:
        """A sketchpad (black ink on white, like a pen on paper) and an image upload."""
        import gradio as gr

        sketchpad = gr.Sketchpad(
            label="Draw a digit",
            type="filepath",
            format="png",
            canvas_size=(280, 280),
            brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=18),
        )
        upload = gr.Image(label="...or upload a photo of one", type="filepath", format="png", image_mode=None)
        return [sketchpad, upload]

    def gradio_request(self, drawing: dict[str, Any] | None, upload: str | None) -> Arrays:
        """The model's input from the widgets' values: the upload if there is one, else the drawing.

        Raises:
            ValueError: nothing drawn or uploaded, or the image is blank.
        """
        path = upload or (drawing or {}).get("composite")
        if not path:
            raise ValueError("Draw a digit on the sketchpad or upload a photo of one first.")
        return self.image_inputs(Path(path))

    def answer(self, inputs: Arrays, outputs: Arrays) -> dict[str, float]:
        """The probability of each digit, {"0": p0, ..., "9": p9}, from `probabilities` (1, 10)."""
        return {str(digit): float(p) for digit, p in enumerate(outputs["probabilities"][0])}


DEMO = MnistDemo()
