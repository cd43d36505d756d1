"""The REST front end's HTTP layer, on raw sockets: framing, limits, slow clients, nesting.

Every case gets an answer (or, for a client that never finishes its request, a closed connection),
and the server keeps serving."""

import json
import socket
import time

import pytest

from tests.fixtures.servers import start_local
from tests.fixtures.wait import wait_until
from tests.serving.conftest import copy_base
from tests.serving.test_grpc_api import ROW

BODY = json.dumps({"instances": [ROW]}).encode()
HEAD = b"POST /v1/models/penguins:predict HTTP/1.1\r\nHost: test\r\n"
LIMIT = 100_000


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    base = copy_base(exported, tmp_path_factory.mktemp("base"), {"penguins": [1]})
    s = start_local(
        [
            f"--model_base_path={base / 'penguins'}",
            "--model_name=penguins",
            f"--rest_api_max_request_bytes={LIMIT}",
            "--rest_api_idle_timeout_seconds=1",
            "--rest_api_max_connections=6",
        ],
        tmp_path_factory.mktemp("logs"),
    )
    yield s
    assert s.stop() == 0
    assert "Traceback" not in s.log()


def exchange(server, data: bytes, timeout: float = 10.0) -> tuple[bytes, bool]:
    """Send raw bytes; read until the server closes or `timeout`. (what came back, closed?)"""
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
            return out, True
        except TimeoutError:
            return out, False


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def predict_ok(server) -> None:
    reply, _ = exchange(server, HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(BODY) + BODY)
    assert status_of(reply) == 200, reply[:300]


def test_chunked_bodies_are_decoded_and_keep_alive_carries_the_next_request(server):
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
    second = HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(BODY) + BODY
    reply, closed = exchange(server, HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked + second)
    assert closed and reply.count(b"HTTP/1.1 200 OK") == 2, reply[:500]  # two answers on one connection


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: abc\r\n",
        b"Content-Length: -5\r\n",
        b"Content-Length: %d\r\nContent-Length: 5\r\n" % len(BODY),
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",  # the request-smuggling shape
    ],
    ids=["non-numeric", "negative", "two lengths", "length and chunked"],
)
def test_malformed_framing_is_answered_400_and_the_connection_closed(server, headers):
    reply, closed = exchange(server, HEAD + headers + b"\r\n" + BODY)
    assert status_of(reply) == 400 and closed, reply[:300]
    assert reply.count(b"HTTP/1.") == 1  # the body was never read as a second request
    predict_ok(server)


def test_a_body_over_the_limit_is_413_with_tf_servings_error_json(server):
    reply, closed = exchange(server, HEAD + b"Content-Length: 1000000000\r\n\r\n")  # announced, never sent
    assert status_of(reply) == 413 and closed, reply[:300]
    assert "--rest_api_max_request_bytes" in json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]
    big = b" " * (LIMIT + 1)
    reply, _ = exchange(server, HEAD + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(big), big))
    assert status_of(reply) == 413  # a chunked body that grows past the limit too
    predict_ok(server)


def test_a_client_that_never_finishes_its_request_is_disconnected(server):
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as s:
        s.sendall(b"POST /v1/models/penguins:predict HTTP/1.1\r\nHost: test\r\n")  # no end of headers
        start = time.monotonic()
        assert s.recv(1024) == b""  # closed by the server (the idle timeout is 1 s here)
        assert time.monotonic() - start < 20
    predict_ok(server)


def test_connections_beyond_the_limit_are_answered_503_and_the_rest_keep_working(server):
    idle = [socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) for _ in range(6)]
    try:
        reply, closed = exchange(server, HEAD + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)
        assert status_of(reply) == 503 and closed, reply[:300]
    finally:
        for s in idle:
            s.close()
    request = HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(BODY) + BODY
    # the server sees the closes asynchronously
    wait_until(lambda: status_of(exchange(server, request)[0]) == 200, "a connection slot to free up", 10, interval=0)


@pytest.mark.parametrize("depth", [950, 45_000])
def test_deeply_nested_json_is_400_with_one_log_line(server, depth):
    body = b'{"instances": ' + b"[" * depth + b"]" * depth + b"}"
    before = len(server.log())
    reply, _ = exchange(server, HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    assert status_of(reply) == 400, reply[:300]
    assert len(server.log()) - before < 2000  # a line, not a traceback
    predict_ok(server)
