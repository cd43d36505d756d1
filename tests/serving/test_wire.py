"""serving.wire against the protobuf library: the same bytes for every tensor, fuzzed."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2

from serving.tensors import to_numpy, to_proto
from serving.wire import field, predict_response_bytes, tensor_bytes, varint

DTYPES = [np.float32, np.float64, np.bool_, np.int32, np.int64, np.uint8, np.float16, np.object_]


def _library(array: np.ndarray, tensor_content: bool = False) -> bytes:
    return to_proto(array, tensor_pb2.TensorProto(), tensor_content).SerializeToString()


def _arrays(dtype):
    if dtype is np.object_:
        return hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5), elements=st.binary())
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_tensor_bytes_are_the_librarys_bytes(dtype, data):
    array = data.draw(_arrays(dtype))
    for raw in (False, True):
        ours = tensor_bytes(array, raw)
        if dtype in (np.float32, np.float64) and not raw and np.isnan(array).any():
            # protobuf passes each float through a Python float, which may quiet a signalling NaN:
            # compare what the bytes mean instead (our bytes keep the array's bits)
            back = to_numpy(tensor_pb2.TensorProto.FromString(ours))
            assert back.tobytes() == array.astype(array.dtype.newbyteorder("<")).tobytes()
        else:
            assert ours == _library(array, raw)


def test_edges_of_the_packed_fields():
    assert varint(0) == b"\x00" and varint(127) == b"\x7f" and varint(128) == b"\x80\x01"
    assert varint(2**63 - 1)[-1] < 0x80 and len(varint(2**63 - 1)) == 9
    assert field(5, b"") == b"\x2a\x00"
    empty = np.zeros((0, 3), np.float32)
    assert tensor_bytes(empty) == _library(empty)  # no value field at all
    big = np.arange(40_000, dtype=np.float32).reshape(10_000, 4)  # a length that needs a 3-byte varint
    assert tensor_bytes(big) == _library(big)
    signed_zero = np.array([-0.0, 0.0, np.inf, -np.inf], np.float64)
    assert tensor_bytes(signed_zero) == _library(signed_zero)
    assert tensor_bytes(np.array([True, False, True])) == _library(np.array([True, False, True]))
    big_endian = np.arange(6, dtype=">f4").reshape(2, 3)
    assert to_numpy(tensor_pb2.TensorProto.FromString(tensor_bytes(big_endian))).tolist() == big_endian.tolist()


@settings(max_examples=40, deadline=None)
@given(
    outputs=st.dictionaries(
        st.text(min_size=0, max_size=12),
        st.one_of(*(_arrays(d) for d in (np.float32, np.float64, np.int64, np.bool_, np.object_))),
        max_size=4,
    ),
    version=st.integers(min_value=0, max_value=2**63 - 1),
    raw=st.booleans(),
)
def test_a_response_parses_back_to_the_same_tensors(outputs, version, raw):
    spec = model_pb2.ModelSpec(name="m", signature_name="serving_default")
    spec.version.value = version
    parsed = predict_pb2.PredictResponse.FromString(predict_response_bytes(spec, outputs, raw))
    assert parsed.model_spec == spec and set(parsed.outputs) == set(outputs)
    for name, array in outputs.items():
        back = to_numpy(parsed.outputs[name], name)
        assert back.shape == array.shape
        if array.dtype == object:
            assert back.tolist() == array.tolist()
        else:
            assert back.astype(array.dtype).tobytes() == array.tobytes()
