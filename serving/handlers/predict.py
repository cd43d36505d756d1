"""Predict: named tensors in, named tensors out, through any signature.

`predict_outputs` is the handler both front ends run: gRPC encodes its answer straight to the wire
(`predict_wire`, typed fields as TF Serving writes them), REST writes it as JSON. `predict` builds
the PredictResponse message (warmup, tests and anything else that wants the message).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from serving.handlers.common import check_inputs, fill_spec, held, run, signature
from serving.servable import Signature
from serving.tensors import to_numpy, to_proto
from serving.wire import predict_response_bytes

if TYPE_CHECKING:
    from serving.core import ServerCore
    from serving.manager import Version


def predict_in(core: ServerCore, v: Version, sig: Signature, request: Any) -> dict[str, np.ndarray]:
    """The output tensors of a PredictRequest on a version the caller holds, through `sig`."""
    feeds = {name: to_numpy(t, name) for name, t in request.inputs.items()}
    check_inputs(sig, feeds, {name: t.dtype for name, t in request.inputs.items()})
    return run(core, v, sig, feeds, list(request.output_filter))


def predict_outputs(core: ServerCore, request: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """(the answer's ModelSpec, the output tensors) for a PredictRequest."""
    from tensorflow_serving.apis import model_pb2

    spec = model_pb2.ModelSpec()
    with held(core, request.model_spec) as v:
        sig = signature(v, request.model_spec.signature_name)  # unknown: FAILED_PRECONDITION, before decoding
        outputs = predict_in(core, v, sig, request)
        fill_spec(spec, v, sig.name)
    return spec, outputs


def predict(core: ServerCore, request: Any) -> Any:
    from tensorflow_serving.apis import predict_pb2

    spec, outputs = predict_outputs(core, request)
    response = predict_pb2.PredictResponse(model_spec=spec)
    for name, value in outputs.items():
        to_proto(value, response.outputs[name], core.options.tensor_content)
    return response


def predict_wire(core: ServerCore, request: Any) -> bytes:
    """The serialized PredictResponse (typed fields, or tensor_content with the flag)."""
    spec, outputs = predict_outputs(core, request)
    return predict_response_bytes(spec, outputs, core.options.tensor_content)
