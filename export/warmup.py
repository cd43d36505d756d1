"""The warmup file TF Serving replays at load: `assets.extra/tf_serving_warmup_requests`, a TFRecord
of serialized `PredictionLog`, built from held-out rows: Predict requests on the raw features, and
Classify or Regress requests on the same rows as tf.Example."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from export.examples import to_example_protos
from export.signatures import CLASSIFY_SIGNATURE, PREDICT_SIGNATURE, REGRESS_SIGNATURE
from train.spec import Spec

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"


def predict_feeds(spec: Spec, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw feature columns in the dtypes of the serving_default signature."""
    out = {}
    for f in spec.features:
        v = columns[f.name]
        if f.kind == "numeric":
            out[f.name] = v.astype(np.float32)
        elif f.kind == "integer":
            out[f.name] = v.astype(np.int64)
        elif f.kind == "image":
            out[f.name] = np.array([bytes(b) for b in v], dtype=object)
        else:
            out[f.name] = np.array([str(s).encode() for s in v], dtype=object)
    return out


def build_logs(spec: Spec, model_name: str, columns: Mapping[str, np.ndarray], batch: int = 4) -> list:
    """PredictionLogs for the rows in `columns`: one Predict and one Classify/Regress per batch of rows."""
    import tensorflow as tf
    from tensorflow_serving.apis import (
        classification_pb2,
        predict_pb2,
        prediction_log_pb2,
        regression_pb2,
    )

    n = len(next(iter(columns.values())))
    logs = []
    for start in range(0, n, batch):
        part = {k: v[start : start + batch] for k, v in columns.items()}
        req = predict_pb2.PredictRequest()
        req.model_spec.name = model_name
        req.model_spec.signature_name = PREDICT_SIGNATURE
        for k, v in predict_feeds(spec, part).items():
            req.inputs[k].CopyFrom(tf.make_tensor_proto(v))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req)))
        examples = to_example_protos(spec.features, part)
        if spec.task == "classification":
            creq = classification_pb2.ClassificationRequest()
            creq.model_spec.name = model_name
            creq.model_spec.signature_name = CLASSIFY_SIGNATURE
            creq.input.example_list.examples.extend(examples)
            logs.append(prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(request=creq)))
        else:
            rreq = regression_pb2.RegressionRequest()
            rreq.model_spec.name = model_name
            rreq.model_spec.signature_name = REGRESS_SIGNATURE
            rreq.input.example_list.examples.extend(examples)
            logs.append(prediction_log_pb2.PredictionLog(regress_log=prediction_log_pb2.RegressLog(request=rreq)))
    return logs


def write_warmup(saved_model_dir: Path, logs: list) -> Path:
    import tensorflow as tf

    path = saved_model_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as w:
        for log in logs:
            w.write(log.SerializeToString())
    return path
