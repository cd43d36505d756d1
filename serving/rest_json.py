"""TF Serving's REST JSON formats, both ways: a JSON body becomes the same request message a gRPC
client would send, and a response message becomes JSON, so REST and gRPC run one handler each.

Predict takes `instances` (a list of rows: objects keyed by input name, or bare values for a
single-input signature; answered as `predictions`) or `inputs` (columns: an object keyed by input
name, or a bare value; answered as `outputs`), never both. Binary values are `{"b64": "..."}`.
Classify and Regress take `examples` (objects of feature values) and an optional `context`.
String outputs whose name ends in `_bytes` are answered base64-encoded as `{"b64": ...}`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import numpy as np

from serving.errors import invalid
from serving.tensors import DT_STRING, NUMPY, dtype_name, to_proto


def _decode_strings(value: Any, name: str) -> Any:
    if isinstance(value, list):
        return [_decode_strings(v, name) for v in value]
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise invalid(f'input {name!r}: a binary value must be {{"b64": "..."}}')
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise invalid(f"input {name!r}: the b64 value is not valid base64") from None
    if isinstance(value, str):
        return value.encode()
    raise invalid(f"input {name!r}: expected a string, got {type(value).__name__} {value!r}")


def to_array(value: Any, dtype: int, name: str) -> np.ndarray:
    """A JSON value as a tensor of the signature's dtype, or INVALID_ARGUMENT naming the input."""
    if dtype == DT_STRING:
        decoded = _decode_strings(value, name)
        try:
            arr = np.array(decoded, dtype=object)
        except ValueError:
            raise invalid(f"input {name!r}: ragged nested lists") from None
        if arr.dtype == object and any(isinstance(x, list) for x in arr.ravel()):
            raise invalid(f"input {name!r}: ragged nested lists")
        return arr
    np_dtype = NUMPY.get(dtype)
    if np_dtype is None:
        raise invalid(f"input {name!r}: dtype {dtype_name(dtype)} is not supported over REST")

    def check(v: Any) -> None:
        if isinstance(v, list):
            for x in v:
                check(x)
        elif (
            isinstance(v, (str, dict))
            or v is None
            or (isinstance(v, bool) and np_dtype.kind != "b")
            or (isinstance(v, float) and np_dtype.kind in "iub" and not v.is_integer())
        ):
            raise invalid(f"input {name!r}: expected {dtype_name(dtype)} values, got {v!r}")

    check(value)
    try:
        return np.array(value, dtype=np_dtype)
    except (ValueError, OverflowError, TypeError) as e:
        raise invalid(f"input {name!r}: cannot be read as {dtype_name(dtype)}: {e}") from None


def predict_feeds(body: Mapping[str, Any], sig: Any) -> tuple[dict[str, np.ndarray], str]:
    """(feeds, "row" or "columnar") from a predict request body."""
    has_instances, has_inputs = "instances" in body, "inputs" in body
    if has_instances and has_inputs:
        raise invalid("Request has both 'instances' and 'inputs': use one of them")
    if not has_instances and not has_inputs:
        raise invalid("Missing 'instances' or 'inputs' key")
    names = sorted(sig.inputs)
    if has_instances:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise invalid("'instances' must be a non-empty list")
        if all(isinstance(r, dict) and "b64" not in r for r in rows):
            keys = set(rows[0])
            if any(set(r) != keys for r in rows):
                raise invalid("every instance must have the same keys")
            values = {k: [r[k] for r in rows] for k in keys}
        elif len(names) == 1:
            values = {names[0]: rows}
        else:
            raise invalid(f"instances must be objects keyed by input name; the signature has {len(names)} inputs")
        fmt = "row"
    else:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and set(inputs) != {"b64"}:
            values = dict(inputs)
        elif len(names) == 1:
            values = {names[0]: inputs}
        else:
            raise invalid(f"'inputs' must be an object keyed by input name; the signature has {len(names)} inputs")
        fmt = "columnar"
    for k in values:
        if k not in sig.inputs:
            raise invalid(
                f"input tensor alias not found in signature: {k}. Inputs expected to be in the set "
                f"{{{','.join(names)}}}."
            )
    missing = [n for n in names if n not in values]
    if missing:
        raise invalid(f"input tensor alias not found in request: missing input {missing[0]!r}")
    return {k: to_array(v, sig.inputs[k].dtype, k) for k, v in values.items()}, fmt


