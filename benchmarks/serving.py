"""Load test of the embedded model server against a naive FastAPI server and in-process calls, side by side.

Run: `make bench-serving` (or `python -m benchmarks.serving [--model mnist] [--seconds 5]`).
Writes benchmarks/results/serving.json.

In one run, on one model: the signature called in-process; the embedded server
(`python -m serving.server --grpc-processes 2`) over REST and gRPC, and gRPC of the
same server with one process beside it (batch 1); and the naive peer
(`benchmarks/naive_server.py`: FastAPI, `await request.json()`, call the signature,
return lists, no batching) over REST. Every setting runs for `--seconds` at
concurrency 1, 8 and 32 with batches of 1 and 32 examples, `--rounds` times with the
servers taking turns; each row is its median round (the machine's speed drifts by
tens of percent over minutes, which a single pass would read as a server's). The
goals' ratios are the median over rounds of the ratio within each round. REST load comes from
wrk (C, one connection per concurrent client; `make bench-serving` installs it),
gRPC load from h2load (nghttp2's HTTP/2 load generator, C; the same install; grpc.aio
in this process without it: a Python client is slower than the server). Then a soak: `--soak-requests` REST
requests at concurrency 32 to the embedded server, counting errors and its memory
growth after a warm-up. All traffic goes to 127.0.0.1 and is bounded in time and count.

Goals (reported, never asserted; the ratios compare servers measured in the same run):
REST batch 1 at concurrency 8 answers at least 2x the peer's requests/s with a lower
p99; gRPC batch 1 at concurrency 8 at least 3x the peer's REST requests/s; REST
batch 32 at least 10x the examples/s of the committed benchmark before (304/s);
the soak has no errors and the server's RSS grows less than 10%.

With no `--model` export in the repository (`make project=mnist all export` makes
one), the tests' digits SavedModel (tests/serving_models.py: the mnist signature,
a nearest-centroid classifier) is written to a temporary repository and used.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
# REST batch 32 before this work: at most 9.5 requests/s (304 examples/s), benchmarks/results/serving.json of 8cff8e5.
BEFORE_REST_B32_EXAMPLES_PER_S = 304.0

# wrk's script: POST the body in $BODY; stop each thread after $LIMIT answers (0: run for -d); print one JSON line.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = io.open(os.getenv("BODY"), "rb"); wrk.body = file:read("*a"); file:close()
local limit = tonumber(os.getenv("LIMIT") or "0")
local answered = 0
response = function(status, headers, body)
  answered = answered + 1
  if limit > 0 and answered >= limit then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %d, "seconds": %.3f, "socket_errors": %d, "http_errors": %d, '
    .. '"p50_ms": %.2f, "p99_ms": %.2f}\\n', summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


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


def summarize(latencies: list[float], seconds: float, batch: int) -> dict[str, float]:
    """Requests and examples per second, p50/p99 latency in milliseconds."""
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "requests_per_s": round(len(ordered) / seconds, 1),
        "examples_per_s": round(batch * len(ordered) / seconds, 1),
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
    }


def row_body(inputs: dict[str, np.ndarray]) -> bytes:
    """A REST predict body in the row format: {"instances": [...]}, one item per example."""
    if len(inputs) == 1:
        return json.dumps({"instances": next(iter(inputs.values())).tolist()}).encode()
    batch = len(next(iter(inputs.values())))
    return json.dumps({"instances": [{k: v[i].tolist() for k, v in inputs.items()} for i in range(batch)]}).encode()


def wrk(url: str, body: Path, script: Path, concurrency: int, seconds: float, limit: int = 0) -> dict[str, Any]:
    """One wrk run: POST `body` from `concurrency` connections for `seconds`, or until `limit` answers in all.

    wrk's threads stop at the limit but wrk itself waits out `seconds`: give a limited run a bound to match.
    """
    threads = min(concurrency, os.cpu_count() or 1, 4)
    env = dict(os.environ, BODY=str(body), LIMIT=str(-(-limit // threads) if limit else 0))
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{math.ceil(seconds)}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 120).stdout
    lines = [line for line in output.splitlines() if line.startswith("WRK ")]
    if not lines:
        sys.exit(f"error: wrk printed no result:\n{output}")
    result = json.loads(lines[-1][4:])
    result["requests_per_s"] = round(result["requests"] / result["seconds"], 1)
    return result


def grpc_load(
    port: int, model: str, inputs: dict[str, np.ndarray], concurrency: int, seconds: float, scratch: Path
) -> dict[str, Any]:
    """`concurrency` gRPC clients calling Predict for `seconds`: h2load (C) if installed, else grpc.aio here.

    h2load speaks HTTP/2, not gRPC: it POSTs the framed request to /tensorflow.serving.PredictionService/Predict
    and counts HTTP statuses, so the request is first sent once with the official stub, which checks its answer.
    """
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for name, array in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
        if not answer.outputs:
            sys.exit(f"error: gRPC Predict answered no outputs: {answer}")
    if shutil.which("h2load"):
        return _h2load(port, request.SerializeToString(), concurrency, seconds, scratch)

    async def client(deadline: float, latencies: list[float]) -> int:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            await stub.Predict(request, timeout=30)  # connect before the clock starts
            errors = 0
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    await stub.Predict(request, timeout=30)
                    latencies.append(time.perf_counter() - start)
                except grpc.aio.AioRpcError:
                    errors += 1
            return errors

    async def run() -> dict:
        latencies: list[float] = []
        start = time.perf_counter()
        errors = await asyncio.gather(*(client(start + seconds, latencies) for _ in range(concurrency)))
        summary = summarize(latencies, time.perf_counter() - start, 1)
        return {**summary, "errors": sum(errors), "load_generator": "grpc.aio"}

    result = asyncio.run(run())
    result.pop("examples_per_s")
    return result


def _h2load(port: int, message: bytes, concurrency: int, seconds: float, scratch: Path) -> dict[str, Any]:
    """h2load over `concurrency` connections, one call in flight on each; latencies from its per-request log."""
    body, log = scratch / "grpc-request.bin", scratch / "h2load.tsv"
    body.write_bytes(b"\0" + len(message).to_bytes(4, "big") + message)  # gRPC framing: uncompressed, length
    log.unlink(missing_ok=True)  # h2load appends to its log file: rows of an earlier run would count as this one's
    threads = min(concurrency, os.cpu_count() or 1, 4)
    command = ["h2load", f"-c{concurrency}", f"-t{threads}", "-m1", f"-D{math.ceil(seconds)}", "-d", str(body)]
    command += ["-H", "content-type: application/grpc", "-H", "te: trailers", f"--log-file={log}"]
    command.append(f"http://127.0.0.1:{port}/tensorflow.serving.PredictionService/Predict")
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120).stdout
    finished = re.search(r"finished in ([\d.]+)(ms|s)", output)
    if finished is None or not log.exists():
        sys.exit(f"error: h2load printed no result:\n{output}")
    elapsed = float(finished[1]) / (1000 if finished[2] == "ms" else 1)
    rows = [line.split("\t") for line in log.read_text().splitlines() if line]
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done", output)
    if done is None or int(done[1]) != len(rows):
        sys.exit(f"error: h2load's log holds {len(rows)} requests where its summary says otherwise:\n{output}")
    latencies = [int(row[2]) / 1e6 for row in rows if row[1] == "200"]
    result = summarize(latencies, elapsed, 1)
    result.pop("examples_per_s")
    return {**result, "errors": len(rows) - len(latencies), "load_generator": "h2load"}


def in_process(path: Path, model: str, version: int, seconds: float) -> tuple[list[dict], Signature]:
    """Calls per second of the signature in this process, batch 1 and 32, and the signature."""
    from serving.model_version import LoadedVersion

    loaded = LoadedVersion(model, version, path)
    signature = loaded.signature(SIGNATURE)
    rows = []
    for batch in BATCHES:
        inputs = sample_inputs(signature, batch)
        for _ in range(20):
            loaded.predict(SIGNATURE, inputs)
        latencies: list[float] = []
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            begin = time.perf_counter()
            loaded.predict(SIGNATURE, inputs)
            latencies.append(time.perf_counter() - begin)
        rows.append({"batch": batch, **summarize(latencies, time.perf_counter() - start, batch)})
        print(f"in-process  batch {batch:>2}: {rows[-1]}", flush=True)
    loaded.close()
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


def wait_for(server: subprocess.Popen, port: int, method: str, path: str, body: bytes | None = None) -> None:
    """Until the server at `port` answers `method path` with 200 (at most 300 s: TensorFlow loads slowly)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"error: {' '.join(map(str, server.args[:3]))} exited with code {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request(method, path, body, {"Content-Type": "application/json"})
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    server.kill()
    sys.exit(f"error: the server on port {port} did not answer within 300 s")


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *command], cwd=REPO, stdout=subprocess.DEVNULL)


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()


