"""What the classifier exports: a tensor-in model for every format, and an encoded-image signature for serving.

- `serving_default` (SavedModel, TF Lite, TF.js, ONNX): `image` (batch, size, size, 3)
  float32 RGB in [0, 255], prepared as in training (transparency on white, padded to a
  square, resized) -> `probabilities` (batch, classes) float32 and `class_id` (batch,) int32.
- `serving_bytes` (SavedModel only): `image_bytes` (batch,) string, each a whole PNG, JPEG,
  GIF or BMP file of any size (TF Serving's `{"b64": ...}`) -> the same two outputs plus
  `class_name` (batch,) string and `class_names` (batch, classes) string, the name of each
  probability. Image decoding and string tensors do not convert to TF Lite, TF.js or ONNX
  with builtin ops, so there the client prepares the pixels (as the browser demo does).
  Each file's header is read before it is decoded: a file that is none of the four, or whose
  header promises more than `SERVED_MAX_PIXELS` pixels (a decompression bomb: a PNG of
  20000x20000 of one colour is a few kilobytes), is refused with `InvalidArgumentError`,
  which the server answers with a 400 naming the problem.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from common.export.layers import ClassIndex

from .images import decode_to_model_input

# The most pixels a served file may have (a 24-megapixel photo passes). Every decoded pixel is held as float32 RGBA
# while it is prepared, so this bounds what one file of a request can make the server allocate.
SERVED_MAX_PIXELS = 25_000_000
FORMATS = "PNG, JPEG, GIF or BMP"
_HEADER_BYTES = 32  # enough for the width and height of each format (BMP's end at byte 26)
_MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff", "gif": b"GIF8", "bmp": b"BM"}


def build_serving_model(model: keras.Model) -> keras.Model:
    """`image` (batch, size, size, 3) float32 in [0, 255] -> {"probabilities", "class_id"}."""
    probabilities = model.output
    class_id = ClassIndex(name="class_id")(probabilities)
    return keras.Model(model.input, {"probabilities": probabilities, "class_id": class_id}, name="classifier_serving")


def encoded_image_signature(serving: keras.Model, class_names: Sequence[str]) -> Callable:
    """`serving_bytes`: (batch,) encoded image files -> probabilities, class_id, class_name, class_names."""
    size = serving.input_shape[1]
    names = tf.constant(list(class_names))
    pixels = tf.TensorSpec((size, size, 3), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")])
    def serve_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        images = tf.map_fn(
            lambda data: decode_to_model_input(checked_image_file(data), size), image_bytes, fn_output_signature=pixels
        )
        outputs = serving(images, training=False)
        return {
            **outputs,
            "class_name": tf.gather(names, outputs["class_id"]),
            "class_names": tf.tile(names[None], [tf.shape(image_bytes)[0], 1]),
        }

    return serve_bytes


def _unsigned(header: tf.Tensor, start: int, length: int, big_endian: bool) -> tf.Tensor:
    """The unsigned integer in bytes [start, start + length) of `header` (bytes as (n,) int64), as int64."""
    weights = [256 ** (length - 1 - i if big_endian else i) for i in range(length)]
    return tf.reduce_sum(header[start : start + length] * tf.constant(weights, tf.int64))


def _signed32(value: tf.Tensor) -> tf.Tensor:
    """A little-endian int32 read as unsigned (int64) -> its signed value."""
    return tf.where(value >= 2**31, value - 2**32, value)


def header_size(encoded: tf.Tensor) -> tf.Tensor:
    """(width, height) int64 that a PNG, JPEG, GIF or BMP file's header states, read without decoding the pixels;
    (-1, -1) for bytes that are none of these (zero bytes included).

    Args:
        encoded: a scalar string, the whole file.

    Raises:
        tf.errors.InvalidArgumentError: a JPEG whose header cannot be read (when run).
    """
    padded = tf.strings.substr(encoded + tf.constant(b"\0" * _HEADER_BYTES), 0, _HEADER_BYTES)
    header = tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)  # (_HEADER_BYTES,)

    def starts_with(kind: str) -> tf.Tensor:
        return tf.equal(tf.strings.substr(padded, 0, len(_MAGIC[kind])), _MAGIC[kind])

    def png() -> tf.Tensor:  # IHDR: width and height, big-endian, after the signature and the chunk's length and type
        return tf.stack([_unsigned(header, 16, 4, True), _unsigned(header, 20, 4, True)])

    def gif() -> tf.Tensor:  # the logical screen every frame is drawn on, little-endian
        return tf.stack([_unsigned(header, 6, 2, False), _unsigned(header, 8, 2, False)])

    def bmp() -> tf.Tensor:  # BITMAPINFOHEADER: signed, little-endian; a negative height is a top-down image
        return tf.abs(
            tf.stack([_signed32(_unsigned(header, 18, 4, False)), _signed32(_unsigned(header, 22, 4, False))])
        )

    def jpeg() -> tf.Tensor:  # (height, width, channels) from the start-of-frame marker
        shape = tf.io.extract_jpeg_shape(encoded, output_type=tf.int32)
        return tf.cast(tf.stack([shape[1], shape[0]]), tf.int64)

    return tf.case(
        [(starts_with("png"), png), (starts_with("gif"), gif), (starts_with("bmp"), bmp), (starts_with("jpeg"), jpeg)],
        default=lambda: tf.constant([-1, -1], tf.int64),
    )


def checked_image_file(encoded: tf.Tensor, max_pixels: int = SERVED_MAX_PIXELS) -> tf.Tensor:
    """`encoded` (a scalar string) once its header shows a PNG, JPEG, GIF or BMP file of at most `max_pixels` pixels.

    Raises:
        tf.errors.InvalidArgumentError: (when run) the bytes are no such file, or the image is larger; the message
            says which, with the size and the limit.
    """
    size = header_size(encoded)
    known = tf.debugging.Assert(
        size[0] >= 0,
        [
            tf.strings.format(
                "image_bytes: {} bytes that are not a " + FORMATS + " file; send the whole file, base64-encoded",
                tf.strings.length(encoded),
            )
        ],
    )
    with tf.control_dependencies([known]):
        small = tf.debugging.Assert(
            size[0] * size[1] <= max_pixels,
            [
                tf.strings.format(
                    "image_bytes: a {}x{} image is over the limit of "
                    + f"{max_pixels / 1e6:g} megapixels (a decompression bomb?), not decoded; send it smaller",
                    (size[0], size[1]),
                )
            ],
        )
    with tf.control_dependencies([known, small]):
        return tf.identity(encoded)
