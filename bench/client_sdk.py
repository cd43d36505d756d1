"""The SDK against TF Serving's own Python API, side by side in one run:

- import time: wall clock of a fresh `python -c 'import ...'` (median of 5), against
  `import tensorflow_serving.apis.prediction_service_pb2_grpc`; target at most 1/15;
- installed size: the installed files of each package and everything it requires (read from the
  installed distributions' RECORDs); target at most 1/10;
- encode and decode of 1, 1e3 and 1e6 elements per dtype, against tf.make_tensor_proto and
  tf.make_ndarray: tensor_content paths within 10% of TF's; string encoding and decoding of the typed
  fields TF Serving replies with (float_val, ...) at least 5x faster. The SDK's request path
  (`encode_wire`: numpy straight to the bytes Predict sends) is reported beside, against
  make_tensor_proto + SerializeToString.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NAME = "client_sdk"
TITLE = "shipyard_client against tensorflow-serving-api"
SIZES = (1, 1_000, 1_000_000)


def _import_seconds(module: str, runs: int = 5) -> float:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True)
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def _closure_bytes(dist_name: str) -> tuple[int, list[str]]:
    seen: dict[str, md.Distribution] = {}
    todo = [dist_name]
    while todo:
        name = re.split(r"[\s<>=!~;\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen[name] = dist
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(req)
    total = 0
    for dist in seen.values():
        for f in dist.files or []:
            p = Path(dist.locate_file(f))
            if p.is_file():
                total += p.stat().st_size
    return total, sorted(seen)


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run() -> list[dict]:
    import tensorflow as tf

    from shipyard_client import decode, encode
    from shipyard_client._proto import tf_types_pb2
    from shipyard_client._tensors import encode_wire

    rows: list[dict] = []
    base = _import_seconds("sys")
    sdk = _import_seconds("shipyard_client")
    tfs = _import_seconds("tensorflow_serving.apis.prediction_service_pb2_grpc")
    rows.append({"metric": "import, python alone", "value": round(base, 3), "unit": "s"})
    rows.append({"metric": "import shipyard_client", "value": round(sdk, 3), "unit": "s"})
    rows.append({"metric": "import tensorflow_serving.apis...pb2_grpc", "value": round(tfs, 3), "unit": "s"})
    rows.append(
        {
            "metric": "import time ratio (sdk / tf serving)",
            "value": round(sdk / tfs, 4),
            "unit": "ratio",
            "target": "<= 1/15 (0.0667)",
            "met": sdk / tfs <= 1 / 15,
        }
    )
    sdk_size, sdk_deps = _closure_bytes("shipyard-client")
    tfs_size, _ = _closure_bytes("tensorflow-serving-api")
    rows.append(
        {
            "metric": "installed, shipyard-client + deps",
            "value": round(sdk_size / 2**20, 1),
            "unit": "MiB",
            "packages": sdk_deps,
        }
    )
    rows.append(
        {"metric": "installed, tensorflow-serving-api + deps", "value": round(tfs_size / 2**20, 1), "unit": "MiB"}
    )
    rows.append(
        {
            "metric": "installed size ratio",
            "value": round(sdk_size / tfs_size, 4),
            "unit": "ratio",
            "target": "<= 0.1",
            "met": sdk_size / tfs_size <= 0.1,
        }
    )

    worst_content, worst_typed, worst_strings = 0.0, float("inf"), float("inf")
    for dtype in ("float32", "float64", "int32", "int64"):
        for n in SIZES:
            arr = (np.arange(n) % 100).astype(dtype)
            repeat = 5 if n == 1_000_000 else 200
            enc_sdk = _best(lambda arr=arr: encode(arr), repeat)
            enc_tf = _best(lambda arr=arr: tf.make_tensor_proto(arr), repeat)
            raw = encode(arr).SerializeToString()
            ours = tf_types_pb2.TensorProto.FromString(raw)
            theirs = tf.make_tensor_proto(np.zeros(1))
            theirs.ParseFromString(raw)
            dec_sdk = _best(lambda p=ours: decode(p), repeat)
            dec_tf = _best(lambda p=theirs: tf.make_ndarray(p), repeat)
            typed_tf = tf.make_tensor_proto(np.zeros(1))
            typed_tf.ParseFromString(raw)
            typed_tf.ClearField("tensor_content")
            getattr(
                typed_tf,
                {"float32": "float_val", "float64": "double_val", "int32": "int_val", "int64": "int64_val"}[dtype],
            ).extend(arr.tolist())
            typed_ours = tf_types_pb2.TensorProto.FromString(typed_tf.SerializeToString())
            tdec_sdk = _best(lambda p=typed_ours: decode(p), repeat)
            tdec_tf = _best(lambda p=typed_tf: tf.make_ndarray(p), repeat)
            if n == 1_000_000:  # targets are about bulk data; small sizes are reported, per-call overhead
                worst_content = max(worst_content, enc_sdk / enc_tf, dec_sdk / dec_tf)
                worst_typed = min(worst_typed, tdec_tf / tdec_sdk)
            rows.append(
                {
                    "metric": f"{dtype} x{n}: encode sdk / tf",
                    "value": round(enc_sdk / enc_tf, 3),
                    "unit": "ratio",
                    "sdk_us": round(enc_sdk * 1e6, 1),
                    "tf_us": round(enc_tf * 1e6, 1),
                }
            )
            rows.append(
                {
                    "metric": f"{dtype} x{n}: decode tensor_content sdk / tf",
                    "value": round(dec_sdk / dec_tf, 3),
                    "unit": "ratio",
                    "sdk_us": round(dec_sdk * 1e6, 1),
                    "tf_us": round(dec_tf * 1e6, 1),
                }
            )
            rows.append(
                {
                    "metric": f"{dtype} x{n}: decode typed field, tf / sdk",
                    "value": round(tdec_tf / tdec_sdk, 2),
                    "unit": "speed-up",
                    "sdk_us": round(tdec_sdk * 1e6, 1),
                    "tf_us": round(tdec_tf * 1e6, 1),
                }
            )
    worst_bytes = float("inf")
    worst_wire = float("inf")
    worst_wire_vs_msg = float("inf")
    for n in SIZES:  # str needs UTF-8 encoding on the way; bytes go in as they are
        strings = np.array([f"penguin-{i}" for i in range(n)], dtype=object)
        raw_bytes = np.array([v.encode() for v in strings.tolist()], dtype=object)
        repeat = 5 if n >= 100_000 else 200
        for kind, values in (("str", strings), ("bytes", raw_bytes)):
            # The target compares like with like: numpy to a TensorProto message, encode() against
            # make_tensor_proto. The SDK's request path (encode_wire: numpy straight to the bytes
            # Predict sends) is reported beside it, against make_tensor_proto + SerializeToString.
            sdk_wire = _best(lambda v=values: encode_wire(v), repeat)
            sdk_msg = _best(lambda v=values: encode(v), repeat)
            tf_msg = _best(lambda v=values: tf.make_tensor_proto(v), repeat)
            tf_wire = _best(lambda v=values: tf.make_tensor_proto(v).SerializeToString(), repeat)
            if n >= 1000 and kind == "str":
                worst_strings = min(worst_strings, tf_msg / sdk_msg)
                worst_wire = min(worst_wire, tf_wire / sdk_wire)
                worst_wire_vs_msg = min(worst_wire_vs_msg, tf_msg / sdk_wire)
            if n >= 1000 and kind == "bytes":
                worst_bytes = min(worst_bytes, tf_msg / sdk_msg)
            rows.append(
                {
                    "metric": f"{kind} x{n}: encode, tf / sdk",
                    "value": round(tf_msg / sdk_msg, 2),
                    "unit": "speed-up",
                    "sdk_us": round(sdk_msg * 1e6, 1),
                    "tf_us": round(tf_msg * 1e6, 1),
                }
            )
            rows.append(
                {
                    "metric": f"  {kind} x{n}: request path, tf (+SerializeToString) / sdk encode_wire",
                    "value": round(tf_wire / sdk_wire, 2),
                    "unit": "speed-up",
                    "sdk_us": round(sdk_wire * 1e6, 1),
                    "tf_us": round(tf_wire * 1e6, 1),
                }
            )
    rows.append(
        {
            "metric": "tensor_content at 1e6: worst sdk / tf",
            "value": round(worst_content, 3),
            "unit": "ratio",
            "target": "<= 1.10",
            "met": worst_content <= 1.10,
        }
    )
    rows.append(
        {
            "metric": "typed-field decode at 1e6: worst speed-up",
            "value": round(worst_typed, 2),
            "unit": "x",
            "target": ">= 5",
            "met": worst_typed >= 5,
        }
    )
    rows.append(
        {
            "metric": "str encode (1e3, 1e6): worst speed-up",
            "value": round(worst_strings, 2),
            "unit": "x",
            "target": ">= 5",
            "met": worst_strings >= 5,
        }
    )
    rows.append(
        {
            "metric": "  str request path (1e3, 1e6), to the wire: worst speed-up",
            "value": round(worst_wire, 2),
            "unit": "x",
        }
    )
    rows.append(
        {
            "metric": "  str request path (1e3, 1e6) against make_tensor_proto alone: worst speed-up",
            "value": round(worst_wire_vs_msg, 2),
            "unit": "x",
            "note": "the SDK all the way to wire bytes, TF only to the message (its serialization not counted)",
        }
    )
    rows.append(
        {
            "metric": "bytes encode (1e3, 1e6): worst speed-up",
            "value": round(worst_bytes, 2),
            "unit": "x",
            "target": ">= 5",
            "met": worst_bytes >= 5,
        }
    )
    return rows