def digits_repository(directory: Path) -> Path:
    """The tests' digits SavedModel as version 1 of `digits` in a repository under `directory`."""
    sys.path.insert(0, str(REPO))
    from tests.serving_models import add_version, digits_savedmodel

    repository = directory / "repository"
    add_version(repository, "digits", 1, digits_savedmodel())
    return repository


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def paired_ratios(row: dict, peer: dict) -> list[float]:
    """requests/s of `row` over `peer`'s in each round (measured a few seconds apart, so drift cancels)."""
    return [round(a / b, 2) for a, b in zip(row["rounds_requests_per_s"], peer["rounds_requests_per_s"], strict=True)]


def row_of(rows: list[dict], server: str, batch: int, concurrency: int) -> dict:
    """The result of one setting."""
    return next(r for r in rows if (r["server"], r["batch"], r["concurrency"]) == (server, batch, concurrency))


def load_test(
    args: argparse.Namespace, scratch: Path, model: str, version: int, path: Path, signature: Signature
) -> tuple[list[dict], dict]:
    """Start both servers, run every setting and the soak; returns (rows, soak)."""
    rest_port, grpc_port, naive_port = free_port(), free_port(), free_port()
    served = ["serving.server", "--repository", str(args.repository), "--poll-seconds", "5"]
    ports = ["--rest-port", str(rest_port), "--grpc-port", str(grpc_port)]
    server = start([*served, *ports, "--grpc-processes", str(args.grpc_processes)])
    single_rest_port, single_grpc_port = free_port(), free_port()  # the same server with one gRPC process
    single = start([*served, "--rest-port", str(single_rest_port), "--grpc-port", str(single_grpc_port)])
    naive = start(["benchmarks.naive_server", "--model-dir", str(path), "--port", str(naive_port)])
    script = scratch / "post.lua"
    script.write_text(WRK_SCRIPT)
    bodies = {}
    for batch in BATCHES:
        bodies[batch] = scratch / f"body{batch}.json"
        bodies[batch].write_bytes(row_body(sample_inputs(signature, batch)))
    predict = f"/v1/models/{model}:predict"
    rows: list[dict] = []
    try:
        wait_for(server, rest_port, "GET", f"/v1/models/{model}")
        wait_for(naive, naive_port, "POST", predict, bodies[1].read_bytes())
        wait_for(single, single_rest_port, "GET", f"/v1/models/{model}")
        for batch in BATCHES:
            inputs = sample_inputs(signature, batch)
            for concurrency in CONCURRENCY:
                runs = {
                    "embedded rest": lambda c=concurrency, b=batch: wrk(
                        f"http://127.0.0.1:{rest_port}{predict}", bodies[b], script, c, args.seconds
                    ),
                    "naive rest": lambda c=concurrency, b=batch: wrk(
                        f"http://127.0.0.1:{naive_port}{predict}", bodies[b], script, c, args.seconds
                    ),
                    "embedded grpc": lambda c=concurrency, i=inputs: grpc_load(
                        grpc_port, model, i, c, args.seconds, scratch
                    ),
                    "embedded grpc, 1 process": lambda c=concurrency, i=inputs: grpc_load(
                        single_grpc_port, model, i, c, args.seconds, scratch
                    ),
                }
                if batch != 1:
                    del runs["embedded grpc, 1 process"]
                measured: dict[str, list[dict]] = {name: [] for name in runs}
                for _ in range(args.rounds):  # the servers take turns: a slow minute of the machine hits each
                    for name, run in runs.items():
                        measured[name].append(run())
                for name, results in measured.items():
                    result = sorted(results, key=lambda r: r["requests_per_s"])[len(results) // 2]  # the median
                    result["rounds_requests_per_s"] = [r["requests_per_s"] for r in results]
                    result["examples_per_s"] = round(batch * result["requests_per_s"], 1)
                    rows.append({"server": name, "batch": batch, "concurrency": concurrency, **result})
                    shown = {k: result[k] for k in ("requests_per_s", "examples_per_s", "p50_ms", "p99_ms")}
                    print(f"{name:<24} batch {batch:>2} concurrency {concurrency:>2}: {shown}", flush=True)
        stop(naive)
        stop(single)
        url = f"http://127.0.0.1:{rest_port}{predict}"
        rate = row_of(rows, "embedded rest", 1, max(CONCURRENCY))["requests_per_s"]
        bound = min(600.0, 10 + 3 * args.soak_requests / rate)  # 3x the time the c=32 rate needs, at most 10 min
        wrk(url, bodies[1], script, args.soak_concurrency, 10 + 3 * 1000 / rate, limit=1000)  # warm-up
        rss_before = rss_mib(server.pid)
        soak = wrk(url, bodies[1], script, args.soak_concurrency, bound, limit=args.soak_requests)
        rss_after = rss_mib(server.pid)
        del soak["seconds"], soak["requests_per_s"]  # wrk's clock ran on to `bound` after the last answer
        soak.update(
            concurrency=args.soak_concurrency,
            rss_mib_after_warm_up=rss_before,
            rss_mib_after=rss_after,
            rss_growth_percent=round(100 * (rss_after - rss_before) / rss_before, 2),
        )
        print(f"soak: {soak}", flush=True)
    finally:
        stop(naive)
        stop(single)
        stop(server)
    return rows, soak


def main() -> None:
    from serving.repository import find_version
    from serving.server import DEFAULT_REPOSITORY

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, default=DEFAULT_REPOSITORY)
    parser.add_argument("--model", default="mnist", help="a model of the repository (else: the tests' digits)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per setting and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setting, servers in turn; the median counts")
    parser.add_argument("--soak-requests", type=int, default=10_000)
    parser.add_argument("--soak-concurrency", type=int, default=32)
    parser.add_argument("--grpc-processes", type=int, default=2, help="the embedded server's --grpc-processes")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("error: wrk is not installed: `make bench-serving` installs it (apt-get install wrk)")
    command = " ".join(["python -m benchmarks.serving", *sys.argv[1:]])
    load_before = [round(x, 2) for x in os.getloadavg()]
    quiet_tensorflow()
    scratch = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    try:
        try:
            version, path = find_version(args.repository, args.model)
            model = args.model
        except (FileNotFoundError, ValueError) as err:
            print(f"{err}; benchmarking the tests' digits SavedModel instead (same signature as mnist)", flush=True)
            args.repository = digits_repository(scratch)
            model = "digits"
            version, path = find_version(args.repository, model)
        print(f"Model {model} version {version} ({path}), {args.seconds:g} s per setting", flush=True)
        baseline, signature = in_process(path, model, version, args.seconds)
        gc.collect()
        gc.freeze()  # TensorFlow's objects, out of the gRPC client's collections (see serving/registry.py)
        rows, soak = load_test(args, scratch, model, version, path, signature)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    load_after = [round(x, 2) for x in os.getloadavg()]

    names = ("embedded rest", "naive rest", "embedded grpc", "embedded grpc, 1 process")
    rest_b1, naive_b1, grpc_b1, grpc_single_b1 = (row_of(rows, name, 1, 8) for name in names)
    rest_b32 = max(
        (r for r in rows if r["server"] == "embedded rest" and r["batch"] == 32), key=lambda r: r["examples_per_s"]
    )
    by_round = {
        "rest_b1_c8_vs_naive_requests_per_s": paired_ratios(rest_b1, naive_b1),
        "grpc_b1_c8_vs_naive_rest_requests_per_s": paired_ratios(grpc_b1, naive_b1),
        "grpc_1_process_b1_c8_vs_naive_rest_requests_per_s": paired_ratios(grpc_single_b1, naive_b1),
    }
    ratios = {
        **{name: round(float(np.median(values)), 2) for name, values in by_round.items()},
        "by_round": by_round,
        "rest_b1_c8_p99_ms_vs_naive": [rest_b1["p99_ms"], naive_b1["p99_ms"]],
        "rest_b32_best_examples_per_s": rest_b32["examples_per_s"],
        "rest_b32_examples_per_s_before": BEFORE_REST_B32_EXAMPLES_PER_S,
        "rest_b32_vs_before": round(rest_b32["examples_per_s"] / BEFORE_REST_B32_EXAMPLES_PER_S, 2),
        "rest_b32_vs_naive_same_concurrency": round(
            rest_b32["requests_per_s"] / row_of(rows, "naive rest", 32, rest_b32["concurrency"])["requests_per_s"], 2
        ),
    }
    goals = {
        "rest_b1_c8_at_least_2x_naive": ratios["rest_b1_c8_vs_naive_requests_per_s"] >= 2,
        "rest_b1_c8_p99_below_naive": rest_b1["p99_ms"] < naive_b1["p99_ms"],
        "grpc_b1_c8_at_least_3x_naive_rest": ratios["grpc_b1_c8_vs_naive_rest_requests_per_s"] >= 3,
        "rest_b32_at_least_10x_before": ratios["rest_b32_vs_before"] >= 10,
        "soak_no_errors": soak["socket_errors"] == 0 and soak["http_errors"] == 0,
        "soak_answered_every_request": soak["requests"] >= args.soak_requests,
        "soak_rss_growth_under_10_percent": soak["rss_growth_percent"] < 10,
    }
    result = {
        "benchmark": "embedded server (REST, gRPC) against a naive FastAPI server and in-process calls, one run",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git": git_state(),
        "command": command,
        "machine": describe_machine(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "model": {"name": model, "version": version, "inputs": signature.describe_inputs()},
        "grpc_processes": args.grpc_processes,
        "seconds_per_setting": args.seconds,
        "rounds_per_setting": args.rounds,
        "load_generators": {
            "rest": "wrk 4.1 (Debian), one connection per concurrent client",
            "grpc": "h2load (Debian nghttp2-client; grpc.aio if absent), one connection per concurrent client",
        },
        "in_process": baseline,
        "servers": rows,
        "soak": soak,
        "ratios": ratios,
        "goals": goals,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"ratios": ratios, "goals": goals, "load": [load_before, load_after]}, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
