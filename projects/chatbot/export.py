"""The chatbot's export plan: a text-in, text-out SavedModel for serving, and token-level models for every other format.

`common.export.export_project` carries it out (converting, staging, parity, the report), as for every project:
- SavedModel (serving repository, `<serving_root>/chatbot/<version>/`): its signatures take `text` (batch,)
  string and return `reply` (batch,) string, tokenized, decoded or retrieved in the graph, the reply bank
  inside (serving_model.py).
- TF Lite, TF.js and ONNX cannot run the string ops, so they get the parts of `model.step_models` (the
  encoder and the decoder step) and `model.dual_vectors` (the dual encoder's context and reply vectors of
  the same ids), with int32 ids in, and the vocabulary as JSON; the client tokenizes and runs the loop
  (the browser: serving/web/js/projects/chatbot-decoder.js):
    export/tflite/{encoder,decoder_step,vectors}.tflite (float32), the same with weights in float16
    (`*_float16.tflite`, half the size) and in int8 (`*_dynamic.tflite`, dynamic-range: a quarter), the same under
    export/onnx/*.onnx
    export/tfjs/model.json (the decoder step), export/tfjs/encoder/model.json, export/tfjs/vectors/model.json
    export/vocabulary.json and export/reply_bank.json (the first BROWSER_BANK replies, their vectors
    and TF-IDF rows),
    also in export/tfjs/ for the page
- Parity (`parity.json`, `parity.md`): the fixed `PROMPTS` decoded greedily by Keras and by each format
  (`greedy_loop` over its encoder and step), and their context vectors; a format passes when every reply's
  token ids equal Keras's (`ChatbotProject.exact_answers`) and its first-step logits and context vectors are
  within the float bound. TF.js also tokenizes the prompts itself, in JavaScript (tfjs_greedy.mjs, with the
  browser's own code). The SavedModel's `retrieve` must find the Python reply bank's best scores for them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common.export import ExportPlan, Format, Predict
from common.export.parity import Arrays
from common.export.tools import ConversionError, run_tool

from .config import ChatbotConfig
from .model import dual_vectors, retrieval_models, step_models, vocabulary_of
from .prompts import PROMPTS
from .retrieval import CAPPED, ReplyBank, context_width, encode_texts
from .serving_model import write_text_savedmodel
from .tokenizer import END, FIRST_PIECE, MASK, MAX_BYTES, PAD, START, PieceTokenizer

# Dynamic-range TF Lite quantizes activations to int8 on the fly, inside every matrix product: where two pieces'
# logits are close, the greedy reply can take the other one and go on differently (measured on the smoke model:
# 1 of the 8 fixed prompts). So it is held to the share of reply token ids equal to Keras's, at most this far off,
# instead of word for word; a broken conversion answers near chance (1 in the vocabulary's size).
DYNAMIC_TOKEN_BOUND = 0.25
RETRIEVE_BOUND = 1e-4  # the SavedModel's best retrieve scores against the Python bank's (float32 sums)
BROWSER_BANK = 3000  # replies of the bank the browser page retrieves from (the SavedModel keeps them all)
GREEDY_SCRIPT = Path(__file__).with_name("tfjs_greedy.mjs")
SIGNATURE = {
    "savedmodel": {"inputs": {"text": "string (None,)"}, "outputs": {"reply": "string (None,)"}},
    "encoder": {"inputs": {"context": "int32 (None, context_len)"}, "outputs": {"encoded": "float32"}},
    "decoder_step": {
        "inputs": {"encoded": "float32", "context": "int32", "reply": "int32", "position": "int32 (None,)"},
        "outputs": {"logits": "float32 (None, vocab)", "next_id": "int32 (None,)"},
    },
    "vectors": {"inputs": {"ids": "int32 (None, context_len)"}, "outputs": {"vectors": "float32 (None, 2, dim)"}},
}


def encode_prompts(prompts: list[str], vocabulary: list[str], cfg: ChatbotConfig) -> np.ndarray:
    """Raw prompts (turns separated by newlines) -> context ids (n, context_len) int32."""
    return encode_texts(vocabulary, prompts, cfg.data.context_len)


def greedy_loop(encode: Predict, step: Predict, context: np.ndarray, reply_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy reply ids (n, reply_len) int32 and first-step logits (n, vocab) from numpy encoder and step functions.

    The same loop as decoding.generate and the browser's: ids after a reply's <end> are 0.
    """
    context = np.asarray(context, np.int32)
    n = len(context)
    encoded = encode({"context": context})["encoded"]
    reply = np.zeros((n, reply_len), np.int32)
    reply[:, 0] = START
    out = np.zeros((n, reply_len), np.int32)
    done = np.zeros(n, bool)
    first = None
    for t in range(reply_len):
        result = step({"encoded": encoded, "context": context, "reply": reply, "position": np.full(n, t, np.int32)})
        first = result["logits"] if first is None else first
        word = np.where(done, 0, np.asarray(result["next_id"]).astype(np.int32))
        out[:, t] = word
        if t + 1 < reply_len:
            reply[:, t + 1] = word
        done |= word == END
        if done.all():
            break
    return out, np.asarray(first)


