"""The REST front end: TF Serving's REST API on --rest_api_port, served by aiohttp.

    POST /v1/models/{name}[/versions/{n}|/labels/{l}]:(predict|classify|regress)
    GET  /v1/models/{name}[/versions/{n}|/labels/{l}]            model status
    GET  /v1/models/{name}[/versions/{n}|/labels/{l}]/metadata   signatures
    GET  <prometheus path>                                        metrics, when monitoring is enabled

Paths are matched as TF Serving matches them (case-insensitive; the model name and label are
percent-decoded after matching; a version that is not an int64 is 400; any other path under /v1/ is
400 "Malformed request", anything else 404). A body becomes the same request message a gRPC client
sends and runs through the same handler (`rest_json`). Errors are `{"error": "..."}` with TF
Serving's HTTP codes.

What the HTTP layer guarantees (aiohttp's llhttp parser, plus the limits below):
- framing: chunked bodies are decoded; a malformed, negative or repeated Content-Length is 400 and the
  connection closed; TCP_NODELAY and keep-alive on every connection;
- a body over --rest_api_max_request_bytes is 413 before it is read; the body and the handler share
  the --rest_api_timeout_in_ms deadline (504, and the session run is given the rest of it);
- a connection that has not sent a whole request within --rest_api_idle_timeout_seconds, or sits idle
  that long between requests, is closed; beyond --rest_api_max_connections a new connection is
  answered 503 and closed; the listen backlog is the system's (SOMAXCONN), as gRPC's;
- JSON nested deeper than the parser allows is 400 with one log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from serving import deadline, rest_json
from serving.core import ServerCore
from serving.errors import ServingError, invalid, not_found
from serving.handlers import classify as classify_h
from serving.handlers import metadata as metadata_h
from serving.handlers import predict as predict_h
from serving.handlers import regress as regress_h
from serving.handlers import status as status_h
from serving.handlers.common import held, signature
from serving.metrics import serving_request

log = logging.getLogger("serving")


class _OneLine(logging.Filter):
    """aiohttp logs a request it cannot parse with a traceback: a line per bad request is enough (a
    client sending garbage must not be able to flood the log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            detail = " ".join(line.strip() for line in str(exc).strip().splitlines()[:2])
            record.msg, record.args = f"{record.getMessage()}: {type(exc).__name__}: {detail}", None
            record.exc_info, record.exc_text = None, None
            if isinstance(exc, HttpProcessingError):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


http_log = logging.getLogger("serving.rest.http")
http_log.addFilter(_OneLine())

# TF Serving's own path patterns (http_rest_api_util.cc), matched against the raw (undecoded) path.
PREDICTION_PATH = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)"
)
STATUS_PATH = re.compile(r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?")
API_PATH = re.compile(r"(?i)/v1/.*")
INT64_MAX = 2**63 - 1


class Route:
    """A parsed REST path: the ModelSpec fields and what is asked of the model."""

    def __init__(self, name: str, version: int | None, label: str | None, api: str) -> None:
        self.name, self.version, self.label, self.api = name, version, label, api

    def model_spec(self, signature_name: str = "") -> Any:
        from tensorflow_serving.apis import model_pb2

        spec = model_pb2.ModelSpec(name=self.name, signature_name=signature_name)
        if self.version is not None:
            spec.version.value = self.version
        elif self.label is not None:
            spec.version_label = self.label
        return spec


def parse_path(method: str, path: str) -> Route:
    """TF Serving's ParseModelInfo: a Route, or the ServingError it answers (INVALID_ARGUMENT)."""
    m = PREDICTION_PATH.fullmatch(path) if method == "POST" else None
    g = STATUS_PATH.fullmatch(path) if method == "GET" else None
    if m is None and g is None:
        raise invalid(f"Malformed request: {method} {path}")
    name, version_text, label, api = (m or g).groups()  # type: ignore[union-attr]
    name = urllib.parse.unquote(name or "", errors="strict")
    if not name:
        raise invalid("Missing model name in request.")
    version = None
    if version_text is not None:
        version = int(version_text)
        if version > INT64_MAX:
            raise invalid(f"Failed to convert version: {version_text} to numeric.")
    if label is not None:
        label = urllib.parse.unquote(label, errors="strict")
    return Route(name, version, label, (api or "status").lower())


def process(
    core: ServerCore,
    method: str,
    path: str,
    body: bytes,
    until: float | None = None,
    served: dict[str, int] | None = None,
) -> Any:
    """One REST request, run in a worker thread: the JSON-ready answer, or a ServingError. `until`: the
    request's deadline (time.monotonic()), which the session run is given; `served` receives the version
    that answered (for the metrics)."""
    with deadline.until(until), serving_request(served):
        return _process(core, method, path, body)


def _process(core: ServerCore, method: str, path: str, body: bytes) -> Any:
    try:
        route = parse_path(method, path)
    except UnicodeDecodeError:
        raise invalid(f"Failed to decode model name or label: {path}") from None
    if route.api in ("status", "metadata"):
        return _get(core, route)
    try:
        payload = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise invalid(f"JSON Parse error: {e}") from None
    if not isinstance(payload, dict):
        raise invalid("JSON Value: the request body must be a JSON object")
    sig_name = payload.get("signature_name", "") or ""
    if not isinstance(sig_name, str):
        raise invalid("'signature_name' must be a string")
    spec = route.model_spec(sig_name)
    if route.api == "predict":
        with held(core, spec) as v:  # one version for the whole request: its signature's dtypes read the JSON
            sig = signature(v, sig_name)
            request, fmt = rest_json.predict_request(payload, sig, spec)
            outputs = predict_h.predict_in(core, v, sig, request)
        return rest_json.predict_response(outputs, fmt)
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    inp = rest_json.example_input(payload)
    if route.api == "classify":
        res = classify_h.classify(core, classification_pb2.ClassificationRequest(model_spec=spec, input=inp))
        return {"results": [[[c.label, c.score] for c in cl.classes] for cl in res.result.classifications]}
    res = regress_h.regress(core, regression_pb2.RegressionRequest(model_spec=spec, input=inp))
    return {"results": [r.value for r in res.result.regressions]}


def _as_json(message: Any) -> Any:
    """A message as TF Serving's REST API prints it: proto field names, fields without presence included."""
    from google.protobuf import json_format

    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _get(core: ServerCore, route: Route) -> Any:
    spec = route.model_spec()
    if route.api == "metadata":
        from tensorflow_serving.apis import get_model_metadata_pb2

        res = metadata_h.metadata(
            core, get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec, metadata_field=["signature_def"])
        )
        sigs = get_model_metadata_pb2.SignatureDefMap()
        res.metadata["signature_def"].Unpack(sigs)
        return {
            "model_spec": _as_json(res.model_spec),
            "metadata": {"signature_def": _as_json(sigs)},
        }
    from tensorflow_serving.apis import get_model_status_pb2

    res = status_h.status(core, get_model_status_pb2.GetModelStatusRequest(model_spec=spec))
    return _as_json(res)


