"""Load test of the embedded model server on loopback, against calling the same SavedModel in-process.

Run: `make bench-serving` (or `python -m benchmarks.serving [--model mnist] [--requests 2000] [--rss-requests 10000]`).
Writes benchmarks/results/serving.json.

The load is bounded: `--requests` requests per setting, at concurrency 1, 8 and 32,
with batches of 1 and 32 examples, over REST (JSON) and gRPC, then `--rss-requests`
REST requests at concurrency 8 to see whether the server's memory grows. The load
generator is Python (http.client, grpc) on the same machine, so it competes with the
server for CPU, as a co-located client would. Goals, reported and never asserted:
REST at concurrency 8 with batch 1 answers at least 50% of the in-process batch-1
call rate, and the server's RSS grows less than 10% over 10,000 requests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.runtime import quiet_tensorflow

from .machine import describe_machine

if TYPE_CHECKING:
    from serving.signatures import Signature

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "serving.json"
SIGNATURE = "serving_default"
CONCURRENCY = (1, 8, 32)
BATCHES = (1, 32)


def sample_inputs(signature: Signature, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for a signature: the batch dimension set to `batch`, other free dimensions to 1."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for name, spec in signature.inputs.items():
        if spec.shape is None or spec.dtype.name == "string":
            sys.exit(f"error: input {name} is {spec.describe()}; the benchmark needs numeric inputs of known rank")
        shape = [batch if i == 0 and d is None else d or 1 for i, d in enumerate(spec.shape)]
        inputs[name] = rng.random(shape).astype(spec.numpy_dtype)
    return inputs


def summarize(latencies: list[float], seconds: float) -> dict[str, float]:
    """Requests per second and p50/p99 latency in milliseconds."""
    ordered = sorted(latencies)
    return {
        "requests_per_s": round(len(ordered) / seconds, 1),
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
    }


def run_load(send: Callable[[], Callable[[], None]], requests: int, concurrency: int) -> dict[str, float]:
    """`requests` calls spread over `concurrency` threads; `send()` makes one thread's caller (its own connection)."""
    latencies: list[float] = []
    per_thread = max(1, requests // concurrency)
    barrier = threading.Barrier(concurrency + 1)

    def worker() -> None:
        call = send()
        call()  # warm the connection
        barrier.wait()
        mine = []
        for _ in range(per_thread):
            start = time.perf_counter()
            call()
            mine.append(time.perf_counter() - start)
        latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return summarize(latencies, time.perf_counter() - start)


def row_body(inputs: dict[str, np.ndarray]) -> bytes:
    """A REST predict body in the row format: {"instances": [...]}, one item per example."""
    if len(inputs) == 1:
        return json.dumps({"instances": next(iter(inputs.values())).tolist()}).encode()
    batch = len(next(iter(inputs.values())))
    return json.dumps({"instances": [{k: v[i].tolist() for k, v in inputs.items()} for i in range(batch)]}).encode()


def rest_sender(port: int, path: str, body: bytes) -> Callable[[], Callable[[], None]]:
    def make() -> Callable[[], None]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def call() -> None:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise RuntimeError(f"REST answered {response.status}: {answer[:200]!r}")

        return call

    return make


def grpc_sender(port: int, model: str, inputs: dict[str, np.ndarray]) -> Callable[[], Callable[[], None]]:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for name, array in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array))

    def make() -> Callable[[], None]:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        return lambda: stub.Predict(request, timeout=60)

    return make


def in_process(path: Path, model: str, version: int, requests: int) -> tuple[list[dict], Signature]:
    """Calls per second of the signature in this process, batch 1 and 32, and the signature."""
    from serving.model_version import LoadedVersion

    loaded = LoadedVersion(model, version, path)
    signature = loaded.signature(SIGNATURE)
    rows = []
    for batch in BATCHES:
        inputs = sample_inputs(signature, batch)
        for _ in range(20):
            loaded.predict(SIGNATURE, inputs)
        latencies = []
        start = time.perf_counter()
        for _ in range(requests):
            begin = time.perf_counter()
            loaded.predict(SIGNATURE, inputs)
            latencies.append(time.perf_counter() - begin)
        rows.append({"batch": batch, **summarize(latencies, time.perf_counter() - start)})
        print(f"in-process  batch {batch:>2}: {rows[-1]}", flush=True)
    return rows, signature


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(repository: Path, model: str, extra: list[str]) -> tuple[subprocess.Popen, int, int]:
    rest_port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "serving.server", "--repository", str(repository)]
    command += ["--rest-port", str(rest_port), "--grpc-port", str(grpc_port), "--poll-seconds", "5", *extra]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"error: the server exited with code {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=5)
            connection.request("GET", f"/v1/models/{model}")
            if connection.getresponse().status == 200:
                return server, rest_port, grpc_port
        except OSError:
            pass
        time.sleep(0.5)
    server.kill()
    sys.exit("error: the server did not answer within 180 s")


