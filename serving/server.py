"""The embedded model server: TF Serving's REST API (FastAPI on uvicorn) and gRPC API over one model repository.

    python -m serving.server [--repository artifacts/serving] [--rest-port 8501] [--grpc-port 8500] [--host 127.0.0.1]
                             [--grpc-processes 1]

`make serve` runs it. It serves every model of the repository (as models.config
lists them, or every model folder), polls the repository so that a version
exported while it runs is served at once and a removed one is dropped, and
stops cleanly on Ctrl-C. It listens on 127.0.0.1 only unless --host says otherwise.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import TracebackType

import uvicorn

from common.paths import DEFAULT_ARTIFACTS, REPO_ROOT
from common.runtime import quiet_tensorflow

DEFAULT_REPOSITORY = DEFAULT_ARTIFACTS / "serving"
DEFAULT_MAX_REQUEST_MB = 64


class ModelServer:
    """REST and gRPC servers sharing one ModelRegistry, plus the thread that polls the repository.

    Ports of 0 pick free ones (see `rest_port`, `grpc_port` after `start`). With `grpc_processes` > 1,
    that many processes answer gRPC on its port, the extra ones with registries of their own
    (grpc_processes.py). Use as a context manager, or call `start` and `stop`.
    """

    def __init__(
        self,
        repository: Path,
        host: str = "127.0.0.1",
        rest_port: int = 8501,
        grpc_port: int = 8500,
        poll_seconds: float = 1.0,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_MB * 2**20,
        batching: bool = True,
        report: Callable[[str], None] = print,
        grpc_processes: int = 1,
    ) -> None:
        from .model_version import LoadedVersion
        from .registry import ModelRegistry

        self.registry = ModelRegistry(repository, partial(LoadedVersion, batching=batching))
        self.host, self.rest_port, self.grpc_port = host, rest_port, grpc_port
        self.poll_seconds, self.max_request_bytes, self.report = poll_seconds, max_request_bytes, report
        self.batching, self.grpc_processes = batching, grpc_processes
        self._stop_polling = threading.Event()
        self._threads: list[threading.Thread] = []
        self._grpc = None
        self._more_grpc = None
        self._uvicorn = None

    def start(self) -> list[str]:
        """Load the repository, then listen; returns the load messages.

        Raises:
            RepositoryError: models.config is invalid.
            OSError: a port cannot be bound.
        """
        from .grpc_processes import GrpcProcesses, Served, check_port_free
        from .grpc_service import start_grpc_server
        from .rest import create_app

        events = self.registry.refresh()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        rest_socket = socket.socket(family, socket.SOCK_STREAM)
        rest_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            rest_socket.bind((self.host, self.rest_port))
        except OSError as err:
            rest_socket.close()
            raise OSError(f"cannot listen for REST on {self.host}:{self.rest_port} ({err.strerror})") from None
        self.rest_port = rest_socket.getsockname()[1]
        shared = self.grpc_processes > 1
        try:
            if shared and self.grpc_port:
                check_port_free(self.host, self.grpc_port)
            self._grpc, self.grpc_port = start_grpc_server(
                self.registry, self.host, self.grpc_port, self.max_request_bytes, share_port=shared
            )
            if shared:
                served = Served(
                    self.registry.repository,
                    self.host,
                    self.grpc_port,
                    self.max_request_bytes,
                    self.batching,
                    self.poll_seconds,
                )
                self._more_grpc = GrpcProcesses(self.grpc_processes - 1, served)
                self._more_grpc.start()
        except OSError:
            rest_socket.close()
            if self._grpc is not None:
                self._grpc.stop(grace=0)
                self._grpc = None
            raise
        app = create_app(self.registry, self.max_request_bytes)
        # loop and http "auto": uvloop and httptools, pinned in requirements.txt (asyncio and h11 without them).
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5)
        self._uvicorn = uvicorn.Server(config)
        self._spawn(self._uvicorn.run, [rest_socket])
        self._spawn(self.registry.poll, self.poll_seconds, self._stop_polling, self.report)
        deadline = time.monotonic() + 30
        while not self._uvicorn.started:
            if time.monotonic() > deadline or not self._threads[0].is_alive():
                self.stop()
                raise OSError(f"the REST server on {self.host}:{self.rest_port} did not start")
            time.sleep(0.02)
        return events

    def _spawn(self, target: Callable, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop answering (requests in flight get a few seconds to finish), stop polling, unload the models."""
        self._stop_polling.set()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._grpc is not None:
            self._grpc.stop(grace=2)
        if self._more_grpc is not None:
            self._more_grpc.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self.registry.close()

    @property
    def running(self) -> bool:
        """True while the REST server and the polling thread run."""
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

    def exited_grpc_processes(self) -> list[int]:
        """The exit codes of the extra gRPC processes that have ended (the others and the main one keep serving)."""
        return self._more_grpc.exited() if self._more_grpc is not None else []

    @property
    def rest_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.rest_port}"

    @property
    def grpc_address(self) -> str:
        return f"[{self.host}]:{self.grpc_port}" if ":" in self.host else f"{self.host}:{self.grpc_port}"

    def __enter__(self) -> ModelServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def describe(server: ModelServer) -> str:
    """What the server serves and where, for the console."""
    from .repository import CONFIG_NAME

    repository = server.registry.repository
    source = CONFIG_NAME if (repository / CONFIG_NAME).is_file() else "every model folder, latest version"
    lines = [f"Model repository: {_shown(repository)} ({source})"]
    served = server.registry.served()
    for name, versions in served.items():
        loaded = ", ".join(map(str, versions)) or "none loaded yet"
        lines.append(f"  {name}: versions {loaded}    {server.rest_url}/v1/models/{name}")
    if not served:
        lines.append("  no models yet: export one (make project=mnist export); it is picked up while this runs")
    lines.append(f"REST: {server.rest_url}/v1/models/<name>[:predict]")
    processes = f", {server.grpc_processes} processes" if server.grpc_processes > 1 else ""
    lines.append(f"gRPC: {server.grpc_address} (tensorflow_serving PredictionService, ModelService{processes})")
    lines.append(f"Polling for new versions every {server.poll_seconds:g} s. Ctrl-C stops.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m serving.server`."""
    parser = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", type=Path, default=DEFAULT_REPOSITORY, help="default: artifacts/serving")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--rest-port", type=int, default=8501)
    parser.add_argument("--grpc-port", type=int, default=8500)
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="how often to look for new versions")
    parser.add_argument("--max-request-mb", type=float, default=DEFAULT_MAX_REQUEST_MB, help="larger bodies get 413")
    parser.add_argument(
        "--batching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run concurrent requests of a model together, as one batch (default: on)",
    )
    parser.add_argument(
        "--grpc-processes",
        type=int,
        default=1,
        help="processes answering gRPC on its port, each with its own copy of the models (default: 1)",
    )
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    args = parser.parse_args(argv)
    if args.poll_seconds <= 0 or args.max_request_mb <= 0 or args.grpc_processes < 1:
        parser.error("--poll-seconds, --max-request-mb and --grpc-processes must be positive")

    quiet_tensorflow(args.verbose)
    from .repository import RepositoryError

    server = ModelServer(
        args.repository,
        args.host,
        args.rest_port,
        args.grpc_port,
        args.poll_seconds,
        int(args.max_request_mb * 2**20),
        args.batching,
        report=lambda line: print(line, flush=True),
        grpc_processes=args.grpc_processes,
    )
    try:
        for line in server.start():
            print(line, flush=True)
    except (RepositoryError, OSError) as err:
        sys.exit(f"error: {err}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: anyone who can reach this machine can use the models")
    print(describe(server), flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C and `kill` stop it cleanly, in the background too
        signal.signal(signum, signal.default_int_handler)
    exited: list[int] = []
    try:
        while server.running:
            time.sleep(0.5)
            if len(now := server.exited_grpc_processes()) > len(exited):
                exited = now
                print(f"warning: a gRPC process exited (code {exited[-1]}); the others keep answering", flush=True)
    except KeyboardInterrupt:
        print("Stopping...", flush=True)
    finally:
        server.stop()
    print("Stopped.", flush=True)


if __name__ == "__main__":
    main()
