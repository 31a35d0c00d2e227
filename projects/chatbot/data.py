"""The chatbot's data: conversations turned into (context, reply) pairs, split by conversation.

Sources (both offline, installed with the Python packages):
- `chitchat`: PyPI `chitchat-dataset` (MIT), 7,168 real two-person chats; consecutive
  messages of one speaker are joined into one turn (about 131,600 turn pairs).
- `chatterbot`: PyPI `chatterbot-corpus` (BSD), the English YAML files: about 2,000 short
  scripted exchanges, for the smoke preset and tests.

Each turn after the first is a reply; its context is the `context_turns` turns before it,
joined by newlines (a newline is a piece of the byte-level vocabulary like any other). Conversations
are shuffled with `split_seed` and cut into train/val/test, so no conversation is in two splits. The
subword vocabulary is learned from the training split's turns only (tokenizer.py).

Examples: ({"context": (context_len,) int32, "reply_in": (reply_len,) int32, "reply": (context_len,) int32},
{"logits": (reply_len,) int32, "match": () int32}): `reply_in` is <start> + the reply and the `logits`
target the reply + <end> (teacher forcing); `reply` is the reply's pieces padded on the left like a context,
what the dual encoder's reply side reads (its `match` target is unused: the right reply for each context is
the one at the same place in the batch, every other reply of the batch a negative).
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import yaml

from common.data.splits import DataSplits, seeded_split

from . import tokenizer
from .config import DataConfig


@dataclass
class Pairs:
    """(context, reply) texts of one split; `conversation` is the index of the conversation each came from."""

    contexts: list[str]
    replies: list[str]
    conversation: list[int]


@dataclass
class Corpus:
    train: Pairs
    val: Pairs
    test: Pairs
    vocabulary: list[str]
    source: str


def chitchat_conversations() -> list[list[str]]:
    """Every chitchat-dataset conversation as its list of turns (a speaker's consecutive messages joined)."""
    import chitchat_dataset

    conversations = []
    for _, convo in sorted(chitchat_dataset.Dataset().items()):
        turns = [" ".join(m["text"].strip() for m in turn).strip() for turn in convo["messages"]]
        conversations.append([t.replace("\n", " ") for t in turns if t])
    return conversations


def chatterbot_conversations() -> list[list[str]]:
    """The English chatterbot-corpus conversations, each a list of turns (non-string entries skipped)."""
    from chatterbot_corpus.corpus import DATA_DIRECTORY

    conversations = []
    for path in sorted((Path(DATA_DIRECTORY) / "english").glob("*.yml")):
        for convo in yaml.safe_load(path.read_text()).get("conversations", []):
            turns = [str(t).replace("\n", " ").strip() for t in convo if isinstance(t, str | int | float)]
            if len([t for t in turns if t]) >= 2:
                conversations.append([t for t in turns if t])
    return conversations


def to_pairs(conversations: list[list[str]], indices: np.ndarray, context_turns: int) -> Pairs:
    """The (context, reply) pairs of the conversations at `indices`, in order."""
    pairs = Pairs([], [], [])
    for k in indices:
        turns = conversations[k]
        for i in range(1, len(turns)):
            pairs.contexts.append("\n".join(turns[max(0, i - context_turns) : i]))
            pairs.replies.append(turns[i])
            pairs.conversation.append(int(k))
    return pairs


@functools.cache
def _load_corpus(cfg_json: str) -> Corpus:
    cfg = DataConfig(**json.loads(cfg_json))
    conversations = chitchat_conversations() if cfg.source == "chitchat" else chatterbot_conversations()
    source = "pypi:chitchat-dataset" if cfg.source == "chitchat" else "pypi:chatterbot-corpus (english)"
    order = np.arange(len(conversations))
    if cfg.max_conversations:
        order = np.sort(np.random.default_rng(cfg.split_seed).permutation(len(order))[: cfg.max_conversations])
    train_idx, val_idx, test_idx = seeded_split(len(order), cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
    splits = [to_pairs(conversations, np.sort(order[idx]), cfg.context_turns) for idx in (train_idx, val_idx, test_idx)]
    train_turns = [t for k in order[train_idx] for t in conversations[k]]
    vocabulary = tokenizer.learn_vocabulary(train_turns, cfg.vocab_size, cfg.min_count)
    return Corpus(*splits, vocabulary=vocabulary, source=source)


def load_corpus(cfg: DataConfig) -> Corpus:
    """The pairs of each split and the training split's vocabulary (computed once per process)."""
    return _load_corpus(json.dumps(asdict(cfg), sort_keys=True))


def encode_pairs(pairs: Pairs, vocabulary: list[str], cfg: DataConfig) -> dict[str, np.ndarray]:
    """Piece ids of a split: "context" (n, context_len), "reply_ids" (n, reply_len + 1) (<start>, pieces, <end>)
    and "reply" (n, context_len) (the pieces alone, padded on the left), all int32."""
    pieces = tokenizer.PieceTokenizer(vocabulary)
    context = tf.function(lambda t: pieces.context_ids(t, cfg.context_len))
    reply = tf.function(lambda t: pieces.reply_ids(t, cfg.reply_len))
    contexts = tokenizer.batched(context, pairs.contexts)
    reply_ids = tokenizer.batched(reply, pairs.replies)
    return {"context": contexts, "reply_ids": reply_ids, "reply": tokenizer.batched(context, pairs.replies)}


def to_dataset(ids: dict[str, np.ndarray], shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Teacher forcing and matching: (inputs, targets) per pair as in the module docstring, unbatched; in a seeded
    order with `shuffle_seed` (pairs stay in conversation order otherwise)."""
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(ids["context"]))
        ids = {key: value[order] for key, value in ids.items()}
    replies = ids["reply_ids"]
    inputs = {"context": ids["context"], "reply_in": replies[:, :-1], "reply": ids["reply"]}
    targets = {"logits": replies[:, 1:], "match": np.zeros(len(replies), np.int32)}
    return tf.data.Dataset.from_tensor_slices((inputs, targets))


def load_splits(cfg: DataConfig) -> DataSplits:
    """Train/val/test datasets of token ids (see the module docstring)."""
    corpus = load_corpus(cfg)
    datasets, sizes = {}, {}
    for name in ("train", "val", "test"):
        pairs = getattr(corpus, name)
        if not pairs.replies:
            raise ValueError(
                f"the {name} split of {corpus.source} is empty; use more conversations (data.max_conversations) "
                "or a larger data.val_fraction / data.test_fraction"
            )
        # Validation batches are mixed once: in conversation order, a pair's context holds the reply of the pair
        # before it, so the matching's in-batch negatives would include near-copies of the right answer.
        seed = cfg.split_seed if name == "val" else None
        datasets[name] = to_dataset(encode_pairs(pairs, corpus.vocabulary, cfg), shuffle_seed=seed)
        sizes[name] = len(pairs.replies)
    return DataSplits(**datasets, source=corpus.source, sizes=sizes)
