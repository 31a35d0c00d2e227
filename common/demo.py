"""The `Demo` base class: how the Gradio app and the command-line client feed a project's served model.

A project's `demo.py` defines a subclass and an instance `DEMO`. The Gradio app
(`serving/gradio_app.py`) loads the project's SavedModel, calls `use_signature`
once, then for each submission `gradio_request(*widget values)` -> the model's
inputs -> the served signature -> `answer(inputs, outputs)` -> the output widget.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

Arrays = dict[str, np.ndarray]
# The served model as the app sees it: (signature name, inputs) -> outputs.
Predict = Callable[[str, Arrays], Arrays]


class Demo:
    """Base class of a project's demo. Subclasses set `title`, `description`, `summary` and the Gradio hooks."""

    title: ClassVar[str]  # the app's title and the web index's card
    description: ClassVar[str]  # what to do, shown under the title
    summary: ClassVar[str]  # one line for the web index
    signature: ClassVar[str] = "serving_default"  # the served signature the widgets feed

    def use_signature(self, signature: Any) -> None:
        """Called once with the served signature (`serving.signatures.Signature`) before any request, for a demo
        whose request depends on the model (the GAN's noise length). Does nothing by default."""

    def gradio_inputs(self) -> list[Any]:
        """The input widgets."""
        raise NotImplementedError(f"{type(self).__name__} has no gradio_inputs")

    def gradio_outputs(self) -> Any:
        """The output widget: by default the three most likely labels of `answer`'s {label: probability}."""
        import gradio as gr

        return gr.Label(num_top_classes=3, label="Prediction")

    def gradio_request(self, *values: Any) -> Arrays:
        """The model's inputs from the widgets' values; ValueError with a message for the user on bad input."""
        raise NotImplementedError(f"{type(self).__name__} has no gradio_request")

    def answer(self, inputs: Arrays, outputs: Arrays) -> Any:
        """The output widget's value from the request and the model's outputs (mnist: {"0": p0, ..., "9": p9})."""
        raise NotImplementedError(f"{type(self).__name__} has no answer")

    def image_inputs(self, path: Path) -> Arrays | None:
        """The model's inputs for one image file, for `serving.client --image`; ValueError if it cannot be read.

        None by default: no preprocessing of the project's own (the client resizes the image to the signature).
        """
        return None

    def build_app(self, predict: Predict, source: str) -> Any | None:
        """A Gradio app of the demo's own layout (the chatbot's chat window), or None for the standard one.

        `predict` calls the served model; `source` says which model version answers.
        """
        return None
