"""The demo's gRPC client, on TF Serving's own API package (the Shipyard SDK is the lighter way).

python scripts/demo_client.py predict --target 127.0.0.1:8500 --run RUN_DIR [--rows 3]
python scripts/demo_client.py wait-version --target 127.0.0.1:8500 --version 2 [--timeout 120]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _request(columns: dict, rows: slice, features: list):
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    req = predict_pb2.PredictRequest()
    req.model_spec.name = "penguins"
    for f in features:
        v = columns[f.name][rows]
        if f.kind == "numeric":
            v = v.astype(np.float32)
        elif f.kind == "string":
            v = np.array([s.encode() for s in v], dtype=object)
        req.inputs[f.name].CopyFrom(tf.make_tensor_proto(v))
    return req


def predict(target: str, run: Path, n: int) -> None:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from train.run import load_run_inputs, split_rows

    _, spec, cols, key = load_run_inputs(run)
    test = split_rows(spec, cols, key)["test"]
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    r = stub.Predict(_request(test, slice(0, n), spec.features), timeout=30)
    classes = tf.make_ndarray(r.outputs["classes"])
    probs = tf.make_ndarray(r.outputs["probabilities"])
    for i in range(n):
        print(
            f"  row {test[key][i]:>3}: {test['island'][i]:<9} bill {test['bill_length_mm'][i]:5.1f} mm  ->  "
            f"{classes[i].decode():<9} (p={probs[i].max():.3f}; true {test[spec.label][i]})  "
            f"[version {r.model_spec.version.value}]"
        )


def wait_version(target: str, version: int, timeout: float) -> int:
    import grpc
    from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    start = time.monotonic()
    req = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": "penguins"}, metadata_field=["signature_def"]
    )
    while time.monotonic() - start < timeout:
        served = stub.GetModelMetadata(req, timeout=10).model_spec.version.value
        if served == version:
            print(f"  the newest version answering is now {served} (after {time.monotonic() - start:.1f}s)")
            return 0
        time.sleep(0.2)
    print(f"  version {version} did not answer within {timeout:.0f}s", file=sys.stderr)
    return 1


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("predict")
    a.add_argument("--target", required=True)
    a.add_argument("--run", required=True, type=Path)
    a.add_argument("--rows", type=int, default=3)
    b = sub.add_parser("wait-version")
    b.add_argument("--target", required=True)
    b.add_argument("--version", required=True, type=int)
    b.add_argument("--timeout", type=float, default=120)
    args = p.parse_args()
    if args.cmd == "predict":
        predict(args.target, args.run, args.rows)
        return 0
    return wait_version(args.target, args.version, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
