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

TITLE = "Custom image classifier"
DESCRIPTION = "Upload an image (PNG, JPEG, GIF or BMP, any size) and press Submit."
SIGNATURE = "serving_bytes"  # the SavedModel signature these inputs are for


def image_inputs(path: Path) -> dict[str, np.ndarray]:
    """`image_bytes` (1,) holding the whole file, as `serving_bytes` takes it."""
    return {"image_bytes": np.array([Path(path).read_bytes()], dtype=object)}


def gradio_inputs() -> list[Any]:
    """One image upload, passed on as the uploaded file."""
    import gradio as gr

    return [gr.Image(label="Image", type="filepath", image_mode=None)]


def gradio_request(upload: str | None) -> dict[str, np.ndarray]:
    """The model's input for the uploaded file.

    Raises:
        ValueError: nothing uploaded.
    """
    if not upload:
        raise ValueError("Upload an image first.")
    return image_inputs(Path(upload))


def labels(outputs: dict[str, np.ndarray]) -> dict[str, float]:
    """{class name: probability} from `class_names` (1, classes) and `probabilities` (1, classes)."""
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in outputs["class_names"][0]]
    return dict(zip(names, map(float, outputs["probabilities"][0]), strict=True))
