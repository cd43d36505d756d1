"""The REST front end: TF Serving's REST API on --rest_api_port.

    POST /v1/models/{name}[/versions/{n}|/labels/{l}]:(predict|classify|regress)
    GET  /v1/models/{name}[/versions/{n}|/labels/{l}]            model status
    GET  /v1/models/{name}[/versions/{n}|/labels/{l}]/metadata   signatures
    GET  <prometheus path>                                        metrics, when monitoring is enabled

Errors are `{"error": "..."}` with TF Serving's HTTP codes. A request that runs longer than
--rest_api_timeout_in_ms is answered 504.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf import json_format

from serving import rest_json
from serving.core import ServerCore
from serving.errors import ServingError, invalid, not_found
from serving.handlers import classify as classify_h
from serving.handlers import common
from serving.handlers import metadata as metadata_h
from serving.handlers import regress as regress_h
from serving.handlers import status as status_h
from serving.servable import DEFAULT_SIGNATURE

log = logging.getLogger("serving")

ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>-?\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?::(?P<verb>predict|classify|regress)|/(?P<meta>metadata))?$"
)


def _model_spec(m: re.Match, signature_name: str = "") -> Any:
    from tensorflow_serving.apis import model_pb2

    spec = model_pb2.ModelSpec(name=m["name"], signature_name=signature_name)
    if m["version"] is not None:
        spec.version.value = int(m["version"])
    elif m["label"] is not None:
        spec.version_label = m["label"]
    return spec


def handle_post(core: ServerCore, m: re.Match, body: dict[str, Any]) -> dict[str, Any]:
    verb = m["verb"]
    sig_name = body.get("signature_name", "") or ""
    if not isinstance(sig_name, str):
        raise invalid("'signature_name' must be a string")
    spec = _model_spec(m, sig_name)
    if verb == "predict":
        with common.held(core, spec) as v:
            name = sig_name or DEFAULT_SIGNATURE
            sig = common.signature(v, name)
            feeds, fmt = rest_json.predict_feeds(body, sig)
            common.check_inputs(v, name, feeds, {k: sig.inputs[k].dtype for k in feeds})
            outputs = common.run(core, v, name, feeds)
        return rest_json.predict_response(outputs, fmt)
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    inp = rest_json.example_input(body)
    if verb == "classify":
        req = classification_pb2.ClassificationRequest(model_spec=spec, input=inp)
        res = classify_h.classify(core, req)
        return {"results": [[[c.label, c.score] for c in cl.classes] for cl in res.result.classifications]}
    req = regression_pb2.RegressionRequest(model_spec=spec, input=inp)
    res = regress_h.regress(core, req)
    return {"results": [r.value for r in res.result.regressions]}


def handle_get(core: ServerCore, m: re.Match) -> dict[str, Any]:
    spec = _model_spec(m)
    if m["meta"]:
        from tensorflow_serving.apis import get_model_metadata_pb2

        res = metadata_h.metadata(
            core, get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec, metadata_field=["signature_def"])
        )
        sigs = get_model_metadata_pb2.SignatureDefMap()
        res.metadata["signature_def"].Unpack(sigs)
        return {
            "model_spec": json_format.MessageToDict(
                res.model_spec, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            ),
            "metadata": {"signature_def": json_format.MessageToDict(sigs, preserving_proto_field_name=True)},
        }
    from tensorflow_serving.apis import get_model_status_pb2

    res = status_h.status(core, get_model_status_pb2.GetModelStatusRequest(model_spec=spec))
    return json_format.MessageToDict(res, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def make_handler(core: ServerCore, timeout_s: float, pool: ThreadPoolExecutor, metrics_path: str | None) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "shipyard-serving"

        def log_message(self, fmt: str, *args: Any) -> None:  # requests are counted in metrics, not logged
            pass

        def _send(self, code: int, payload: Any, content_type: str = "application/json") -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, e: ServingError) -> None:
            self._send(e.http_status, {"error": e.message})

        def _dispatch(self, fn: Any, *args: Any) -> None:
            start = time.perf_counter()
            model = args[0]["name"] if args and isinstance(args[0], re.Match) else ""
            api = args[0]["verb"] or ("metadata" if args[0]["meta"] else "status") if args else ""
            future = pool.submit(fn, core, *args)
            try:
                result = future.result(timeout=timeout_s)
            except FutureTimeout:
                core.metrics.request(model, api, "REST", "DEADLINE_EXCEEDED", time.perf_counter() - start)
                self._error(ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Request timed out"))
                return
            except ServingError as e:
                core.metrics.request(model, api, "REST", e.code.name, time.perf_counter() - start)
                self._error(e)
                return
            except Exception as e:
                log.exception("REST request failed")
                self._error(ServingError(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"))
                return
            core.metrics.request(model, api, "REST", "OK", time.perf_counter() - start)
            self._send(200, result)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if metrics_path and path == metrics_path:
                self._send(200, core.metrics.render().encode(), "text/plain; version=0.0.4")
                return
            m = ROUTE.match(path)
            if not m or m["verb"]:
                self._error(
                    not_found(f"Malformed request: GET {path}")
                    if not m
                    else ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"{m['verb']} needs POST")
                )
                return
            self._dispatch(handle_get, m)

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            m = ROUTE.match(path)
            if not m or not m["verb"]:
                self._error(not_found(f"Malformed request: POST {path}"))
                return
            try:
                body = json.loads(raw or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                self._error(invalid(f"JSON Parse error: {e}"))
                return
            if not isinstance(body, dict):
                self._error(invalid("the request body must be a JSON object"))
                return
            self._dispatch(handle_post, m, body)

    return Handler


class RestServer:
    def __init__(
        self, core: ServerCore, bind: str, port: int, timeout_ms: int, threads: int, metrics_path: str | None
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rest")
        handler = make_handler(core, timeout_ms / 1000.0, self._pool, metrics_path)
        self.httpd = ThreadingHTTPServer((bind, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="rest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._pool.shutdown(wait=True)
