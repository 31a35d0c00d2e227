"""How the demos feed the classifier: the image file itself, decoded and prepared inside the SavedModel.

Used by the Gradio app (`python -m serving.gradio_app --project classifier`) and by the
client (`python -m serving.client --model classifier --signature serving_bytes --image photo.jpg`).
Both send the file's bytes to the `serving_bytes` signature, which prepares them exactly as
training did (see serving_model.py), and answer with the name of every class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from common.demo import Arrays, Demo


class ClassifierDemo(Demo):
    """An image file in, the probability of every class, by name, out (the standard label widget)."""

    title = "Custom image classifier"
    description = "Upload an image (PNG, JPEG, GIF or BMP, any size) and press Submit."
    summary = "Drop an image; see the top-5 classes."
    signature = "serving_bytes"  # encoded files in: the model decodes and prepares them itself

    def image_inputs(self, path: Path) -> Arrays:
        """`image_bytes` (1,) object array holding the whole file, as `serving_bytes` takes it.

        Raises:
            ValueError: the file cannot be read.
        """
        try:
            return {"image_bytes": np.array([Path(path).read_bytes()], dtype=object)}
        except OSError as err:
            raise ValueError(f"{path}: cannot read the file ({err.strerror})") from None

    def gradio_inputs(self) -> list[Any]:
        """One image upload, passed on as the uploaded file's path."""
        import gradio as gr

        return [gr.Image(label="Image", type="filepath", image_mode=None)]

    def gradio_request(self, upload: str | None) -> Arrays:
        """The model's input for the uploaded file.

        Raises:
            ValueError: nothing uploaded.
        """
        if not upload:
            raise ValueError("Upload an image first.")
        return self.image_inputs(Path(upload))

    def answer(self, inputs: Arrays, outputs: Arrays) -> dict[str, float]:
        """{class name: probability} from `class_names` (1, classes) and `probabilities` (1, classes)."""
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in outputs["class_names"][0]]
        return dict(zip(names, map(float, outputs["probabilities"][0]), strict=True))


DEMO = ClassifierDemo()
