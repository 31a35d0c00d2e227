"""Export the chatbot: a text-in, text-out SavedModel for serving, and token-level models for every other format.

- SavedModel (serving repository, `<serving_root>/chatbot/<version>/`): `serving_default` takes `text`
  (batch,) string and returns `reply` (batch,) string, decoding greedily in a `tf.while_loop`; `sample`
  samples per request (serving_model.py).
- TF Lite, TF.js and ONNX cannot run the string ops, so they get the encoder and the decoder step
  (`model.step_models`), with int32 ids in and out, and the vocabulary as JSON; the client
  tokenizes and runs the loop (the browser: serving/web/js/projects/chatbot-decoder.js):
    export/tflite/encoder.tflite, export/tflite/decoder_step.tflite
    export/onnx/encoder.onnx, export/onnx/decoder_step.onnx
    export/tfjs/model.json (the decoder step), export/tfjs/encoder/model.json, export/tfjs/vocabulary.json
    export/vocabulary.json (the same file, for TF Lite and ONNX clients)
- Parity (`parity.json`, `parity.md`): the fixed prompts (`project.PROMPTS`) decoded greedily with Keras
  and with each format; a format passes when every reply's token ids equal Keras's and its first-step
  logits are within the float bound. TF.js also tokenizes the prompts itself, in JavaScript.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import keras
import numpy as np

from common.export import ExportResult, onnx, savedmodel, tflite
from common.export import tfjs as tfjs_export
from common.export.parity import ParityRow
from common.export.parity import write as write_parity
from common.export.tools import ConversionError, run_tool, size_bytes
from common.paths import REPO_ROOT, ArtifactPaths

from .config import ChatbotConfig
from .model import NEVER_GENERATED, step_models, vocabulary_of
from .serving_model import write_text_savedmodel
from .tokenizer import END, START

Predict = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
GREEDY_SCRIPT = Path(__file__).with_name("tfjs_greedy.mjs")
FIRST_WORD = max(NEVER_GENERATED) + 1  # logits of banned ids (about -1e9) are not compared


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
        "ids": {"pad": 0, "unk": 1, "start": START, "end": END, "sep": 4},
    }


def _keras_predict(model: keras.Model) -> Predict:
    def predict(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = model(inputs if len(inputs) > 1 else next(iter(inputs.values())), training=False)
        return {k: np.asarray(v) for k, v in outputs.items()}

    return predict


def _tfjs_greedy(model_dir: Path, prompts: list[str], verbose: bool) -> dict[str, np.ndarray]:
    """The TF.js models run by Node with the browser's own tokenizer and loop: context ids, reply ids, logits."""
    with tempfile.TemporaryDirectory() as tmp:
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps({"model": str(model_dir), "prompts": prompts}))
        stdout = run_tool([shutil.which("node") or "node", str(GREEDY_SCRIPT), str(request)], "node (TF.js)", verbose)
    return {k: np.asarray(v) for k, v in json.loads(stdout).items()}


class _Parity:
    """Compares each format's greedy replies and first-step logits with Keras's."""

    def __init__(self, context: np.ndarray, ids: np.ndarray, logits: np.ndarray, bound: float) -> None:
        self.context, self.ids, self.logits, self.bound = context, ids, logits, bound

    def row(self, name: str, path: Path, ids: np.ndarray, logits: np.ndarray | None, seconds: float) -> ParityRow:
        same = np.all(ids == self.ids, axis=1)
        diff = 0.0 if logits is None else float(np.max(np.abs(logits[:, FIRST_WORD:] - self.logits[:, FIRST_WORD:])))
        row = ParityRow(
            format=name,
            path=_shown(path),
            size_bytes=size_bytes(path) if path.exists() else None,
            max_abs_diff=diff,
            agreement=float(np.mean(same)),
            metric=float(np.mean(ids == self.ids)),
            bound=self.bound,
            seconds=round(seconds, 1),
        )
        if not same.all():
            row.error = f"reply ids differ from Keras's on {int((~same).sum())} of {len(same)} prompts"
        return row

    def failed(self, name: str, path: Path, err: Exception, seconds: float) -> ParityRow:
        return ParityRow(name, _shown(path), bound=self.bound, error=str(err), seconds=round(seconds, 1))


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _report(row: ParityRow) -> ParityRow:
    if row.error:
        print(f"  {row.format:<15} FAILED: {row.error.splitlines()[0]}", flush=True)
    else:
        print(
            f"  {row.format:<15} ok, replies agreeing {row.agreement:.0%}, first-step max|diff| {row.max_abs_diff:.1e}"
            + (f", {row.size_bytes / 1024:,.0f} KB" if row.size_bytes else "")
            + f" ({row.seconds:g} s)",
            flush=True,
        )
    return row


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move a complete folder into place, replacing an older one."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _convert_pair(convert: Callable[[Path, Path], None], sources: dict[str, Path], targets: dict[str, Path]) -> None:
    """Convert the encoder and step SavedModels; each file is written beside its target, then renamed into place."""
    for name, source in sources.items():
        target = targets[name]
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            convert(source, tmp)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
            raise


