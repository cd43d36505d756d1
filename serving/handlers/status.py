"""GetModelStatus: the state of every version of a model (or of one), with its load error if any."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serving.handlers.common import spec_of

if TYPE_CHECKING:
    from serving.core import ServerCore


def status(core: ServerCore, request: Any) -> Any:
    from tensorflow_serving.apis import get_model_status_pb2

    name, version, label = spec_of(request.model_spec)
    if label is not None:
        version = core.manager.resolve(name, None, label).number
    response = get_model_status_pb2.GetModelStatusResponse()
    for v in core.manager.status(name, version):
        s = response.model_version_status.add()
        s.version = v.number
        s.state = int(v.state)
        s.status.error_code = v.error_code if v.error else 0
        s.status.error_message = v.error
    return response