def _json_response(status: int, payload: Any) -> web.Response:
    return web.Response(status=status, body=json.dumps(payload).encode(), content_type="application/json")


def _error(e: ServingError) -> web.Response:
    return _json_response(e.http_status, {"error": e.message})


class _Busy(asyncio.Protocol):
    """A connection beyond --rest_api_max_connections: answered 503 at once, then closed. What the
    client still sends is read and dropped for a moment first (closing on unread data would reset
    the connection, and the client could lose the answer)."""

    BODY = b'{"error": "too many connections: the server is at --rest_api_max_connections"}'
    LINGER_S = 1.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(self.BODY)}\r\n\r\n".encode()
            + self.BODY
        )
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(self.LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # dropped

    def eof_received(self) -> bool:
        return False  # the client is done: close


class _LimitedServer(web.Server):
    """aiohttp's low-level server with a connection limit. Handlers made but not yet connected count
    too (asyncio accepts a burst of connections before any of them is connected); one whose
    connection never came (a failed accept) stops counting after a few seconds."""

    def __init__(self, handler: Any, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._max_connections = max_connections
        self._made: dict[Any, float] = {}

    def __call__(self) -> Any:
        now = time.monotonic()
        if len(self._made) + len(self._connections) >= self._max_connections:
            self._made = {h: t for h, t in self._made.items() if now - t < 5.0}
            if len(self._made) + len(self._connections) >= self._max_connections:
                return _Busy()
        handler = super().__call__()
        self._made[handler] = now
        return handler

    def connection_made(self, handler: Any, transport: asyncio.Transport) -> None:
        self._made.pop(handler, None)
        super().connection_made(handler, transport)


class RestServer:
    def __init__(
        self,
        core: ServerCore,
        bind: str,
        port: int,
        timeout_ms: int,
        threads: int,
        metrics_path: str | None,
        *,
        max_request_bytes: int = 64 * 2**20,
        max_connections: int = 1024,
        idle_timeout_s: float = 60.0,
    ) -> None:
        self._core = core
        self._timeout_s = timeout_ms / 1000.0
        self._metrics_path = metrics_path
        self._max_request_bytes = max_request_bytes
        self._max_connections = max_connections
        self._idle_timeout_s = idle_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rest")
        self._sock = _listen(bind, port)
        self.port = self._sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rest", daemon=True)
        self._server: _LimitedServer | None = None
        self._listener: asyncio.AbstractServer | None = None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()

    async def _start(self) -> None:
        self._server = _LimitedServer(
            self._handle,
            max_connections=self._max_connections,
            request_factory=self._make_request,
            keepalive_timeout=self._idle_timeout_s,
            access_log=None,
            logger=http_log,
            lingering_time=1.0,  # after a 413, read (and drop) what the client still sends for 1 s, then close
        )
        self._listener = await self._loop.create_server(self._server, sock=self._sock, backlog=socket.SOMAXCONN)

    def _make_request(self, message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
        return web.BaseRequest(
            message, payload, protocol, writer, task, self._loop, client_max_size=self._max_request_bytes
        )

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        start = time.perf_counter()
        deadline_at = time.monotonic() + self._timeout_s
        method = request.method
        path = request.raw_path.split("?", 1)[0]
        if self._metrics_path and method == "GET" and path == self._metrics_path:
            return web.Response(
                body=self._core.metrics.render().encode(), headers={"Content-Type": "text/plain; version=0.0.4"}
            )
        if not API_PATH.fullmatch(path):
            return _error(not_found(f"Not found: {method} {path}"))
        model, api = _labels_for_metrics(method, path)
        served: dict[str, int] = {}
        code, response = await self._respond(request, method, path, deadline_at, served)
        self._core.metrics.request(model, api, "REST", code, time.perf_counter() - start, served.get("version"))
        return response

    async def _respond(
        self, request: web.BaseRequest, method: str, path: str, deadline_at: float, served: dict[str, int]
    ) -> tuple[str, web.Response]:
        body = b""
        if request.body_exists:
            length = request.content_length
            if length is not None and length > self._max_request_bytes:
                return "RESOURCE_EXHAUSTED", _too_large(length, self._max_request_bytes)
            try:
                body = await asyncio.wait_for(request.read(), max(0.0, deadline_at - time.monotonic()))
            except web.HTTPRequestEntityTooLarge:
                return "RESOURCE_EXHAUSTED", _too_large(None, self._max_request_bytes)
            except TimeoutError:
                slow = _error(ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Request timed out reading the body"))
                slow.force_close()  # the rest of the body may still be on its way
                return "DEADLINE_EXCEEDED", slow
        future = self._loop.run_in_executor(self._pool, process, self._core, method, path, body, deadline_at, served)
        try:
            result = await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline_at - time.monotonic()))
        except TimeoutError:
            return "DEADLINE_EXCEEDED", _error(ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Request timed out"))
        except ServingError as e:
            return e.code.name, _error(e)
        except RecursionError:
            log.warning("REST %s %s: JSON nested too deeply (%d bytes), answered 400", method, path, len(body))
            return "INVALID_ARGUMENT", _error(
                invalid("JSON Parse error: the request nests arrays or objects too deeply")
            )
        except Exception as e:  # noqa: BLE001 - one line, never a traceback in the log per bad request
            first = (str(e).strip().splitlines() or [""])[0][:500]
            log.error("REST %s %s failed: %s: %s", method, path, type(e).__name__, first)
            return "INTERNAL", _error(ServingError(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"))
        return "OK", _json_response(200, result)

    def stop(self, grace: float = 10.0) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(grace), self._loop).result(timeout=grace + 5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True)

    async def _stop(self, grace: float) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._server is not None:
            await self._server.shutdown(grace)


def _too_large(length: int | None, limit: int) -> web.Response:
    told = f" ({length} bytes)" if length is not None else ""
    response = _json_response(
        413, {"error": f"Request body{told} is larger than --rest_api_max_request_bytes ({limit})"}
    )
    response.force_close()  # the body is not read: the connection cannot carry another request
    return response


def _labels_for_metrics(method: str, path: str) -> tuple[str, str]:
    m = PREDICTION_PATH.fullmatch(path) if method == "POST" else STATUS_PATH.fullmatch(path)
    if m is None:
        return "", "unknown"
    groups = m.groups()
    return urllib.parse.unquote(groups[0] or ""), (groups[3] or "status").lower()


def _listen(bind: str, port: int) -> socket.socket:
    """The REST listening socket, bound now so that a taken port fails start-up (no SO_REUSEPORT)."""
    from serving.grpc_server import BindError

    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind, port))
        sock.listen(socket.SOMAXCONN)
    except OSError as e:
        sock.close()
        raise BindError(f"cannot listen for REST on {bind}:{port}: {e.strerror} (is the port taken?)") from None
    sock.setblocking(False)
    return sock
