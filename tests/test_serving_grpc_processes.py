"""gRPC answered by several processes on one port (`--grpc-processes`): each answers, follows the repository, stops."""

from __future__ import annotations

import multiprocessing
import socket

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import server as server_module
from serving.grpc_processes import GrpcProcesses, Served
from serving.server import ModelServer

from .serving_models import add_version, digit_images, digits_savedmodel, wait_until

CONNECTIONS = 8  # fresh connections per check: the kernel spreads them over the processes' sockets


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repository = tmp_path_factory.mktemp("repository")
    add_version(repository, "digits", 1, digits_savedmodel())
    with ModelServer(
        repository, rest_port=0, grpc_port=0, poll_seconds=0.2, report=lambda line: None, grpc_processes=2
    ) as running:
        yield running


def predict_on_new_connections(address: str) -> list[tuple[int, list[int]]]:
    """(version, digits) answered for three real digits on each of CONNECTIONS new connections."""
    images, _ = digit_images()
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "digits"
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(images[[0, 1001, 3119], :, :, None]))
    answers = []
    for _ in range(CONNECTIONS):
        with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
        answers.append((response.model_spec.version.value, tf.make_ndarray(response.outputs["digit"]).tolist()))
    return answers


def test_every_connection_is_answered_and_a_new_version_reaches_every_process(server):
    assert server.grpc_processes == 2 and len(multiprocessing.active_children()) == 1
    assert predict_on_new_connections(server.grpc_address) == [(1, [0, 1, 3])] * CONNECTIONS
    add_version(server.registry.repository, "digits", 2, digits_savedmodel())
    assert wait_until(lambda: server.registry.served()["digits"] == [2])
    # The child polls on its own: within a few polls every connection, whichever process took it, answers with v2.
    assert wait_until(lambda: predict_on_new_connections(server.grpc_address) == [(2, [0, 1, 3])] * CONNECTIONS)


def test_a_port_in_use_is_an_error_before_any_process_starts(server, tmp_path):
    with pytest.raises(OSError, match=f"cannot listen for gRPC on 127.0.0.1:{server.grpc_port}"):
        ModelServer(tmp_path, rest_port=0, grpc_port=server.grpc_port, grpc_processes=2).start()
    assert len(multiprocessing.active_children()) == 1


def test_a_process_that_cannot_bind_reports_why(tmp_path):
    with socket.socket() as taken:  # a listener without SO_REUSEPORT: no other socket may join its port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        processes = GrpcProcesses(1, Served(tmp_path, "127.0.0.1", taken.getsockname()[1], 2**20, True, 1.0))
        with pytest.raises(OSError, match="a gRPC process failed: OSError: cannot listen for gRPC"):
            processes.start()
    assert processes.exited() == []  # stopped and forgotten


def test_the_other_process_answers_alone_and_stops_with_the_server(server):
    (child,) = multiprocessing.active_children()
    server._grpc.stop(grace=0)  # the main process stops answering gRPC: every new connection reaches the child
    answers = predict_on_new_connections(server.grpc_address)
    assert answers == [(2, [0, 1, 3])] * CONNECTIONS
    server.stop()
    assert not child.is_alive() and child.exitcode == 0


def test_the_command_line_refuses_zero_processes(capsys):
    with pytest.raises(SystemExit):
        server_module.main(["--grpc-processes", "0"])
    assert "--grpc-processes must be positive" in capsys.readouterr().err
