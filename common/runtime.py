"""Process set-up that must happen before TensorFlow is imported."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null (C++ code writes there directly, past Python)."""
    sys.stderr.flush()
    fd = sys.stderr.fileno()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def quiet_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow without its start-up chatter, unless `verbose`.

    The CUDA/cuDNN/XLA "Unable to register factory" lines are printed by C++
    before absl logging is set up, so `TF_CPP_MIN_LOG_LEVEL` alone does not hide
    them: the first import and the device probe run with stderr sent to /dev/null. Import errors
    still surface as Python exceptions. Variables the user set are left alone.
    """
    if "tensorflow" in sys.modules:  # already imported (tests, notebooks): nothing left to hide
        return
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        import tensorflow  # noqa: F401

        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    with _stderr_to_devnull():
        import tensorflow as tf

        tf.config.list_physical_devices()  # probes CUDA now, while its "no GPU" error is hidden
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
