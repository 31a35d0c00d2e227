"""REST at the HTTP level, as a broken client writes it: a wrong, missing or invalid Content-Length, a body cut
short, a connection dropped mid-body. Each gets a 4xx (or, when the client hangs up, nothing), never a 5xx, and
the server answers a good request afterwards."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from serving.server import ModelServer

from .serving_models import write_scaler

GOOD = json.dumps({"instances": [[1, 2, 3]]}).encode()
PATH = "/v1/models/scaler:predict"
HANG_UP = "the client hangs up"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repository = tmp_path_factory.mktemp("repository")
    write_scaler(repository / "scaler" / "1", 1.0)
    with ModelServer(repository, rest_port=0, grpc_port=0, report=lambda line: None) as running:
        yield running


def exchange(server: ModelServer, head: str, body: bytes = b"", half_close: bool = False) -> int | None:
    """Send `head` (request line and headers, without the blank line) and `body` on a raw socket; the status code
    of the answer, or None when the server closed the connection without one."""
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=15) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)  # the client sends nothing more: a body cut short stays short
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer:
                    break
        except TimeoutError:
            return None
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


def request_head(length: str | None, content_type: str = "application/json") -> str:
    """The head of a predict request with `Content-Length: length` (none if None)."""
    lines = [f"POST {PATH} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return "\r\n".join(lines)


CHUNKED = request_head(None) + "\r\nTransfer-Encoding: chunked"


@pytest.mark.parametrize(
    ("case", "head", "body"),
    [
        ("good", request_head(str(len(GOOD))), GOOD),
        ("Content-Length shorter than the body", request_head(str(len(GOOD) - 5)), GOOD),
        ("no Content-Length", request_head(None), GOOD),
        ("Content-Length that is not a number", request_head("twelve"), GOOD),
        ("negative Content-Length", request_head("-4"), GOOD),
        ("two different Content-Lengths", request_head(str(len(GOOD))) + "\r\nContent-Length: 3", GOOD),
        (HANG_UP + ": body cut short", request_head(str(len(GOOD) + 40)), GOOD),
        ("truncated JSON", request_head(str(len(GOOD) // 2)), GOOD[: len(GOOD) // 2]),
        ("zero Content-Length", request_head("0"), b""),
        ("not JSON", request_head("5"), b"\xff\xfe\x00ab"),
        (HANG_UP + ": a chunk cut short", CHUNKED, b'ff\r\n{"in'),
        ("a chunk size that is not hexadecimal", CHUNKED, b"zz\r\n{}\r\n"),
    ],
)
def test_a_broken_http_request_never_gets_a_5xx(server, case, head, body):
    hang_up = case.startswith(HANG_UP)
    code = exchange(server, head, body, half_close=hang_up)
    if case == "good":
        assert code == 200
    elif hang_up:  # nobody is left to answer; an answer, if one is sent first, is a 4xx
        assert code is None or 400 <= code < 500, (case, code)
    else:
        assert code is not None and 400 <= code < 500, (case, code)
    response = httpx.post(f"{server.rest_url}{PATH}", content=GOOD, timeout=30)
    assert response.status_code == 200 and response.json() == {"predictions": [[1.0, 2.0, 3.0]]}, case


def test_a_client_that_stops_mid_body_does_not_hold_up_others(server):
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=15) as stalled:
        stalled.sendall(request_head(str(len(GOOD))).encode() + b"\r\n\r\n" + GOOD[:10])  # and then nothing
        for _ in range(20):
            response = httpx.post(f"{server.rest_url}{PATH}", content=GOOD, timeout=10)
            assert response.status_code == 200
