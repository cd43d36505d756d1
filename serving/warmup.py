"""Warmup: replaying `<version>/assets.extra/tf_serving_warmup_requests` at load, as TF Serving does.

The file is a TFRecord of serialized `tensorflow.serving.PredictionLog`. At most 1000 records are
replayed; a record that cannot be read or run fails the version's load; a missing file skips warmup.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from serving.servable import DEFAULT_SIGNATURE, LoadError, Servable

WARMUP_PATH = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000


def read_records(path: Path) -> list[bytes]:
    import tensorflow as tf
    from tensorflow.python.util import deprecation

    try:
        with deprecation.silence():  # the v1 reader works on any thread, without eager mode
            return list(tf.compat.v1.io.tf_record_iterator(str(path)))
    except Exception as e:
        raise LoadError(f"warmup file {path} is not a valid TFRecord: {e}") from e


def replay(servable: Servable) -> int:
    """Replay the servable's warmup records; return how many ran (0 when there is no file)."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = servable.path / WARMUP_PATH
    if not path.is_file():
        return 0
    records = read_records(path)
    if len(records) > MAX_RECORDS:
        raise LoadError(f"warmup file {path} has {len(records)} records; at most {MAX_RECORDS} are allowed")
    for i, raw in enumerate(records):
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(raw)
            run_log(servable, log)
        except Exception as e:
            raise LoadError(f"warmup record {i} of {path} failed: {e}") from e
    return len(records)


def run_log(servable: Servable, log: object) -> dict[str, np.ndarray]:
    import tensorflow as tf

    kind = log.WhichOneof("log_type")  # type: ignore[attr-defined]
    if kind == "predict_log":
        req = log.predict_log.request  # type: ignore[attr-defined]
        feeds = {k: tf.make_ndarray(v) for k, v in req.inputs.items()}
        return servable.run(req.model_spec.signature_name or DEFAULT_SIGNATURE, feeds, tuple(req.output_filter))
    if kind in ("classify_log", "regress_log"):
        req = getattr(log, kind).request
        examples = [e.SerializeToString() for e in req.input.example_list.examples]
        sig = servable.signature(req.model_spec.signature_name)
        (input_name,) = sig.input_names
        return servable.run(sig, {input_name: np.array(examples, dtype=object)})
    raise LoadError(f"unsupported warmup log type {kind!r}")