def vocabulary_json(vocabulary: list[str], cfg: ChatbotConfig) -> dict[str, Any]:
    """What a client needs beside the models: the pieces by id (one character per byte), the lengths, the special
    ids and the decoding settings of the dual encoder's rerank."""
    return {
        "vocabulary": vocabulary,
        "context_len": cfg.data.context_len,
        "reply_len": cfg.data.reply_len,
        "max_bytes": MAX_BYTES,
        "ids": {"pad": PAD, "start": START, "end": END, "mask": MASK, "first_piece": FIRST_PIECE},
        "candidates": cfg.retrieval.candidates,
    }


def bank_json(bank: ReplyBank, size: int) -> dict[str, Any]:
    """The browser's reply bank: the first `size` replies, their vectors and TF-IDF rows (`pieces` ids and
    `weights` of each), rounded to 4 decimals, and what scores a context's pieces (`idf`, `lexical_len`,
    `lexical_weight`, `max_overlap`, `capped`)."""
    rows = bank.lexical[:size]
    pieces = [rows.indices[rows.indptr[i] : rows.indptr[i + 1]].tolist() for i in range(rows.shape[0])]
    weights = [np.round(rows.data[rows.indptr[i] : rows.indptr[i + 1]], 4).tolist() for i in range(rows.shape[0])]
    return {
        "texts": bank.texts[:size],
        "vectors": np.round(bank.vectors[:size], 4).tolist(),
        "pieces": pieces,
        "weights": weights,
        "idf": np.round(bank.index.idf, 5).tolist(),
        "lexical_len": bank.index.length,
        "lexical_weight": bank.lexical_weight,
        "max_overlap": bank.max_overlap,
        "capped": CAPPED,
    }


