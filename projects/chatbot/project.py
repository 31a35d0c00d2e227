"""The chatbot's spec: data, model, training loss, evaluation, serving, export and the `chat` command."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import keras
import numpy as np

from common import plots
from common.cli import config_error
from common.data.splits import DataSplits, dataset_to_numpy
from common.paths import ArtifactPaths
from common.project import Project

from . import data as chatbot_data
from . import metrics as m
from .config import ChatbotConfig
from .decoding import generate, reply_ids
from .model import SmoothedSparseCrossentropy, TokenAccuracy, build_model, step_models, vocabulary_of
from .tokenizer import normalize_all

# The fixed prompts every format, the browser and the tests are checked on (greedy replies, token ids).
PROMPTS = [
    "hi! how are you doing today?",
    "what do you like to do for fun?",
    "i just got back from a trip to the beach",
    "do you have any pets?",
    "what kind of music do you listen to?",
    "i'm so tired, i didn't sleep at all last night",
    "have you seen any good movies lately?\nno, i don't really watch movies. what about you?",
    "Ça va? J'adore le café ☕",
]


class GreedyReplies:
    """What `samples.json` and the parity checks hold: context ids (batch, context_len) int32 in,
    greedy `reply_ids` (batch, reply_len) int32 out, decoded in a tf.while_loop."""

    output_names: ClassVar[list[str]] = ["reply_ids"]

    def __init__(self, model: keras.Model) -> None:
        self.encoder, self.step = step_models(model)

    def __call__(self, context: np.ndarray) -> dict[str, np.ndarray]:
        return {"reply_ids": generate(self.encoder, self.step, context).numpy()}


class ChatbotProject(Project):
    name = "chatbot"
    monitor = ("val_loss", "min")
    metric_name = "token ids agreeing"  # parity: the share of greedy reply ids equal to Keras's

    def load_data(self, cfg: ChatbotConfig) -> DataSplits:
        """Pairs of token ids (data.py); an empty split stops here with the keys to change (exit code 2)."""
        try:
            return chatbot_data.load_splits(cfg.data)
        except ValueError as err:
            config_error(self.name, str(err))

    def build_model(self, cfg: ChatbotConfig) -> keras.Model:
        """The model of `model.kind` over the training split's vocabulary; bad sizes exit with code 2."""
        try:
            return build_model(cfg, chatbot_data.load_corpus(cfg.data).vocabulary)
        except ValueError as err:
            config_error(self.name, str(err))

    def loss(self, cfg: ChatbotConfig) -> keras.losses.Loss:
        return SmoothedSparseCrossentropy(cfg.model.label_smoothing)

    def metrics(self, cfg: ChatbotConfig) -> list:
        return [TokenAccuracy()]

    def evaluate(self, cfg: ChatbotConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths):
        """Validation perplexity and token accuracy against a unigram baseline; BLEU, distinct-n and sample
        conversations on test pairs, greedy and with `decode.strategy`; plots: curves, reply lengths."""
        vocabulary = vocabulary_of(model)
        print("Scoring the validation split (teacher forcing)...")
        val = m.teacher_forced(model, data.val)
        unigram = m.unigram_perplexity(m.targets_of(data.train), m.targets_of(data.val), len(vocabulary))
        corpus = chatbot_data.load_corpus(cfg.data)
        contexts, _ = dataset_to_numpy(data.test.map(lambda x, y: (x["context"], y)))
        picks = np.sort(np.random.default_rng(cfg.data.split_seed).permutation(len(contexts))[: cfg.eval.generated])
        normalized = normalize_all([corpus.test.replies[i] for i in picks])
        references = [r.split()[: cfg.data.reply_len - 1] for r in normalized]

        encoder, step = step_models(model)
        strategies = {"greedy": dataclasses.replace(cfg.decode, strategy="greedy"), cfg.decode.strategy: cfg.decode}
        replies, metrics = (
            {},
            {
                "perplexity": val["perplexity"],
                "unigram_perplexity": unigram,
                "perplexity_ratio": val["perplexity"] / unigram,
                "token_accuracy": val["token_accuracy"],
            },
        )
        for name, decode in strategies.items():
            n = len(picks) if name != "beam" else min(len(picks), 100)  # beam search runs one reply at a time
            print(f"Generating {n} test replies ({name})...")
            ids = reply_ids(encoder, step, contexts[picks[:n]], decode)
            words = [m.words_of(row, vocabulary) for row in ids]
            replies[name] = words
            suffix = "" if name == "greedy" else f"_{name}"
            metrics[f"bleu{suffix}"] = m.bleu(words, references[:n])
            metrics[f"distinct_1{suffix}"] = m.distinct_n(words, 1)
            metrics[f"distinct_2{suffix}"] = m.distinct_n(words, 2)
            metrics[f"mean_reply_words{suffix}"] = float(np.mean([len(w) for w in words]))
        metrics["tables"] = {"Sample conversations (test split)": self._samples(cfg, corpus, picks, replies)}
        plot_paths = [plots.training_curves(paths.history_csv, paths.plots / "training_curves.png")]
        plot_paths.append(_length_plot(replies, references, paths.plots / "reply_lengths.png"))
        return metrics, plot_paths

    def _samples(self, cfg: ChatbotConfig, corpus: Any, picks: np.ndarray, replies: dict) -> list[dict[str, str]]:
        rows = []
        for k in range(min(cfg.eval.samples, len(picks))):
            row = {"context": corpus.test.contexts[picks[k]], "real reply": corpus.test.replies[picks[k]]}
            rows.append(row | {name: " ".join(words[k]) for name, words in replies.items() if k < len(words)})
        return rows

    def serving_model(self, model: keras.Model) -> GreedyReplies:
        """Context ids in, greedy reply ids out: what every format computes (the SavedModel adds text in and out)."""
        return GreedyReplies(model)

    def sample_inputs(self, cfg: ChatbotConfig) -> dict[str, np.ndarray]:
        """`PROMPTS` as context ids: {"context": (8, context_len) int32}."""
        return {"context": encode_prompts(PROMPTS, chatbot_data.load_corpus(cfg.data).vocabulary, cfg)}

    def demo_extras(self, model: keras.Model) -> dict[str, list[str]]:
        """The page shows the prompts and checks its own tokenization of them."""
        return {"prompts": PROMPTS}

    def final_answer(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return outputs["reply_ids"]

    def export(self, cfg: ChatbotConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths, verbose=False):
        """The text SavedModel, plus the encoder and decoder step as TF Lite, TF.js and ONNX: see export.py."""
        from .export import export_chatbot

        return export_chatbot(self, cfg, model, paths, verbose)

    def run_command(self, command: str, cfg: ChatbotConfig, paths: ArtifactPaths, args: Any) -> None:
        """`chat`: talk to model.keras at a prompt (see chat.py)."""
        from common.cli import load_trained_model

        from .chat import chat

        chat(load_trained_model(self.name, paths), cfg)


def encode_prompts(prompts: list[str], vocabulary: list[str], cfg: ChatbotConfig) -> np.ndarray:
    """Raw prompts (turns separated by newlines) -> context ids (n, context_len) int32."""
    import tensorflow as tf

    from .tokenizer import encode_contexts, make_vectorizer

    return encode_contexts(tf.constant(prompts), make_vectorizer(vocabulary), cfg.data.context_len).numpy()


def _length_plot(replies: dict[str, list[list[str]]], references: list[list[str]], path) -> Any:
    """Histogram of reply lengths in words: the real replies against each decoding strategy's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    longest = max(len(r) for r in references + [w for ws in replies.values() for w in ws]) + 1
    bins = np.arange(0, longest + 1)
    ax.hist([len(r) for r in references], bins=bins, alpha=0.5, label="real replies")
    for name, words in replies.items():
        ax.hist([len(w) for w in words], bins=bins, histtype="step", linewidth=2, label=name)
    ax.set_xlabel("reply length (words)")
    ax.set_ylabel("replies")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


PROJECT = ChatbotProject()
