"""TF Serving's REST predict JSON: request bodies to numpy arrays, and outputs back to JSON.

Two formats, as TF Serving documents them:
- row: `{"instances": [instance, ...]}` -> `{"predictions": [...]}`. An instance is
  the value of the only input, or an object naming every input; the instances
  are stacked into the batch dimension.
- columnar: `{"inputs": value or {name: value}}` -> `{"outputs": value or {name: value}}`.
Both take an optional `"signature_name"` (default `serving_default`).

Numbers go to float tensors; integers (no fraction) to int tensors; true/false
to bool; strings to string tensors, or `{"b64": "..."}` for binary data. String
outputs whose name ends in `_bytes` come back as `{"b64": "..."}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from .errors import ServingError, invalid_argument

if TYPE_CHECKING:
    from .signatures import Signature, TensorSpec

DEFAULT_SIGNATURE = "serving_default"
ROW, COLUMNAR = "instances", "inputs"
_JSON_KINDS = {"b": "true/false", "U": "strings", "O": "objects, nulls or mixed values", "f": "fractional numbers"}


@dataclass(frozen=True)
class PredictBody:
    """A parsed predict request: the signature asked for, the format (ROW or COLUMNAR) and its JSON value."""

    signature_name: str
    format: str
    value: Any


def parse_body(body: bytes) -> PredictBody:
    """Parse a predict request's JSON body; a 400 names what is wrong with it."""
    if not body.strip():
        raise invalid_argument('empty request body; send JSON like {"instances": [...]} or {"inputs": ...}')
    try:
        request = orjson.loads(body)  # about 3 times faster than json.loads on arrays of numbers
    except orjson.JSONDecodeError:
        try:
            request = json.loads(body)  # NaN and Infinity, which TF Serving accepts and orjson does not
        except (ValueError, RecursionError) as err:
            raise invalid_argument(f"malformed JSON: {err}") from None
    if not isinstance(request, dict):
        raise invalid_argument(
            f'the body must be a JSON object with "instances" or "inputs", not {type(request).__name__}'
        )
    signature_name = request.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature_name, str):
        raise invalid_argument('"signature_name" must be a string, e.g. "serving_default"')
    if (ROW in request) == (COLUMNAR in request):
        raise invalid_argument('the body needs exactly one of "instances" (row format) or "inputs" (columnar format)')
    if ROW in request:
        instances = request[ROW]
        if not isinstance(instances, list) or not instances:
            raise invalid_argument('"instances" must be a non-empty list, one item per example')
        return PredictBody(signature_name or DEFAULT_SIGNATURE, ROW, instances)
    return PredictBody(signature_name or DEFAULT_SIGNATURE, COLUMNAR, request[COLUMNAR])


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_named(value: Any) -> bool:
    """An object naming inputs (a {"b64": ...} object is a value, not names)."""
    return isinstance(value, dict) and not _is_b64(value)


def _leaf_bytes(value: Any, spec: TensorSpec) -> Any:
    """Nested lists of JSON strings and {"b64"} objects -> the same nesting of bytes."""
    if isinstance(value, list):
        return [_leaf_bytes(v, spec) for v in value]
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid_argument(
                f'input "{spec.name}": a string is not valid UTF-8; send it as {{"b64": ...}}'
            ) from None
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise invalid_argument(f'input "{spec.name}": {{"b64": ...}} holds invalid base64') from None
    raise invalid_argument(
        f'input "{spec.name}" is a string tensor: expected strings or {{"b64": ...}}, got {value!r:.40}'
    )


def _not_rectangular(spec: TensorSpec) -> ServingError:
    problem = "nested lists of unequal lengths, or too deep"
    return invalid_argument(f'input "{spec.name}": {problem}; expected {spec.describe()}')


def _string_array(value: Any, spec: TensorSpec) -> np.ndarray:
    try:
        array = np.array(_leaf_bytes(value, spec), dtype=object)
        rectangular = array.ndim <= 32 and all(isinstance(v, bytes) for v in array.flat)  # numpy's limit: 32 dims
    except (ValueError, RecursionError):  # ragged, or nested deeper than any tensor
        rectangular = False
    if not rectangular:
        raise _not_rectangular(spec)
    return array


