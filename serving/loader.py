"""The Loader: how one version becomes a servable, and how it stops being one (TF Serving's
`Loader`, here its SavedModelBundle loader).

The Source announces paths; the core wraps each in a `SavedModelLoader` and hands the loaders to the
manager, which calls `load()` on a load thread when the version policy says so, and `unload()` once
the version's last request has finished. A loader does nothing until `load()`, so making one per
poll costs nothing. `load()` raises on any failure (a missing or corrupt SavedModel, a warmup
record that fails), and the manager reports the version END with that error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from serving.metrics import Metrics
from serving.servable import LoadError, Servable
from serving.servable_state import ServableId

log = logging.getLogger("serving")


class Loader(Protocol):
    id: ServableId

    def load(self) -> Any:
        """Load the version and return its servable (anything with `close()`); raise on failure."""

    def unload(self) -> None:
        """Release what `load()` made. Called once, after the last request on it."""


@dataclass(frozen=True)
class LoadOptions:
    tags: tuple[str, ...] = ("serve",)
    warmup: bool = True
    run_in_caller_thread: bool = True
    intra_op_threads: int = 0
    inter_op_threads: int = 0


class SavedModelLoader:
    """A SavedModel directory: its MetaGraphDef with `tags` restored in a session, then its warmup
    records replayed (`serving.warmup`). TF's load metrics are recorded here, per attempt."""

    def __init__(self, id: ServableId, path: Path, options: LoadOptions, metrics: Metrics) -> None:
        self.id = id
        self.path = Path(path)
        self._options = options
        self._metrics = metrics
        self._servable: Servable | None = None

    def load(self) -> Servable:
        from serving.warmup import replay

        o = self._options
        log.info("loading %s version %d from %s", self.id.name, self.id.version, self.path)
        start = time.perf_counter()
        try:
            servable = Servable.load(
                self.id.name,
                self.id.version,
                self.path,
                o.tags,
                o.run_in_caller_thread,
                o.intra_op_threads,
                o.inter_op_threads,
            )
        except LoadError:
            self._metrics.load_attempt(str(self.path), "error")
            raise
        self._metrics.load_attempt(str(self.path), "success")
        self._metrics.load_latency(str(self.path), time.perf_counter() - start)
        if o.warmup:
            t = time.perf_counter()
            try:
                n = replay(servable)
            except Exception:
                servable.close()
                raise
            if n:
                seconds = time.perf_counter() - t
                log.info(
                    "%s version %d: replayed %d warmup records in %.2fs", self.id.name, self.id.version, n, seconds
                )
                self._metrics.warmup_latency(str(self.path), seconds)
        self._servable = servable
        return servable

    def unload(self) -> None:
        if self._servable is not None:
            self._servable.close()
            self._servable = None
