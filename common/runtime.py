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


def set_op_threads(intra_op: int) -> bool:
    """Run each TensorFlow op on at most `intra_op` threads (0: TensorFlow's default, one per core). Independent
    ops still run side by side (inter-op parallelism). Small ops, as in a GAN step of 8 images, lose more to
    handing work between threads than they gain from splitting it.

    Takes effect only before TensorFlow's first op in this process. Returns whether TensorFlow now uses
    `intra_op`; where an op already ran (a notebook, a test), it says so and keeps the current setting.
    """
    import tensorflow as tf

    if tf.config.threading.get_intra_op_parallelism_threads() == intra_op:
        return True
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    except RuntimeError:
        print(
            f"note: intra_op_threads={intra_op} not applied: TensorFlow already ran in this process; "
            "start a fresh one (python -m projects.<name> ...) to apply it"
        )
        return False
    return True
