"""Aspired-version policies: given a model's versions, which to load and which to unload now.

TF Serving has two (`aspired_version_policy.h`), and so does this server:

- `AvailabilityPreservingPolicy` (the default, as in TF Serving): a version that is no longer aspired
  is unloaded only once an aspired version is AVAILABLE, or when nothing is aspired at all, or when
  more than one non-aspired version is serving (the lowest goes first). New aspired versions load at
  once, highest first. A rollover never leaves a moment with nothing to serve.
- `ResourcePreservingPolicy`: non-aspired versions are unloaded first, and new versions load only
  once none is left holding memory. Two versions are never resident at once; there is a gap.

The manager asks the policy after every change (a new aspired set, a load or unload finished).

>>> from serving.servable_state import ManagerState as S
>>> old, new = VersionSnapshot(1, S.AVAILABLE, False), VersionSnapshot(2, S.START, True)
>>> AvailabilityPreservingPolicy().next_actions([old, new])
[Action(kind='load', version=2)]
>>> ResourcePreservingPolicy().next_actions([old, new])
[Action(kind='unload', version=1)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from serving.servable_state import ManagerState


@dataclass(frozen=True)
class VersionSnapshot:
    """What a policy sees of one version. `new`: aspired, in START and not yet handed to a loader."""

    version: int
    state: ManagerState
    aspired: bool
    load_requested: bool = False

    @property
    def new(self) -> bool:
        return self.aspired and self.state == ManagerState.START and not self.load_requested


@dataclass(frozen=True)
class Action:
    kind: Literal["load", "unload"]
    version: int


class AspiredVersionPolicy(Protocol):
    def next_actions(self, versions: Sequence[VersionSnapshot]) -> list[Action]: ...


def _new_highest_first(versions: Sequence[VersionSnapshot]) -> list[Action]:
    return [Action("load", v.version) for v in sorted(versions, key=lambda v: -v.version) if v.new]


class AvailabilityPreservingPolicy:
    def next_actions(self, versions: Sequence[VersionSnapshot]) -> list[Action]:
        aspired = [v for v in versions if v.aspired]
        ready = any(v.state == ManagerState.AVAILABLE for v in aspired)
        old = sorted(v.version for v in versions if not v.aspired and v.state == ManagerState.AVAILABLE)
        unload = old if not aspired or ready else old[:-1]  # else the highest serves until one is ready
        return [Action("unload", n) for n in unload] + _new_highest_first(versions)


class ResourcePreservingPolicy:
    def next_actions(self, versions: Sequence[VersionSnapshot]) -> list[Action]:
        unload = [Action("unload", v.version) for v in versions if not v.aspired and v.state == ManagerState.AVAILABLE]
        if unload:
            return sorted(unload, key=lambda a: a.version)
        resident = any(not v.aspired and v.state in (ManagerState.LOADING, ManagerState.UNLOADING) for v in versions)
        return [] if resident else _new_highest_first(versions)
