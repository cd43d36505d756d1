"""Writes and edits `<model base path>/models.config` (ModelServerConfig text format), the one file
both TF Serving and the local server read: models, base paths, version policy, version labels.

    python -m release write    --model-base-path models [--path-prefix /models]
    python -m release label    --model-base-path models --name penguins --label stable --version 3
                                  [--server 127.0.0.1:8500]
    python -m release canary   --model-base-path models --name penguins --version 4 [--server ...]
    python -m release promote  --model-base-path models --name penguins [--server ...]
    python -m release rollback --model-base-path models --name penguins [--server ...]
    python -m release show     --model-base-path models --name penguins [--server ...]

The release flow: `python -m export` labels a new version `canary` (the first version of a model
becomes `stable`); `promote` moves `stable` to the canary's version and drops the canary label (the
versions no label needs are then unloaded); `rollback` moves `stable` back to the **previous stable**
from the label history (`label_history.jsonl` beside models.config: who, when, what), never to a
version that was never stable. Requests without a label or version get the newest loaded version
(TF Serving's rule), which during a release is the canary: services call `label="stable"`.

Every model is a child directory of the base path with numeric version directories. Without labels
a model's policy is `latest { num_versions: 1 }`. Labels need the versions they name to stay loaded,
so a labelled model's policy is `specific`, with the labelled versions and the newest one.

Base paths are written as the server sees them: absolute local paths by default, or under
`--path-prefix` (e.g. /models inside a container or a Kubernetes pod).

With `--server`, a label is moved in two steps through HandleReloadConfigRequest, because TF Serving
lets a label point only at an AVAILABLE version: first the version is added to the policy and the
command waits until it is AVAILABLE, then the label moves. Without `--server` the file is written
and a server polling it (--model_config_file_poll_wait_seconds) picks it up. Every change is made
under the base path's lock (exporters and operators take turns) and the file is replaced atomically
(written beside it, then renamed). With `--server`, nothing is written unless the server took the new
config: a server that cannot be reached leaves models.config and the history as they were (exit 1).

Exit codes: 0 done; 1 the server could not be reached or refused the config; 2 bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import modelbase
from modelbase import labels as label_history


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
    for e in label_history.history(base, name)[-5:]:
        lines.append(
            f"  {e['time']} {e['action']}: {e['label']} {e.get('previous')} -> {e.get('version')} "
            f"by {e['who']}@{e['host']}"
        )
    if server is not None:
        try:
            for v, state, err in server.status(name):
                lines.append(f"  version {v}: {state}{' (' + err + ')' if err else ''}")
        except Exception as e:  # noqa: BLE001 - the file is still right; say that the server did not answer
            details = e.details() if hasattr(e, "details") else str(e)
            lines.append(f"  (no answer from {server.target}: {details})")
    return "\n".join(lines)


class ReleaseError(Exception):
    """A label change that cannot be made as asked (bad input: exit 2)."""


class ServerError(Exception):
    """The server could not be reached or refused the config (exit 1); nothing was written."""


def _reachable(server: Server, name: str) -> None:
    import grpc

    try:
        server.status(name)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:  # NOT_FOUND: it answers, it does not serve the model yet
            raise ServerError(f"the server at {server.target} did not answer: {e.details() or e.code().name}") from None


def change_labels(
    base: Path,
    name: str,
    changes: dict[str, int | None],
    action: str,
    server: Server | None = None,
    wait: float = 120.0,
) -> dict[str, int]:
    """Set (or, with None, drop) labels of one model, under the base path's lock; with a server, in two
    reloads (the new versions first, then the labels once they are AVAILABLE), writing models.config and
    the label history only once the server took the config. Returns the model's labels after."""
    import grpc

    versions = modelbase.models(base).get(name)
    if not versions:
        raise ReleaseError(f"no model {name!r} with versions under {base}")
    for label, version in changes.items():
        if version is not None and version not in versions:
            raise ReleaseError(f"{name} has no version {version} under {base} (it has {versions}) for {label!r}")
    with label_history.config_lock(base):
        old = modelbase.read_config(base) if (base / modelbase.CONFIG_FILE).is_file() else build(base, {})
        prefix = path_prefix_of(old, base)
        before = current_labels(old)
        after = {k: dict(v) for k, v in before.items()}
        mine = after.setdefault(name, {})
        for label, version in changes.items():
            if version is None:
                mine.pop(label, None)
            else:
                mine[label] = version
        final = build(base, after, prefix)
        if server is not None:
            _reachable(server, name)
            new_versions = {v for v in mine.values()} - set(before.get(name, {}).values())
            try:
                if new_versions:  # step 1: load the versions, labels unchanged
                    server.reload(build(base, before, prefix, {name: new_versions}))
                    for v in sorted(new_versions):
                        server.wait_available(name, v, wait)
                server.reload(final)  # step 2: move the labels (and unload what no label needs)
            except (grpc.RpcError, RuntimeError) as e:
                details = e.details() if isinstance(e, grpc.RpcError) else str(e)
                with contextlib.suppress(grpc.RpcError, RuntimeError):
                    server.reload(old)  # best effort: back to what the file still says
                raise ServerError(f"the server at {server.target} did not take the config: {details}") from None
        modelbase.write_config(base, final)
        old_mine = before.get(name, {})
        for label in sorted(changes):
            if mine.get(label) != old_mine.get(label):
                label_history.record_change(base, name, label, mine.get(label), old_mine.get(label), action)
    return dict(mine)


