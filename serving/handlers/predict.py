"""Predict: named tensors in, named tensors out, through any signature."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serving.handlers.common import check_inputs, fill_spec, held, run, signature
from serving.servable import DEFAULT_SIGNATURE
from serving.tensors import to_numpy, to_proto

if TYPE_CHECKING:
    from serving.core import ServerCore


def predict(core: ServerCore, request: Any, tensor_content: bool | None = None) -> Any:
    """`tensor_content`: reply with raw bytes rather than typed fields (the REST front end asks for it:
    it decodes the reply at once); None follows --enable_serialization_as_tensor_content."""
    from tensorflow_serving.apis import predict_pb2

    with held(core, request.model_spec) as v:
        sig_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        signature(v, sig_name)  # an unknown signature is FAILED_PRECONDITION, before any decoding
        feeds = {name: to_numpy(t, name) for name, t in request.inputs.items()}
        check_inputs(v, sig_name, feeds, {name: t.dtype for name, t in request.inputs.items()})
        outputs = run(core, v, sig_name, feeds, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        fill_spec(response.model_spec, v, sig_name)
    for name, value in outputs.items():
        to_proto(
            value, response.outputs[name], core.options.tensor_content if tensor_content is None else tensor_content
        )
    return response
