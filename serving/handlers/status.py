"""GetModelStatus: the state of every version of a model (or of one), with its load error if any,
as the ServableStateMonitor last saw them.

As in TF Serving, only a version number narrows the answer: a ModelSpec with a version label (REST's
`/v1/models/<name>/labels/<label>`) gets every version of the model, whatever the label names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serving.errors import not_found
from serving.handlers.common import spec_of

if TYPE_CHECKING:
    from serving.core import ServerCore


def status(core: ServerCore, request: Any) -> Any:
    from tensorflow_serving.apis import get_model_status_pb2

    name, version, _label = spec_of(request.model_spec)
    states = core.monitor.version_states(name)
    if not states:
        raise not_found(f"Could not find any versions of model {name}")
    if version is not None:
        if version not in states:
            raise not_found(f"Could not find version {version} of model {name}")
        states = {version: states[version]}
    response = get_model_status_pb2.GetModelStatusResponse()
    for number in sorted(states, reverse=True):
        event = states[number]
        s = response.model_version_status.add()
        s.version = number
        s.state = int(event.manager_state)
        s.status.error_code = event.error_code if event.error else 0
        s.status.error_message = event.error
    return response
