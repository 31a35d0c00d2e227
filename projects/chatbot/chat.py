"""`python -m projects.chatbot chat`: talk to the trained model at a prompt.

Each message is sent with the last `chat.turns` turns before it (yours and the bot's) as
context, so the conversation carries on; `/reset` forgets them, `/quit` (or Ctrl-D) ends.
Decoding follows `decode.*` (e.g. `--set decode.strategy=beam`); `retrieve` answers from the
reply bank of the training replies, built when the chat starts. Input is read from the
terminal, or line by line from a pipe: `echo "hi there" | python -m projects.chatbot chat`.

Handled on purpose: an empty line is skipped with a hint; a message longer than
`chat.max_chars` characters is cut, with a note (and the model reads only its last
`data.context_len` pieces anyway, also noted). Any other text, in any script or emoji, is read:
the byte-level vocabulary has a piece for every byte.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import keras
import tensorflow as tf

from . import retrieval
from .config import ChatbotConfig
from .data import load_corpus
from .decoding import ReplyGenerator
from .model import retrieval_models, vocabulary_of
from .tokenizer import PieceTokenizer


def _lines(interactive: bool) -> Iterator[str]:
    if not interactive:
        yield from sys.stdin
        return
    while True:
        try:
            yield input("you> ")
        except EOFError:
            print()
            return


class Chatbot:
    """A conversation with a trained model: `reply(message)` returns the bot's answer and notes about the input."""

    def __init__(self, model: keras.Model, cfg: ChatbotConfig) -> None:
        self.cfg = cfg
        bank = None
        if cfg.decode.strategy == "retrieve":
            bank = retrieval.build_bank(model, retrieval_models(model)[1], load_corpus(cfg.data), cfg)
        self.generate = ReplyGenerator(model, cfg, bank=bank)
        self.pieces = PieceTokenizer(vocabulary_of(model))
        self.turns = cfg.chat.turns or max(0, cfg.data.context_turns - 1)
        self.history: list[str] = []

    def reply(self, message: str) -> tuple[str | None, list[str]]:
        """(the reply, or None when there is nothing to answer; notes for the user about their message)."""
        message = message.replace("\n", " ").strip()
        cfg = self.cfg
        if not message:
            return None, ["(empty message: type something, /reset to start over, /quit to leave)"]
        notes = []
        if len(message) > cfg.chat.max_chars:
            message = message[: cfg.chat.max_chars]
            notes.append(f"(note: your message was cut to its first {cfg.chat.max_chars} characters)")
        if int(self.pieces.piece_ids(tf.constant([message])).row_lengths()[0]) > cfg.data.context_len:
            notes.append(f"(note: I only read the last {cfg.data.context_len} pieces of that)")
        earlier = self.history[-self.turns :] if self.turns else []
        context = self.pieces.context_ids(tf.constant(["\n".join([*earlier, message])]), retrieval.context_width(cfg))
        answer = self.generate(context.numpy(), seed=cfg.decode.seed + len(self.history))[0] or "..."
        self.history += [message, answer]
        return answer, notes

    def reset(self) -> None:
        self.history = []


def chat(model: keras.Model, cfg: ChatbotConfig) -> None:
    """The prompt loop (see the module docstring)."""
    bot = Chatbot(model, cfg)
    interactive = sys.stdin.isatty()
    d = cfg.decode
    strategy = {
        "greedy": "greedy",
        "top_k": f"top-{d.top_k} sampling",
        "nucleus": f"nucleus (p={d.top_p})",
        "beam": f"beam search (width {d.beam_width})",
        "retrieve": "retrieval from the training replies",
        "rerank": f"the best of {cfg.retrieval.candidates} nucleus samples (p={d.top_p}) by the dual encoder",
    }[d.strategy]
    print(f"Chatbot: {model.name}, decoding: {strategy}, remembering {bot.turns} earlier turns.")
    print("Empty lines are skipped; /reset forgets the conversation; /quit or Ctrl-D ends.")
    for line in _lines(interactive):
        text = line.strip()
        if text in ("/quit", "/exit"):
            break
        if text == "/reset":
            bot.reset()
            print("(conversation forgotten)")
            continue
        if not interactive:
            print(f"you> {text}")
        answer, notes = bot.reply(line)
        for note in notes:
            print(note)
        if answer is not None:
            print(f"bot> {answer}", flush=True)
