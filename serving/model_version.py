"""One version of a model, loaded from its SavedModel with `tf.saved_model.load`, called with numpy arrays."""

from __future__ import annotations

from concurrent.futures import Future
from functools import partial
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from .batching import Batcher
from .errors import invalid_argument
from .repository import SAVED_MODEL
from .signatures import Signature


def read_signature_defs(path: Path) -> get_model_metadata_pb2.SignatureDefMap:
    """Every SignatureDef in `path/saved_model.pb` (what TF Serving's metadata answers with)."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((path / SAVED_MODEL).read_bytes())
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in saved_model.meta_graphs[0].signature_def.items():
        signature_defs.signature_def[key].CopyFrom(signature_def)
    return signature_defs


class LoadedVersion:
    """A SavedModel version ready to answer: its signatures, checked inputs in, numpy arrays out.

    With `batching`, concurrent calls of a signature whose inputs all have a free batch
    dimension are run together (see `batching.Batcher`); `close` stops those batchers.
    """

    def __init__(self, name: str, version: int, path: Path, batching: bool = False) -> None:
        self.name, self.version, self.path = name, version, path
        self._saved_model = tf.saved_model.load(str(path))  # kept: the signatures read its variables
        self.signature_defs = read_signature_defs(path)
        self.signatures = {
            key: Signature.from_proto(key, self.signature_defs.signature_def[key])
            for key in self._saved_model.signatures
        }
        self._batchers = {
            key: Batcher(partial(self._call, key))
            for key, signature in self.signatures.items()
            if batching and signature.batchable
        }

    def signature(self, name: str) -> Signature:
        """The signature called `name`; a 400 listing the signatures there are if it does not exist."""
        if name not in self.signatures:
            raise invalid_argument(
                f'Serving signature name: "{name}" not found in signature def; '
                f"model {self.name} version {self.version} has: {', '.join(sorted(self.signatures))}"
            )
        return self.signatures[name]

    def predict(self, signature_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run a signature on checked inputs: {"image": (batch, 28, 28, 1) float32} -> {"digit": (batch,) int32, ...}.

        Errors the model itself raises for an input (tf.errors.InvalidArgumentError) are a 400.
        """
        batcher = self._batchers.get(signature_name)
        return batcher(inputs) if batcher else self._call(signature_name, inputs)

    def submit(self, signature_name: str, inputs: dict[str, np.ndarray]) -> Future | None:
        """`predict` without waiting, for a batched signature: a future of its outputs; None if not batched."""
        batcher = self._batchers.get(signature_name)
        return batcher.submit(inputs) if batcher else None

    def _call(self, signature_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        function = self._saved_model.signatures[signature_name]
        try:
            outputs = function(**{key: tf.constant(value) for key, value in inputs.items()})
        except tf.errors.InvalidArgumentError as err:
            raise invalid_argument(f"{self.name} version {self.version} rejected the input: {err.message}") from None
        return {key: value.numpy() for key, value in outputs.items()}

    def close(self) -> None:
        """Stop the batching threads (calls still in flight are answered)."""
        for batcher in self._batchers.values():
            batcher.close()
