"""The command lines: `python -m serving.server` (what `make serve` runs) and `python -m serving.client`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading

import pytest

from serving import client
from serving.server import ModelServer

from .conftest import REPO, project_env
from .serving_models import add_version, digits_savedmodel, write_digit_png

START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    """The process's stdout up to the line containing `marker` (fails after `timeout` seconds)."""
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            if marker in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout), f"no {marker!r} within {timeout} s; output so far:\n{''.join(lines)}"
    return "".join(lines)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python -m serving.server` over a repository where the digits model is called mnist."""
    repository = tmp_path_factory.mktemp("repository")
    add_version(repository, "mnist", 1, digits_savedmodel())
    rest_port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "serving.server", "--repository", str(repository)]
    command += ["--rest-port", str(rest_port), "--grpc-port", str(grpc_port)]
    process = subprocess.Popen(command, cwd=REPO, env=project_env(), stdout=subprocess.PIPE, text=True)
    try:
        banner = read_until(process, "Ctrl-C stops", START_TIMEOUT_S)
        yield process, banner, rest_port, grpc_port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def digit_png(tmp_path):
    path = tmp_path / "digit.png"
    return path, write_digit_png(path)


def test_the_server_prints_its_urls_and_models(server):
    _, banner, rest_port, grpc_port = server
    assert "mnist: version 1 loaded" in banner
    assert f"mnist: versions 1    http://127.0.0.1:{rest_port}/v1/models/mnist" in banner
    assert f"gRPC: 127.0.0.1:{grpc_port}" in banner


@pytest.mark.parametrize("protocol", [[], ["--grpc"]])
def test_the_client_sends_an_image_over_rest_and_grpc(server, digit_png, protocol, capfd):
    _, _, rest_port, grpc_port = server
    path, label = digit_png
    ports = ["--rest-port", str(rest_port), "--grpc-port", str(grpc_port)]
    client.main(["--model", "mnist", "--image", str(path), *ports, *protocol])
    answer = json.loads(capfd.readouterr().out)
    assert answer["outputs"]["digit"] == [label] and len(answer["outputs"]["probabilities"][0]) == 10


def test_the_client_sends_a_json_body_and_reports_errors(server, tmp_path, capfd):
    _, _, rest_port, grpc_port = server
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"instances": [[[[0.0]] * 28] * 28]}))
    ports = ["--rest-port", str(rest_port), "--grpc-port", str(grpc_port)]
    for protocol in ([], ["--grpc"]):
        client.main(["--model", "mnist", "--json", str(body), *ports, *protocol])
        assert len(json.loads(capfd.readouterr().out)["predictions"]) == 1
    with pytest.raises(SystemExit, match="404: Servable not found"):
        client.main(["--model", "nope", "--json", str(body), *ports])
    with pytest.raises(SystemExit, match="NOT_FOUND"):
        client.main(["--model", "nope", "--json", str(body), *ports, "--grpc"])
    with pytest.raises(SystemExit, match="make serve"):
        client.main(["--model", "mnist", "--json", str(body), "--rest-port", str(free_port())])


def test_ctrl_c_stops_the_server_cleanly(server):
    process = server[0]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert "Stopped." in process.stdout.read()


def test_it_listens_on_loopback_and_a_busy_port_is_an_error(tmp_path):
    with ModelServer(tmp_path, rest_port=0, grpc_port=0, report=lambda line: None) as first:
        assert first.host == "127.0.0.1" and first.rest_url.startswith("http://127.0.0.1:")
        with pytest.raises(OSError, match=f"cannot listen for REST on 127.0.0.1:{first.rest_port}"):
            ModelServer(tmp_path, rest_port=first.rest_port, grpc_port=0).start()
        with pytest.raises(OSError, match="cannot listen for gRPC"):
            ModelServer(tmp_path, rest_port=0, grpc_port=first.grpc_port).start()


def test_make_serve_and_gradio_targets():
    def make(*args: str) -> str:
        result = subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "\n  serve " in make() and "\n  gradio " in make()
    assert "-m serving.server --repository artifacts/serving" in make("-n", "serve")
    assert "-m serving.gradio_app --project mnist" in make("-n", "project=mnist", "gradio")
