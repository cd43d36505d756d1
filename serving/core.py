"""The ServerCore: the manager, the source, the current config, and what the handlers share.

The config (from --model_name/--model_base_path, or --model_config_file) is applied as TF Serving
applies it: the model list is replaced as a whole (models left out are unloaded), each model's
version policy goes to the source, and version labels are set once their versions are AVAILABLE.
With --model_config_file_poll_wait_seconds, the file is re-read on that period; labels that could
not be applied yet (their version still loading) are applied on a later poll.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving import config as cfg
from serving.errors import ServingError, failed_precondition
from serving.loader import LoadOptions, SavedModelLoader
from serving.manager import AspiredVersionsManager
from serving.metrics import Metrics
from serving.policy import AspiredVersionPolicy
from serving.servable_state import EventBus, ManagerState, ServableId, ServableState, ServableStateMonitor
from serving.source import FileSystemSource

log = logging.getLogger("serving")


@dataclass(frozen=True)
class Options:
    tensor_content: bool = False
    method_name_check: bool = False
    warmup: bool = True
    tags: tuple[str, ...] = ("serve",)
    run_in_caller_thread: bool = True
    intra_op_threads: int = 0
    inter_op_threads: int = 0

    def load_options(self) -> LoadOptions:
        return LoadOptions(
            self.tags, self.warmup, self.run_in_caller_thread, self.intra_op_threads, self.inter_op_threads
        )


class ServerCore:
    """Source -> SavedModel loaders -> AspiredVersionsManager -> event bus -> ServableStateMonitor."""

    def __init__(
        self,
        options: Options,
        *,
        poll_seconds: int = 1,
        max_load_retries: int = 5,
        retry_interval_s: float = 60.0,
        allow_labels_for_unavailable: bool = False,
        batching: cfg.Batching | None = None,
        metrics: Metrics | None = None,
        policy: AspiredVersionPolicy | None = None,
    ) -> None:
        self.options = options
        self.metrics = metrics or Metrics()
        self.bus = EventBus()
        self.monitor = ServableStateMonitor(self.bus)
        self.manager = AspiredVersionsManager(
            self.bus,
            policy=policy,
            max_load_retries=max_load_retries,
            retry_interval_s=retry_interval_s,
            allow_labels_for_unavailable=allow_labels_for_unavailable,
        )
        self.bus.subscribe(self._on_state)
        self.source = FileSystemSource(self._aspired_versions, poll_seconds)
        self.batcher = None
        if batching is not None:
            from serving.batching import BatchScheduler

            self.batcher = BatchScheduler(batching, self.metrics)
        self._config: Any = None
        self._config_lock = threading.Lock()
        self._pending_labels: dict[str, dict[str, int]] = {}

    def _aspired_versions(self, model: str, paths: dict[int, Path]) -> None:
        """The Source's callback: each announced path becomes a SavedModel loader for the manager."""
        load_options = self.options.load_options()
        loaders = {n: SavedModelLoader(ServableId(model, n), p, load_options, self.metrics) for n, p in paths.items()}
        self.manager.set_aspired_versions(model, loaders)

    def _on_state(self, event: ServableState) -> None:
        # Labels waiting on a load are retried once a version is AVAILABLE.
        if event.manager_state == ManagerState.AVAILABLE:
            self._retry_pending_labels()

    # -- config ----------------------------------------------------------------------------
    def apply_config(self, config: Any) -> None:
        """Replace the model list and labels. Raises ConfigError or ServingError (labels).

        Labels whose versions are already AVAILABLE move first, before the model list changes: a
        promotion's config both moves `stable` and drops the old version from the policy, and the
        other order would leave a moment where `stable` names a version that is unloading."""
        cfg.check_model_server_config(config)
        with self._config_lock:
            old_kind = self._config.WhichOneof("config") if self._config is not None else None
            new_kind = config.WhichOneof("config")
            if not (old_kind is None or self._config == config or old_kind == new_kind == "model_config_list"):
                # TF Serving's rule: keep serving what is configured rather than unload everything
                log.error("Cannot transition to requested config (%s): keeping the current config", new_kind)
                raise failed_precondition(
                    "Cannot transition to requested config. It is only legal to transition from one "
                    "ModelConfigList to another."
                )
            if new_kind is None:
                log.info("Taking no action for empty config.")
                return
            previous = self._config_models()
            self._config = config
            models = list(config.model_config_list.config)
            moved = set()
            for m in models:
                try:
                    self.manager.set_labels(m.name, dict(m.version_labels))
                    moved.add(m.name)
                except ServingError:
                    pass  # a version still to load: set below, or once it is AVAILABLE
            for gone in {m.name for m in previous} - {m.name for m in models}:
                self.manager.set_labels(gone, {})  # an unconfigured model keeps no labels
            self.source.set_models(models)
            errors = []
            for m in models:
                if m.name in moved:
                    self._pending_labels.pop(m.name, None)
                    continue
                try:
                    self.manager.set_labels(m.name, dict(m.version_labels))
                    self._pending_labels.pop(m.name, None)
                except ServingError as e:
                    self._pending_labels[m.name] = dict(m.version_labels)
                    errors.append(e)
            if errors:
                raise errors[0]

    def _retry_pending_labels(self) -> None:
        with self._config_lock:
            for name, labels in list(self._pending_labels.items()):
                try:
                    self.manager.set_labels(name, labels)
                    log.info("labels of %s now %s", name, labels)
                    del self._pending_labels[name]
                except ServingError:
                    pass

    def _config_models(self) -> list[Any]:
        return list(self._config.model_config_list.config) if self._config is not None else []

    def wait_for_initial_load(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Wait until every configured model has settled (versions AVAILABLE or failed), or `stop`."""
        names = [m.name for m in self._config_models()]
        return self.monitor.wait_until(
            lambda: (stop is not None and stop.is_set()) or self.monitor.settled(names), timeout
        )

    def close(self) -> None:
        self.source.stop()
        if self.batcher is not None:
            self.batcher.close()
        self.manager.close()
