"""A soak of the embedded server, run as a user runs it: 10,000 REST predicts at concurrency 32, no errors, flat memory.

The server is `python -m serving.server` in its own process, so its resident memory
is its own. Latency is reported (p50, p99), never asserted: machines are noisy.
Also: a client that hangs up while its request waits for a batch does not stop the
batcher (its future is cancelled; the load generators hang up at the end of every run).
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from serving.batching import Batcher

from .conftest import REPO, project_env
from .serving_models import add_version, digit_images, digits_savedmodel, wait_until

REQUESTS = 10_000
CONCURRENCY = 32
WARM_UP = 1_000  # requests before the first RSS reading: the allocator and TensorFlow's caches settle


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def _load(port: int, body: bytes, requests: int, expected_digit: int) -> tuple[list[str], list[float]]:
    """`requests` predicts spread over CONCURRENCY keep-alive connections: (errors, latencies in seconds)."""
    errors: list[str] = []
    latencies: list[float] = []
    per_client = -(-requests // CONCURRENCY)

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        for _ in range(per_client):
            start = time.perf_counter()
            try:
                connection.request("POST", "/v1/models/digits:predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                answer = response.read()
                mine.append(time.perf_counter() - start)
                if response.status != 200:
                    errors.append(f"{response.status}: {answer[:200]!r}")
                elif json.loads(answer)["predictions"][0]["digit"] != expected_digit:
                    errors.append(f"wrong answer: {answer[:200]!r}")
            except (OSError, http.client.HTTPException) as err:
                errors.append(repr(err))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.close()
        latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors, latencies


def test_ten_thousand_requests_at_concurrency_32_without_errors_or_memory_growth(tmp_path):
    add_version(tmp_path, "digits", 1, digits_savedmodel())
    images, labels = digit_images()
    body = json.dumps({"instances": images[3119, :, :, None][None].tolist()}).encode()  # a 3
    rest_port, grpc_port = _free_port(), _free_port()
    command = [sys.executable, "-m", "serving.server", "--repository", str(tmp_path)]
    command += ["--rest-port", str(rest_port), "--grpc-port", str(grpc_port), "--poll-seconds", "5"]
    server = subprocess.Popen(command, cwd=REPO, env=project_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300  # TensorFlow's import and the model's load, on a busy machine
        while True:
            assert server.poll() is None, server.stdout.read().decode(errors="replace")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=10)
                connection.request("GET", "/v1/models/digits")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not answer within 300 s"
            time.sleep(0.5)

        errors, _ = _load(rest_port, body, WARM_UP, int(labels[3119]))
        assert not errors, errors[:5]
        rss_before = _rss_mib(server.pid)
        errors, latencies = _load(rest_port, body, REQUESTS, int(labels[3119]))
        rss_after = _rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)

    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    growth = 100 * (rss_after - rss_before) / rss_before
    print(
        f"soak: {len(latencies)} requests, {len(errors)} errors, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"RSS {rss_before:.0f} -> {rss_after:.0f} MiB ({growth:+.1f}%)"
    )
    assert not errors, f"{len(errors)} errors, e.g. {errors[:5]}"
    assert len(latencies) >= REQUESTS
    assert growth < 10, f"RSS grew {growth:.1f}% over {REQUESTS} requests ({rss_before:.0f} -> {rss_after:.0f} MiB)"


def test_a_request_cancelled_while_it_waits_does_not_stop_the_batcher():
    release = threading.Event()

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        release.wait(60)  # holds the worker, so that the next request waits in the queue
        return {"y": inputs["x"] * 2}

    batcher = Batcher(run)
    try:
        first = batcher.submit({"x": np.ones((1, 3), np.float32)})
        assert wait_until(first.running)
        hung_up = batcher.submit({"x": np.ones((1, 3), np.float32)})
        assert hung_up.cancel()  # what asyncio.wrap_future does when the client's task is cancelled
        release.set()
        assert first.result(timeout=60)["y"].tolist() == [[2, 2, 2]]
        later = batcher.submit({"x": np.full((2, 3), 3, np.float32)})
        assert later.result(timeout=60)["y"].tolist() == [[6, 6, 6], [6, 6, 6]]  # the worker lives on
    finally:
        release.set()
        batcher.close()
