"""numpy <-> TensorProto, without TensorFlow.

Encoding: numbers go as `tensor_content` (raw little-endian bytes: one memory copy); strings and
bytes as `string_val` (str encoded as UTF-8). Every numpy dtype with a TensorFlow counterpart is
accepted: float16/32/64, bfloat16 (with `ml_dtypes`), int8..int64, uint8..uint64, bool,
complex64/128, strings (object, `str_`, `bytes_` arrays); 0-d and empty shapes too. Others
(datetime64, timedelta64, longdouble, ...) are refused with EncodingError.

Decoding reads `tensor_content` with one copy, and the typed `*_val` fields TF Serving sends by
default with numpy directly (never through per-element Python code). Strings come back as bytes,
or as str with `decode_strings=True`.

The server has a table of the same DataType numbers (`serving/tensors.py`); the SDK keeps its own
because it is a distribution of its own that imports nothing of the server (the wire is the contract).

>>> import numpy as np
>>> t = encode(np.arange(6, dtype=np.float32).reshape(2, 3))
>>> t.dtype, [d.size for d in t.tensor_shape.dim], len(t.tensor_content)
(1, [2, 3], 24)
>>> decode(t).tolist()
[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
>>> decode(encode(np.array(["a", "é"])), decode_strings=True).tolist()
['a', 'é']
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shipyard_client._errors import EncodingError
from shipyard_client._proto import tf_types_pb2 as tfp
from shipyard_client._string_wire import joined_field, varint

DT = tfp.DataType
_TO_DT: dict[str, int] = {
    "float16": DT.DT_HALF,
    "float32": DT.DT_FLOAT,
    "float64": DT.DT_DOUBLE,
    "int8": DT.DT_INT8,
    "int16": DT.DT_INT16,
    "int32": DT.DT_INT32,
    "int64": DT.DT_INT64,
    "uint8": DT.DT_UINT8,
    "uint16": DT.DT_UINT16,
    "uint32": DT.DT_UINT32,
    "uint64": DT.DT_UINT64,
    "bool": DT.DT_BOOL,
    "complex64": DT.DT_COMPLEX64,
    "complex128": DT.DT_COMPLEX128,
    "bfloat16": DT.DT_BFLOAT16,
}
_FROM_DT: dict[int, np.dtype[Any]] = {
    DT.DT_HALF: np.dtype("<f2"),
    DT.DT_FLOAT: np.dtype("<f4"),
    DT.DT_DOUBLE: np.dtype("<f8"),
    DT.DT_INT8: np.dtype("i1"),
    DT.DT_INT16: np.dtype("<i2"),
    DT.DT_INT32: np.dtype("<i4"),
    DT.DT_INT64: np.dtype("<i8"),
    DT.DT_UINT8: np.dtype("u1"),
    DT.DT_UINT16: np.dtype("<u2"),
    DT.DT_UINT32: np.dtype("<u4"),
    DT.DT_UINT64: np.dtype("<u8"),
    DT.DT_BOOL: np.dtype("?"),
    DT.DT_COMPLEX64: np.dtype("<c8"),
    DT.DT_COMPLEX128: np.dtype("<c16"),
}
# The typed field TF uses for each dtype, and the numpy dtype its values have in that field.
_FIELD: dict[int, tuple[str, str]] = {
    DT.DT_FLOAT: ("float_val", "float32"),
    DT.DT_DOUBLE: ("double_val", "float64"),
    DT.DT_INT32: ("int_val", "int32"),
    DT.DT_INT16: ("int_val", "int32"),
    DT.DT_INT8: ("int_val", "int32"),
    DT.DT_UINT8: ("int_val", "int32"),
    DT.DT_UINT16: ("int_val", "int32"),
    DT.DT_INT64: ("int64_val", "int64"),
    DT.DT_UINT32: ("uint32_val", "uint32"),
    DT.DT_UINT64: ("uint64_val", "uint64"),
    DT.DT_BOOL: ("bool_val", "bool"),
    DT.DT_HALF: ("half_val", "int32"),
    DT.DT_BFLOAT16: ("half_val", "int32"),
    DT.DT_COMPLEX64: ("scomplex_val", "float32"),
    DT.DT_COMPLEX128: ("dcomplex_val", "float64"),
}


def _bfloat16() -> np.dtype[Any]:
    try:
        import ml_dtypes
    except ImportError:
        raise EncodingError(
            "bfloat16 tensors need the ml_dtypes package: pip install 'shipyard-client[bfloat16]'", code=None
        ) from None
    return np.dtype(ml_dtypes.bfloat16)  # type: ignore[no-any-return]


def dtype_name(dt: int) -> str:
    return str(DT.Name(dt)).removeprefix("DT_").lower() if dt in DT.values() else f"DataType({dt})"


def numpy_dtype(dt: int) -> np.dtype[Any]:
    if dt == DT.DT_STRING:
        return np.dtype(object)
    if dt == DT.DT_BFLOAT16:
        return _bfloat16()
    try:
        return _FROM_DT[dt]
    except KeyError:
        raise EncodingError(f"no numpy dtype for TensorFlow {dtype_name(dt)}") from None


def tf_dtype(array: np.ndarray, name: str = "") -> int:
    kind = array.dtype.kind
    if kind in "OUS":
        return int(DT.DT_STRING)
    dt = _TO_DT.get(array.dtype.name)
    if dt is None:
        raise EncodingError(
            f"input {name!r}: numpy dtype {array.dtype} has no TensorFlow counterpart "
            "(supported: float16/32/64, bfloat16, int8-64, uint8-64, bool, complex64/128, strings)"
        )
    return dt


def _as_bytes(values: np.ndarray, name: str) -> list[bytes]:
    if values.dtype.kind == "S":
        return list(values.ravel().tolist())
    if values.dtype.kind == "U":
        return np.char.encode(values.ravel(), "utf-8").tolist()  # type: ignore[no-any-return]
    out = values.ravel().tolist()
    for i, v in enumerate(out):
        if type(v) is bytes:
            continue
        if isinstance(v, str):
            try:
                out[i] = v.encode()
            except UnicodeEncodeError as e:
                raise EncodingError(f"input {name!r}: element {i} cannot be encoded as UTF-8: {e}") from None
        elif isinstance(v, (bytes, bytearray, memoryview)):
            out[i] = bytes(v)
        else:
            raise EncodingError(
                f"input {name!r}: a string tensor holds {type(v).__name__} {v!r}; expected str or bytes"
            )
    return out


_TENSOR_CONTENT = b"\x22"  # TensorProto.tensor_content: field 4, length-delimited


def _extend_strings(proto: tfp.TensorProto, array: np.ndarray, values: list[Any], name: str) -> None:
    """string_val element by element: all bytes as they are (the field refuses anything else), else
    each element checked and str encoded as UTF-8."""
    if type(values[0]) is bytes:
        try:
            proto.string_val.extend(values)
            return
        except TypeError:
            del proto.string_val[:]
    proto.string_val.extend(_as_bytes(array, name))


def _string_field(array: np.ndarray, name: str) -> bytes | bytearray:
    """The serialized string_val field of a string tensor (str encoded as UTF-8, bytes as they are)."""
    values = array.ravel().tolist()
    if not values:
        return b""
    fast = joined_field(values)
    if fast is not None:
        return fast
    proto = tfp.TensorProto()
    _extend_strings(proto, array, values, name)
    return proto.SerializeToString()


def _little_endian(array: np.ndarray) -> np.ndarray:
    """The array's values as tensor_content holds them: C order, little-endian (a copy only if needed)."""
    return np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)


