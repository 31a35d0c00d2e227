"""The chatbot's Gradio demo: a `gr.ChatInterface` over the served text SavedModel.

    make project=chatbot gradio        # or: python -m serving.gradio_app --project chatbot

Each message is sent with the previous turn (the bot's last reply) as context, turns joined
by a newline as the SavedModel's `text` input expects. The "sampling" box picks the signature:
`sample` (nucleus, temperature 0.8, top-p 0.9, a new seed per message) or `serving_default` (greedy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

TITLE = "Transformer chatbot"
DESCRIPTION = "A small encoder-decoder trained on chitchat-dataset. Type a message in English."
MAX_CHARS = 500


def request(message: str, history: list[dict[str, Any]], sampling: bool, seed: int) -> tuple[str, dict[str, Any]]:
    """(signature name, inputs) for a message and the chat so far (Gradio's messages format).

    Raises:
        ValueError: an empty message.
    """
    message = (message or "").replace("\n", " ").strip()[:MAX_CHARS]
    if not message:
        raise ValueError("Type a message first.")
    previous = [str(turn["content"]) for turn in history[-1:] if isinstance(turn.get("content"), str)]
    text = np.array(["\n".join([*previous, message])], dtype=object)
    if not sampling:
        return "serving_default", {"text": text}
    scalars = {"temperature": np.float32(0.8), "top_k": np.int32(4000), "top_p": np.float32(0.9)}
    return "sample", {"text": text, **scalars, "seed": np.int32(seed)}


def build_app(repository: Path, version: int | None = None) -> Any:
    """The Gradio app over the chatbot's SavedModel in `repository` (the latest version unless `version`)."""
    import gradio as gr

    from serving.model_version import LoadedVersion
    from serving.repository import find_version

    from .project import PROJECT

    number, path = find_version(repository, PROJECT.serving_name, version)
    model = LoadedVersion(PROJECT.serving_name, number, path)

    def respond(message: str, history: list[dict[str, Any]], sampling: bool) -> str:
        try:
            signature, inputs = request(message, history, sampling, seed=len(history))
        except ValueError as err:
            raise gr.Error(str(err)) from None
        reply = model.predict(signature, inputs)["reply"][0]
        return (reply.decode() if isinstance(reply, bytes) else str(reply)) or "..."

    return gr.ChatInterface(
        respond,
        additional_inputs=[gr.Checkbox(value=True, label="sampling (nucleus) instead of greedy")],
        title=TITLE,
        description=f"{DESCRIPTION}\n\nModel: {PROJECT.serving_name} version {number} ({path})",
        analytics_enabled=False,
    )
