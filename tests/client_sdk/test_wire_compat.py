"""The SDK's bytes are TF Serving's: both ways, in one process with tensorflow and
tensorflow_serving.apis imported (no descriptor clash), and the committed generated code is fresh."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

import shipyard_client
from shipyard_client import decode, encode
from shipyard_client._base import Target, metadata_result, predict_request
from shipyard_client._proto import serving_apis_pb2 as sp
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # trains, exports or starts servers (see tests/conftest.py)

ARRAYS = [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.array([1, -2], np.int64),
    np.array([True, False]),
    np.array([1 + 2j], np.complex128),
    np.array([1.5], np.float16),
    np.array(7, np.uint32),
    np.array([b"a", b"\xff"], dtype=object),
    np.zeros((0, 2), np.int8),
]


@pytest.mark.parametrize("arr", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_sdk_bytes_decode_with_tensorflow(arr):
    tp = tf.make_tensor_proto(np.zeros(1))
    tp.ParseFromString(encode(arr).SerializeToString())
    back = tf.make_ndarray(tp)
    assert back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


@pytest.mark.parametrize("arr", ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_tensorflow_bytes_decode_with_the_sdk(arr):
    from shipyard_client._proto import tf_types_pb2

    raw = tf.make_tensor_proto(arr).SerializeToString()  # TF uses typed fields or tensor_content by dtype
    back = decode(tf_types_pb2.TensorProto.FromString(raw))
    assert back.shape == arr.shape and back.dtype == arr.dtype
    np.testing.assert_array_equal(back, arr)


def test_requests_parse_as_tf_servings_messages():
    req = predict_request(
        Target("penguins", label="stable", signature="serving_default"),
        {"x": np.array([1.5], np.float32), "s": np.array(["a"])},
        ["probabilities"],
    )
    theirs = predict_pb2.PredictRequest.FromString(req.SerializeToString())
    assert theirs.model_spec.name == "penguins" and theirs.model_spec.version_label == "stable"
    assert list(theirs.output_filter) == ["probabilities"]
    assert tf.make_ndarray(theirs.inputs["x"]).tolist() == [1.5]
    assert tf.make_ndarray(theirs.inputs["s"]).tolist() == [b"a"]


def test_string_tensors_on_the_wire_decode_with_tensorflow():
    """Both length widths of the joined string path (1-byte, and 3-byte for elements of 128 bytes or
    more) parse with TensorFlow's protobuf and decode with tf.make_ndarray."""
    short = np.array([f"penguin-{i}" for i in range(300)] + ["", "é"], dtype=object)
    long = np.array(["x" * 130, "é" * 5000, "", "z"])
    req = predict_request(Target("penguins"), {"short": short, "long": long.reshape(2, 2)}, None)
    theirs = predict_pb2.PredictRequest.FromString(req.SerializeToString())
    assert tf.make_ndarray(theirs.inputs["short"]).tolist() == [v.encode() for v in short]
    got = tf.make_ndarray(theirs.inputs["long"])
    assert got.shape == (2, 2) and got.ravel().tolist() == [v.encode() for v in long]
    ours = req.message()  # the SDK's own PredictRequest type, same content
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)


def test_metadata_any_from_tf_serving_parses_into_our_message():
    from tensorflow.core.protobuf import meta_graph_pb2

    sigs = get_model_metadata_pb2.SignatureDefMap()
    sd = sigs.signature_def["serving_default"]
    sd.method_name = "tensorflow/serving/predict"
    sd.inputs["x"].CopyFrom(meta_graph_pb2.TensorInfo(name="x:0", dtype=1))
    sd.inputs["x"].tensor_shape.dim.add().size = -1
    resp = get_model_metadata_pb2.GetModelMetadataResponse()
    resp.model_spec.name = "m"
    resp.model_spec.version.value = 3
    resp.metadata["signature_def"].Pack(sigs)
    assert resp.metadata["signature_def"].type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    ours = metadata_result(sp.GetModelMetadataResponse.FromString(resp.SerializeToString()))
    assert ours.version == 3
    spec = ours.signatures["serving_default"].inputs["x"]
    assert (spec.dtype, spec.shape) == ("float32", (-1,))


def test_sdk_and_tensorflow_serving_in_one_process_in_either_import_order():
    for first, second in (
        ("shipyard_client", "tensorflow_serving.apis.predict_pb2"),
        ("tensorflow_serving.apis.predict_pb2", "shipyard_client"),
    ):
        code = f"import {first}; import {second}; import shipyard_client._proto.serving_apis_pb2; print('ok')"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
    assert shipyard_client.Client  # and in this very process, with tensorflow imported


@pytest.mark.parametrize(
    ("src", "out", "files"),
    [
        (
            "client_sdk/protos",
            "client_sdk/src",
            ["shipyard_client/_proto/tf_types.proto", "shipyard_client/_proto/serving_apis.proto"],
        ),
        ("serving/protos", "serving/_proto", ["shipyard_serving_configs.proto"]),
    ],
)
def test_committed_generated_code_is_fresh(tmp_path, src, out, files):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(ROOT / src),
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            *[str(ROOT / src / f) for f in files],
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    for f in files:
        for suffix in ("_pb2.py", "_pb2.pyi"):
            rel = f.removesuffix(".proto") + suffix
            fresh = (tmp_path / rel).read_text()
            committed = ROOT / out / (rel if out.endswith("src") else Path(rel).name)
            assert committed.read_text() == fresh, f"{committed} is stale: run `make protos`"


def test_the_sdk_and_the_server_read_every_dtype_number_alike():
    """The SDK keeps its own DataType table (it imports nothing of the server); both must agree."""
    from serving import tensors as server_tensors
    from shipyard_client import _tensors as sdk_tensors

    for dt, server_dtype in server_tensors.NUMPY.items():
        assert sdk_tensors.numpy_dtype(dt) == server_dtype.newbyteorder("="), server_tensors.NAMES[dt]
        assert sdk_tensors.tf_dtype(np.zeros(1, server_dtype)) == dt, server_tensors.NAMES[dt]
    assert sdk_tensors.tf_dtype(np.array(["a"], dtype=object)) == server_tensors.DT_STRING
