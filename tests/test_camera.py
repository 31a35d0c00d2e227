"""The camera on the mnist, classifier and detector pages, in headless Chromium with its fake camera.

Chromium's fake camera plays a video file we write: printed digits "4 0 7" on light paper. The pages' models are
stand-ins (a few lines of TF.js computing outputs of the right names and shapes from the picture), so that these
tests check the camera path (start, live preview, snapshot, the picture reaching the model, live frames, no console
errors) in seconds; the real models in the pages are checked by test_web_demo.py, test_classifier.py and
test_detector.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from common.web_demo import make_server

from .browser import CHROMIUM, FLAGS, SETTLED, needs_chromium, watch_errors

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
WIDTH, HEIGHT = 320, 240
# Stand-in graph models: `tf.loadGraphModel` answers with an object that has the real model's input shape, output
# names and shapes; its outputs depend on the picture (its mean brightness), and it counts its calls.
STAND_IN = """
(() => {
  const SPECS = {
    mnist: { size: 28, channels: 1, outputs: { probabilities: "float32", digit: "int32" } },
    classifier: { size: 64, channels: 3, outputs: { probabilities: "float32", class_id: "int32" } },
    detector: { size: 96, channels: 3, outputs: { boxes: "float32", scores: "float32", classes: "int32",
      num_detections: "int32" } },
  };
  const project = new URLSearchParams(location.search).get("project");
  window.standInCalls = [];
  function standIn(tf) {
    const spec = SPECS[project];
    const execute = (feeds, names) => tf.tidy(() => {
      const image = feeds.image;
      const n = image.shape[0];
      const mean = image.mean().dataSync()[0];
      window.standInCalls.push({ shape: image.shape, mean });
      const out = {
        probabilities: tf.softmax(tf.randomUniform([n, 10], 0, 1, "float32", 1)),
        digit: tf.tensor1d(Array.from({ length: n }, (_, i) => i % 10), "int32"),
        class_id: tf.tensor1d([3], "int32"),
        boxes: tf.tensor3d([[[0.1, 0.2, 0.6, 0.7]]]),
        scores: tf.tensor2d([[0.9]]),
        classes: tf.tensor2d([[1]], [1, 1], "int32"),
        num_detections: tf.tensor1d([1], "int32"),
      };
      return names.map((name) => out[name]);
    });
    return {
      inputs: [{ name: "image", shape: [-1, spec.size, spec.size, spec.channels] }],
      outputs: Object.keys(spec.outputs).map((name) => ({ name })),
      modelSignature: { outputs: Object.fromEntries(Object.keys(spec.outputs).map((k) => [k, {}])) },
      execute,
    };
  }
  let real;
  Object.defineProperty(window, "tf", {
    configurable: true,
    set: (value) => { real = value; },
    get: () => {
      if (real && !real.standIn) {
        real.standIn = true;
        real.loadGraphModel = async () => standIn(real);
      }
      return real;
    },
  });
})();
"""


def _write_y4m(path: Path, picture: np.ndarray, frames: int = 10) -> None:
    """(h, w, 3) uint8 RGB -> a Y4M video (4:2:0, BT.601 full range) that Chromium's fake camera plays in a loop."""
    rgb = picture.astype(np.float64)
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    u = (rgb[..., 2] - y) * 0.564 + 128
    v = (rgb[..., 0] - y) * 0.713 + 128
    planes = [y, u[::2, ::2], v[::2, ::2]]
    frame = b"".join(np.clip(p, 0, 255).astype(np.uint8).tobytes() for p in planes)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + frame)


@pytest.fixture(scope="module")
def camera_video(tmp_path_factory) -> Path:
    """Printed digits "4 0 7" in dark ink on light grey paper, a shadow to the right."""
    picture = Image.new("RGB", (WIDTH, HEIGHT), (225, 222, 215))
    ImageDraw.Draw(picture).text((55, 70), "4  0  7", fill=(25, 25, 30), font=ImageFont.truetype(FONT, 80))
    shade = np.linspace(1.0, 0.75, WIDTH)[None, :, None]
    path = tmp_path_factory.mktemp("camera") / "digits.y4m"
    _write_y4m(path, (np.asarray(picture) * shade).astype(np.uint8))
    return path