def predict_request(body: Mapping[str, Any], sig: Any, model_spec: Any) -> tuple[Any, str]:
    """(PredictRequest, "row" or "columnar") from a predict body, its values read as the signature's dtypes."""
    from tensorflow_serving.apis import predict_pb2

    feeds, fmt = predict_feeds(body, sig)
    request = predict_pb2.PredictRequest()
    request.model_spec.CopyFrom(model_spec)
    for name, value in feeds.items():
        to_proto(value, request.inputs[name], tensor_content=True)
    return request, fmt


def _jsonable(arr: np.ndarray, name: str) -> Any:
    if arr.dtype == object or arr.dtype.kind == "S":
        binary = name.endswith("_bytes")

        def conv(x: Any) -> Any:
            if isinstance(x, bytes):
                if not binary:
                    try:
                        return x.decode()
                    except UnicodeDecodeError:
                        pass
                return {"b64": base64.b64encode(x).decode()}
            return x

        return np.vectorize(conv, otypes=[object])(arr).tolist() if arr.size else arr.tolist()
    if arr.dtype.kind == "c":
        raise invalid(f"output {name!r}: complex values cannot be written as JSON")
    return arr.tolist()


def predict_response(outputs: Mapping[str, np.ndarray], fmt: str) -> dict[str, Any]:
    if fmt == "columnar":
        if len(outputs) == 1:
            ((name, arr),) = outputs.items()
            return {"outputs": _jsonable(arr, name)}
        return {"outputs": {k: _jsonable(v, k) for k, v in outputs.items()}}
    sizes = {v.shape[0] if v.ndim else -1 for v in outputs.values()}
    if len(sizes) != 1 or -1 in sizes:
        raise invalid(
            "Tensors of different batch sizes (or scalars) cannot be written as rows; use the columnar 'inputs' format"
        )
    if len(outputs) == 1:
        ((name, arr),) = outputs.items()
        return {"predictions": _jsonable(arr, name)}
    cols = {k: _jsonable(v, k) for k, v in outputs.items()}
    (n,) = sizes
    return {"predictions": [{k: cols[k][i] for k in cols} for i in range(n)]}


def _feature(value: Any, name: str) -> Any:
    from tensorflow.core.example import feature_pb2

    values = value if isinstance(value, list) else [value]
    f = feature_pb2.Feature()
    if all(isinstance(v, bool) for v in values) or not values:
        f.int64_list.value.extend(int(v) for v in values)
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        f.int64_list.value.extend(values)
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        f.float_list.value.extend(float(v) for v in values)
    elif all(isinstance(v, (str, dict)) for v in values):
        f.bytes_list.value.extend(_decode_strings(v, name) for v in values)
    else:
        raise invalid(f"feature {name!r}: values must be all numbers or all strings, got {value!r}")
    return f


def example_input(body: Mapping[str, Any]) -> Any:
    """An `Input` proto from a classify/regress request body."""
    from tensorflow.core.example import example_pb2
    from tensorflow_serving.apis import input_pb2

    examples = body.get("examples")
    if not isinstance(examples, list) or not examples:
        raise invalid("'examples' must be a non-empty list of objects")
    inp = input_pb2.Input()
    context = body.get("context")
    target = inp.example_list_with_context if context is not None else inp.example_list
    if context is not None:
        if not isinstance(context, dict):
            raise invalid("'context' must be an object")
        for k, v in context.items():
            target.context.features.feature[k].CopyFrom(_feature(v, k))
    for e in examples:
        if not isinstance(e, dict):
            raise invalid("each example must be an object of feature values")
        ex = example_pb2.Example()
        for k, v in e.items():
            ex.features.feature[k].CopyFrom(_feature(v, k))
        target.examples.append(ex)
    return inp
