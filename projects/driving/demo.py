"""How the Gradio demo feeds the driving model: one camera frame in, the steering out.

Used by `python -m serving.gradio_app --project driving` (`make project=driving gradio`) and by the client
(`python -m serving.client --model driving --image frame.png`):
upload a frame of the car seen from above, as the simulator renders it (96x96 RGB; a
`drive` GIF frame or a screenshot is resized to 96x96), and the served SavedModel
answers with its steering and throttle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from common.demo import Arrays, Demo

from .simulator import FRAME_SHAPE


class DrivingDemo(Demo):
    """An uploaded camera frame in, the steering and throttle as a line of text out."""

    title = "Self-driving car: steering from one camera frame"
    description = (
        "Upload a CarRacing camera frame (the car seen from above, 96x96 RGB; other sizes are resized) and press "
        "Submit. Negative steering turns left; throttle is gas (> 0) or brake (< 0)."
    )
    summary = "Replay a drive with the CNN's steering."

    def image_inputs(self, path: Path) -> Arrays:
        """`frame` (1, 96, 96, 3) uint8 RGB from an image file (resized to 96x96 if needed).

        Raises:
            ValueError: the file is not a readable image.
        """
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except OSError as err:
            raise ValueError(f"{path} is not a readable image: {err}") from None
        if rgb.size != FRAME_SHAPE[1::-1]:
            rgb = rgb.resize(FRAME_SHAPE[1::-1], Image.Resampling.BILINEAR)
        return {"frame": np.asarray(rgb, np.uint8)[None]}

    def gradio_inputs(self) -> list[Any]:
        """One image upload, passed on as the uploaded file."""
        import gradio as gr

        return [gr.Image(label="Camera frame", type="filepath", image_mode=None)]

    def gradio_outputs(self) -> Any:
        """The answer is a line of text (steering and throttle), not class labels."""
        import gradio as gr

        return gr.Textbox(label="Steering and throttle")

    def gradio_request(self, upload: str | None) -> Arrays:
        """The model's input for the uploaded file.

        Raises:
            ValueError: nothing uploaded, or not an image.
        """
        if not upload:
            raise ValueError("Upload a camera frame first.")
        return self.image_inputs(Path(upload))

    def answer(self, inputs: Arrays, outputs: Arrays) -> str:
        """ "steering +0.23 (right), throttle +0.80 (gas)" from `steering` (1,) and `throttle` (1, 1)."""
        steering = float(np.asarray(outputs["steering"]).reshape(-1)[0])
        throttle = float(np.asarray(outputs["throttle"]).reshape(-1)[0])
        side = "right" if steering > 0.05 else "left" if steering < -0.05 else "straight"
        pedal = "gas" if throttle > 0 else "brake"
        return f"steering {steering:+.2f} ({side}), throttle {throttle:+.2f} ({pedal})"


DEMO = DrivingDemo()
