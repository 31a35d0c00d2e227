"""Decompression bombs and broken files sent to the served classifier's encoded-image signature (`serving_bytes`,
TF Serving's {"b64": ...} over REST, a string tensor over gRPC): each gets a 400 (gRPC: INVALID_ARGUMENT) that
names the problem, none is decoded, and the server answers a good image right after."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving.server import ModelServer

from .serving_models import add_version

CLASSES = ["circle", "square", "triangle"]
SIZE = 32
BOMB_SIDE = 20_000  # 400 megapixels, 16 times the served limit


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int = BOMB_SIDE) -> bytes:
    """A valid one-colour 1-bit greyscale PNG of side x side pixels: 400 megapixels in about 60 KB."""
    row = b"\0" * (1 + -(-side // 8))  # filter byte, then the packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def encoded(fmt: str, size: tuple[int, int] = (48, 40)) -> bytes:
    """A small noisy RGB image (width, height) as a `fmt` file."""
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def jpeg_bomb() -> bytes:
    """A small JPEG whose start-of-frame header says 60000x60000."""
    data = bytearray(encoded("JPEG"))
    sof = data.index(b"\xff\xc0")  # baseline start of frame: length (2), precision (1), height (2), width (2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)
    return bytes(data)


def gif_bomb() -> bytes:
    """A small GIF whose logical screen (what every frame is drawn on) is 65535x65535."""
    data = bytearray(encoded("GIF"))
    data[6:10] = struct.pack("<HH", 65_535, 65_535)
    return bytes(data)


def bmp_bomb() -> bytes:
    """A small BMP whose header says 30000 wide and 30000 high, top-down (a negative height)."""
    data = bytearray(encoded("BMP"))
    data[18:26] = struct.pack("<ii", 30_000, -30_000)
    return bytes(data)


BOMBS = {
    "png_20000x20000": (png_bomb, "20000x20000"),
    "jpeg_60000x60000": (jpeg_bomb, "60000x60000"),
    "gif_65535x65535": (gif_bomb, "65535x65535"),
    "bmp_30000x30000": (bmp_bomb, "30000x30000"),
}
BROKEN = {
    "zero_bytes": (lambda: b"", "0 bytes that are not a PNG, JPEG, GIF or BMP file"),
    "text": (lambda: b"this is not an image\n", "21 bytes that are not a PNG, JPEG, GIF or BMP file"),
    "webp": (lambda: encoded("WEBP"), "not a PNG, JPEG, GIF or BMP file"),
    "truncated_jpeg": (lambda: encoded("JPEG")[:300], "jpeg"),
    "truncated_png": (lambda: encoded("PNG")[:200], "png"),
    "png_header_only": (lambda: encoded("PNG")[:33], "png"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The classifier's SavedModel (its `serving_default` and `serving_bytes`, as `export` writes them) around the
    classifier's head on a pooling stand-in for the backbone, untrained: written in seconds, decodes like any."""
    import keras

    from common.export.savedmodel import write_savedmodel
    from projects.classifier.model import FEATURE_POOL, ClassNames
    from projects.classifier.project import PROJECT
    from projects.classifier.serving_model import build_serving_model

    keras.utils.set_random_seed(0)
    image = keras.Input((SIZE, SIZE, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D(name=FEATURE_POOL)(image)
    probabilities = keras.layers.Dense(len(CLASSES), activation="softmax", name="probabilities")(features)
    model = keras.Model(image, ClassNames(CLASSES, name="class_names")(probabilities))
    serving = build_serving_model(model)
    staging = tmp_path_factory.mktemp("savedmodel") / "classifier"
    write_savedmodel(serving, staging, extra_signatures=PROJECT.extra_signatures(serving))
    repository = tmp_path_factory.mktemp("repository")
    add_version(repository, "classifier", 1, staging)
    with ModelServer(repository, rest_port=0, grpc_port=0, report=lambda line: None) as s:
        yield s


@pytest.fixture(scope="module")
def rest(server):
    with httpx.Client(base_url=server.rest_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.grpc_address) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def post(rest: httpx.Client, *files: bytes) -> httpx.Response:
    body = {"signature_name": "serving_bytes", "instances": [{"b64": base64.b64encode(f).decode()} for f in files]}
    return rest.post("/v1/models/classifier:predict", json=body)


def grpc_predict(stub, *files: bytes):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "classifier"
    request.model_spec.signature_name = "serving_bytes"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(list(files), dtype=tf.string))
    return stub.Predict(request, timeout=60)


def assert_answers_a_good_image(rest: httpx.Client) -> None:
    response = post(rest, encoded("PNG"), encoded("JPEG", (400, 300)))
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["class_name"] in CLASSES for p in predictions] == [True, True]
    assert all(abs(sum(p["probabilities"]) - 1) < 1e-4 for p in predictions)


def test_the_header_check_reads_each_format():
    from projects.classifier.serving_model import header_size

    for fmt in ("PNG", "JPEG", "GIF", "BMP"):
        assert header_size(tf.constant(encoded(fmt, (48, 40)))).numpy().tolist() == [48, 40], fmt
    assert header_size(tf.constant(png_bomb(1000))).numpy().tolist() == [1000, 1000]
    assert header_size(tf.constant(bmp_bomb())).numpy().tolist() == [30_000, 30_000]
    for data in (b"", b"BM", b"GIF8", b"\x89PNG", b"plain text"):
        assert header_size(tf.constant(data)).numpy().tolist() in ([-1, -1], [0, 0]), data


def test_the_png_bomb_is_small_and_valid():
    """The bomb is a real image a decoder would inflate: a few KB on the wire, 400 megapixels once decoded."""
    bomb = png_bomb()
    assert len(bomb) < 100_000
    with pytest.raises(Image.DecompressionBombError, match="400000000 pixels"):  # PIL reads its header and stops
        Image.open(io.BytesIO(bomb))
    with Image.open(io.BytesIO(png_bomb(64))) as small:  # the same recipe, small enough to decode
        assert small.mode == "1" and np.asarray(small).shape == (64, 64) and not np.asarray(small).any()


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_decompression_bomb_is_refused_undecoded(rest, stub, name):
    make, size = BOMBS[name]
    response = post(rest, make())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert f"a {size} image is over the limit of 25 megapixels" in error and "send it smaller" in error, error
    with pytest.raises(grpc.RpcError) as refused:
        grpc_predict(stub, make())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and size in refused.value.details()
    assert_answers_a_good_image(rest)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_file_gets_a_400_naming_it(rest, stub, name):
    make, words = BROKEN[name]
    response = post(rest, make())
    assert response.status_code == 400, response.text
    assert words.lower() in response.json()["error"].lower(), response.text
    with pytest.raises(grpc.RpcError) as refused:
        grpc_predict(stub, make())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert_answers_a_good_image(rest)


def test_one_bad_file_refuses_the_whole_request(rest):
    response = post(rest, encoded("PNG"), png_bomb(), encoded("GIF"))
    assert response.status_code == 400 and "20000x20000" in response.json()["error"], response.text
    assert_answers_a_good_image(rest)
