"""A SavedModel signature's inputs and outputs, and the check every request's tensors pass before the model runs.

The check is the same for REST and gRPC: every input named, no unknown name,
the signature's dtype, and its shape (`None` dimensions take any size), e.g.
`image` float32 (None, 28, 28, 1). Errors name the tensor and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from .errors import invalid_argument


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature: name (its key), dtype, shape (None: unknown rank)."""

    name: str
    dtype: tf.DType
    shape: tuple[int | None, ...] | None

    @classmethod
    def from_proto(cls, name: str, info: meta_graph_pb2.TensorInfo) -> TensorSpec:
        """From a SignatureDef's TensorInfo (dims of -1 become None)."""
        shape = info.tensor_shape
        dims = None if shape.unknown_rank else tuple(d.size if d.size >= 0 else None for d in shape.dim)
        return cls(name, tf.dtypes.as_dtype(info.dtype), dims)

    @property
    def numpy_dtype(self) -> np.dtype:
        """The numpy dtype of this tensor's arrays (object, holding bytes, for strings)."""
        return np.dtype(self.dtype.as_numpy_dtype)

    def describe(self) -> str:
        """E.g. `float32 (None, 28, 28, 1)`."""
        shape = "(any shape)" if self.shape is None else str(self.shape)
        return f"{self.dtype.name} {shape}"

    def matches(self, shape: tuple[int, ...]) -> bool:
        """True if an array of `shape` fits this tensor's shape."""
        if self.shape is None:
            return True
        return len(shape) == len(self.shape) and all(
            d is None or d == s for d, s in zip(self.shape, shape, strict=True)
        )

    def check(self, array: np.ndarray) -> np.ndarray:
        """`array` if its dtype and shape are this tensor's; otherwise a 400 naming both."""
        if array.dtype != self.numpy_dtype or not self.matches(array.shape):
            got = tf.dtypes.as_dtype(array.dtype).name if array.dtype != object else "string"
            raise invalid_argument(f'input "{self.name}": expected {self.describe()}, got {got} {array.shape}')
        return array


@dataclass(frozen=True)
class Signature:
    """A named signature of a SavedModel (`serving_default`): its inputs and outputs by key."""

    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    @classmethod
    def from_proto(cls, name: str, signature_def: meta_graph_pb2.SignatureDef) -> Signature:
        """From a MetaGraphDef's SignatureDef."""
        inputs, outputs = signature_def.inputs, signature_def.outputs
        return cls(
            name,
            {key: TensorSpec.from_proto(key, inputs[key]) for key in sorted(inputs)},
            {key: TensorSpec.from_proto(key, outputs[key]) for key in sorted(outputs)},
        )

    @property
    def batchable(self) -> bool:
        """True if every input's first dimension is free: requests can be concatenated along it."""
        return all(spec.shape and spec.shape[0] is None for spec in self.inputs.values())

    def describe_inputs(self) -> str:
        """E.g. `image float32 (None, 28, 28, 1)`, one per input, comma-separated."""
        return ", ".join(f"{key} {spec.describe()}" for key, spec in self.inputs.items())

    def check_names(self, names: Iterable[str]) -> None:
        """A 400 naming the first unknown or missing input, with what the signature takes."""
        names = set(names)
        unknown = sorted(names - set(self.inputs))
        missing = [key for key in self.inputs if key not in names]
        if unknown or missing:
            problem = f"unknown input {unknown[0]!r}" if unknown else f"missing input {missing[0]!r}"
            raise invalid_argument(f'{problem}; signature "{self.name}" takes: {self.describe_inputs()}')

    def check_inputs(self, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The request's tensors, checked: names, dtypes and shapes are the signature's; otherwise a 400."""
        self.check_names(tensors)
        return {key: self.inputs[key].check(array) for key, array in tensors.items()}
