"""The chatbot: tokenization (TensorFlow and JavaScript alike), loss, decoding, a smoke run end to end,
export parity, serving a raw string over REST, the `chat` prompt, Gradio and the browser page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.config import make_config
from projects.chatbot.config import CONFIG, PRESETS

from .browser import demo_page, needs_chromium
from .conftest import REPO, project_env, run_project

TRICKY = [
    "Hello, World!  How's it going?",
    "Café CRÈME… s’il vous plaît?!",
    "日本語 only",
    "first turn\nsecond turn",
    "   ",
    "tabs\tand-dashes_and #hashtags 42",
]


def smoke():
    """The smoke preset's config."""
    return make_config(CONFIG, PRESETS, "smoke")


@pytest.fixture(scope="module")
def vocabulary() -> list[str]:
    from projects.chatbot.tokenizer import learn_vocabulary

    return learn_vocabulary(["hello , world !", "how's it going ?", "hello hello"], 20, 1)


def test_normalization_and_ids(vocabulary):
    import tensorflow as tf

    from projects.chatbot import tokenizer

    normalized = [t.decode() for t in tokenizer.normalize(tf.constant(TRICKY)).numpy()]
    assert normalized == [
        "hello , world ! how's it going ?",
        "cafe creme s'il vous plait ? !",
        "only",
        "first turn <sep> second turn",
        "",
        "tabs and dashes and hashtags 42",
    ]
    assert vocabulary[:6] == ["", "[UNK]", "<start>", "<end>", "<sep>", "hello"]
    vectorizer = tokenizer.make_vectorizer(vocabulary)
    context = tokenizer.encode_contexts(tf.constant(["well hello , world", ""]), vectorizer, 3).numpy()
    hello, comma, world = (vocabulary.index(w) for w in ("hello", ",", "world"))
    assert context.tolist() == [[hello, comma, world], [0, 0, 0]]  # the last words kept, padding on the left
    reply = tokenizer.encode_replies(tf.constant(["hello world hello world"]), vectorizer, 4).numpy()
    assert reply.tolist() == [[tokenizer.START, hello, world, hello, tokenizer.END]]
    text = tokenizer.ids_to_text(tf.constant([[hello, comma, world, tokenizer.END, hello]]), vocabulary).numpy()
    assert text.tolist() == [b"hello, world"]


def test_javascript_tokenizer_matches_tensorflow(vocabulary, tmp_path):
    import tensorflow as tf

    from projects.chatbot import tokenizer

    script = tmp_path / "tokenize.mjs"
    decoder = REPO / "serving" / "web" / "js" / "projects" / "chatbot-decoder.js"
    vocab = {"vocabulary": vocabulary, "context_len": 8, "reply_len": 4, "ids": {"pad": 0, "unk": 1, "end": 3}}
    script.write_text(
        f"import {{ normalize, makeTokenizer }} from {json.dumps(decoder.as_uri())};\n"
        f"const t = makeTokenizer({json.dumps(vocab)});\nconst texts = {json.dumps(TRICKY)};\n"
        "const ids = texts.map((s) => Array.from(t.contextIds(s)));\n"
        "console.log(JSON.stringify({ normalized: texts.map(normalize), ids }));"
    )
    out = json.loads(subprocess.run(["node", str(script)], capture_output=True, text=True, check=True).stdout)
    expected = [t.decode() for t in tokenizer.normalize(tf.constant(TRICKY)).numpy()]
    assert out["normalized"] == expected
    ids = tokenizer.encode_contexts(tf.constant(TRICKY), tokenizer.make_vectorizer(vocabulary), 8).numpy()
    assert out["ids"] == ids.tolist()


def test_smoothed_loss_ignores_padding_and_matches_the_formula():
    from projects.chatbot.loss import SmoothedSparseCrossentropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype(np.float32)
    target = np.array([[2, 4, 0], [1, 0, 0]])
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_token = 0.9 * -np.take_along_axis(log_p, target[..., None], -1)[..., 0] - 0.1 * log_p.mean(-1)
    expected = per_token[target != 0].mean()
    loss = float(SmoothedSparseCrossentropy(0.1)(target, logits))
    assert loss == pytest.approx(expected, rel=1e-5)
    logits_changed_on_padding = logits.copy()
    logits_changed_on_padding[0, 2] += 5.0
    assert float(SmoothedSparseCrossentropy(0.1)(target, logits_changed_on_padding)) == pytest.approx(loss, rel=1e-6)