def to_array(value: Any, spec: TensorSpec) -> np.ndarray:
    """A JSON value (number, string, nested lists) as an array of `spec`'s dtype; 400 if it cannot be one."""
    if spec.dtype.name == "string":
        return _string_array(value, spec)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, RecursionError):
        raise _not_rectangular(spec) from None
    kind, dtype = array.dtype.kind, spec.numpy_dtype
    allowed = {"f": "iuf", "i": "iu", "u": "iu", "b": "b"}.get(dtype.kind, "")
    if array.size and kind not in allowed:
        got = _JSON_KINDS.get(kind, array.dtype.name)
        raise invalid_argument(f'input "{spec.name}" is {spec.describe()}: got {got}')
    if array.size and dtype.kind in "iu":
        limits = np.iinfo(dtype)
        if array.min() < limits.min or array.max() > limits.max:
            raise invalid_argument(f'input "{spec.name}": a value is outside the range of {dtype.name}')
    with np.errstate(over="ignore", invalid="ignore"):
        converted = array.astype(dtype)
    if dtype.kind == "f" and array.size and (np.isfinite(array) & ~np.isfinite(converted)).any():
        raise invalid_argument(f'input "{spec.name}": a value is too large for {dtype.name}')
    return converted


def to_inputs(body: PredictBody, signature: Signature) -> dict[str, np.ndarray]:
    """The body's tensors by input name (not yet checked against the signature's shapes)."""
    names = list(signature.inputs)
    if body.format == COLUMNAR:
        if _is_named(body.value):
            signature.check_names(body.value)
            return {k: to_array(v, signature.inputs[k]) for k, v in body.value.items()}
        if len(names) != 1:
            raise invalid_argument(f'"inputs" must be an object naming each input: {signature.describe_inputs()}')
        return {names[0]: to_array(body.value, signature.inputs[names[0]])}

    instances = body.value
    named = [_is_named(item) for item in instances]
    if not any(named):
        if len(names) != 1:
            raise invalid_argument(
                f'"instances" must be a list of objects naming each input: {signature.describe_inputs()}'
            )
        return {names[0]: to_array(instances, signature.inputs[names[0]])}
    for i, item in enumerate(instances):
        if not named[i] or set(item) != set(names):
            keys = sorted(item) if named[i] else "a value"
            raise invalid_argument(
                f"instance {i} has {keys}; every instance must be an object with keys {sorted(names)}"
            )
    return {k: to_array([item[k] for item in instances], signature.inputs[k]) for k in names}


def _json_value(array: np.ndarray, name: str) -> Any:
    """An output array as JSON: numbers and lists; strings as text, or {"b64"} for `*_bytes` outputs."""
    if array.dtype != object:
        return array.tolist()
    as_b64 = name.endswith("_bytes")

    def convert(value: Any) -> Any:
        if isinstance(value, list):
            return [convert(v) for v in value]
        if not as_b64:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                pass  # not text: send it as base64 rather than fail
        return {"b64": base64.b64encode(value).decode("ascii")}

    return convert(array.tolist())


def to_response(outputs: dict[str, np.ndarray], body_format: str) -> dict[str, Any]:
    """`{"predictions": [...]}` (row format) or `{"outputs": ...}` (columnar), as TF Serving answers."""
    names = sorted(outputs)
    if body_format == COLUMNAR:
        if len(names) == 1:
            return {"outputs": _json_value(outputs[names[0]], names[0])}
        return {"outputs": {k: _json_value(outputs[k], k) for k in names}}
    sizes = {k: outputs[k].shape[0] if outputs[k].ndim else None for k in names}
    if None in sizes.values() or len(set(sizes.values())) > 1:
        raise invalid_argument(f'outputs have no common batch size ({sizes}); use the columnar format ("inputs")')
    if len(names) == 1:
        return {"predictions": _json_value(outputs[names[0]], names[0])}
    values = {k: _json_value(outputs[k], k) for k in names}
    return {"predictions": [{k: values[k][i] for k in names} for i in range(sizes[names[0]])]}