def _header(dt: int, shape: tuple[int, ...]) -> bytes:
    head = tfp.TensorProto(dtype=dt)  # type: ignore[arg-type]
    dims = head.tensor_shape.dim
    for s in shape:
        dims.add().size = s
    return head.SerializeToString()


def encode_wire(value: ArrayLike, name: str = "") -> bytes:
    """The serialized TensorProto of an array-like: what `encode(value).SerializeToString()` gives,
    built without the intermediate message (the SDK's request path)."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    dt = tf_dtype(array, name)
    head = _header(dt, array.shape)
    if dt == DT.DT_STRING:
        return head + _string_field(array, name)
    data = _little_endian(array)
    if not data.nbytes:  # proto3 leaves an empty field out
        return head
    return b"".join((head, _TENSOR_CONTENT, varint(data.nbytes), data.reshape(-1).view(np.uint8).data))


def encode(value: ArrayLike, name: str = "", into: tfp.TensorProto | None = None) -> tfp.TensorProto:
    """A TensorProto from an array-like (numbers as tensor_content, strings as string_val)."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    proto = into if into is not None else tfp.TensorProto()
    dt = tf_dtype(array, name)
    proto.dtype = dt  # type: ignore[assignment]
    dims = proto.tensor_shape.dim
    for s in array.shape:
        dims.add().size = s
    if dt == DT.DT_STRING:
        values = array.ravel().tolist()
        fast = joined_field(values) if values else None
        if fast is not None:
            proto.MergeFromString(fast)  # type: ignore[arg-type]  # any buffer parses
        elif values:
            _extend_strings(proto, array, values, name)
    else:
        proto.tensor_content = _little_endian(array).tobytes()
    return proto


def decode(proto: Any, *, decode_strings: bool = False) -> np.ndarray:
    """A numpy array from a TensorProto (ours or TensorFlow's: the fields are the same)."""
    ts = proto.tensor_shape
    if ts.unknown_rank:
        raise EncodingError("cannot decode a tensor of unknown rank")
    shape = tuple([d.size for d in ts.dim])
    n = math.prod(shape)
    dt = proto.dtype
    if dt == DT.DT_STRING:
        strings: list[Any] = list(proto.string_val)
        if decode_strings:
            strings = [v.decode() for v in strings]
        arr = np.empty(len(strings), dtype=object)
        arr[:] = strings
        return _fill(arr, n, shape)
    np_dtype = numpy_dtype(dt)
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=np_dtype).reshape(shape).copy()
    field, raw = _FIELD.get(dt, ("", ""))
    if not field:
        raise EncodingError(f"cannot decode TensorFlow {dtype_name(dt)}")
    values = np.array(getattr(proto, field), dtype=raw)
    if dt in (DT.DT_HALF, DT.DT_BFLOAT16):
        values = values.astype(np.uint16).view(np_dtype)
    elif dt in (DT.DT_COMPLEX64, DT.DT_COMPLEX128):
        values = values.view(np_dtype)
    elif values.dtype != np_dtype:
        values = values.astype(np_dtype)
    return _fill(values, n, shape)


def _fill(flat: np.ndarray, n: int, shape: tuple[int, ...]) -> np.ndarray:
    if flat.size == n:
        return flat.reshape(shape)
    if flat.size == 0:
        return np.zeros(shape, dtype=flat.dtype) if flat.dtype != object else np.full(shape, b"", dtype=object)
    if flat.size < n:  # TensorFlow repeats the last value to fill the shape
        return np.concatenate([flat, np.repeat(flat[-1:], n - flat.size)]).reshape(shape)
    raise EncodingError(f"{flat.size} values do not fit shape {list(shape)}")
