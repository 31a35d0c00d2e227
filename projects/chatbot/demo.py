"""The chatbot's Gradio demo: a `gr.ChatInterface` over the served text SavedModel.

    make project=chatbot gradio        # or: python -m serving.gradio_app --project chatbot

Each message is sent with the previous turn (the bot's last reply) as context, turns joined
by a newline as the SavedModel's `text` input expects. The "sampling" box picks the signature:
`sample` (nucleus, temperature 0.8, top-p 0.9, a new seed per message) or `serving_default` (greedy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.demo import Arrays, Demo, Predict

MAX_CHARS = 500  # longer messages are cut, as `chat` does
NO_TOP_K = np.int32(np.iinfo(np.int32).max)


class ChatbotDemo(Demo):
    """A chat window: the message and the last turn in, the reply as text out."""

    title = "Transformer chatbot"
    description = "A small encoder-decoder trained on chitchat-dataset. Type a message in English."
    summary = "Talk to a small encoder-decoder."

    def request(self, message: str, history: list[dict[str, Any]], sampling: bool, seed: int) -> tuple[str, Arrays]:
        """(signature name, inputs) for a message and the chat so far (Gradio's messages format).

        Inputs: `text` (1,) string, the last turn and the message joined by a newline; for `sample` also the
        scalars `temperature`, `top_k`, `top_p` and `seed`.

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
        # A top_k above any vocabulary size turns top-k off: nucleus sampling only.
        scalars = {"temperature": np.float32(0.8), "top_k": NO_TOP_K, "top_p": np.float32(0.9)}
        return "sample", {"text": text, **scalars, "seed": np.int32(seed)}

    def build_app(self, predict: Predict, source: str) -> Any:
        """The chat window; `predict` calls the served SavedModel, `source` says which version answers."""
        import gradio as gr

        def respond(message: str, history: list[dict[str, Any]], sampling: bool) -> str:
            try:
                signature, inputs = self.request(message, history, sampling, seed=len(history))
            except ValueError as err:
                raise gr.Error(str(err)) from None
            reply = predict(signature, inputs)["reply"][0]
            return (reply.decode() if isinstance(reply, bytes) else str(reply)) or "..."

        return gr.ChatInterface(
            respond,
            additional_inputs=[gr.Checkbox(value=True, label="sampling (nucleus) instead of greedy")],
            title=self.title,
            description=f"{self.description}\n\n{source}",
            analytics_enabled=False,
        )


DEMO = ChatbotDemo()
