"""Core ML: the exported SavedModel converted with coremltools, for iPhone, iPad and Mac apps.

`convert` turns the latest published SavedModel version of a project into an ML
program (`<name>.mlpackage`, float32 weights), with a flexible batch dimension and
the inputs and outputs named as in the SavedModel's `serving_default` signature.
Conversion runs on Linux; running a Core ML model needs macOS (coremltools ships
its prediction library for macOS only), so what is checked here is the converted
model's interface, not its answers. On a Mac:
`coremltools.models.MLModel("mnist.mlpackage").predict({"image": images})`.

coremltools 9.0 is tested by its makers with TensorFlow up to 2.12 and warns under
2.19; the ops of mnist's model convert. A SavedModel whose inputs Core ML has no
type for (uint8 frames, string image bytes) or whose ops coremltools lacks fails
with `CoreMLError` and the converter's reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow as tf

from .savedmodel import SIGNATURE, versions

MAX_BATCH = 64  # upper bound of the flexible batch dimension (Core ML needs one)
MAX_LENGTH = 512  # upper bound of any other unknown dimension (a sequence's length)
CORE_ML_DTYPES = (tf.float32, tf.float16, tf.int32)  # the input types Core ML's multi-arrays take


class CoreMLError(RuntimeError):
    """A SavedModel coremltools cannot convert; the message names the input or the converter's reason."""


def latest_savedmodel(model_dir: Path) -> Path:
    """The newest published version of a model folder (`artifacts/serving/<name>/`).

    Raises:
        FileNotFoundError: no version is published there.
    """
    published = versions(model_dir)
    if not published:
        raise FileNotFoundError(f"no SavedModel version in {model_dir}")
    return model_dir / str(published[-1])


def _shape(shape: tf.TensorShape, ct: Any) -> tuple:
    """A Core ML input shape: the batch (first) dimension flexible up to `MAX_BATCH`, other unknowns up to
    `MAX_LENGTH`."""
    dims = []
    for i, size in enumerate(shape.as_list()):
        dims.append(size if size is not None else ct.RangeDim(1, MAX_BATCH if i == 0 else MAX_LENGTH, 1))
    return tuple(dims)


def convert(savedmodel: Path, out: Path) -> dict[str, Any]:
    """Convert `savedmodel`'s `serving_default` to the ML program `out` (a `.mlpackage` folder).

    Returns:
        {"inputs": {name: "dtype (shape)"}, "outputs": [names], "bytes": size of the package}.

    Raises:
        CoreMLError: an input type Core ML lacks, or an op coremltools cannot convert.
    """
    import coremltools as ct

    loaded = tf.saved_model.load(str(savedmodel))  # holds the variables the signature reads while it converts
    signature = loaded.signatures[SIGNATURE]
    specs = signature.structured_input_signature[1]
    for name, spec in specs.items():
        if spec.dtype not in CORE_ML_DTYPES:
            raise CoreMLError(f'input "{name}" is {spec.dtype.name}; Core ML takes float32, float16 or int32 only')
    inputs = [ct.TensorType(name=name, shape=_shape(spec.shape, ct)) for name, spec in sorted(specs.items())]
    try:
        model = ct.convert(
            [signature],  # serving_default alone: coremltools takes one function, and a SavedModel may hold more
            source="tensorflow",
            convert_to="mlprogram",
            inputs=inputs,
            compute_precision=ct.precision.FLOAT32,
        )
    except (NotImplementedError, ValueError, TypeError, RuntimeError) as err:
        raise CoreMLError(f"coremltools cannot convert {savedmodel}: {err}") from err
    ml_spec = model.get_spec()
    # The converted outputs come in the signature's flattened order (its keys, sorted), named after graph nodes.
    names = sorted(signature.structured_outputs)
    converted = [output.name for output in ml_spec.description.output]
    if len(converted) != len(names):
        raise CoreMLError(f"coremltools gave {len(converted)} outputs for the signature's {len(names)}: {names}")
    for old, new in zip(converted, names, strict=True):
        if old != new:
            ct.utils.rename_feature(ml_spec, old, new)
    renamed = ct.models.MLModel(ml_spec, weights_dir=model.weights_dir, skip_model_load=True)
    renamed.save(str(out))
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {
        "inputs": {name: f"{spec.dtype.name} {tuple(spec.shape.as_list())}" for name, spec in sorted(specs.items())},
        "outputs": names,
        "bytes": size,
    }


def describe(package: Path) -> dict[str, list[str]]:
    """The input and output names of a saved `.mlpackage`, read without loading it (works on Linux)."""
    import coremltools as ct

    spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
    return {
        "inputs": [i.name for i in spec.description.input],
        "outputs": [o.name for o in spec.description.output],
    }