def export_chatbot(
    project: Any, cfg: ChatbotConfig, model: keras.Model, paths: ArtifactPaths, verbose: bool = False
) -> ExportResult:
    """Export `model` as described in the module docstring; returns the parity rows and the published version."""
    from .project import PROMPTS, encode_prompts

    vocabulary = vocabulary_of(model)
    encoder, step = step_models(model)
    reply_len = step.input["reply"].shape[1]
    context = encode_prompts(PROMPTS, vocabulary, cfg)
    ids, logits = greedy_loop(_keras_predict(encoder), _keras_predict(step), context, reply_len)
    check = _Parity(context, ids, logits, project.float_tolerance)
    print(f"Exporting {project.serving_name}: {len(PROMPTS)} prompts decoded greedily through each format")
    keras_row = check.row("keras", paths.model, ids, logits, 0.0)
    result = ExportResult([_report(keras_row)])
    export_dir = paths.export_dir
    export_dir.mkdir(parents=True, exist_ok=True)
    (export_dir / "vocabulary.json").write_text(json.dumps(vocabulary_json(vocabulary, cfg)))

    start = time.perf_counter()
    staging = savedmodel.stage(model, paths.serving_root, project.serving_name, write_text_savedmodel)
    try:
        text_row = _check_text_savedmodel(check, staging, ids, vocabulary, start)
        result.rows.append(_report(text_row))
        with tempfile.TemporaryDirectory() as tmp:
            sources = {"encoder": Path(tmp) / "encoder", "decoder_step": Path(tmp) / "decoder_step"}
            savedmodel.write_savedmodel(encoder, sources["encoder"])
            savedmodel.write_savedmodel(step, sources["decoder_step"])
            with ThreadPoolExecutor(max_workers=2) as pool:
                tfjs_job = pool.submit(_export_tfjs, check, sources, export_dir, vocabulary, cfg, verbose)
                onnx_job = pool.submit(_export_onnx, check, sources, export_dir, reply_len, verbose)
                result.rows.append(_report(_export_tflite(check, sources, export_dir, reply_len, verbose)))
                result.rows += [_report(tfjs_job.result()), _report(onnx_job.result())]
        if text_row.ok:
            result.version = savedmodel.publish(staging)
            savedmodel.update_models_config(paths.serving_root, project.serving_name)
            text_row.path = _shown(paths.serving_root / project.serving_name / str(result.version))
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # already gone when published
    summary = {
        "project": project.name,
        "serving_model": project.serving_name,
        "version": result.version,
        "savedmodel": text_row.path if result.version else None,
        "signature": {
            "savedmodel": {"inputs": {"text": "string (None,)"}, "outputs": {"reply": "string (None,)"}},
            "encoder": {"inputs": {"context": "int32 (None, context_len)"}, "outputs": {"encoded": "float32"}},
            "decoder_step": {
                "inputs": {"encoded": "float32", "context": "int32", "reply": "int32", "position": "int32 (None,)"},
                "outputs": {"logits": "float32 (None, vocab)", "next_id": "int32 (None,)"},
            },
        },
        "examples": len(PROMPTS),
        "data_source": "project.PROMPTS (fixed prompts, greedy decoding)",
        "metric": project.metric_name,
        "float_tolerance": project.float_tolerance,
        "prompts": PROMPTS,
        "keras_reply_ids": ids.tolist(),
    }
    write_parity(result.rows, summary, paths.parity_json, paths.parity_md)
    print(f"SavedModel: {summary['savedmodel'] or 'not published'}\nParity: {_shown(paths.parity_md)}")
    return result


