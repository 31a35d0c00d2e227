"""The chatbot's teacher (all-MiniLM-L6-v2 run in Keras from the wheel's safetensors) and the distilled matching
loss: the port ranks real replies as the published model does, the loss is the formula, the vectors are cached."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from projects.chatbot import teacher
from projects.chatbot.loss import InBatchSoftmax


@pytest.fixture(scope="module")
def minilm() -> teacher.MiniLM:
    return teacher.MiniLM()


def test_safetensors_reader_gives_back_names_shapes_and_values():
    tensors = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array([[7, -1]], np.int64)}
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, value in tensors.items():
        raw = value.tobytes()
        dtype = "F32" if value.dtype == np.float32 else "I64"
        header[name] = {"dtype": dtype, "shape": list(value.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    read = teacher.read_safetensors(struct.pack("<Q", len(head)) + head + b"".join(blobs))
    assert set(read) == set(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(read[name], value)


def test_minilm_gives_unit_vectors_that_pair_a_question_with_its_answer(minilm):
    texts = ["what is your favourite food?", "i love pizza", "my car broke down on the highway", ""]
    vectors = minilm(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # the empty text too
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2
    # Batches group texts by length: a text's vector does not depend on what it was batched with.
    np.testing.assert_allclose(minilm(texts[1:2]), vectors[1:2], atol=1e-5)


def test_minilm_ranks_held_out_chitchat_replies_as_the_published_model_does(minilm):
    """The published model ranks the true reply first among 20 in half of the default preset's test rows (0.499
    of 1,000); a port with a wrong layout, attention mask or pooling falls towards chance (0.05)."""
    from projects.chatbot import retrieval
    from projects.chatbot.config import DataConfig
    from projects.chatbot.data import load_corpus
    from projects.chatbot.metrics import hits_at_1

    test = load_corpus(DataConfig()).test
    rows = retrieval.ranking_candidates(test, 150, 0)
    contexts = minilm([test.contexts[i] for i in rows[:, 0]])
    replies = minilm([test.replies[i] for i in rows.ravel()]).reshape(*rows.shape, -1)
    assert hits_at_1(np.einsum("nd,nkd->nk", contexts, replies)) > 0.4


def test_distilled_loss_mixes_the_hard_targets_with_the_teachers_soft_ones():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4, 4)).astype(np.float32) * 3
    vectors = rng.normal(size=(4, 2, 8))
    vectors /= np.linalg.norm(vectors, axis=-1, keepdims=True)
    y_true = vectors.reshape(4, 16).astype(np.float32)  # context vector, then reply vector
    teacher_scores = 20.0 * vectors[:, 0] @ vectors[:, 1].T

    def log_softmax(x, axis):
        return x - np.log(np.exp(x).sum(axis, keepdims=True))

    def softmax(x, axis):
        return np.exp(log_softmax(x, axis))

    by_row, by_column = log_softmax(scores, -1), log_softmax(scores, 0)
    hard = -0.5 * (np.diagonal(by_row) + np.diagonal(by_column))
    soft = -0.5 * ((softmax(teacher_scores, -1) * by_row).sum(-1) + (softmax(teacher_scores, 0) * by_column).sum(0))
    loss = float(InBatchSoftmax(0.3)(y_true, scores))
    assert loss == pytest.approx((0.7 * hard + 0.3 * soft).mean(), rel=1e-5)
    assert float(InBatchSoftmax(0.0)(y_true, scores)) == pytest.approx(hard.mean(), rel=1e-5)
    # A teacher certain of the diagonal gives the hard targets back.
    certain = np.concatenate([np.eye(4), np.eye(4)], axis=1).astype(np.float32)
    assert float(InBatchSoftmax(1.0, teacher_scale=100.0)(certain, scores)) == pytest.approx(hard.mean(), rel=1e-4)


def test_teacher_vectors_are_computed_once_and_read_back(tmp_path, monkeypatch):
    contexts, replies = ["hi there\nhow are you?", "any plans?"], ["good, you?", "hi there\nhow are you?"]
    vectors = teacher.teacher_vectors(contexts, replies, tmp_path)
    assert vectors.shape == (2, 768)
    np.testing.assert_allclose(vectors[0, :384], vectors[1, 384:])  # the same text, the same vector
    assert abs(vectors[0, :384] @ vectors[0, 384:]) < 0.99

    def no_teacher():
        raise AssertionError("the cached vectors were not used")

    monkeypatch.setattr(teacher, "MiniLM", no_teacher)
    np.testing.assert_array_equal(teacher.teacher_vectors(contexts, replies, tmp_path), vectors)
    assert len(list(tmp_path.glob("*.partial.npy"))) == 0
    assert teacher.teacher_seconds(contexts, replies, tmp_path) > 0
    assert teacher.teacher_seconds(contexts[:1], replies[:1], tmp_path) is None
