"""The chatbot's export plan: a text-in, text-out SavedModel for serving, and token-level models for every other format.

`common.export.export_project` carries it out (converting, staging, parity, the report), as for every project:
- SavedModel (serving repository, `<serving_root>/chatbot/<version>/`): `serving_default` takes `text`
  (batch,) string and returns `reply` (batch,) string, decoding greedily in a `tf.while_loop`; `sample`
  samples per request (serving_model.py).
- TF Lite, TF.js and ONNX cannot run the string ops, so they get the two parts of `model.step_models`, the
  encoder and the decoder step, with int32 ids in and out, and the vocabulary as JSON; the client
  tokenizes and runs the loop (the browser: serving/web/js/projects/chatbot-decoder.js):
    export/tflite/encoder.tflite, export/tflite/decoder_step.tflite
    export/onnx/encoder.onnx, export/onnx/decoder_step.onnx
    export/tfjs/model.json (the decoder step), export/tfjs/encoder/model.json, export/tfjs/vocabulary.json
    export/vocabulary.json (the same file, for TF Lite and ONNX clients)
- Parity (`parity.json`, `parity.md`): the fixed `PROMPTS` decoded greedily by Keras and by each format
  (`greedy_loop` over its encoder and step); a format passes when every reply's token ids equal Keras's
  (`ChatbotProject.exact_answers`) and its first-step logits are within the float bound. TF.js also
  tokenizes the prompts itself, in JavaScript (tfjs_greedy.mjs, with the browser's own code).
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

from common.export import ExportPlan, Format, Predict, savedmodel
from common.export.parity import Arrays
from common.export.tools import ConversionError, run_tool

from .config import ChatbotConfig
from .model import step_models, vocabulary_of
from .serving_model import write_text_savedmodel
from .tokenizer import END, SEP, START, encode_contexts, ids_to_text, make_vectorizer

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
GREEDY_SCRIPT = Path(__file__).with_name("tfjs_greedy.mjs")
SIGNATURE = {
    "savedmodel": {"inputs": {"text": "string (None,)"}, "outputs": {"reply": "string (None,)"}},
    "encoder": {"inputs": {"context": "int32 (None, context_len)"}, "outputs": {"encoded": "float32"}},
    "decoder_step": {
        "inputs": {"encoded": "float32", "context": "int32", "reply": "int32", "position": "int32 (None,)"},
        "outputs": {"logits": "float32 (None, vocab)", "next_id": "int32 (None,)"},
    },
}


def encode_prompts(prompts: list[str], vocabulary: list[str], cfg: ChatbotConfig) -> np.ndarray:
    """Raw prompts (turns separated by newlines) -> context ids (n, context_len) int32."""
    return encode_contexts(tf.constant(prompts), make_vectorizer(vocabulary), cfg.data.context_len).numpy()


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
    """What a client needs beside the two models: the words by id, the lengths and the special ids."""
    return {
        "vocabulary": vocabulary,
        "context_len": cfg.data.context_len,
        "reply_len": cfg.data.reply_len,
        "ids": {"pad": 0, "unk": 1, "start": START, "end": END, "sep": SEP},
    }


def export_plan(cfg: ChatbotConfig, model: keras.Model, verbose: bool = False) -> ExportPlan:
    """The text SavedModel served; the decoder step and the encoder converted to TF Lite float32, TF.js and ONNX.

    Parity: the greedy reply ids (n, reply_len) and first-step logits (n, vocab) of `PROMPTS`.
    """
    vocabulary = vocabulary_of(model)
    encoder, step = step_models(model)
    reply_len = step.input["reply"].shape[1]
    context = encode_prompts(PROMPTS, vocabulary, cfg)
    ids, logits = greedy_loop(_keras_predict(encoder), _keras_predict(step), context, reply_len)

    def run(fmt: Format, loaded: dict[str, Predict]) -> Arrays:
        """A format's greedy replies: TF.js in Node with the browser's tokenizer, the others through `greedy_loop`."""
        if fmt.name == "tfjs":
            return _tfjs_greedy(fmt.path, context, verbose)
        reply_ids, first_logits = greedy_loop(loaded["encoder"], loaded["decoder_step"], context, reply_len)
        return {"reply_ids": reply_ids, "logits": first_logits}

    def run_savedmodel(path: Path) -> Arrays:
        """The served signature on the raw prompts: its reply ids (it has no logits), its text checked here."""
        out = savedmodel.load(path)({"text": np.array(PROMPTS, dtype=object)})
        if np.array_equal(out["reply_ids"], ids) and not np.array_equal(out["reply"], _words(ids, vocabulary)):
            raise ValueError("reply text differs from the words of Keras's reply ids")
        return {"reply_ids": out["reply_ids"]}

    return ExportPlan(
        serving=model,
        writer=write_text_savedmodel,
        reference={"reply_ids": ids, "logits": logits},
        targets=ids,  # `answer_metric`: the share of reply token ids equal to Keras's
        data_source="the fixed prompts of export.PROMPTS, decoded greedily",
        signature=SIGNATURE,
        run_savedmodel=run_savedmodel,
        run=run,
        # The step first: it is what tfjs/model.json holds, the model the demo pages' loader opens.
        parts={"decoder_step": step, "encoder": encoder},
        formats=("tflite_float32", "tfjs", "onnx"),
        files={"vocabulary.json": json.dumps(vocabulary_json(vocabulary, cfg))},
        summary={"prompts": PROMPTS, "keras_reply_ids": ids.tolist()},
    )


def _keras_predict(model: keras.Model) -> Predict:
    def predict(inputs: Arrays) -> Arrays:
        outputs = model(inputs if len(inputs) > 1 else next(iter(inputs.values())), training=False)
        return {k: np.asarray(v) for k, v in outputs.items()}

    return predict


def _words(ids: np.ndarray, vocabulary: list[str]) -> np.ndarray:
    """Reply ids (n, reply_len) -> the replies as text (n,) bytes, as the SavedModel writes them."""
    return ids_to_text(tf.constant(ids), vocabulary).numpy()


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
    return {"reply_ids": out["reply_ids"], "logits": out["logits"]}
