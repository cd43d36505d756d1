"""The FileSystemSource: polls each model's base path and announces the versions it aspires.

It speaks to one callback, TF Serving's AspiredVersionsCallback: `callback(model, {version: path})`,
called with every version the policy wants (an empty dict: unload them all). The core connects it
to the manager through the SavedModel loader.

Versions are the child directories of the base path named with ASCII digits (`00000123` is 123;
any other name, like the exporter's hidden staging directories, is ignored: see `modelbase`). The
version policy picks the aspired ones: `latest { num_versions: N }` (the default, N = 1), `all`, or
`specific { versions: ... }`. There is no completeness check, as in TF Serving: publish by rename.

Availability first, as in TF Serving: a base path that cannot be listed (gone for a moment, a
permission error, a file system that hiccups) is logged ("Could not find base path ...") and the
model keeps the versions it has; the next poll tries again. Only a listing that succeeds changes
the aspired versions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import modelbase

log = logging.getLogger("serving")

AspiredVersionsCallback = Callable[[str, dict[int, Path]], None]


def aspired_versions(model_config: Any, present: dict[int, Path]) -> dict[int, Path]:
    policy = model_config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return dict(present)
    if kind == "specific":
        return {v: present[v] for v in policy.specific.versions if v in present}
    n = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions > 0 else 1
    return {v: present[v] for v in sorted(present)[-n:]}


class FileSystemSource:
    """Polls every `poll_seconds` (0: once) and calls `callback(model, aspired versions)` per model."""

    def __init__(self, callback: AspiredVersionsCallback, poll_seconds: int) -> None:
        self._callback = callback
        self._poll_seconds = poll_seconds
        self._configs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unlisted: set[str] = set()  # models whose base path could not be listed on the last poll
        self._empty: set[str] = set()

    def set_models(self, model_configs: list[Any]) -> None:
        """Replace the list of models to watch (models left out are unloaded), then poll at once."""
        with self._lock:
            old = set(self._configs)
            self._configs = {m.name: m for m in model_configs}
            removed = old - set(self._configs)
        for name in removed:
            log.info("model %s is no longer configured: unloading it", name)
            self._callback(name, {})
        self.poll_once()

    def poll_once(self) -> None:
        with self._lock:
            configs = list(self._configs.values())
        for m in configs:
            base = Path(m.base_path)
            try:
                present = modelbase.scan_versions(base)
            except OSError as e:
                if m.name not in self._unlisted:
                    log.error(
                        "Could not find base path %s for servable %s (%s): keeping the versions it has",
                        base,
                        m.name,
                        e.strerror or e,
                    )
                    self._unlisted.add(m.name)
                continue
            if m.name in self._unlisted:
                log.info("base path %s of %s can be listed again", base, m.name)
                self._unlisted.discard(m.name)
            if not present and m.name not in self._empty:
                log.warning("no versions of %s found under %s", m.name, base)
                self._empty.add(m.name)
            elif present:
                self._empty.discard(m.name)
            self._callback(m.name, aspired_versions(m, present))

    def start(self) -> None:
        if self._poll_seconds <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="fs-source", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.poll_once()
            except Exception:
                log.exception("file-system poll failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
