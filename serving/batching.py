"""Server-side batching (--enable_batching): concurrent requests to one signature of one version are
merged into one session run and the outputs split back.

Parameters are TF Serving's BatchingParameters: a request of more than `max_batch_size` rows is
refused; with `enable_large_batch_splitting` a request larger than `max_execution_batch_size` is cut
into pieces of that size, which run in batches of their own (in parallel on the batch threads) and
are joined again in order. A batch closes when it holds the largest batch run (`max_execution_batch_size`
with splitting, else `max_batch_size`) or its first request has waited `batch_timeout_micros`
(0: a lone request runs at once; batches still form from requests that arrive while the batch
threads are busy); `num_batch_threads` batches run at once; at most `max_enqueued_batches` batches'
worth of rows wait, and a request beyond that is refused with UNAVAILABLE; with
`allowed_batch_sizes` a batch is padded up to the next allowed size. Only requests whose inputs
have the same names, dtypes and per-row shapes are merged.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from serving import deadline
from serving.config import Batching
from serving.errors import ServingError, invalid
from serving.servable import Signature


@dataclass
class _Task:
    key: tuple
    servable: Any
    signature: Signature
    feeds: Mapping[str, np.ndarray]
    outputs: tuple[str, ...]
    rows: int
    deadline: float | None = None  # time.monotonic(); a task still queued at its deadline never runs
    enqueued: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, np.ndarray] | None = None
    error: BaseException | None = None


class BatchScheduler:
    def __init__(self, params: Batching, metrics: Any = None) -> None:
        self.params = params
        self._execution_size = params.execution_batch_size
        self._metrics = metrics
        self._queue: deque[_Task] = deque()
        self._queued_rows = 0
        self._cond = threading.Condition()
        # At most num_batch_threads session runs at once, whoever runs them: a batch thread, or (with
        # no batch timeout, an empty queue and a free slot) the request's own thread, which then runs
        # its request at once instead of handing it over and waiting to be woken.
        self._slots = params.num_batch_threads
        self._busy = 0
        self._closed = False
        self._threads = [
            threading.Thread(target=self._worker, name=f"batch-{i}", daemon=True)
            for i in range(params.num_batch_threads)
        ]
        for t in self._threads:
            t.start()

    def run(
        self,
        version: Any,
        signature: Signature,
        feeds: Mapping[str, np.ndarray],
        outputs: tuple[str, ...] = (),
        until: float | None = None,
    ) -> dict[str, np.ndarray]:
        """The outputs of `signature` on `feeds`, run in a batch. `until`: the request's deadline
        (time.monotonic()); past it the request is answered DEADLINE_EXCEEDED and its rows, if still
        queued, never run."""
        firsts = {v.shape[0] if v.ndim else -1 for v in feeds.values()}
        if len(firsts) != 1 or -1 in firsts:  # not batch-major: nothing to merge it with
            return version.servable.run(signature, feeds, outputs, deadline.remaining_ms(until))
        (rows,) = firsts
        if self._metrics is not None:  # as TF Serving records it: every input tensor, before scheduling
            for _ in feeds:
                self._metrics.input_batch_size(rows)
        if rows > self.params.max_batch_size:
            raise invalid(f"Task size {rows} is larger than maximum batch size {self.params.max_batch_size}")
        key = (
            id(version.servable),
            signature.name,
            outputs,
            tuple((k, v.dtype.str, v.shape[1:]) for k, v in sorted(feeds.items())),
        )
        piece = self._execution_size
        if rows <= piece:
            tasks = [_Task(key, version.servable, signature, feeds, outputs, rows, until)]
        else:  # enable_large_batch_splitting: pieces of at most max_execution_batch_size rows
            tasks = [
                _Task(
                    key, version.servable, signature, {k: v[i : i + piece] for k, v in feeds.items()}, outputs, n, until
                )
                for i in range(0, rows, piece)
                for n in [min(piece, rows - i)]
            ]
        with self._cond:
            if self._closed:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "the batch scheduler is shutting down")
            inline = (
                len(tasks) == 1
                and not self._queue
                and self._busy < self._slots
                and self.params.batch_timeout_micros == 0
            )
            if inline:
                self._busy += 1
            else:
                limit = self.params.max_enqueued_batches * piece
                if self._queued_rows + rows > limit:
                    raise ServingError(
                        grpc.StatusCode.UNAVAILABLE,
                        "The batch scheduling queue to which this task was submitted is full",
                    )
                self._queue.extend(tasks)
                self._queued_rows += rows
                self._cond.notify(len(tasks))
        if inline:  # nothing to merge it with and a slot free: a batch of one, run here
            try:
                self._execute(tasks)
            finally:
                self._release_slot()
        for task in tasks:
            if not task.done.wait(None if until is None else max(0.0, until - time.monotonic())):
                self._abandon(tasks)
                raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded waiting for a batch")
        for task in tasks:
            if task.error is not None:
                raise task.error
        results = [t.result for t in tasks if t.result is not None]
        if len(results) == 1:
            return results[0]
        return {name: np.concatenate([r[name] for r in results]) for name in results[0]}

    def _abandon(self, tasks: list[_Task]) -> None:
        """Take a request's tasks that are still queued out of the queue (the deadline passed)."""
        with self._cond:
            waiting = [t for t in tasks if t in self._queue]
            if waiting:
                self._queue = deque(t for t in self._queue if t not in waiting)
                self._queued_rows -= sum(t.rows for t in waiting)

    def _take_batch(self) -> list[_Task] | None:
        timeout = self.params.batch_timeout_micros / 1e6
        with self._cond:
            while (not self._queue or self._busy >= self._slots) and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            first = self._queue[0]
            deadline = first.enqueued + timeout
            while True:
                rows = sum(t.rows for t in self._queue if t.key == first.key)
                now = time.monotonic()
                if rows >= self._execution_size or now >= deadline or self._closed or first not in self._queue:
                    break
                self._cond.wait(deadline - now)
            if first not in self._queue:  # another batch thread took it while this one waited
                return []
            batch, total, keep = [], 0, deque[Any]()
            for t in self._queue:
                if t.key == first.key and total + t.rows <= self._execution_size:
                    batch.append(t)
                    total += t.rows
                else:
                    keep.append(t)
            self._queue = keep
            self._queued_rows -= total
            self._busy += 1
            return batch

    def _release_slot(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    def _worker(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            if batch:
                try:
                    self._execute(batch)
                finally:
                    self._release_slot()

    def _padded(self, rows: int) -> int:
        for size in self.params.allowed_batch_sizes:
            if size >= rows:
                return size
        return rows

    def _execute(self, batch: list[_Task]) -> None:
        now = time.monotonic()
        late = [t for t in batch if t.deadline is not None and t.deadline <= now]
        for t in late:
            t.error = ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded waiting for a batch")
            t.done.set()
        batch = [t for t in batch if t not in late]
        if not batch:
            return
        first = batch[0]
        rows = sum(t.rows for t in batch)
        target = self._padded(rows)
        try:
            if len(batch) == 1 and target == rows:
                merged = first.feeds
            else:
                merged = {}
                for name in first.feeds:
                    parts = [t.feeds[name] for t in batch]
                    if target > rows:  # pad with copies of the first row
                        parts.append(np.repeat(parts[0][:1], target - rows, axis=0))
                    merged[name] = np.concatenate(parts, axis=0)
            # the run may last until the latest deadline of the batch (none if any task has none)
            deadlines = [t.deadline for t in batch]
            until = None if None in deadlines else max(d for d in deadlines if d is not None)
            out = first.servable.run(first.signature, merged, first.outputs, deadline.remaining_ms(until))
            for name, value in out.items():
                if value.ndim == 0 or value.shape[0] != target:
                    raise invalid(
                        f"Batched output tensor {name!r} has shape {list(value.shape)}: its first "
                        f"dimension is not the batch size {target}"
                    )
            start = 0
            for t in batch:
                t.result = {k: v[start : start + t.rows] for k, v in out.items()}
                start += t.rows
        except BaseException as e:  # noqa: BLE001 - every task of the batch gets the error
            for t in batch:
                t.error = e
        finally:
            if self._metrics is not None:
                self._metrics.batch_size(rows)
            for t in batch:
                t.done.set()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=5)