def load_test(model: str, rest_port: int, grpc_port: int, signature: Signature, requests: int) -> list[dict]:
    """Every setting: protocol x batch x concurrency, `requests` requests each."""
    rows = []
    for batch in BATCHES:
        inputs = sample_inputs(signature, batch)
        senders = {
            "rest": rest_sender(rest_port, f"/v1/models/{model}:predict", row_body(inputs)),
            "grpc": grpc_sender(grpc_port, model, inputs),
        }
        for protocol, send in senders.items():
            for concurrency in CONCURRENCY:
                row = {"protocol": protocol, "batch": batch, "concurrency": concurrency}
                row.update(run_load(send, requests, concurrency))
                rows.append(row)
                print(f"{protocol:<4} batch {batch:>2} concurrency {concurrency:>2}: {row}", flush=True)
    return rows


def main() -> None:
    from serving.repository import find_version
    from serving.server import DEFAULT_REPOSITORY

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, default=DEFAULT_REPOSITORY)
    parser.add_argument("--model", default="mnist")
    parser.add_argument("--requests", type=int, default=2000, help="requests per setting")
    parser.add_argument("--rss-requests", type=int, default=10_000, help="requests of the memory-growth run")
    parser.add_argument("--server-args", default="", help="extra arguments for serving.server, e.g. '--batching'")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    quiet_tensorflow()
    try:
        version, path = find_version(args.repository, args.model)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")

    print(f"Model {args.model} version {version} ({path}), {args.requests} requests per setting", flush=True)
    baseline, signature = in_process(path, args.model, version, args.requests)
    server, rest_port, grpc_port = start_server(args.repository, args.model, args.server_args.split())
    try:
        rss_start = rss_mib(server.pid)
        rows = load_test(args.model, rest_port, grpc_port, signature, args.requests)
        send = rest_sender(rest_port, f"/v1/models/{args.model}:predict", row_body(sample_inputs(signature, 1)))
        run_load(send, 200, 8)  # settle allocations before measuring growth
        rss_before = rss_mib(server.pid)
        growth_run = run_load(send, args.rss_requests, 8)
        rss_after = rss_mib(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)

    rest_c8 = next(r for r in rows if r["protocol"] == "rest" and r["batch"] == 1 and r["concurrency"] == 8)
    share = rest_c8["requests_per_s"] / baseline[0]["requests_per_s"]
    growth = 100 * (rss_after - rss_before) / rss_before
    result = {
        "benchmark": "embedded server on loopback (REST JSON, gRPC) against in-process calls of the same SavedModel",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": describe_machine(),
        "model": {"name": args.model, "version": version, "inputs": signature.describe_inputs()},
        "requests_per_setting": args.requests,
        "server_args": args.server_args,
        "in_process": baseline,
        "server": rows,
        "memory": {
            "rss_mib_at_start": rss_start,
            "rss_mib_before": rss_before,
            "rss_mib_after": rss_after,
            "requests": args.rss_requests,
            "growth_percent": round(growth, 2),
            "load": growth_run,
        },
        "goals": {
            "rest_c8_b1_share_of_in_process_b1": round(share, 3),
            "rest_c8_b1_at_least_half": share >= 0.5,
            "rss_growth_under_10_percent": growth < 10,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    in_process_b1 = baseline[0]["requests_per_s"]
    print(f"REST c8 b1: {rest_c8['requests_per_s']} req/s = {share:.0%} of in-process b1 ({in_process_b1}/s)")
    print(f"RSS {rss_before} -> {rss_after} MiB over {args.rss_requests} requests ({growth:+.1f}%)")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
