"""The chatbot's Gradio demo: a `gr.ChatInterface` over the served text SavedModel.

    make project=chatbot gradio        # or: python -m serving.gradio_app --project chatbot

Each message is sent with the previous turn (the bot's last reply) as context, turns joined
by a newline as the SavedModel's `text` input expects. The "decoding" menu picks the signature:
`retrieve` (the closest training reply, first), `rerank` (the best of several nucleus samples by the dual
encoder), `greedy` or `sample` (top-k or nucleus, temperature 0.8, a new seed per message).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.demo import Arrays, Demo, Predict

MAX_CHARS = 500  # longer messages are cut, as `chat` does
NO_TOP_K = np.int32(np.iinfo(np.int32).max)
STRATEGIES = {  # the menu's label -> strategy
    "retrieve: the closest training reply": "retrieve",
    "rerank: best of several samples, by the dual encoder": "rerank",
    "nucleus sampling (p 0.9)": "nucleus",
    "top-k sampling (k 20)": "top_k",
    "greedy": "greedy",
}


class ChatbotDemo(Demo):
    """A chat window: the message and the last turn in, the reply as text out."""

    title = "Transformer chatbot"
    description = (
        "A small encoder-decoder and a dual encoder trained on chitchat-dataset. Any language or emoji is read; "
        "it was trained on English small talk."
    )
    summary = "Talk to a small encoder-decoder, or retrieve and rerank with a dual encoder."

    def request(self, message: str, history: list[dict[str, Any]], strategy: str, seed: int) -> tuple[str, Arrays]:
        """(signature name, inputs) for a message and the chat so far (Gradio's messages format).

        Inputs: `text` (1,) string, the last turn and the message joined by a newline; for `sample` also the
        scalars `temperature`, `top_k`, `top_p` and `seed`, for `rerank` `temperature`, `top_p` and `seed`.

        Raises:
            ValueError: an empty message, or an unknown strategy.
        """
        message = (message or "").replace("\n", " ").strip()[:MAX_CHARS]
        if not message:
            raise ValueError("Type a message first.")
        previous = [str(turn["content"]) for turn in history[-1:] if isinstance(turn.get("content"), str)]
        text = np.array(["\n".join([*previous, message])], dtype=object)
        temperature, seed_ = np.float32(0.8), np.int32(seed)
        if strategy in ("greedy", "retrieve"):
            return strategy, {"text": text}
        if strategy == "rerank":
            return "rerank", {"text": text, "temperature": temperature, "top_p": np.float32(0.9), "seed": seed_}
        if strategy in ("nucleus", "top_k"):
            # A top_k above any vocabulary size turns top-k off; top_p = 1 turns nucleus off.
            top_k, top_p = (NO_TOP_K, np.float32(0.9)) if strategy == "nucleus" else (np.int32(20), np.float32(1.0))
            return "sample", {"text": text, "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed_}
        raise ValueError(f"unknown decoding strategy {strategy!r}; pick one of {sorted(set(STRATEGIES.values()))}")

    def build_app(self, predict: Predict, source: str) -> Any:
        """The chat window; `predict` calls the served SavedModel, `source` says which version answers."""
        import gradio as gr

        def respond(message: str, history: list[dict[str, Any]], label: str) -> str:
            try:
                signature, inputs = self.request(message, history, STRATEGIES.get(label, label), seed=len(history))
            except ValueError as err:
                raise gr.Error(str(err)) from None
            reply = predict(signature, inputs)["reply"][0]
            return (reply.decode() if isinstance(reply, bytes) else str(reply)) or "..."

        return gr.ChatInterface(
            respond,
            additional_inputs=[gr.Dropdown(list(STRATEGIES), value=next(iter(STRATEGIES)), label="decoding")],
            title=self.title,
            description=f"{self.description}\n\n{source}",
            analytics_enabled=False,
        )


DEMO = ChatbotDemo()