@pytest.fixture(scope="module")
def browser(camera_video) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    camera = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera_video}",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, *camera])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def stand_in_server(tmp_path_factory) -> Iterator[str]:
    """The demo server with a model folder per page: model.json (never read: the stand-in answers) and samples.json."""
    root = tmp_path_factory.mktemp("stand_in")
    dirs = {}
    for project, samples in {
        "mnist": {},
        "classifier": {"class_names": [f"class {k}" for k in range(10)]},
        "detector": {"class_names": ["zero", "one"], "display_threshold": 0.4},
    }.items():
        dirs[project] = root / project
        dirs[project].mkdir()
        (dirs[project] / "model.json").write_text("{}")
        (dirs[project] / "samples.json").write_text(json.dumps(samples))
    server = make_server("127.0.0.1", 0, root, dirs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def _open_with_camera(browser, url: str, project: str) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    errors: list[str] = []
    watch_errors(page, errors)
    page.add_init_script(STAND_IN)
    page.goto(f"{url}demo.html?project={project}")
    page.wait_for_function(SETTLED, timeout=60_000)
    assert page.evaluate("document.body.dataset.state") == "ready", page.inner_text("main")
    page.click("#camera-start")
    page.wait_for_function("document.getElementById('camera').dataset.camera === 'on'", timeout=30_000)
    assert page.inner_text("#camera-status") == f"camera on: {WIDTH}x{HEIGHT}"
    assert page.evaluate("document.getElementById('camera-video').videoWidth") == WIDTH
    return page, errors


@pytest.mark.slow
@needs_chromium
def test_mnist_reads_a_row_of_digits_from_the_camera(browser, stand_in_server):
    page, errors = _open_with_camera(browser, stand_in_server, "mnist")
    page.click("#camera-snap")
    page.wait_for_function("document.getElementById('prediction').dataset.digits", timeout=30_000)
    assert page.locator("#seen canvas").count() == 3  # "4", "0" and "7", split and prepared as MNIST
    calls = page.evaluate("window.standInCalls")
    assert calls[-1]["shape"] == [3, 28, 28, 1]
    assert 0.05 < calls[-1]["mean"] < 0.4  # white ink on black, as MNIST: mostly dark
    page.click("#camera-stop")
    assert page.evaluate("document.getElementById('camera').dataset.camera") == "off"
    assert not errors, errors


@pytest.mark.slow
@needs_chromium
def test_classifier_classifies_a_camera_snapshot(browser, stand_in_server):
    page, errors = _open_with_camera(browser, stand_in_server, "classifier")
    page.click("#camera-snap")
    page.wait_for_function("document.getElementById('prediction').dataset.classId !== undefined", timeout=30_000)
    assert page.inner_text("#prediction").startswith("class 3")
    call = page.evaluate("window.standInCalls")[-1]
    assert call["shape"] == [1, 64, 64, 3]
    assert 150 < call["mean"] < 230  # the light paper, RGB in [0, 255]
    assert not errors, errors


@pytest.mark.slow
@needs_chromium
def test_detector_detects_live_frame_after_frame(browser, stand_in_server):
    page, errors = _open_with_camera(browser, stand_in_server, "detector")
    page.evaluate("window.standInCalls = []")
    page.evaluate("window.demo.camera.setLive(true)")
    page.wait_for_function("window.standInCalls.length >= 3", timeout=30_000)
    page.evaluate("window.demo.camera.setLive(false)")
    assert all(call["shape"] == [1, 96, 96, 3] for call in page.evaluate("window.standInCalls"))
    assert page.get_attribute("#summary", "data-count") == "1"
    assert page.inner_text("#detections") == "one 0.900"
    assert not errors, errors
