"""Why the REST front end runs on aiohttp: the candidates side by side on the same trivial JSON handler
(parse the body, answer a small JSON object), single-client p50 and throughput at 16 clients from a
separate load process (bench/load.py):

- aiohttp's low-level server (what serving/rest_server.py uses);
- Starlette under uvicorn (httptools parser), one worker.

    python -m bench.http_libraries aiohttp|uvicorn PORT     # one server, for the measurement
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import time

from bench.serving import _free_port

NAME = "http_libraries"
TITLE = "HTTP server libraries for the REST front end, on a trivial JSON handler"
BODY = json.dumps({"instances": [{"x": 1.0, "island": "Torgersen"}]}).encode()


def _serve_aiohttp(port: int) -> None:
    import asyncio

    from aiohttp import web

    async def handle(request: web.BaseRequest) -> web.Response:
        payload = json.loads(await request.read())
        return web.Response(body=json.dumps({"n": len(payload["instances"])}).encode(), content_type="application/json")

    async def main() -> None:
        server = web.Server(handle, access_log=None)
        await asyncio.get_running_loop().create_server(server, "127.0.0.1", port)
        await asyncio.Event().wait()

    asyncio.run(main())


def _serve_uvicorn(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def handle(request: Request) -> Response:
        payload = json.loads(await request.body())
        return Response(json.dumps({"n": len(payload["instances"])}), media_type="application/json")

    app = Starlette(routes=[Route("/v1/models/m:predict", handle, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", http="httptools")


def _measure(kind: str) -> tuple[float, float, float]:
    from bench.load import run as load

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.http_libraries", kind, str(port)])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.connect()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        times = []
        for i in range(1200):
            t = time.perf_counter()
            conn.request("POST", "/v1/models/m:predict", BODY, {"Content-Type": "application/json"})
            conn.getresponse().read()
            if i >= 200:
                times.append(time.perf_counter() - t)
        conn.close()
        r = load("rest", f"127.0.0.1:{port}", BODY, "/v1/models/m:predict", 16, 3.0, 2)
        return statistics.median(times) * 1e3, r["requests"] / r["seconds"], r["load_cpu_seconds"] / r["seconds"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run() -> list[dict]:
    rows = []
    for kind in ("aiohttp", "uvicorn"):
        p50, rate, load_cpu = _measure(kind)
        rows.append({"metric": f"p50 at 1 client, {kind}", "value": round(p50, 3), "unit": "ms"})
        rows.append({"metric": f"throughput at 16 clients, {kind}", "value": round(rate, 1), "unit": "req/s"})
        rows.append({"metric": f"  load generator CPU, {kind}", "value": round(load_cpu, 2), "unit": "cores"})
    return rows


if __name__ == "__main__":
    {"aiohttp": _serve_aiohttp, "uvicorn": _serve_uvicorn}[sys.argv[1]](int(sys.argv[2]))
