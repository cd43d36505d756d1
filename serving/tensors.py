"""TensorProto <-> numpy, fast on both paths TF Serving uses: `tensor_content` (raw little-endian
bytes) and the typed `*_val` fields it writes by default.

Decoding uses numpy on the repeated fields directly (no `tf.make_ndarray`); a typed field with a
single value and a larger shape is broadcast, as TensorFlow does.

The SDK (`shipyard_client._tensors`) has its own dtype table on purpose: it is a distribution of its
own that never imports this package (nor TensorFlow), and the two meet only on the wire, where TF's
DataType numbers are the contract. `tests/client_sdk/test_wire_compat.py` checks that both tables agree.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from serving.errors import invalid

# tensorflow.DataType numbers (types.proto).
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_UINT8, DT_INT16, DT_INT8, DT_STRING = 1, 2, 3, 4, 5, 6, 7
DT_COMPLEX64, DT_INT64, DT_BOOL, DT_BFLOAT16, DT_UINT16, DT_COMPLEX128, DT_HALF = 8, 9, 10, 14, 17, 18, 19
DT_UINT32, DT_UINT64 = 22, 23

NUMPY: dict[int, np.dtype[Any]] = {
    DT_FLOAT: np.dtype("<f4"),
    DT_DOUBLE: np.dtype("<f8"),
    DT_INT32: np.dtype("<i4"),
    DT_UINT8: np.dtype("u1"),
    DT_INT16: np.dtype("<i2"),
    DT_INT8: np.dtype("i1"),
    DT_COMPLEX64: np.dtype("<c8"),
    DT_INT64: np.dtype("<i8"),
    DT_BOOL: np.dtype("?"),
    DT_UINT16: np.dtype("<u2"),
    DT_COMPLEX128: np.dtype("<c16"),
    DT_HALF: np.dtype("<f2"),
    DT_UINT32: np.dtype("<u4"),
    DT_UINT64: np.dtype("<u8"),
}
FROM_NUMPY = {v.newbyteorder("="): k for k, v in NUMPY.items()}
NAMES = {
    DT_FLOAT: "float",
    DT_DOUBLE: "double",
    DT_INT32: "int32",
    DT_UINT8: "uint8",
    DT_INT16: "int16",
    DT_INT8: "int8",
    DT_STRING: "string",
    DT_COMPLEX64: "complex64",
    DT_INT64: "int64",
    DT_BOOL: "bool",
    DT_BFLOAT16: "bfloat16",
    DT_UINT16: "uint16",
    DT_COMPLEX128: "complex128",
    DT_HALF: "half",
    DT_UINT32: "uint32",
    DT_UINT64: "uint64",
}

# Which typed field holds each dtype.
FIELD = {
    DT_FLOAT: "float_val",
    DT_DOUBLE: "double_val",
    DT_INT32: "int_val",
    DT_UINT8: "int_val",
    DT_INT16: "int_val",
    DT_INT8: "int_val",
    DT_INT64: "int64_val",
    DT_BOOL: "bool_val",
    DT_UINT16: "int_val",
    DT_HALF: "half_val",
    DT_BFLOAT16: "half_val",
    DT_UINT32: "uint32_val",
    DT_UINT64: "uint64_val",
    DT_COMPLEX64: "scomplex_val",
    DT_COMPLEX128: "dcomplex_val",
}


def dtype_name(dt: int) -> str:
    return NAMES.get(dt, f"DataType({dt})")


def _shape(proto: Any) -> tuple[int, ...]:
    ts = proto.tensor_shape
    if ts.unknown_rank:
        raise invalid("a request tensor must have a known shape")
    return tuple([d.size for d in ts.dim])


# The most bytes one request tensor may expand to: a gRPC message carries at most INT32_MAX bytes, and
# typed fields repeat their last value to fill the shape, so a tiny message could otherwise ask for TiBs.
MAX_TENSOR_BYTES = 2**31 - 1


def to_numpy(proto: Any, name: str = "") -> np.ndarray:
    dt = proto.dtype
    shape = _shape(proto)
    if any(d < 0 for d in shape):
        raise invalid(f"input {name!r}: shape {list(shape)} has a negative dimension; a request tensor's is known")
    n = math.prod(shape)
    itemsize = NUMPY[dt].itemsize if dt in NUMPY else 8
    if n * itemsize > MAX_TENSOR_BYTES:
        raise invalid(
            f"input {name!r}: shape {list(shape)} holds {n} values ({n * itemsize} bytes), more than a "
            f"request tensor may ({MAX_TENSOR_BYTES} bytes)"
        )
    if dt == DT_STRING:
        values = list(proto.string_val)
        if len(values) == n:
            return np.array(values, dtype=object).reshape(shape)
        if len(values) == 1:
            return np.full(shape, values[0], dtype=object)
        if not values and n == 0:
            return np.empty(shape, dtype=object)
        raise invalid(f"input {name!r}: {len(values)} string values for shape {list(shape)}")
    np_dtype = NUMPY.get(dt)
    if dt == DT_BFLOAT16:
        import ml_dtypes

        np_dtype = np.dtype(ml_dtypes.bfloat16)
    if np_dtype is None:
        raise invalid(f"input {name!r}: unsupported dtype {dtype_name(dt)}")
    if proto.tensor_content:
        expected = n * np_dtype.itemsize
        if len(proto.tensor_content) != expected:
            raise invalid(
                f"input {name!r}: tensor_content has {len(proto.tensor_content)} bytes, "
                f"shape {list(shape)} of {dtype_name(dt)} needs {expected}"
            )
        return np.frombuffer(proto.tensor_content, dtype=np_dtype).reshape(shape)
    field = getattr(proto, FIELD[dt])[:]  # a list: numpy reads it 5x faster than the repeated field
    if dt in (DT_HALF, DT_BFLOAT16):
        flat = np.array(field, dtype=np.uint16).view(np_dtype)
    elif dt in (DT_COMPLEX64, DT_COMPLEX128):
        parts = np.float32 if dt == DT_COMPLEX64 else np.float64  # (real, imag) pairs
        flat = np.array(field, dtype=parts).view(np_dtype)
    else:
        flat = np.array(field, dtype=np_dtype)
    if flat.size == n:
        return flat.reshape(shape)
    if flat.size == 0:
        return np.zeros(shape, dtype=np_dtype)
    if flat.size < n:  # TensorFlow repeats the last value to fill the shape
        return np.concatenate([flat, np.full(n - flat.size, flat[-1], dtype=np_dtype)]).reshape(shape)
    raise invalid(f"input {name!r}: {flat.size} values for shape {list(shape)}")


_DTYPE_OF: dict[np.dtype, int] = {}


def dtype_of(array: np.ndarray) -> int:
    dt = _DTYPE_OF.get(array.dtype)
    if dt is not None:
        return dt
    if array.dtype == object or array.dtype.kind in ("S", "U"):
        dt = DT_STRING
    elif array.dtype.name == "bfloat16":
        dt = DT_BFLOAT16
    else:
        dt = FROM_NUMPY.get(array.dtype.newbyteorder("="))
        if dt is None:
            raise invalid(f"no TensorFlow dtype for numpy {array.dtype}")
    _DTYPE_OF[array.dtype] = dt
    return dt


def to_proto(array: np.ndarray, proto: Any, tensor_content: bool = False) -> Any:
    """Fill `proto` (a TensorProto) from `array`: typed `*_val` fields, or `tensor_content` if asked
    (strings always go in `string_val`)."""
    dt = dtype_of(array)
    proto.dtype = dt
    for s in array.shape:
        proto.tensor_shape.dim.add().size = s
    if dt == DT_STRING:
        flat = array.ravel()
        proto.string_val.extend([v if isinstance(v, bytes) else str(v).encode() for v in flat.tolist()])
        return proto
    if tensor_content:
        proto.tensor_content = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        return proto
    flat = np.ascontiguousarray(array).ravel()
    if dt in (DT_HALF, DT_BFLOAT16):
        proto.half_val.extend(flat.view(np.uint16).tolist())
    elif dt in (DT_COMPLEX64, DT_COMPLEX128):
        getattr(proto, FIELD[dt]).extend(flat.view(np.float32 if dt == DT_COMPLEX64 else np.float64).tolist())
    else:
        getattr(proto, FIELD[dt]).extend(flat.tolist())
    return proto
