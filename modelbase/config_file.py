"""`<base>/models.config`: the ModelServerConfig both TF Serving and the local server read.

A file that does not parse is refused with TF Serving's own phrase, "Error parsing text-format
tensorflow.serving.ModelServerConfig", which tools and TF Serving's tests look for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelbase.durable import write_atomic

CONFIG_FILE = "models.config"


class ConfigFileError(ValueError):
    pass


def parse_model_server_config(text: str, origin: str = "<text>") -> Any:
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ConfigFileError(
            f"Error parsing text-format tensorflow.serving.ModelServerConfig: {origin}: {e}"
        ) from None
    return config


def read_config(base: Path) -> Any:
    """`<base>/models.config`, or an empty ModelServerConfig when there is none."""
    path = base / CONFIG_FILE
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return parse_model_server_config(text, str(path))


def write_config(base: Path, config: Any) -> Path:
    from google.protobuf import text_format

    path = base / CONFIG_FILE
    write_atomic(path, text_format.MessageToString(config).encode())
    return path


def labels_of(base: Path, name: str) -> dict[str, int]:
    """The version labels of model `name` in `<base>/models.config`."""
    for m in read_config(base).model_config_list.config:
        if m.name == name:
            return dict(m.version_labels)
    return {}