def test_sampling_filters_keep_the_right_words():
    import tensorflow as tf

    from projects.chatbot.decoding import NEG_INF, filter_logits

    logits = tf.math.log(tf.constant([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda strategy, **kw: (filter_logits(logits, strategy, **kw).numpy() > NEG_INF / 2).tolist()  # noqa: E731
    assert kept("top_k", top_k=2, top_p=1.0) == [[True, True, False, False]]
    assert kept("nucleus", top_k=4, top_p=0.75) == [[True, True, False, False]]  # 0.5 + 0.3 reaches 0.75
    assert kept("nucleus", top_k=4, top_p=0.4) == [[True, False, False, False]]
    assert kept("greedy", top_k=1, top_p=0.1) == [[True] * 4]


def test_beam_search_finds_a_reply_at_least_as_likely_as_greedy():
    import keras
    import tensorflow as tf

    from projects.chatbot.decoding import beam_search, generate
    from projects.chatbot.model import build_model, step_models

    cfg = smoke()
    keras.utils.set_random_seed(1)
    encoder, step = step_models(build_model(cfg, ["", "[UNK]", "<start>", "<end>", "<sep>", *"abcdefghij"]))
    context = np.array([[0] * 12 + [5, 6, 7, 8]], np.int32)

    def log_prob(ids: np.ndarray) -> float:
        """Sum of the step model's log-probabilities of `ids` (up to and including <end>)."""
        reply, total = np.zeros((1, cfg.data.reply_len), np.int32), 0.0
        reply[0, 0] = 2
        encoded = encoder(context)["encoded"].numpy()
        for t, word in enumerate(ids):
            inputs = {"encoded": encoded, "context": context, "reply": reply, "position": np.array([t], np.int32)}
            total += float(tf.nn.log_softmax(step(inputs)["logits"])[0, word])
            if word == 3 or t + 1 == cfg.data.reply_len:
                return total
            reply[0, t + 1] = word
        return total

    greedy = generate(encoder, step, context).numpy()[0]
    beam = beam_search(encoder, step, context[0], beam_width=4, length_penalty=0.0)
    assert beam.shape == greedy.shape and not {0, 1, 2} & set(beam[: list(beam).index(3) if 3 in beam else None])
    assert log_prob(beam) >= log_prob(greedy) - 1e-4


def test_splits_share_no_conversation():
    from projects.chatbot.data import load_corpus

    corpus = load_corpus(smoke().data)
    owners = [set(getattr(corpus, name).conversation) for name in ("train", "val", "test")]
    assert all(owners) and not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert load_corpus(smoke().data).vocabulary == corpus.vocabulary


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """`all --preset smoke`, once: the model folder is named `chatbot` (the demo server maps it by name)."""
    out = tmp_path_factory.mktemp("chatbot_run") / "chatbot"
    result = run_project("chatbot", "all", "--preset", "smoke", "--output-dir", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def exported(smoke_run) -> Path:
    result = run_project("chatbot", "export", "--preset", "smoke", "--output-dir", str(smoke_run))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return smoke_run


@pytest.mark.slow
def test_training_learns_and_the_report_compares_with_unigram(smoke_run):
    import csv

    history = list(csv.DictReader((smoke_run / "history.csv").open()))
    val_loss = [float(row["val_loss"]) for row in history]
    assert val_loss[-1] < val_loss[0] - 0.5, val_loss
    report = json.loads((smoke_run / "report.json").read_text())
    metrics = report["metrics"]
    assert metrics["perplexity"] < 0.5 * metrics["unigram_perplexity"]
    assert metrics["perplexity_ratio"] == pytest.approx(metrics["perplexity"] / metrics["unigram_perplexity"])
    assert 0 < metrics["distinct_2_nucleus"] <= 1 and 0 <= metrics["bleu"] <= 100
    rows = metrics["tables"]["Sample conversations (test split)"]
    assert len(rows) == 4 and {"context", "real reply", "greedy", "nucleus"} <= set(rows[0])
    assert "## Sample conversations" in (smoke_run / "report.md").read_text()


@pytest.mark.slow
def test_every_format_gives_keras_greedy_reply_ids(exported):
    parity = json.loads((exported / "parity.json").read_text())
    formats = {row["format"]: row for row in parity["formats"]}
    assert set(formats) == {"keras", "savedmodel", "tflite_float32", "tfjs", "onnx"}
    for name, row in formats.items():
        assert row["error"] is None, (name, row["error"])
        assert row["agreement"] == 1.0 and row["max_abs_diff"] <= 1e-4, name
    assert parity["ok"] and parity["version"] == 1
    for path in ("tflite/encoder.tflite", "onnx/decoder_step.onnx", "tfjs/model.json", "tfjs/encoder/model.json"):
        assert (exported / "export" / path).exists(), path
    vocab = json.loads((exported / "export" / "tfjs" / "vocabulary.json").read_text())
    assert vocab["vocabulary"][:5] == ["", "[UNK]", "<start>", "<end>", "<sep>"]


@pytest.mark.slow
def test_served_savedmodel_answers_a_raw_string(exported):
    import httpx
    import tensorflow as tf

    from projects.chatbot.tokenizer import ids_to_text
    from serving.server import ModelServer

    parity = json.loads((exported / "parity.json").read_text())
    vocab = json.loads((exported / "export" / "vocabulary.json").read_text())["vocabulary"]
    expected = [t.decode() for t in ids_to_text(tf.constant(parity["keras_reply_ids"]), vocab).numpy()]
    prompts = parity["prompts"]
    with (
        ModelServer(exported / "serving", rest_port=0, grpc_port=0, report=lambda line: None) as server,
        httpx.Client(base_url=server.rest_url, timeout=60) as client,
    ):
        answer = client.post("/v1/models/chatbot:predict", json={"instances": prompts[:3]})
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert [p["reply"] for p in predictions] == expected[:3]
        assert [p["reply_ids"] for p in predictions] == parity["keras_reply_ids"][:3]
        inputs = {"text": prompts[:2], "temperature": 0.8, "top_k": 50, "top_p": 0.9, "seed": 3}
        sampled = client.post("/v1/models/chatbot:predict", json={"signature_name": "sample", "inputs": inputs})
        assert sampled.status_code == 200, sampled.text
        again = client.post("/v1/models/chatbot:predict", json={"signature_name": "sample", "inputs": inputs})
        assert sampled.json() == again.json() and len(sampled.json()["outputs"]["reply"]) == 2


@pytest.mark.slow
def test_chat_handles_empty_long_and_non_ascii_input(smoke_run):
    lines = ["hello! how are you?", "", "word " * 300, "日本語", "Ça va? café", "/reset", "what is ai?", "/quit", "x"]
    command = [sys.executable, "-m", "projects.chatbot", "chat", "--preset", "smoke", "--output-dir", str(smoke_run)]
    result = subprocess.run(
        [*command, "--set", "decode.strategy=greedy"],
        input="\n".join(lines) + "\n",
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=project_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "decoding: greedy" in out
    assert out.count("bot> ") == 4  # hello, the long line, "Ça va", "what is ai" (not the empty or Japanese-only)
    assert "(empty message" in out and "cut to its first 500 characters" in out and "last 16 words" in out
    assert "nothing left after normalization" in out and "(conversation forgotten)" in out
    assert "you> x" not in out  # /quit ended the chat


@pytest.mark.slow
def test_gradio_chat_interface_builds_over_the_served_model(exported):
    import gradio as gr

    from projects.chatbot.demo import DEMO
    from serving.gradio_app import build_app, served_model

    app = build_app("chatbot", exported / "serving")
    assert isinstance(app, gr.ChatInterface)
    signature, inputs = DEMO.request("hi there", [{"role": "assistant", "content": "hello"}], sampling=False, seed=0)
    assert signature == "serving_default" and inputs["text"].tolist() == ["hello\nhi there"]
    assert DEMO.request("hi", [], sampling=True, seed=2)[0] == "sample"
    with pytest.raises(ValueError, match="Type a message"):
        DEMO.request("   ", [], sampling=True, seed=0)
    # Both signatures answer the requests the chat window sends, through the app's own `predict`.
    predict, _ = served_model("chatbot", exported / "serving", None)
    for sampling in (False, True):
        reply = predict(*DEMO.request("hello! how are you?", [], sampling=sampling, seed=1))["reply"]
        assert reply.shape == (1,), sampling


@pytest.mark.slow
@needs_chromium
def test_browser_chat_gives_keras_greedy_ids(exported):
    from common.paths import ArtifactPaths
    from common.web_demo import write_samples
    from projects.chatbot.project import PROJECT

    write_samples(PROJECT, smoke(), ArtifactPaths.for_project("chatbot", exported))
    samples = json.loads((exported / "export" / "tfjs" / "samples.json").read_text())
    with demo_page("chatbot", exported, timeout_ms=60_000) as (page, errors):
        browser_out = page.evaluate("window.demo.predictSamples()")
        assert browser_out["context"] == samples["inputs"]["context"]["data"]
        assert browser_out["reply_ids"] == samples["outputs"]["reply_ids"]["data"]
        page.fill("#message", "hello! how are you?")
        page.click("#send")
        page.wait_for_selector(".turn.bot", timeout=30_000)
        assert page.locator(".turn.bot").inner_text().startswith("bot:")
        page.screenshot(path=str(exported / "chatbot-demo.png"), full_page=True)
        assert not errors, errors
