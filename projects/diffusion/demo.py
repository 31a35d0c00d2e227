"""How the demos feed the diffusion model: a seed, DDIM steps (and a class and guidance) in, an image out.

Used by the Gradio app (`python -m serving.gradio_app --project diffusion`). The seed draws the noise with
TensorFlow's stateless generator (`sampling.noise_from_seeds`), as `python -m projects.diffusion generate` does,
so the same seed, steps and class give the same image everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.demo import Arrays, Demo

SHOWN = 256  # the image is enlarged to about this side


class DiffusionDemo(Demo):
    """A seed, DDIM steps, a class id and a guidance scale in; the sampled image out."""

    title = "Diffusion art generator (DDIM)"
    description = (
        "Pick a seed (each one is a different starting noise) and a number of DDIM steps (more: slower, finer); a "
        "class-conditional model also takes a class id (0 is the first category) and a guidance scale "
        "(0: ignore the class, 1: plain conditional, higher: follow it more closely)."
    )
    summary = "Sample images by DDIM, with steps, class and guidance."

    def __init__(self) -> None:
        self.conditional = True  # what the served model takes, read by `use_signature` before the first request

    def use_signature(self, signature: Any) -> None:
        """Whether the served sampler takes a class (and guidance), from its `serving_default` signature."""
        self.conditional = "label" in signature.inputs

    def gradio_inputs(self) -> list[Any]:
        """Seed, steps, class id, guidance."""
        import gradio as gr

        return [
            gr.Number(label="Seed", value=0, precision=0, minimum=0),
            gr.Slider(1, 250, value=50, step=1, label="DDIM steps"),
            gr.Number(label="Class id (class-conditional models only)", value=0, precision=0, minimum=0),
            gr.Number(label="Guidance scale (class-conditional models only)", value=2.0, minimum=0),
        ]

    def gradio_outputs(self) -> Any:
        """The sampled image."""
        import gradio as gr

        return gr.Image(label="Sampled image", type="numpy", image_mode="RGB")

    def gradio_request(self, seed: float | None, steps: float, label: float | None, guidance: float | None) -> Arrays:
        """`seed` and `steps` (1,) int32 [and `label` (1,) int32, `guidance` (1,) float32 when conditional].

        Raises:
            ValueError: no seed, or steps below 1 (the server names the upper bound).
        """
        if seed is None:
            raise ValueError("Enter a seed (a whole number) first.")
        if steps is None or int(steps) < 1:
            raise ValueError("DDIM steps must be at least 1.")
        inputs = {"seed": np.array([int(seed)], np.int32), "steps": np.array([int(steps)], np.int32)}
        if self.conditional:
            inputs["label"] = np.array([int(label or 0)], np.int32)
            inputs["guidance"] = np.array([1.0 if guidance is None else float(guidance)], np.float32)
        return inputs

    def answer(self, inputs: Arrays, outputs: Arrays) -> np.ndarray:
        """The image, (size*k, size*k, 3) uint8 with k = SHOWN // size, enlarged with nearest-neighbour pixels."""
        image = np.asarray(outputs["image"][0], np.uint8)
        scale = max(1, SHOWN // image.shape[0])
        return image.repeat(scale, axis=0).repeat(scale, axis=1)


DEMO = DiffusionDemo()
