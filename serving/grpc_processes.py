"""More processes answering gRPC on the server's port, each with its own copy of the repository's models.

grpcio's Python server passes every call from its poll thread to a pool thread (and, batched, to the
batcher's thread and back) under one interpreter lock: on the digits model one process answers about
1,300 calls/s at concurrency 8 while the cores stay mostly idle. Sockets bound to one port with
SO_REUSEPORT share its connections (the kernel spreads new connections across them), so N processes
each running the same gRPC server answer up to N times the calls, the way web servers run workers.
Each extra process gives TensorFlow's thread pools its share of the cores (cores // N threads):
with TensorFlow's default pools in every process, two processes answered 1,100-1,800 calls/s of
the mnist model at concurrency 8 on 2 cores, and 1,500-2,000 with one thread each.

Each process loads the repository itself and polls it like the main process, so a version exported
while the server runs reaches every process within a poll; they answer status and metadata from the
same folders. They ignore Ctrl-C (the main process stops them) and stop when the main process ends,
even if it is killed: each waits on a pipe from it and exits when the pipe closes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import threading
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path

from common.runtime import quiet_tensorflow


def check_port_free(host: str, port: int) -> None:
    """Raise OSError if something listens on host:port already: a shared port must not join another server's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is no listener
        try:
            probe.bind((host, port))
        except OSError as err:
            raise OSError(f"cannot listen for gRPC on {host}:{port} ({err.strerror})") from None


@dataclass(frozen=True)
class Served:
    """What every extra process serves, and where: the repository, the shared address, the server's settings."""

    repository: Path
    host: str
    port: int
    max_request_bytes: int
    batching: bool
    poll_seconds: float


def _serve(served: Served, threads: int, parent: Connection) -> None:
    """A child process: load the repository, answer gRPC on the shared port until the parent says stop or ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent stops us
    quiet_tensorflow()  # the main process shows TensorFlow's start-up logs (with --verbose); these never repeat them
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from .grpc_service import GrpcServer
    from .model_version import LoadedVersion
    from .registry import ModelRegistry

    registry = ModelRegistry(served.repository, partial(LoadedVersion, batching=served.batching))
    try:
        registry.refresh()
        server = GrpcServer(registry, served.host, served.port, served.max_request_bytes, share_port=True)
    except Exception as err:  # reported to the parent, which stops the server's start with it
        parent.send(f"{type(err).__name__}: {err}")
        registry.close()
        return
    stop = threading.Event()
    poller = threading.Thread(target=registry.poll, args=(served.poll_seconds, stop, lambda line: None), daemon=True)
    poller.start()
    parent.send(None)
    with contextlib.suppress(EOFError):  # EOF: the parent is gone
        parent.recv()
    stop.set()
    server.stop(grace=2)
    poller.join(timeout=10)
    registry.close()


class GrpcProcesses:
    """`count` child processes serving gRPC as `served` says, beside the parent's own server (which shares the port).

    Raises (from `start`):
        OSError: a process could not load the repository or bind the port; the others are stopped.
    """

    def __init__(self, count: int, served: Served) -> None:
        threads = max(1, (os.cpu_count() or 1) // (count + 1))  # the cores, shared with the main process
        self._arguments = (served, threads)
        self._count = count
        self._children: list[tuple[multiprocessing.Process, Connection]] = []

    def start(self, timeout: float = 300) -> None:
        """Spawn the processes, then wait until each answers (TensorFlow's import and the loads take seconds)."""
        context = multiprocessing.get_context("spawn")  # a fork would copy TensorFlow's threads' locks mid-use
        for _ in range(self._count):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(*self._arguments, theirs), daemon=True, name="grpc")
            process.start()
            theirs.close()
            self._children.append((process, ours))
        for process, pipe in self._children:
            error = "it did not start in time"
            try:
                if pipe.poll(timeout):
                    error = pipe.recv()
            except EOFError:
                process.join(timeout=5)
                error = f"it exited with code {process.exitcode}"
            if error is not None:
                self.stop()
                raise OSError(f"a gRPC process failed: {error}")

    def exited(self) -> list[int]:
        """The exit codes of the processes that have ended (none while all serve)."""
        return [process.exitcode for process, _ in self._children if process.exitcode is not None]

    def stop(self) -> None:
        """Ask each process to stop (calls in flight get 2 s), then end any that has not within 15 s."""
        for _, pipe in self._children:
            with contextlib.suppress(OSError):  # it has ended already
                pipe.send("stop")
        for process, pipe in self._children:
            process.join(timeout=15)
            if process.is_alive():
                process.kill()
                process.join()
            pipe.close()
        self._children = []
