"""A request's deadline, carried from the front end to the session run.

The gRPC deadline (`context.time_remaining()`) and --rest_api_timeout_in_ms are set here by the
front ends for the duration of the handler; `common.run` turns what is left into the session run's
`timeout_in_ms`, so work nobody waits for any more stops and its thread returns to the pool.

TensorFlow checks that timeout between ops: a graph that loops stops at the deadline, but one long op
(a single huge MatMul) runs to its end. And TF enforces it only for runs on its inter-op pool, not for
runs in the caller's thread (the fast path without a deadline): a request with a deadline costs a
little more (measured in bench/serving.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import grpc

from serving.errors import ServingError

_deadline: ContextVar[float | None] = ContextVar("deadline", default=None)


@contextmanager
def until(at: float | None) -> Iterator[None]:
    """Requests handled inside have this deadline (time.monotonic() seconds; None: none)."""
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


# gRPC Python reports a call without a deadline as an enormous time remaining, not None.
NO_DEADLINE_BEYOND_S = 365 * 24 * 3600.0


def after(seconds: float | None) -> float | None:
    """The deadline `seconds` from now; None for no deadline (or one a year or more away)."""
    if seconds is None or seconds >= NO_DEADLINE_BEYOND_S:
        return None
    return time.monotonic() + seconds


def current() -> float | None:
    return _deadline.get()


def remaining_ms(at: float | None) -> int | None:
    """Milliseconds left before the deadline `at` (None: no deadline); DEADLINE_EXCEEDED when none are."""
    if at is None:
        return None
    left = (at - time.monotonic()) * 1000.0
    if left <= 0:
        raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded before the model ran")
    return math.ceil(left)


GROWTH = 1.25


def bucket(ms: int) -> int:
    """A session timeout at or above `ms`, from a geometric ladder (x1.25), so a server keeps a few
    session callables per signature rather than one per distinct deadline; the run may go on at most
    25% past the request's deadline, never stop before it.

    >>> [bucket(ms) for ms in (1, 2, 3, 300, 30000)]
    [1, 3, 4, 331, 35874]
    """
    if ms <= 1:
        return 1
    k = math.ceil(math.log(ms) / math.log(GROWTH) - 1e-9)
    return max(ms, math.ceil(GROWTH**k))
