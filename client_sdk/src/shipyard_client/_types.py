"""What the client returns: plain, typed values (numpy arrays and frozen dataclasses)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np


class PredictResult(Mapping[str, np.ndarray]):
    """Output name -> numpy array, and which model version answered.

    `version` is the version that answered (with `batch_size`, the first chunk's; `versions` lists
    every version that answered, in case a rollover happened in between)."""

    def __init__(
        self, outputs: dict[str, np.ndarray], model: str, version: int, signature: str, versions: tuple[int, ...] = ()
    ) -> None:
        self.outputs = outputs
        self.model = model
        self.version = version
        self.signature = signature
        self.versions = versions or (version,)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.outputs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {v.dtype}{list(v.shape)}" for k, v in self.outputs.items())
        return f"PredictResult(model={self.model!r}, version={self.version}, {{{shapes}}})"


@dataclass(frozen=True)
class ClassifyResult:
    """labels [n, k] (str) and scores [n, k] (float32): the k classes of each of n examples."""

    labels: np.ndarray
    scores: np.ndarray
    model: str
    version: int


@dataclass(frozen=True)
class RegressResult:
    values: np.ndarray  # [n] float32
    model: str
    version: int


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy-style: float32, int64, string, ...
    shape: tuple[int, ...] | None  # -1 for any size; None for unknown rank


@dataclass(frozen=True)
class Signature:
    name: str
    method_name: str
    inputs: Mapping[str, TensorSpec] = field(default_factory=dict)
    outputs: Mapping[str, TensorSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelMetadata:
    model: str
    version: int
    signatures: Mapping[str, Signature]


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: int = 0
    error_message: str = ""
