"""Writes and edits `<model base path>/models.config` (ModelServerConfig text format), the one file
both TF Serving and the local server read: models, base paths, version policy, version labels.

    python -m serving.model_config write    --model-base-path models [--path-prefix /models]
    python -m serving.model_config label    --model-base-path models --name penguins --label stable --version 3
                                            [--server 127.0.0.1:8500]
    python -m serving.model_config rollback --model-base-path models --name penguins [--server ...]
    python -m serving.model_config show     --model-base-path models --name penguins [--server ...]

Every model is a child directory of the base path with numeric version directories. Without labels
a model's policy is `latest { num_versions: 1 }`. Labels need the versions they name to stay loaded,
so a labelled model's policy is `specific`, with the labelled versions and the newest one.

Base paths are written as the server sees them: absolute local paths by default, or under
`--path-prefix` (e.g. /models inside a container or a Kubernetes pod).

With `--server`, a label is moved in two steps through HandleReloadConfigRequest, because TF Serving
lets a label point only at an AVAILABLE version: first the version is added to the policy and the
command waits until it is AVAILABLE, then the label moves. Without `--server` the file is written
and a server polling it (--model_config_file_poll_wait_seconds) picks it up. The file is replaced
atomically (written beside it, then renamed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import modelbase


def build(
    base: Path,
    labels: dict[str, dict[str, int]],
    path_prefix: str | None = None,
    extra_versions: dict[str, set[int]] | None = None,
) -> Any:
    """A ModelServerConfig for every model under `base`, with `labels` per model."""
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for name, versions in modelbase.models(base).items():
        m = config.model_config_list.config.add()
        m.name = name
        m.base_path = f"{path_prefix.rstrip('/')}/{name}" if path_prefix else str((base / name).resolve())
        m.model_platform = "tensorflow"
        model_labels = {k: v for k, v in labels.get(name, {}).items() if v in versions}
        wanted = set(model_labels.values()) | (extra_versions or {}).get(name, set())
        if wanted:
            m.model_version_policy.specific.versions.extend(sorted(wanted | {max(versions)}))
            for k, v in sorted(model_labels.items()):
                m.version_labels[k] = v
        else:
            m.model_version_policy.latest.num_versions = 1
    return config


def current_labels(config: Any) -> dict[str, dict[str, int]]:
    return {m.name: dict(m.version_labels) for m in config.model_config_list.config}


def path_prefix_of(config: Any, base: Path) -> str | None:
    """Keep the prefix an existing file uses (absolute local paths give None)."""
    for m in config.model_config_list.config:
        local = str((base / m.name).resolve())
        if m.base_path != local and m.base_path.endswith("/" + m.name):
            return m.base_path[: -len(m.name) - 1]
    return None


class Server:
    """The two ModelService calls this tool needs, over TF Serving's gRPC API."""

    def __init__(self, target: str) -> None:
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc

        self.target = target
        self.channel = grpc.insecure_channel(target)
        self.stub = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def reload(self, config: Any) -> None:
        from tensorflow_serving.apis import model_management_pb2

        r = self.stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=config), timeout=60)
        if r.status.error_code:
            raise RuntimeError(f"the server refused the config: {r.status.error_message}")

    def status(self, name: str) -> list[tuple[int, str, str]]:
        from tensorflow_serving.apis import get_model_status_pb2

        r = self.stub.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec={"name": name}), timeout=10)
        states = get_model_status_pb2.ModelVersionStatus.State
        return [(s.version, states.Name(s.state), s.status.error_message) for s in r.model_version_status]

    def wait_available(self, name: str, version: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            st = {v: (state, err) for v, state, err in self.status(name)}
            state, err = st.get(version, ("UNKNOWN", ""))
            if state == "AVAILABLE":
                return
            if state == "END" and err:
                raise RuntimeError(f"version {version} of {name} failed to load: {err}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"version {version} of {name} is {state} after {timeout:.0f}s")
            time.sleep(0.2)


def describe(base: Path, name: str, server: Server | None) -> str:
    config = modelbase.read_config(base)
    labels = current_labels(config).get(name, {})
    lines = [f"{name}: labels {', '.join(f'{k} -> {v}' for k, v in sorted(labels.items())) or '(none)'}"]
    for m in config.model_config_list.config:
        if m.name == name:
            policy = m.model_version_policy
            which = policy.WhichOneof("policy_choice") or "latest"
            detail = list(policy.specific.versions) if which == "specific" else ""
            lines.append(f"  policy {which} {detail}".rstrip())
    if server is not None:
        try:
            for v, state, err in server.status(name):
                lines.append(f"  version {v}: {state}{' (' + err + ')' if err else ''}")
        except Exception as e:  # noqa: BLE001 - the file is still right; say that the server did not answer
            details = e.details() if hasattr(e, "details") else str(e)
            lines.append(f"  (no answer from {server.target}: {details})")
    return "\n".join(lines)


def set_label(base: Path, name: str, label: str, version: int, server: Server | None, wait: float) -> None:
    versions = modelbase.models(base).get(name)
    if not versions:
        raise SystemExit(f"model_config: no model {name!r} with versions under {base}")
    if version not in versions:
        raise SystemExit(f"model_config: {name} has no version {version} under {base} (it has {versions})")
    old = modelbase.read_config(base)
    prefix = path_prefix_of(old, base)
    labels = current_labels(old)
    if server is not None:  # step 1: load the version, labels unchanged
        step1 = build(base, labels, prefix, {name: {version}})
        modelbase.write_config(base, step1)
        server.reload(step1)
        server.wait_available(name, version, wait)
    labels.setdefault(name, {})[label] = version
    final = build(base, labels, prefix)
    modelbase.write_config(base, final)
    if server is not None:
        server.reload(final)


def previous_version(base: Path, name: str, label: str = "stable") -> int:
    labels = current_labels(modelbase.read_config(base)).get(name, {})
    if label not in labels:
        raise SystemExit(f"model_config: {name} has no {label!r} label to roll back")
    older = [v for v in modelbase.models(base).get(name, []) if v < labels[label]]
    if not older:
        raise SystemExit(f"model_config: no version of {name} older than {labels[label]} is left to roll back to")
    return max(older)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving.model_config", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for cmd in ("write", "label", "rollback", "show"):
        s = sub.add_parser(cmd)
        s.add_argument("--model-base-path", required=True, type=Path)
        if cmd != "write":
            s.add_argument("--name", required=True)
            s.add_argument("--server", help="host:port of a running server to reload through gRPC")
            s.add_argument("--wait-seconds", type=float, default=120)
        if cmd == "label":
            s.add_argument("--label", required=True)
            s.add_argument("--version", required=True, type=int)
        if cmd == "write":
            s.add_argument("--path-prefix", help="write base paths as <prefix>/<name> (e.g. /models)")
    args = p.parse_args(argv)
    base: Path = args.model_base_path
    if not base.is_dir():
        print(f"model_config: {base} is not a directory", file=sys.stderr)
        return 2
    if args.command == "write":
        path = modelbase.write_config(base, build(base, current_labels(modelbase.read_config(base)), args.path_prefix))
        print(f"wrote {path}")
        print(path.read_text(), end="")
        return 0
    server = Server(args.server) if args.server else None
    try:
        if args.command == "label":
            set_label(base, args.name, args.label, args.version, server, args.wait_seconds)
        elif args.command == "rollback":
            set_label(base, args.name, "stable", previous_version(base, args.name), server, args.wait_seconds)
    except RuntimeError as e:
        print(f"model_config: {e}", file=sys.stderr)
        return 1
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - a server that does not answer: say so, the file is written
        details = e.details() if hasattr(e, "details") else str(e)
        print(f"model_config: the server at {args.server} did not take the config: {details}", file=sys.stderr)
        print(describe(base, args.name, None))
        return 1
    print(describe(base, args.name, server))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
