"""Read a PyTorch checkpoint in the legacy (pre-1.6, not zipped) format into NumPy arrays, without PyTorch.

The format: three small pickles (magic number, protocol version, system info), the pickled state dict whose
tensors name their storages by key (`persistent_load`), a pickled list of those keys, then each storage's
raw bytes after an int64 element count. Every pickle in the file goes through one Unpickler whose `find_class`
admits tensors, storages and `OrderedDict` only: anything else is refused, so a checkpoint cannot run code.
"""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
}


@dataclass
class _TensorRef:
    """A tensor before its storage is read: the storage's key, the offset, shape and strides in elements."""

    key: str
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, storages: dict[str, list]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda key, offset, shape, strides, *_: _TensorRef(key, offset, tuple(shape), tuple(strides))
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"{module}.{name} is not a tensor or a state dict: refused")

    def persistent_load(self, pid: tuple) -> str:
        _, dtype, key, _location, _size, _view = pid
        self.storages[key] = [dtype, None]
        return key


def read_legacy_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """{parameter name: array} of a legacy PyTorch state dict file, in PyTorch's layouts (e.g. convolutions
    (out, in, kh, kw)).

    Raises:
        ValueError: the file is not a legacy PyTorch state dict (a zipped checkpoint, or a truncated file).
    """
    storages: dict[str, list] = {}
    try:
        with open(path, "rb") as f:
            for _ in range(3):  # magic number, protocol version, system info
                _StateDictUnpickler(f, storages).load()
            state = _StateDictUnpickler(f, storages).load()
            for key in _StateDictUnpickler(f, storages).load():
                (count,) = struct.unpack("<q", f.read(8))
                dtype = np.dtype(storages[key][0])
                storages[key][1] = np.frombuffer(f.read(count * dtype.itemsize), dtype)
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError) as error:
        raise ValueError(f"{path}: not a legacy PyTorch state dict ({error})") from error
    arrays = {}
    for name, ref in state.items():
        data = storages[ref.key][1]
        arrays[name] = np.lib.stride_tricks.as_strided(
            data[ref.offset :], shape=ref.shape, strides=tuple(s * data.itemsize for s in ref.strides)
        ).copy()
    return arrays