def export_plan(cfg: ChatbotConfig, model: keras.Model, bank: ReplyBank, verbose: bool = False) -> ExportPlan:
    """The text SavedModel served (the reply `bank` inside); the decoder step, the encoder and the dual encoder's
    two sides converted to TF Lite (float32, float16 and dynamic-range weights), TF.js and ONNX.

    Parity: the greedy reply ids (n, reply_len), first-step logits (n, vocab) and context vectors (n, dim) of
    `PROMPTS`.
    """
    vocabulary = vocabulary_of(model)
    encoder, step = step_models(model)
    vector_model = dual_vectors(model)
    reply_len = step.input["reply"].shape[1]
    context = encode_prompts(PROMPTS, vocabulary, cfg)
    ids, logits = greedy_loop(_keras_predict(encoder), _keras_predict(step), context, reply_len)
    vectors = _keras_predict(vector_model)({"ids": context})["vectors"][:, 0]
    wide = encode_texts(vocabulary, PROMPTS, context_width(cfg))
    retrieved_scores = bank.scores(retrieval_models(model)[0], wide).max(axis=1)  # what `retrieve` must find

    def run(fmt: Format, loaded: dict[str, Predict]) -> Arrays:
        """A format's greedy replies: TF.js in Node with the browser's tokenizer, the others through `greedy_loop`."""
        if fmt.name == "tfjs":
            return _tfjs_greedy(fmt.path, context, verbose)
        reply_ids, first_logits = greedy_loop(loaded["encoder"], loaded["decoder_step"], context, reply_len)
        vector = np.asarray(loaded["vectors"]({"ids": context})["vectors"])[:, 0]
        return {"reply_ids": reply_ids, "logits": first_logits, "vector": vector}

    def run_savedmodel(path: Path) -> Arrays:
        """The `greedy` signature on the raw prompts: its reply ids (it has no logits), its text checked here."""
        loaded = tf.saved_model.load(str(path))
        out = loaded.signatures["greedy"](text=tf.constant(PROMPTS))
        out = {k: v.numpy() for k, v in out.items()}
        text = PieceTokenizer(vocabulary).ids_to_text(ids).numpy()
        if np.array_equal(out["reply_ids"], ids) and not np.array_equal(out["reply"], text):
            raise ValueError("reply text differs from the pieces of Keras's reply ids")
        retrieved = loaded.signatures["retrieve"](text=tf.constant(PROMPTS))["score"].numpy()
        if np.max(np.abs(retrieved - retrieved_scores)) > RETRIEVE_BOUND:
            raise ValueError(f"retrieve's best scores {retrieved} differ from the reply bank's {retrieved_scores}")
        return {"reply_ids": out["reply_ids"]}

    return ExportPlan(
        serving=model,
        writer=lambda served, directory: write_text_savedmodel(served, cfg, bank, directory),
        reference={"reply_ids": ids, "logits": logits, "vector": vectors},
        targets=ids,  # `answer_metric`: the share of reply token ids equal to Keras's
        data_source="the fixed prompts of export.PROMPTS, decoded greedily",
        signature=SIGNATURE,
        run_savedmodel=run_savedmodel,
        run=run,
        # The step first: it is what tfjs/model.json holds, the model the demo pages' loader opens.
        parts={"decoder_step": step, "encoder": encoder, "vectors": vector_model},
        formats=("tflite_float32", "tflite_float16", "tflite_dynamic", "tfjs", "onnx"),
        metric_bounds={"tflite_dynamic": DYNAMIC_TOKEN_BOUND},
        files={
            "vocabulary.json": json.dumps(vocabulary_json(vocabulary, cfg)),
            "reply_bank.json": json.dumps(bank_json(bank, BROWSER_BANK)),
        },
        summary={"prompts": PROMPTS, "keras_reply_ids": ids.tolist()},
    )


def _keras_predict(model: keras.Model) -> Predict:
    def predict(inputs: Arrays) -> Arrays:
        outputs = model(inputs if len(inputs) > 1 else next(iter(inputs.values())), training=False)
        return {k: np.asarray(v) for k, v in outputs.items()}

    return predict


def _tfjs_greedy(model_dir: Path, context: np.ndarray, verbose: bool) -> Arrays:
    """The TF.js models run by Node with the browser's own tokenizer and loop: reply ids and first-step logits.

    Raises:
        ConversionError: the JavaScript tokenizer's context ids differ from TensorFlow's (`context`).
    """
    with tempfile.TemporaryDirectory() as tmp:
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps({"model": str(model_dir), "prompts": PROMPTS}))
        stdout = run_tool([shutil.which("node") or "node", str(GREEDY_SCRIPT), str(request)], "node (TF.js)", verbose)
    out = {k: np.asarray(v) for k, v in json.loads(stdout).items()}
    if not np.array_equal(out["context"], context):
        raise ConversionError("the JavaScript tokenizer's context ids differ from TensorFlow's")
    return {"reply_ids": out["reply_ids"], "logits": out["logits"], "vector": out["vector"]}
