"""The model base path's on-disk contract, written once for every caller (serving, export, monitor,
the operator CLI and the tests):

    <base>/models.config          a ModelServerConfig in text format: models, version policies, labels
    <base>/<name>/<version>/      one SavedModel; <version> is ASCII digits ("00000123" is version 123)
    <base>/<name>/<anything else> ignored (export's hidden `.staging-*` directories among them)

TF Serving loads a version directory as soon as it lists it, so writers publish by rename and flush
what they write (`fsync_tree`, `write_atomic`) before a reader can see it.
"""

from modelbase.config_file import (
    CONFIG_FILE,
    ConfigFileError,
    labels_of,
    parse_model_server_config,
    read_config,
    write_config,
)
from modelbase.durable import fsync_dir, fsync_tree, write_atomic
from modelbase.versions import models, scan_versions, version_dir, version_number, versions

__all__ = [
    "CONFIG_FILE",
    "ConfigFileError",
    "fsync_dir",
    "fsync_tree",
    "labels_of",
    "models",
    "parse_model_server_config",
    "read_config",
    "scan_versions",
    "version_dir",
    "version_number",
    "versions",
    "write_atomic",
    "write_config",
]
