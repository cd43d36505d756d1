"""GetModelMetadata: only `signature_def`, answered as a google.protobuf.Any holding a SignatureDefMap
(type URL type.googleapis.com/tensorflow.serving.SignatureDefMap)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serving.errors import invalid
from serving.handlers.common import fill_spec, held

if TYPE_CHECKING:
    from serving.core import ServerCore

SIGNATURE_DEF = "signature_def"


def metadata(core: ServerCore, request: Any) -> Any:
    from tensorflow_serving.apis import get_model_metadata_pb2

    if not request.metadata_field:
        raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for f in request.metadata_field:
        if f != SIGNATURE_DEF:
            raise invalid(f"Metadata field {f} is not supported")
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    with held(core, request.model_spec) as v:
        sigs = get_model_metadata_pb2.SignatureDefMap()
        for name, sig in v.servable.meta_graph.signature_def.items():
            sigs.signature_def[name].CopyFrom(sig)
        fill_spec(response.model_spec, v, None)
    response.metadata[SIGNATURE_DEF].Pack(sigs)
    return response