def _check_text_savedmodel(check: _Parity, staging: Path, ids: np.ndarray, vocabulary: list[str], start: float):
    """The string signature on the raw prompts: its ids must equal Keras's, its text must be those words."""
    import tensorflow as tf

    from .project import PROMPTS
    from .tokenizer import ids_to_text

    try:
        loaded = tf.saved_model.load(str(staging))
        out = loaded.signatures[savedmodel.SIGNATURE](text=tf.constant(PROMPTS))
        row = check.row("savedmodel", staging, out["reply_ids"].numpy(), None, time.perf_counter() - start)
        expected = ids_to_text(tf.constant(ids), vocabulary).numpy()
        if not row.error and not np.array_equal(out["reply"].numpy(), expected):
            row.error = "reply text differs from the words of Keras's reply ids"
        return row
    except Exception as err:
        return check.failed("savedmodel", staging, err, time.perf_counter() - start)


def _export_tflite(check: _Parity, sources: dict, export_dir: Path, reply_len: int, verbose: bool) -> ParityRow:
    start = time.perf_counter()
    targets = {name: export_dir / "tflite" / f"{name}.tflite" for name in sources}
    try:
        convert = lambda src, dst: tflite.convert(src, dst, "float32", {}, verbose)  # noqa: E731
        _convert_pair(convert, sources, targets)
        encode, step = (tflite.load(targets[name], verbose) for name in ("encoder", "decoder_step"))
        ids, logits = greedy_loop(encode, step, check.context, reply_len)
        return check.row("tflite_float32", export_dir / "tflite", ids, logits, time.perf_counter() - start)
    except Exception as err:
        return check.failed("tflite_float32", export_dir / "tflite", err, time.perf_counter() - start)


def _export_onnx(check: _Parity, sources: dict, export_dir: Path, reply_len: int, verbose: bool) -> ParityRow:
    start = time.perf_counter()
    targets = {name: export_dir / "onnx" / f"{name}.onnx" for name in sources}
    try:
        _convert_pair(lambda src, dst: onnx.convert(src, dst, verbose), sources, targets)
        encode, step = (onnx.load(targets[name]) for name in ("encoder", "decoder_step"))
        ids, logits = greedy_loop(encode, step, check.context, reply_len)
        return check.row("onnx", export_dir / "onnx", ids, logits, time.perf_counter() - start)
    except Exception as err:
        return check.failed("onnx", export_dir / "onnx", err, time.perf_counter() - start)


def _export_tfjs(
    check: _Parity, sources: dict, export_dir: Path, vocabulary: list[str], cfg: ChatbotConfig, verbose: bool
) -> ParityRow:
    """tfjs/model.json is the decoder step (the model the demo loader opens), tfjs/encoder/ the encoder."""
    from .project import PROMPTS

    start = time.perf_counter()
    final = export_dir / "tfjs"
    tmp = export_dir / f".tfjs.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tfjs_export.convert(sources["decoder_step"], tmp, verbose=verbose)
        tfjs_export.convert(sources["encoder"], tmp / "encoder", verbose=verbose)
        (tmp / "vocabulary.json").write_text(json.dumps(vocabulary_json(vocabulary, cfg)))
        _replace_dir(tmp, final)
        out = _tfjs_greedy(final, PROMPTS, verbose)
        if not np.array_equal(out["context"], check.context):
            raise ConversionError("the JavaScript tokenizer's context ids differ from TensorFlow's")
        return check.row("tfjs", final, out["reply_ids"], out["logits"], time.perf_counter() - start)
    except Exception as err:
        shutil.rmtree(tmp, ignore_errors=True)
        return check.failed("tfjs", final, err, time.perf_counter() - start)
