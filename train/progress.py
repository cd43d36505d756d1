"""Progress of long work (reading, snapshotting, training) as log lines: rows done and the rate.

A line at most every `every` seconds while the work runs, and one when it ends; `-q` (the WARNING
level) silences them with every other progress line.
"""

from __future__ import annotations

import logging
import time


class Progress:
    def __init__(self, what: str, log: logging.Logger, total: int | None = None, every: float = 10.0) -> None:
        self.what = what
        self.log = log
        self.total = total
        self.every = every
        self.start = time.perf_counter()
        self._last = self.start

    def _line(self, rows: int, now: float) -> str:
        elapsed = now - self.start
        rate = f"{rows / elapsed:,.0f} rows/s" if elapsed > 0 else "-"
        of = f" of {self.total:,}" if self.total is not None else ""
        return f"{self.what}: {rows:,}{of} rows ({rate}, {elapsed:.1f}s)"

    def update(self, rows: int) -> None:
        now = time.perf_counter()
        if now - self._last >= self.every:
            self._last = now
            self.log.info("%s", self._line(rows, now))

    def done(self, rows: int) -> None:
        self.log.info("%s", self._line(rows, time.perf_counter()))
