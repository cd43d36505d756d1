"""HandleReloadConfigRequest: replace the whole model list (models left out are unloaded) and the
version labels. Labels may point only at AVAILABLE versions (unless the server allows new labels on
unavailable versions). As in TF Serving, only a ModelConfigList is taken (a request with no config
is INVALID_ARGUMENT), and a ModelConfigList with no models is legal: it unloads everything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serving.config import ConfigError
from serving.errors import invalid

if TYPE_CHECKING:
    from serving.core import ServerCore


def reload_config(core: ServerCore, request: Any) -> Any:
    from tensorflow_serving.apis import model_management_pb2

    if request.config.WhichOneof("config") != "model_config_list":
        raise invalid(
            "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is "
            "currently supported"
        )
    try:
        core.apply_config(request.config)
    except ConfigError as e:
        raise invalid(str(e)) from None
    response = model_management_pb2.ReloadConfigResponse()
    response.status.error_code = 0
    return response
