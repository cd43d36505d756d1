"""A PredictResponse encoded straight to its wire bytes, for large typed replies.

TF Serving answers in the typed `*_val` fields by default. Filling `float_val` through the protobuf
library converts every value to a Python float and back (10,000 x 3 floats: several ms). But a packed
`repeated float` on the wire is its tag, its byte length and the values as little-endian float32:
exactly `array.astype("<f4").tobytes()`. So for float, double and bool tensors this module writes
the TensorProto as protobuf would: the header (dtype, shape) serialized by protobuf, then the packed
field appended (fields 1 and 2 come before 5, 6 and 11, so the bytes are the library's own). Every
other dtype, and `tensor_content` replies, go through protobuf unchanged.

Invariants (tests/serving/test_wire.py checks them byte for byte against protobuf, and fuzzes them):
- a tensor's bytes equal `TensorProto.SerializeToString()` of the same tensor filled by `to_proto`;
- an empty tensor has no value field (protobuf omits an empty packed field);
- a response parses back (`PredictResponse.FromString`) to the same model spec and the same tensors,
  NaN and -0.0 included, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from serving.tensors import DT_BOOL, DT_DOUBLE, DT_FLOAT, dtype_of, to_proto

# dtype -> (TensorProto field number, little-endian numpy dtype of one packed element)
PACKED: dict[int, tuple[int, np.dtype[Any]]] = {
    DT_FLOAT: (5, np.dtype("<f4")),
    DT_DOUBLE: (6, np.dtype("<f8")),
    DT_BOOL: (11, np.dtype("u1")),
}
LEN = 2  # the wire type of length-delimited fields


def varint(n: int) -> bytes:
    """An unsigned integer in protobuf's base-128 varint.

    >>> varint(1), varint(300)
    (b'\\x01', b'\\xac\\x02')
    """
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return varint((number << 3) | LEN) + varint(len(payload)) + payload


def tensor_bytes(array: np.ndarray, tensor_content: bool = False) -> bytes:
    """The serialized TensorProto of `array`, as `to_proto(array, TensorProto(), tensor_content)` gives."""
    from tensorflow.core.framework import tensor_pb2

    dt = dtype_of(array)
    packed = None if tensor_content else PACKED.get(dt)
    proto = tensor_pb2.TensorProto()
    if packed is None:
        return to_proto(array, proto, tensor_content).SerializeToString()
    number, element = packed
    proto.dtype = dt
    for s in array.shape:
        proto.tensor_shape.dim.add().size = s
    data = np.ascontiguousarray(array).astype(element, copy=False).tobytes()
    return proto.SerializeToString() + (field(number, data) if data else b"")


def predict_response_bytes(model_spec: Any, outputs: Mapping[str, np.ndarray], tensor_content: bool) -> bytes:
    """PredictResponse { map<string, TensorProto> outputs = 1; ModelSpec model_spec = 2; } on the wire."""
    parts = [
        field(1, field(1, name.encode()) + field(2, tensor_bytes(value, tensor_content)))
        for name, value in outputs.items()
    ]
    parts.append(field(2, model_spec.SerializeToString()))
    return b"".join(parts)
