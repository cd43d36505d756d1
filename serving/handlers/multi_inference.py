"""MultiInference: several Classify/Regress tasks over one Input, all on one model version, each
through its own signature."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serving.errors import invalid
from serving.handlers.classify import classify_in
from serving.handlers.common import fill_spec, held, signature
from serving.handlers.examples import CLASSIFY_METHOD, REGRESS_METHOD
from serving.handlers.regress import regress_in
from serving.servable import DEFAULT_SIGNATURE

if TYPE_CHECKING:
    from serving.core import ServerCore


def multi_inference(core: ServerCore, request: Any) -> Any:
    from tensorflow_serving.apis import inference_pb2

    if not request.tasks:
        raise invalid("MultiInferenceRequest has no tasks")
    first = request.tasks[0].model_spec
    names = []
    for t in request.tasks:
        if t.model_spec.name != first.name:
            raise invalid("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        if t.model_spec.WhichOneof("version_choice") != first.WhichOneof("version_choice") or (
            t.model_spec.version.value != first.version.value or t.model_spec.version_label != first.version_label
        ):
            raise invalid("ModelSpec version must be the same for all tasks of a MultiInferenceRequest.")
        names.append(t.model_spec.signature_name or DEFAULT_SIGNATURE)
        if t.method_name not in (CLASSIFY_METHOD, REGRESS_METHOD):
            raise invalid(f"Unsupported signature method_name: {t.method_name}")
    if len(set(names)) != len(names):
        raise invalid("Duplicate evaluation of signature: a signature appears in more than one task")
    response = inference_pb2.MultiInferenceResponse()
    with held(core, first) as v:
        for t, sig_name in zip(request.tasks, names, strict=True):
            sig = signature(v, sig_name)
            r = response.results.add()
            fill_spec(r.model_spec, v, sig.name)
            if t.method_name == CLASSIFY_METHOD:
                classify_in(core, v, sig, request.input, r.classification_result)
            else:
                regress_in(core, v, sig, request.input, r.regression_result)
    return response
