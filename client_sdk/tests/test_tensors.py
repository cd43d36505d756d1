"""The codec on its own: numpy -> TensorProto -> numpy for every supported dtype and shape."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shipyard_client import EncodingError, decode, encode
from shipyard_client._proto import tf_types_pb2 as tfp
from shipyard_client._tensors import encode_wire

NUMERIC = [
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "complex64",
    "complex128",
]
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)


@pytest.mark.parametrize("dtype", NUMERIC)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_numeric_round_trip_through_tensor_content(dtype, data):
    arr = data.draw(hnp.arrays(np.dtype(dtype), SHAPES))
    proto = encode(arr)
    assert proto.tensor_content or arr.size == 0
    back = decode(tfp.TensorProto.FromString(proto.SerializeToString()))
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)  # NaN == NaN here; bit patterns kept


@settings(max_examples=60, deadline=None)
@given(values=hnp.arrays(object, SHAPES, elements=st.binary(max_size=8)))
def test_bytes_round_trip(values):
    back = decode(encode(values))
    assert back.shape == values.shape and back.tolist() == values.tolist()


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.text(max_size=6), max_size=10))
def test_str_round_trip_with_and_without_decoding(values):
    arr = np.array(values, dtype=object)
    assert decode(encode(arr)).tolist() == [v.encode() for v in values]
    assert decode(encode(arr), decode_strings=True).tolist() == values
    fixed = np.array(values, dtype=str)  # numpy's str_ drops trailing NULs itself: compare with what it holds
    assert decode(encode(fixed), decode_strings=True).tolist() == fixed.tolist()


def _reference(values):
    """string_val as the plain protobuf API writes it, element by element."""
    p = tfp.TensorProto()
    p.string_val.extend(v if isinstance(v, bytes) else v.encode() for v in values)
    return list(p.string_val)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.text(max_size=4),
            st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=120, max_size=300),
            st.binary(max_size=6),
        ),
        max_size=12,
    )
)
def test_string_wire_encoding_matches_the_element_by_element_one(values):
    """The joined fast path (1- and 3-byte lengths), and its fallbacks (NULs inside, bytes, mixed)."""
    arr = np.array(values, dtype=object).reshape(len(values))
    wire = encode_wire(arr, "s")
    parsed = tfp.TensorProto.FromString(wire)
    assert list(parsed.string_val) == _reference(values)
    assert [d.size for d in parsed.tensor_shape.dim] == [len(values)] and parsed.dtype == tfp.DT_STRING
    assert encode(arr) == parsed


def test_string_wire_encoding_of_long_and_very_long_elements():
    values = ["a" * 127, "b" * 128, "é" * 9000, "", "c" * 20000]
    assert list(tfp.TensorProto.FromString(encode_wire(np.array(values))).string_val) == _reference(values)
    huge = ["x" * (1 << 21), "y"]  # over the 3-byte length: element by element
    assert list(tfp.TensorProto.FromString(encode_wire(np.array(huge, dtype=object))).string_val) == _reference(huge)


def test_string_wire_encoding_across_scan_chunks():
    """Lists whose joined bytes span many scan chunks: lengths written across chunk edges, and an
    element that needs 3-byte lengths or holds a NUL found only after earlier chunks were written."""
    from shipyard_client import _string_wire

    many = [f"penguin-{i}" * (i % 7) for i in range(60_000)]  # about 1.7 MB joined: several chunks
    assert len("B\0".join(many)) > 4 * _string_wire._CHUNK
    late_long = [*many, "x" * 300]
    late_nul = [*many, "a\0b", "tail"]
    for values in (many, late_long, late_nul):
        wire = encode_wire(np.array(values, dtype=object))
        assert list(tfp.TensorProto.FromString(wire).string_val) == _reference(values)
        assert (_string_wire.joined_field(values) is None) == (values is late_nul)  # only the NUL falls back


def test_numeric_wire_encoding_is_the_messages_bytes():
    arrays = (
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.arange(6.0).reshape(2, 3).T,  # not C-contiguous
        np.arange(4, dtype=">i4"),  # big-endian
        np.array(True),
        np.array([1 + 2j], np.complex64),
        np.int8(3),
        np.zeros((0, 2), np.int64),
    )
    for arr in arrays:
        assert encode_wire(arr) == encode(arr).SerializeToString()


def test_unencodable_str_is_refused_naming_the_input():
    with pytest.raises(EncodingError, match="'s': element 1 cannot be encoded as UTF-8"):
        encode(np.array(["a", "\ud800"], dtype=object), "s")


def test_bytes_and_str_numpy_arrays():
    assert decode(encode(np.array([b"a", b"bc"]))).tolist() == [b"a", b"bc"]
    assert decode(encode(np.array(["x", "é"]))).tolist() == [b"x", "é".encode()]


def test_zero_d_and_empty():
    assert decode(encode(np.float32(2.5))).shape == ()
    assert decode(encode(np.zeros((0, 3), np.int64))).shape == (0, 3)
    assert decode(encode(np.array([], dtype=object))).shape == (0,)


def test_bfloat16_when_ml_dtypes_is_installed():
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 needs the optional ml_dtypes package")
    arr = np.array([1.5, -2.0, 3.25], dtype=ml_dtypes.bfloat16)
    proto = encode(arr)
    assert proto.dtype == tfp.DT_BFLOAT16 and len(proto.tensor_content) == 6
    back = decode(proto)
    assert back.dtype == arr.dtype and back.tolist() == arr.tolist()


@pytest.mark.parametrize(
    "bad",
    [
        np.array(["2024-01-01"], dtype="datetime64[D]"),
        np.array([1], dtype="timedelta64[s]"),
        np.array([1.0], dtype=np.longdouble),
    ],
)
def test_dtypes_without_a_tensorflow_counterpart_are_refused(bad):
    with pytest.raises(EncodingError, match="no TensorFlow counterpart"):
        encode(bad, "when")


def test_strings_mixed_with_other_values_are_refused():
    with pytest.raises(EncodingError, match="holds int"):
        encode(np.array(["a", 3], dtype=object), "s")


def _typed(dtype, field, values, shape):
    p = tfp.TensorProto(dtype=dtype)
    for s in shape:
        p.tensor_shape.dim.add().size = s
    getattr(p, field).extend(values)
    return p


@pytest.mark.parametrize(
    ("dtype", "field", "values", "expect"),
    [
        (tfp.DT_FLOAT, "float_val", [1.5, 2.5], np.array([1.5, 2.5], np.float32)),
        (tfp.DT_DOUBLE, "double_val", [1.5, 2.5], np.array([1.5, 2.5], np.float64)),
        (tfp.DT_INT32, "int_val", [1, -2], np.array([1, -2], np.int32)),
        (tfp.DT_INT8, "int_val", [1, -2], np.array([1, -2], np.int8)),
        (tfp.DT_UINT8, "int_val", [1, 255], np.array([1, 255], np.uint8)),
        (tfp.DT_INT64, "int64_val", [1, -(2**40)], np.array([1, -(2**40)], np.int64)),
        (tfp.DT_UINT64, "uint64_val", [1, 2**63], np.array([1, 2**63], np.uint64)),
        (tfp.DT_BOOL, "bool_val", [True, False], np.array([True, False])),
        (
            tfp.DT_HALF,
            "half_val",
            np.array([1.5, -2], np.float16).view(np.uint16).tolist(),
            np.array([1.5, -2], np.float16),
        ),
        (tfp.DT_COMPLEX64, "scomplex_val", [1.0, 2.0, 3.0, 4.0], np.array([1 + 2j, 3 + 4j], np.complex64)),
    ],
)
def test_typed_fields_as_tf_serving_replies(dtype, field, values, expect):
    back = decode(_typed(dtype, field, values, [2]))
    assert back.dtype == expect.dtype
    np.testing.assert_array_equal(back, expect)


def test_a_single_typed_value_fills_the_shape_as_tensorflow_does():
    np.testing.assert_array_equal(decode(_typed(tfp.DT_FLOAT, "float_val", [7.0], [2, 2])), np.full((2, 2), 7.0))
