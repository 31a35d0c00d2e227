"""The chatbot's recipe: data, model, training loss, evaluation, serving, export and the `chat` command."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import keras
import numpy as np

from common import plots
from common.config import ConfigError, to_dict
from common.data.splits import DataSplits
from common.export import ExportPlan
from common.export.parity import Arrays
from common.paths import ArtifactPaths
from common.project import Project
from common.training import fit, make_optimizer, steps_per_epoch, strategy_scope

from . import data as chatbot_data
from . import export, retrieval
from . import metrics as m
from .config import STRATEGIES, ChatbotConfig
from .decoding import ReplyGenerator
from .loss import InBatchSoftmax, SmoothedSparseCrossentropy
from .model import NEVER_GENERATED, build_model, retrieval_models, vocabulary_of
from .pretrain import check_pretrained, load_pretrained_encoder, pretrain
from .prompts import EVERYDAY, PROMPTS
from .serving_model import GreedyReplies, build_serving_model


class ChatbotProject(Project):
    name = "chatbot"
    monitor = ("val_loss", "min")
    metric_name = "token ids agreeing"  # parity: the share of greedy reply ids equal to Keras's
    exact_answers = True  # parity: a format passes only when every greedy reply is Keras's, word for word

    def load_data(self, cfg: ChatbotConfig) -> DataSplits:
        """Pairs of token ids (data.py); an empty split stops here with the keys to change (exit code 2)."""
        try:
            return chatbot_data.load_splits(cfg.data)
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def build_model(self, cfg: ChatbotConfig) -> keras.Model:
        """The model of `model.kind` over the training split's vocabulary; bad sizes exit with code 2."""
        try:
            return build_model(cfg, chatbot_data.load_corpus(cfg.data).vocabulary)
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def loss(self, cfg: ChatbotConfig) -> dict[str, keras.losses.Loss]:
        """The generator's cross-entropy over real target tokens, label-smoothed by `model.label_smoothing`, and the
        dual encoder's in-batch softmax (loss.py)."""
        return {"logits": SmoothedSparseCrossentropy(cfg.model.label_smoothing), "match": InBatchSoftmax()}

    def loss_weights(self, cfg: ChatbotConfig) -> dict[str, float]:
        """The generator's loss at 1, the matching loss at `retrieval.weight`."""
        return {"logits": 1.0, "match": cfg.retrieval.weight}

    def search_space(self, cfg: ChatbotConfig) -> dict:
        """The transformer's width, depth, feed-forward width and dropout, and the learning rate: what moves the
        validation loss (the generator's smoothed cross-entropy plus the weighted matching loss). The label smoothing,
        the matching weight and the batch size (the in-batch negatives) stay out: they change that loss's scale.
        Lists only, so `tune.algorithm=grid` can walk it (3 x 3 x 2 x 3 x 3 = 162 combinations)."""
        return {
            "model.d_model": [96, 128, 192],
            "model.encoder_layers": [1, 2, 3],
            "model.ff_dim": [256, 512],
            "model.dropout": [0.0, 0.1, 0.2],
            "train.learning_rate": [1e-3, 2e-3, 4e-3],
        }

    def metrics(self, cfg: ChatbotConfig) -> dict[str, list]:
        """The share of real target tokens predicted right (padding ignored); the share of contexts whose own
        reply scores best in the batch."""
        return {"logits": [m.TokenAccuracy()], "match": [m.MatchAccuracy()]}

    def train(self, cfg: ChatbotConfig, data: DataSplits, paths: ArtifactPaths) -> keras.Model:
        """Teacher forcing (the model reads the context and the reply so far, and predicts every next piece) and
        matching (each context against every reply of the batch), both at once."""
        encoder_weights = self._encoder_weights(cfg, paths)  # pretraining first, if asked and not done yet
        with strategy_scope(cfg.train):
            model = self.build_model(cfg)
            if encoder_weights is not None:
                load_pretrained_encoder(model, encoder_weights)
                print(f"Encoder initialised from {encoder_weights}")
            model.compile(
                optimizer=make_optimizer(cfg.train, steps_per_epoch(data, cfg.train.batch_size)),
                loss=self.loss(cfg),
                loss_weights=self.loss_weights(cfg),
                metrics=self.metrics(cfg),
            )
        return fit(
            model, data, cfg.train, paths, monitor=self.monitor, summary={"project": self.name, "config": to_dict(cfg)}
        )

    def _encoder_weights(self, cfg: ChatbotConfig, paths: ArtifactPaths) -> Path | None:
        """The pretrained encoder's weights file with `model.weights=pretrained` (pretraining first if there is none
        for these settings), else None."""
        if cfg.model.weights == "none":
            return None
        return check_pretrained(cfg, paths) or pretrain(cfg, paths)

    def evaluate(self, cfg: ChatbotConfig, model: keras.Model, data: DataSplits, paths: ArtifactPaths):
        """Validation perplexity and token accuracy against a unigram baseline; retrieval's hits@1 of 20 on test
        pairs (the dual encoder plus TF-IDF over pieces, with and without the overlap cap, and each alone) against
        TF-IDF over words; BLEU, distinct-n and sample replies of every strategy (test pairs and the everyday
        prompts); plots: curves, reply lengths."""
        vocabulary = vocabulary_of(model)
        print("Scoring the validation split (teacher forcing)...")
        val = m.teacher_forced(model, data.val)
        unigram = m.unigram_perplexity(m.targets_of(data.train), m.targets_of(data.val), len(vocabulary))
        corpus = chatbot_data.load_corpus(cfg.data)
        metrics: dict[str, Any] = {
            "perplexity": val["perplexity"],
            "unigram_perplexity": unigram,
            "perplexity_ratio": val["perplexity"] / unigram,
            "token_accuracy": val["token_accuracy"],
        }
        print("Ranking test replies (dual encoder, TF-IDF over pieces, both; TF-IDF over words)...")
        context_vector, reply_vector = retrieval_models(model)
        rows = retrieval.ranking_candidates(corpus.test, cfg.eval.generated, cfg.data.split_seed)
        bank = retrieval.build_bank(model, reply_vector, corpus, cfg)
        dense, lexical = retrieval.ranking_scores(
            context_vector, reply_vector, bank.index, vocabulary, corpus.test, rows, cfg.data.context_len
        )
        r = cfg.retrieval
        metrics["hits_at_1_of_20"] = m.hits_at_1(retrieval.combined(dense, lexical, r.lexical_weight, r.max_overlap))
        metrics["uncapped_hits_at_1_of_20"] = m.hits_at_1(retrieval.combined(dense, lexical, r.lexical_weight, 1.0))
        metrics["dense_hits_at_1_of_20"] = m.hits_at_1(dense)
        metrics["lexical_hits_at_1_of_20"] = m.hits_at_1(lexical)
        metrics["tfidf_hits_at_1_of_20"] = retrieval.tfidf_hits_at_1_of_20(corpus.train, corpus.test, rows)
        metrics["bank_replies"] = len(bank.texts)

        picks = rows[:, 0]
        width = retrieval.context_width(cfg)
        contexts = retrieval.encode_texts(vocabulary, [corpus.test.contexts[i] for i in picks], width)
        everyday = retrieval.encode_texts(vocabulary, EVERYDAY, width)
        references = [corpus.test.replies[i].split() for i in picks]
        replies, answers = {}, {}
        for name in STRATEGIES:
            generator = ReplyGenerator(model, cfg, dataclasses.replace(cfg.decode, strategy=name), bank)
            n = len(picks) if name != "beam" else min(len(picks), 20)  # beam search runs one reply at a time, slowly
            print(f"Generating {n} test replies and {len(EVERYDAY)} to everyday prompts ({name})...")
            texts = generator(np.concatenate([contexts[:n], everyday]))  # one batch: the loop is traced once
            words, answers[name] = [text.split() for text in texts[:n]], texts[n:]
            replies[name] = words
            metrics[f"bleu_{name}"] = m.bleu(words, references[:n])
            metrics[f"distinct_1_{name}"] = m.distinct_n(words, 1)
            metrics[f"distinct_2_{name}"] = m.distinct_n(words, 2)
            metrics[f"mean_reply_words_{name}"] = float(np.mean([len(w) for w in words]))
        metrics["tables"] = {
            "Everyday prompts, the reply of each strategy": [
                {"prompt": prompt, **{name: answers[name][k] for name in STRATEGIES}}
                for k, prompt in enumerate(EVERYDAY)
            ],
            "Sample conversations (test split)": self._samples(cfg, corpus, picks, replies),
        }
        plot_paths = [plots.training_curves(paths.history_csv, paths.plots / "training_curves.png")]
        plot_paths.append(_length_plot(replies, references, paths.plots / "reply_lengths.png"))
        return metrics, plot_paths

    def _samples(self, cfg: ChatbotConfig, corpus: Any, picks: np.ndarray, replies: dict) -> list[dict[str, str]]:
        rows = []
        for k in range(min(cfg.eval.samples, len(picks))):
            row = {"context": corpus.test.contexts[picks[k]], "real reply": corpus.test.replies[picks[k]]}
            rows.append(row | {name: " ".join(words[k]) for name, words in replies.items() if k < len(words)})
        return rows

    def serving_model(self, model: keras.Model, cfg: ChatbotConfig) -> GreedyReplies:
        """Context ids in, greedy reply ids out: what every format computes (the SavedModel adds text in and out)."""
        return build_serving_model(model)

    def export_plan(
        self, cfg: ChatbotConfig, model: keras.Model, data: DataSplits, verbose: bool = False
    ) -> ExportPlan:
        """The text SavedModel (the reply bank inside), plus the encoder, decoder step and the dual encoder's sides
        as TF Lite, TF.js and ONNX: see export.py."""
        corpus = chatbot_data.load_corpus(cfg.data)
        bank = retrieval.build_bank(model, retrieval_models(model)[1], corpus, cfg)
        return export.export_plan(cfg, model, bank, verbose)

    def sample_inputs(self, cfg: ChatbotConfig) -> dict[str, np.ndarray]:
        """`prompts.PROMPTS` as context ids: {"context": (8, context_len) int32}."""
        vocabulary = chatbot_data.load_corpus(cfg.data).vocabulary
        return {"context": export.encode_prompts(PROMPTS, vocabulary, cfg)}

    def demo_extras(self, model: keras.Model, cfg: ChatbotConfig) -> dict[str, list[str]]:
        """The page shows the prompts and checks its own tokenization of them."""
        return {"prompts": PROMPTS}

    def final_answer(self, outputs: Arrays) -> np.ndarray:
        """The greedy reply ids (n, reply_len)."""
        return outputs["reply_ids"]

    def output_distance(self, outputs: Arrays, reference: Arrays) -> float:
        """Largest |first-step logit - Keras's| over the pieces that can be generated, or |context vector -
        Keras's|; 0 for the text SavedModel, which returns neither (its reply ids are compared exactly)."""
        if "logits" not in outputs:
            return 0.0
        # The ids never generated have logits of about -1e9: they are not compared.
        kept = np.setdiff1d(np.arange(reference["logits"].shape[1]), NEVER_GENERATED)
        logits = np.max(np.abs(outputs["logits"][:, kept] - reference["logits"][:, kept]))
        return float(max(logits, np.max(np.abs(outputs["vector"] - reference["vector"]))))

    def answer_metric(self, answers: np.ndarray, targets: np.ndarray) -> float:
        """The share of reply token ids equal to `targets`, Keras's greedy reply ids."""
        return float(np.mean(answers == targets))

    def run_command(self, command: str, cfg: ChatbotConfig, paths: ArtifactPaths, args: Any) -> None:
        """`chat`: talk to model.keras at a prompt (see chat.py); `pretrain`: masked-language pretraining of the
        encoder (pretrain.py)."""
        if command == "pretrain":
            pretrain(cfg, paths)
            return
        from common.cli import load_trained_model  # here, not at the top: common.cli imports this module

        from .chat import chat

        chat(load_trained_model(self.name, paths), cfg)


def _length_plot(replies: dict[str, list[list[str]]], references: list[list[str]], path: Path) -> Path:
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