def set_label(base: Path, name: str, label: str, version: int, server: Server | None, wait: float) -> None:
    change_labels(base, name, {label: version}, "label", server, wait)


def promote(base: Path, name: str, server: Server | None = None, wait: float = 120.0) -> dict[str, int]:
    """`stable` to the canary's version; the canary label goes."""
    canary = modelbase.labels_of(base, name).get("canary") if (base / modelbase.CONFIG_FILE).is_file() else None
    if canary is None:
        raise ReleaseError(f"{name} has no canary label to promote (python -m export labels a new version canary)")
    return change_labels(base, name, {"stable": canary, "canary": None}, "promote", server, wait)


def rollback(base: Path, name: str, server: Server | None = None, wait: float = 120.0) -> dict[str, int]:
    """`stable` back to the previous stable version in the label history."""
    current = modelbase.labels_of(base, name).get("stable") if (base / modelbase.CONFIG_FILE).is_file() else None
    if current is None:
        raise ReleaseError(f"{name} has no stable label to roll back")
    previous = label_history.previous_stable(base, name, current)
    if previous is None:
        raise ReleaseError(
            f"the label history of {name} has no stable version before {current} (see {label_history.HISTORY_FILE}); "
            "set one with: label --label stable --version N"
        )
    if previous not in modelbase.models(base).get(name, []):
        raise ReleaseError(f"the previous stable version {previous} of {name} is no longer under {base}")
    return change_labels(base, name, {"stable": previous}, "rollback", server, wait)


def release_candidate(
    base: Path, name: str, version: int, server: Server | None = None, wait: float = 120.0
) -> dict[str, int]:
    """After an export: the new version becomes the canary, `stable` keeping its version; the first
    version of a model becomes stable (so does the newest older version, for a model that had no labels)."""
    existing = modelbase.labels_of(base, name) if (base / modelbase.CONFIG_FILE).is_file() else {}
    older = [v for v in modelbase.models(base).get(name, []) if v < version]
    if "stable" in existing:
        changes: dict[str, int | None] = {"canary": version}
    elif older:
        changes = {"stable": max(older), "canary": version}
    else:
        changes = {"stable": version}
    return change_labels(base, name, changes, "export", server, wait)


def serving_summary(name: str, model_labels: dict[str, int]) -> str:
    """One line: what now serves what."""
    shown = ", ".join(f"{k} -> v{v}" for k, v in sorted(model_labels.items())) or "no labels"
    return f"{name}: {shown}; requests without a label go to the newest loaded version"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m release", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for cmd in ("write", "label", "canary", "promote", "rollback", "show"):
        s = sub.add_parser(cmd)
        s.add_argument("--model-base-path", required=True, type=Path)
        if cmd != "write":
            s.add_argument("--name", required=True)
            s.add_argument("--server", help="host:port of a running server to reload through gRPC")
            s.add_argument("--wait-seconds", type=float, default=120)
        if cmd == "label":
            s.add_argument("--label", required=True)
        if cmd in ("label", "canary"):
            s.add_argument("--version", required=True, type=int)
        if cmd == "write":
            s.add_argument("--path-prefix", help="write base paths as <prefix>/<name> (e.g. /models)")
    args = p.parse_args(argv)
    base: Path = args.model_base_path
    if not base.is_dir():
        print(f"release: {base} is not a directory", file=sys.stderr)
        return 2
    if args.command == "write":
        with label_history.config_lock(base):
            old = modelbase.read_config(base) if (base / modelbase.CONFIG_FILE).is_file() else build(base, {})
            path = modelbase.write_config(base, build(base, current_labels(old), args.path_prefix))
        print(f"wrote {path}")
        print(path.read_text(), end="")
        return 0
    server = Server(args.server) if args.server else None
    try:
        if args.command == "label":
            change_labels(base, args.name, {args.label: args.version}, "label", server, args.wait_seconds)
        elif args.command == "canary":
            change_labels(base, args.name, {"canary": args.version}, "canary", server, args.wait_seconds)
        elif args.command == "promote":
            promote(base, args.name, server, args.wait_seconds)
        elif args.command == "rollback":
            rollback(base, args.name, server, args.wait_seconds)
    except ServerError as e:
        print(f"release: {e}; models.config is unchanged", file=sys.stderr)
        return 1
    except (ReleaseError, modelbase.ConfigFileError) as e:
        print(f"release: {e}", file=sys.stderr)
        return 2
    except label_history.LockTimeout as e:
        print(f"release: {e}", file=sys.stderr)
        return 1
    print(describe(base, args.name, server))
    return 0
