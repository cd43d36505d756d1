"""The gRPC API through the unmodified tensorflow_serving.apis stubs, against both backends (the
local server, and the real TF Serving container where a Docker engine answers)."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

import modelbase
from export.examples import to_example_protos
from release import model_config
from tests.serving.conftest import copy_base, start
from train.spec import load_spec

ROW = {
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181.0,
    "body_mass_g": 3750.0,
    "island": "Torgersen",
    "sex": "male",
    "year": 2007,
}


@pytest.fixture(scope="module")
def server(backend, exported, tmp_path_factory):
    base = copy_base(
        exported, tmp_path_factory.mktemp("base"), {"penguins": [1, 2], "penguins_body_mass": [1], "tf1": [1]}
    )
    modelbase.write_config(base, model_config.build(base, {"penguins": {"stable": 1, "canary": 2}}))
    s = start(backend, [f"--model_config_file={base / 'models.config'}"], base, tmp_path_factory.mktemp("logs"))
    yield s
    assert s.stop() == 0
    assert "Traceback" not in s.log()


def predict_request(rows=(ROW,), name="penguins", **spec):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    for k, v in spec.items():
        if k == "version":
            req.model_spec.version.value = v
        else:
            setattr(req.model_spec, k, v)
    for k in ROW:
        values = [r[k] for r in rows]
        if isinstance(ROW[k], str):
            arr = np.array([v.encode() for v in values], dtype=object)
        elif k == "year":
            arr = np.array(values, dtype=np.int64)
        else:
            arr = np.array(values, dtype=np.float32)
        req.inputs[k].CopyFrom(tf.make_tensor_proto(arr))
    return req


def examples(rows):
    spec = load_spec("specs/penguins.toml")
    cols = {}
    for f in spec.features:
        vals = [r.get(f.name, np.nan if f.kind == "numeric" else ("" if f.kind == "string" else -1)) for r in rows]
        cols[f.name] = np.array(vals, dtype=object if f.kind == "string" else None)
    return to_example_protos(spec.features, cols)


def test_predict_answers_with_the_newest_version_and_typed_fields(server):
    r = server.prediction().Predict(predict_request(), timeout=30)
    assert r.model_spec.name == "penguins" and r.model_spec.version.value == 2
    assert r.model_spec.signature_name == "serving_default"
    assert set(r.outputs) == {"probabilities", "class_ids", "classes"}
    p = r.outputs["probabilities"]
    assert len(p.float_val) == 3 and not p.tensor_content  # typed *_val fields by default
    assert tf.make_ndarray(r.outputs["classes"]).tolist() == [b"Adelie"]
    assert abs(sum(p.float_val) - 1) < 1e-5


def test_predict_without_a_deadline(server):
    """A call with no deadline at all (gRPC Python then reports an enormous time remaining)."""
    r = server.prediction().Predict(predict_request())
    assert r.model_spec.version.value == 2 and len(r.outputs["probabilities"].float_val) == 3


def test_predict_by_version_and_by_label(server):
    stub = server.prediction()
    assert stub.Predict(predict_request(version=1), timeout=30).model_spec.version.value == 1
    assert stub.Predict(predict_request(version_label="stable"), timeout=30).model_spec.version.value == 1
    assert stub.Predict(predict_request(version_label="canary"), timeout=30).model_spec.version.value == 2


def test_output_filter(server):
    req = predict_request()
    req.output_filter.append("classes")
    assert set(server.prediction().Predict(req, timeout=30).outputs) == {"classes"}


def test_classify_and_multi_inference(server):
    req = classification_pb2.ClassificationRequest()
    req.model_spec.name = "penguins"
    req.model_spec.signature_name = "classification"
    req.input.example_list.examples.extend(examples([ROW, {"island": "Biscoe", "flipper_length_mm": 230.0}]))
    r = server.prediction().Classify(req, timeout=30)
    assert r.model_spec.version.value == 2 and r.model_spec.signature_name == "classification"
    assert len(r.result.classifications) == 2
    labels = [c.label for c in r.result.classifications[0].classes]
    assert labels == ["Adelie", "Chinstrap", "Gentoo"]
    scores = [c.score for c in r.result.classifications[0].classes]
    assert abs(sum(scores) - 1) < 1e-5 and scores[0] > 0.5

    mreq = inference_pb2.MultiInferenceRequest()
    task = mreq.tasks.add()
    task.model_spec.name = "penguins"
    task.model_spec.signature_name = "classification"
    task.method_name = "tensorflow/serving/classify"
    mreq.input.CopyFrom(req.input)
    mr = server.prediction().MultiInference(mreq, timeout=30)
    assert len(mr.results) == 1
    got = [c.score for c in mr.results[0].classification_result.classifications[0].classes]
    assert np.allclose(got, scores)


def test_regress(server):
    req = regression_pb2.RegressionRequest()
    req.model_spec.name = "penguins_body_mass"
    req.model_spec.signature_name = "regression"
    rows = [
        {
            "species": "Gentoo",
            "island": "Biscoe",
            "sex": "male",
            "bill_length_mm": 50.0,
            "bill_depth_mm": 15.0,
            "flipper_length_mm": 225.0,
        }
    ]
    spec = load_spec("specs/penguins_body_mass.toml")
    cols = {f.name: np.array([rows[0][f.name]], dtype=object if f.kind == "string" else None) for f in spec.features}
    req.input.example_list.examples.extend(to_example_protos(spec.features, cols))
    r = server.prediction().Regress(req, timeout=30)
    assert len(r.result.regressions) == 1 and 3000 < r.result.regressions[0].value < 7000


def test_tf1_model_with_reference_variables_assets_and_signatures(server):
    stub = server.prediction()
    req = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="tf1"))
    req.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0, 4.0], np.float32)))
    assert tf.make_ndarray(stub.Predict(req, timeout=30).outputs["y"]).tolist() == [2.5, 4.0]
    req.model_spec.signature_name = "with_reference"
    assert float(tf.make_ndarray(stub.Predict(req, timeout=30).outputs["a"])) == 0.5
    ex = [
        tf.train.Example(
            features=tf.train.Features(feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[v]))})
        )
        for v in (1.0, 4.0)
    ]
    creq = classification_pb2.ClassificationRequest(
        model_spec=model_pb2.ModelSpec(name="tf1", signature_name="classify_x")
    )
    creq.input.example_list.examples.extend(ex)
    res = stub.Classify(creq, timeout=30).result.classifications
    assert [[(c.label, c.score) for c in r.classes] for r in res] == [
        [("low", 1.0), ("high", 0.0)],
        [("low", 0.0), ("high", 1.0)],
    ]
    rreq = regression_pb2.RegressionRequest(model_spec=model_pb2.ModelSpec(name="tf1", signature_name="regress_x"))
    rreq.input.example_list.examples.extend(ex)
    assert [r.value for r in stub.Regress(rreq, timeout=30).result.regressions] == [2.5, 4.0]


def test_metadata_is_an_any_holding_a_signature_def_map(server):
    req = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec={"name": "penguins", "version": {"value": 1}}, metadata_field=["signature_def"]
    )
    r = server.prediction().GetModelMetadata(req, timeout=30)
    assert r.model_spec.version.value == 1
    any_ = r.metadata["signature_def"]
    assert any_.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    sigs = get_model_metadata_pb2.SignatureDefMap()
    any_.Unpack(sigs)
    assert sigs.signature_def["classification"].method_name == "tensorflow/serving/classify"
    assert set(sigs.signature_def["serving_default"].inputs) == set(ROW)


def test_model_status(server):
    r = server.models().GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "penguins"}), timeout=30
    )
    got = {s.version: s.state for s in r.model_version_status}
    assert got == {
        1: get_model_status_pb2.ModelVersionStatus.AVAILABLE,
        2: get_model_status_pb2.ModelVersionStatus.AVAILABLE,
    }
    for label in ("stable", "no-such-label"):  # TF Serving's status reads a version number, never a label
        r = server.models().GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "penguins", "version_label": label}),
            timeout=30,
        )
        assert [s.version for s in r.model_version_status] == [2, 1]


def _bad(req_fn):
    return req_fn


BAD_PREDICTS = {
    "wrong dtype": (
        lambda r: r.inputs["year"].CopyFrom(tf.make_tensor_proto(np.array([2007.0], np.float32))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "year",
    ),
    "unknown input": (
        lambda r: r.inputs["beak"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "beak",
    ),
    "missing input": (lambda r: r.inputs.pop("island"), grpc.StatusCode.INVALID_ARGUMENT, "island"),
    # not refused by a shape check (TF Serving has none): the session run fails, and the answer names the input
    "shape the graph refuses": (
        lambda r: r.inputs["bill_depth_mm"].CopyFrom(tf.make_tensor_proto(np.ones((1, 2), np.float32))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "input 'bill_depth_mm' has shape [1, 2]",
    ),
    "negative dimension": (
        lambda r: r.inputs["bill_depth_mm"].tensor_shape.dim[0].__setattr__("size", -1),
        grpc.StatusCode.INVALID_ARGUMENT,
        "bill_depth_mm",
    ),
    "two unknown dimensions": (
        lambda r: r.inputs["bill_depth_mm"].CopyFrom(
            tensor_pb2.TensorProto(dtype=1, tensor_shape={"dim": [{"size": -1}, {"size": -1}]}, float_val=[1.0])
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "bill_depth_mm",
    ),
    "an impossible size": (
        lambda r: r.inputs["bill_depth_mm"].CopyFrom(
            tensor_pb2.TensorProto(dtype=1, tensor_shape={"dim": [{"size": 2**40}]}, float_val=[1.0])
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "bill_depth_mm",
    ),
    "no inputs": (lambda r: r.inputs.clear(), grpc.StatusCode.INVALID_ARGUMENT, ""),
    "unknown model": (lambda r: setattr(r.model_spec, "name", "walrus"), grpc.StatusCode.NOT_FOUND, "walrus"),
    "unknown version": (lambda r: r.model_spec.version.__setattr__("value", 99), grpc.StatusCode.NOT_FOUND, "99"),
    "unknown label": (lambda r: setattr(r.model_spec, "version_label", "gold"), grpc.StatusCode.NOT_FOUND, "gold"),
    "unknown signature": (
        lambda r: setattr(r.model_spec, "signature_name", "nope"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "nope",
    ),
    "unknown output filter": (lambda r: r.output_filter.append("nope"), grpc.StatusCode.INVALID_ARGUMENT, "nope"),
}


@pytest.mark.parametrize("case", sorted(BAD_PREDICTS))
def test_bad_predict_requests_get_tf_serving_codes_and_the_server_keeps_serving(server, case):
    mutate, code, phrase = BAD_PREDICTS[case]
    req = predict_request()
    mutate(req)
    with pytest.raises(grpc.RpcError) as e:
        server.prediction().Predict(req, timeout=30)
    assert e.value.code() == code, e.value.details()
    assert phrase in e.value.details()
    assert server.prediction().Predict(predict_request(), timeout=30).model_spec.version.value == 2


def test_bad_metadata_and_classify_requests(server):
    with pytest.raises(grpc.RpcError) as e:
        server.prediction().GetModelMetadata(
            get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": "penguins"}, metadata_field=["graph"]),
            timeout=30,
        )
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "graph" in e.value.details()
    req = classification_pb2.ClassificationRequest()
    req.model_spec.name = "penguins"  # serving_default: seven inputs, not one serialized tf.Example
    req.input.example_list.examples.extend(examples([ROW]))
    with pytest.raises(grpc.RpcError) as e:
        server.prediction().Classify(req, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    empty = classification_pb2.ClassificationRequest(
        model_spec={"name": "penguins", "signature_name": "classification"}
    )
    with pytest.raises(grpc.RpcError) as e:
        server.prediction().Classify(empty, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_message_larger_than_the_servers_limit_is_refused(backend, exported, tmp_path):
    base = copy_base(exported, tmp_path / "base", {"penguins": [1]})
    s = start(
        backend,
        [
            f"--model_base_path={base / 'penguins'}",
            "--model_name=penguins",
            "--grpc_channel_arguments=grpc.max_receive_message_length=4096",
        ],
        base,
        tmp_path,
    )
    try:
        big = predict_request(rows=[ROW] * 200)  # > 4 KiB
        with pytest.raises(grpc.RpcError) as e:
            s.prediction().Predict(big, timeout=30)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert s.prediction().Predict(predict_request(), timeout=30).model_spec.version.value == 1
    finally:
        assert s.stop() == 0


def test_tensor_content_replies_with_the_flag(backend, exported, tmp_path):
    base = copy_base(exported, tmp_path / "base", {"penguins": [1]})
    s = start(
        backend,
        [
            f"--model_base_path={base / 'penguins'}",
            "--model_name=penguins",
            "--enable_serialization_as_tensor_content=true",
        ],
        base,
        tmp_path,
    )
    try:
        r = s.prediction().Predict(predict_request(), timeout=30)
        p = r.outputs["probabilities"]
        assert p.tensor_content and not p.float_val
        assert tf.make_ndarray(p).shape == (1, 3)
    finally:
        s.stop()
