"""Prometheus metrics in the text exposition format, named as TF Serving names them, served on the
REST port at the path of --monitoring_config_file's prometheus_config.

    :tensorflow:serving:request_count{model_name, status}            counter
    :tensorflow:serving:request_latency{model_name, API, entrypoint}  histogram (microseconds)
    :tensorflow:cc:saved_model:load_attempt_count{model_path, status} counter
    :tensorflow:cc:saved_model:load_latency{model_path}               counter (microseconds)
    :tensorflow:serving:model_warmup_latency{model_path}              histogram (microseconds)
    :tensorflow:serving:batching_session:input_batch_size             histogram (at enqueue, per input)
    :tensorflow:serving:batching_session:processed_batch_size         histogram

TF Serving's names and labels stay as they are, for its dashboards. Two metrics of our own add the
version that answered, so a canary's errors and latency can be told from stable's:

    :shipyard:serving:request_count{model_name, version, status}             counter
    :shipyard:serving:request_latency{model_name, version, API, entrypoint}  histogram (microseconds)

`version` is the version the request ran on, or "none" when it failed before one was chosen (an
unknown model or label, a malformed request).
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence

# The version a request ran on, noted by the manager when it hands out a servable (see `serving_request`).
_SERVED: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar("served_version", default=None)


@contextlib.contextmanager
def serving_request(holder: dict[str, int] | None = None) -> Iterator[dict[str, int]]:
    """Within the block, the version a servable is handed out for is written into the holder (a dict,
    so that a worker thread running the request with its own context can share it)."""
    holder = {} if holder is None else holder
    token = _SERVED.set(holder)
    try:
        yield holder
    finally:
        _SERVED.reset(token)


def note_version(number: int) -> None:
    holder = _SERVED.get()
    if holder is not None:
        holder["version"] = number


LATENCY_BUCKETS_US = [
    10,
    18,
    32,
    56,
    100,
    180,
    320,
    560,
    1000,
    1800,
    3200,
    5600,
    10_000,
    18_000,
    32_000,
    56_000,
    100_000,
    180_000,
    320_000,
    560_000,
    1_000_000,
    1_800_000,
    3_200_000,
    10_000_000,
]
BATCH_BUCKETS = [2**i for i in range(14)]  # as TF: Exponential(1, 2, 14), 1 to 8192


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in pairs)
    return "{" + inner + "}"


class _Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        # As TF histograms count: a value equal to a limit falls in the next bucket (limits are exclusive).
        self.counts[bisect.bisect_right(self.buckets, value)] += 1
        self.sum += value
        self.count += 1


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
        self._histograms: dict[str, dict[tuple, _Histogram]] = defaultdict(dict)
        self._help: dict[str, tuple[str, str]] = {}

    def _count(self, name: str, help_: str, labels: tuple, by: float = 1) -> None:
        # TF's counters are int64: each increment is a whole number (microseconds are truncated).
        with self._lock:
            self._help.setdefault(name, ("counter", help_))
            self._counters[name][labels] += int(by)

    def _observe(self, name: str, help_: str, labels: tuple, value: float, buckets: Sequence[float]) -> None:
        with self._lock:
            self._help.setdefault(name, ("histogram", help_))
            h = self._histograms[name].get(labels)
            if h is None:
                h = self._histograms[name][labels] = _Histogram(buckets)
            h.observe(value)

    def request(
        self, model: str, api: str, entrypoint: str, status: str, seconds: float, version: int | None = None
    ) -> None:
        shown = "none" if version is None else str(version)
        self._count(
            ":shipyard:serving:request_count",
            "The total number of requests, by the version that answered.",
            (("model_name", model), ("version", shown), ("status", status)),
        )
        self._observe(
            ":shipyard:serving:request_latency",
            "Distribution of wall time (in microseconds) for requests, by the version that answered.",
            (("model_name", model), ("version", shown), ("API", api), ("entrypoint", entrypoint)),
            seconds * 1e6,
            LATENCY_BUCKETS_US,
        )
        self._count(
            ":tensorflow:serving:request_count",
            "The total number of requests.",
            (("model_name", model), ("status", status)),
        )
        self._observe(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for requests.",
            (("model_name", model), ("API", api), ("entrypoint", entrypoint)),
            seconds * 1e6,
            LATENCY_BUCKETS_US,
        )

    def load_attempt(self, path: str, status: str) -> None:
        self._count(
            ":tensorflow:cc:saved_model:load_attempt_count",
            "The number of times a SavedModel was successfully loaded.",
            (("model_path", path), ("status", status)),
        )

    def load_latency(self, path: str, seconds: float) -> None:
        self._count(
            ":tensorflow:cc:saved_model:load_latency",
            "Latency in microseconds for SavedModels that were successfully loaded.",
            (("model_path", path),),
            seconds * 1e6,
        )

    def warmup_latency(self, path: str, seconds: float) -> None:
        self._observe(
            ":tensorflow:serving:model_warmup_latency",
            "Distribution of wall time (in microseconds) for warming up the model.",
            (("model_path", path),),
            seconds * 1e6,
            LATENCY_BUCKETS_US,
        )

    def input_batch_size(self, size: int) -> None:
        self._observe(
            ":tensorflow:serving:batching_session:input_batch_size",
            "Tracks the batch size distribution on the inputs.",
            (),
            size,
            BATCH_BUCKETS,
        )

    def batch_size(self, size: int) -> None:
        self._observe(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Tracks the batch size distribution on processing.",
            (),
            size,
            BATCH_BUCKETS,
        )

    def render(self) -> str:
        lines = []
        with self._lock:
            for name in sorted(self._help):
                kind, help_ = self._help[name]
                lines.append(f"# HELP {name} {help_}")
                lines.append(f"# TYPE {name} {kind}")
                if kind == "counter":
                    for labels, v in sorted(self._counters[name].items()):
                        lines.append(f"{name}{_labels(labels)} {int(v)}")  # an int64, all its digits
                    continue
                for labels, h in sorted(self._histograms[name].items()):
                    cumulative = 0
                    for bound, c in zip([*h.buckets, "+Inf"], h.counts, strict=True):
                        cumulative += c
                        le = bound if isinstance(bound, str) else f"{bound:.6g}"  # a double, as absl::StrCat prints it
                        lines.append(f"{name}_bucket{_labels((*labels, ('le', le)))} {cumulative}")
                    lines.append(f"{name}_sum{_labels(labels)} {h.sum:.6g}")
                    lines.append(f"{name}_count{_labels(labels)} {h.count}")
        return "\n".join(lines) + "\n"

    def snapshot(self, name: str) -> dict[tuple, float]:
        """Counter values or histogram counts by labels (for tests and benchmarks)."""
        with self._lock:
            if name in self._counters:
                return dict(self._counters[name])
            return {k: h.count for k, h in self._histograms.get(name, {}).items()}
