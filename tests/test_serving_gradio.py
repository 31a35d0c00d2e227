"""The Gradio app: it builds over a served SavedModel, and its predict function reads real digits (no browser)."""

from __future__ import annotations

import math

import pytest

from serving.gradio_app import build_app, predictor

from .serving_models import add_version, digits_savedmodel, write_digit_png


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    """A repository whose mnist model is the digits classifier."""
    repository = tmp_path_factory.mktemp("repository")
    add_version(repository, "mnist", 1, digits_savedmodel())
    return repository


def test_predict_reads_an_uploaded_photo_and_a_drawing(repository, tmp_path):
    predict, source = predictor("mnist", repository)
    assert source.startswith("Model: mnist version 1")
    photo = tmp_path / "digit.png"
    label = write_digit_png(photo)  # dark ink on white, 112x112: made MNIST-like by load_digit_image
    for drawing, upload in ((None, str(photo)), ({"composite": str(photo), "layers": []}, None)):
        scores = predict(drawing, upload)
        assert sorted(scores) == [str(d) for d in range(10)]
        assert math.isclose(sum(scores.values()), 1, abs_tol=1e-5)
        assert max(scores, key=scores.get) == str(label)


def test_predict_without_an_image_asks_for_one(repository):
    import gradio as gr

    predict, _ = predictor("mnist", repository)
    with pytest.raises(gr.Error, match="Draw a digit"):
        predict(None, None)


def test_the_app_builds_with_a_sketchpad_and_an_upload(repository):
    import gradio as gr

    app = build_app("mnist", repository)
    assert isinstance(app, gr.Blocks)
    kinds = {type(block).__name__ for block in app.blocks.values()}
    assert {"Sketchpad", "Image", "Label"} <= kinds


def test_a_missing_model_says_how_to_export_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make project=mnist export"):
        predictor("mnist", tmp_path)
