"""How the demos feed the GAN: a seed (and a class, for a class-conditional generator) in, an image out.

Used by the Gradio app (`python -m serving.gradio_app --project gan`, `make project=gan gradio`). The seed
draws the noise vector with NumPy's default generator, N(0, 1), exactly as `python -m projects.gan generate`
does, so the same seed gives the same image everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.demo import Arrays, Demo

SHOWN = 256  # the image is enlarged to about this side


def noise_from_seed(seed: int, latent_dim: int) -> np.ndarray:
    """(1, latent_dim) float32 N(0, 1) noise drawn from `seed`, as `generate` draws its first image."""
    return np.random.default_rng(int(seed)).standard_normal((1, latent_dim)).astype(np.float32)


class GanDemo(Demo):
    """A seed and a class id in, the generated image out (an image widget, not labels)."""

    title = "GAN art generator"
    description = (
        "Pick a seed (each one is a different noise vector) and press Submit; a class-conditional generator also "
        "takes a class id (an emoji subcategory by default: 0 is the first). The image is the EMA generator's, "
        "shown enlarged."
    )
    summary = "Generate, vary and interpolate images."

    def __init__(self) -> None:
        # What the served generator takes, read by `use_signature` before the first request.
        self.latent_dim = 64
        self.conditional = False

    def use_signature(self, signature: Any) -> None:
        """Read the noise length and whether a class is taken from the SavedModel's `serving_default` signature."""
        self.latent_dim = int(signature.inputs["noise"].shape[-1])
        self.conditional = "label" in signature.inputs

    def gradio_inputs(self) -> list[Any]:
        """A seed and a class id (used by a class-conditional generator only)."""
        import gradio as gr

        return [
            gr.Number(label="Seed", value=0, precision=0, minimum=0),
            gr.Number(label="Class id (class-conditional models only)", value=0, precision=0, minimum=0),
        ]

    def gradio_outputs(self) -> Any:
        """The generated image."""
        import gradio as gr

        return gr.Image(label="Generated image", type="numpy", image_mode="RGB")

    def gradio_request(self, seed: float | None, label: float | None) -> Arrays:
        """The serving model's inputs: `noise` (1, latent_dim) float32 [and `label` (1,) int32 when conditional].

        Raises:
            ValueError: no seed given.
        """
        if seed is None:
            raise ValueError("Enter a seed (a whole number) first.")
        inputs = {"noise": noise_from_seed(int(seed), self.latent_dim)}
        if self.conditional:
            inputs["label"] = np.array([int(label or 0)], np.int32)
        return inputs

    def answer(self, inputs: Arrays, outputs: Arrays) -> np.ndarray:
        """The image, (size*k, size*k, 3) uint8 with k = SHOWN // size, enlarged with nearest-neighbour pixels."""
        image = np.asarray(outputs["image"][0], np.uint8)
        scale = max(1, SHOWN // image.shape[0])
        return image.repeat(scale, axis=0).repeat(scale, axis=1)


DEMO = GanDemo()
