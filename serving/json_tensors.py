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

Speed (see serving/README.md, "Where the time went"): a body that is one rectangular
array of numbers (`{"instances": [[[0.1, ...]]]}`, the common case) never becomes
nested Python lists. Its brackets are checked against the shape they imply and its
numbers are parsed by orjson as one flat list, so a (32, 28, 28, 1) batch makes one
list instead of 26,000, and the garbage collector, which walks TensorFlow's half a
million objects whenever enough lists are made, stays out of the way. Anything else
(strings, objects, NaN, ragged lists) takes the general path, with the same answers.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
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
    value: Any  # JSON values, or an ndarray when the body was one array of numbers (see _numeric_body)
    raw: bytes = field(default=b"", repr=False, compare=False)


# `{"signature_name": "...", "instances" | "inputs": <array>, "signature_name": "..."}`: the head up to the
# array, and the tail after its last `]`. A name with escapes takes the general path.
_S = rb"[ \t\n\r]*"  # JSON's whitespace (not \s, which also takes \f and \v)
_NAME = rb'"signature_name"' + _S + rb":" + _S + rb'"([^"\\\x00-\x1f]*)"' + _S  # no escapes, no control characters
_HEAD = re.compile(_S + rb"\{" + _S + rb"(?:" + _NAME + rb"," + _S + rb')?"(instances|inputs)"' + _S + rb":" + _S)
_TAIL = re.compile(_S + rb"(?:," + _S + _NAME + rb")?\}" + _S)
_NUMBER_BYTES = b"0123456789.eE+-"  # every byte a JSON number can hold; orjson checks their order
_BRACKETS_TO_SPACES = bytes.maketrans(b"[]", b"  ")
_MAX_DIMS = 32  # numpy's limit; deeper nesting takes the general path (and gets its 400)


def _shape_of(skeleton: bytes) -> tuple[int, ...] | None:
    """The shape that a skeleton (an array with its numbers and spaces removed, `[[,,],[,,]]`) implies.

    Read from the first list at each depth, then confirmed by rebuilding the whole
    skeleton of that shape: None unless every list at a depth has the same length.
    """
    depth = len(skeleton) - len(skeleton.lstrip(b"["))
    if not 0 < depth <= _MAX_DIMS:
        return None
    dims: list[int] = []
    child = 0  # the skeleton length of one element of the list being measured (0: a number)
    for closing in range(1, depth + 1):  # innermost list first: it ends at the first "]", its parent at "]]"
        end = skeleton.find(b"]" * closing)
        if end < 0:
            return None
        length = end + closing - (depth - closing)  # the first list at this depth starts after its parents' "["
        count, rest = divmod(length - 1, child + 1)  # "[" + count elements joined by "," + "]"
        if rest or count < 1:
            return None
        dims.insert(0, count)
        child = length
    expected = b"[" + b"," * (dims[-1] - 1) + b"]"
    for count in reversed(dims[:-1]):
        expected = b"[" + b",".join([expected] * count) + b"]"
    return tuple(dims) if expected == skeleton else None


def _numeric_array(text: bytes) -> np.ndarray | None:
    """`text` (a JSON array) as the ndarray np.asarray would make of its parsed value; None unless all numbers."""
    skeleton = text.translate(None, _NUMBER_BYTES + b" \t\n\r")
    shape = _shape_of(skeleton)
    if shape is None:
        return None
    try:
        values = orjson.loads(b"[" + text.translate(_BRACKETS_TO_SPACES) + b"]")
    except orjson.JSONDecodeError:  # a malformed number (01, 1., 1e999): the general path words the error
        return None
    if len(values) != math.prod(shape):  # e.g. [] or [1 2]: the skeleton cannot tell their numbers apart
        return None
    return np.asarray(values).reshape(shape)


def _numeric_body(body: bytes) -> PredictBody | None:
    """The fast path: a body whose only tensor is one array of numbers, already as an ndarray; None otherwise."""
    head = _HEAD.match(body)
    end = body.rfind(b"]") + 1
    if head is None or end <= head.end() or body[head.end() : head.end() + 1] != b"[":
        return None
    tail = _TAIL.fullmatch(body, end)
    if tail is None or (head[1] is not None and tail[1] is not None):  # a name given twice: general path
        return None
    array = _numeric_array(body[head.end() : end])
    if array is None:
        return None
    try:
        name = (head[1] if head[1] is not None else tail[1] or b"").decode()
    except UnicodeDecodeError:
        return None
    body_format = ROW if head[2] == b"instances" else COLUMNAR
    return PredictBody(name or DEFAULT_SIGNATURE, body_format, array, body)


def parse_body(body: bytes) -> PredictBody:
    """Parse a predict request's JSON body; a 400 names what is wrong with it."""
    fast = _numeric_body(body)
    if fast is not None:
        return fast
    return _parse_json(body)


def _parse_json(body: bytes) -> PredictBody:
    """The general path of `parse_body`: any JSON body."""
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


def _parsed_as_json(body: PredictBody, signature: Signature) -> PredictBody:
    """`body` with JSON values where the fast path's ndarray would not give the general path's answer.

    That is a string input (its error names the first non-string value) or several inputs (an error anyway).
    """
    if not isinstance(body.value, np.ndarray):
        return body
    specs = list(signature.inputs.values())
    if len(specs) == 1 and specs[0].dtype.name != "string":
        return body
    return _parse_json(body.raw)


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
    body = _parsed_as_json(body, signature)
    names = list(signature.inputs)
    if body.format == COLUMNAR:
        if _is_named(body.value):
            signature.check_names(body.value)
            return {k: to_array(v, signature.inputs[k]) for k, v in body.value.items()}
        if len(names) != 1:
            raise invalid_argument(f'"inputs" must be an object naming each input: {signature.describe_inputs()}')
        return {names[0]: to_array(body.value, signature.inputs[names[0]])}

    instances = body.value
    named = [False] if isinstance(instances, np.ndarray) else [_is_named(item) for item in instances]
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


def _all_finite(outputs: dict[str, np.ndarray]) -> bool:
    return all(np.isfinite(array).all() for array in outputs.values() if array.dtype.kind in "fc")


def encode_response(outputs: dict[str, np.ndarray], body_format: str) -> bytes:
    """`to_response` as JSON bytes: orjson (30 times faster than json.dumps on a batch of 32 x 10 floats).

    orjson writes NaN and Infinity as null; TF Serving writes them as NaN and Infinity, so
    outputs holding them go through json.dumps, which writes them the same way.
    """
    payload = to_response(outputs, body_format)
    return orjson.dumps(payload) if _all_finite(outputs) else json.dumps(payload).encode()
