"""The TF.js browser demos in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from common.paths import DEFAULT_ARTIFACTS, ArtifactPaths
from common.web_demo import make_server, write_samples

from .browser import CHROMIUM, FLAGS, needs_chromium, watch_errors


def _serve(artifacts: Path) -> tuple[str, object]:
    server = make_server("127.0.0.1", 0, artifacts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/", server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def exported_mnist(mnist_export) -> Iterator[str]:
    """The demo server over a folder whose mnist model is exported, with samples.json written."""
    from common import registry
    from common.config import make_config

    config = registry.config_module("mnist")
    cfg = make_config(config.CONFIG, config.PRESETS, "smoke")
    write_samples(registry.load("mnist"), cfg, ArtifactPaths.for_project("mnist", mnist_export))
    url, server = _serve(mnist_export.parent)
    yield url
    server.shutdown()


@pytest.mark.slow
@needs_chromium
def test_mnist_page_matches_keras_and_reads_a_drawn_digit(browser, exported_mnist):
    page = browser.new_page(viewport={"width": 1000, "height": 760})
    errors: list[str] = []
    watch_errors(page, errors)
    page.goto(exported_mnist + "demo.html?project=mnist")
    page.wait_for_function("document.body.dataset.state && document.body.dataset.state !== ''", timeout=60_000)
    assert page.evaluate("document.body.dataset.state") == "ready", page.inner_text("main")

    # The real test digits through TF.js in the browser equal the Keras serving model's outputs.
    samples = page.evaluate("window.demo.samples.outputs")
    browser_out = page.evaluate("window.demo.predictSamples()")
    keras_probs = np.asarray(samples["probabilities"]["data"])
    assert len(keras_probs) == np.prod(samples["probabilities"]["shape"]) > 0
    assert np.max(np.abs(np.asarray(browser_out["probabilities"]) - keras_probs)) < 1e-4
    assert browser_out["digit"] == samples["digit"]["data"]
    assert page.locator("#examples canvas").count() == samples["probabilities"]["shape"][0]

    # A digit drawn with the mouse: a vertical stroke, which any MNIST model reads as a 1.
    box = page.locator("#pad").bounding_box()
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + 40)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x + step * 0.5, box["y"] + 40 + step * 10)
    page.mouse.up()
    page.wait_for_function("document.getElementById('prediction').dataset.digit !== undefined", timeout=30_000)
    assert page.locator("#prediction").get_attribute("data-digit") == "1"
    assert page.locator("#bars .bar").count() == 10

    screenshot = DEFAULT_ARTIFACTS / "screenshots" / "mnist-demo.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    assert not errors, errors


@pytest.mark.slow
@needs_chromium
def test_missing_model_says_what_to_run(browser, tmp_path):
    url, server = _serve(tmp_path)
    try:
        page = browser.new_page()
        errors: list[str] = []
        watch_errors(page, errors)
        page.goto(url + "demo.html?project=mnist")
        page.wait_for_function("document.body.dataset.state === 'missing'", timeout=30_000)
        assert "model not exported yet: run make project=mnist export" in " ".join(page.inner_text("main").split())
        page.goto(url)
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=30_000)
        assert "not exported yet" in page.inner_text("[data-project=mnist]")
        assert not errors, errors  # nothing asks for a model that is not there
    finally:
        server.shutdown()


def test_the_index_lists_every_project_and_which_are_exported(tmp_path):
    import json
    import urllib.request

    from common import registry

    (tmp_path / "mnist" / "export" / "tfjs").mkdir(parents=True)
    (tmp_path / "mnist" / "export" / "tfjs" / "model.json").write_text("{}")
    url, server = _serve(tmp_path)
    try:
        with urllib.request.urlopen(url + "projects.json", timeout=10) as response:
            cards = json.loads(response.read())
    finally:
        server.shutdown()
    assert [c["name"] for c in cards] == registry.names()
    assert {c["name"]: c["exported"] for c in cards} == {name: name == "mnist" for name in registry.names()}
    assert all(c["title"] and c["summary"] for c in cards)


def test_models_route_never_leaves_the_model_folder(tmp_path):
    import urllib.error
    import urllib.request

    (tmp_path / "secret.txt").write_text("no")
    url, server = _serve(tmp_path / "artifacts")
    try:
        for path in ("models/mnist/../../../secret.txt", "models/mnist/%2e%2e/%2e%2e/%2e%2e/secret.txt"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(url + path, timeout=10)
            assert err.value.code == 404
    finally:
        server.shutdown()


def test_tfjs_is_served_from_node_modules_not_a_cdn():
    html = (Path(__file__).parent.parent / "serving" / "web" / "demo.html").read_text()
    assert 'src="node_modules/@tensorflow/tfjs/dist/tf.min.js"' in html
    assert "http" not in html.split("<body>")[0].replace("http-equiv", "")
    assert shutil.which("node") is not None
