"""Rows (dicts, or a pandas DataFrame) to `tf.Example` for Classify and Regress.

Per value: a float goes in a FloatList, an int or bool in an Int64List, a str or bytes in a
BytesList; a list or 1-d array of them fills the list; None and NaN leave the feature out (the
model's parser then fills its default, as for a missing value).

>>> ex = to_examples([{"x": 1.5, "n": 3, "s": "a", "gone": None}])
>>> sorted(ex[0].features.feature), ex[0].features.feature["x"].float_list.value[0]
(['n', 's', 'x'], 1.5)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from shipyard_client._errors import EncodingError
from shipyard_client._proto import tf_types_pb2 as tfp


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and math.isnan(v))


def _fill(feature: tfp.Feature, name: str, value: Any) -> None:
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if not values:
        feature.float_list.SetInParent()
        return
    if all(isinstance(v, (bool, np.bool_, int, np.integer)) for v in values):
        feature.int64_list.value.extend(int(v) for v in values)
    elif all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in values
    ):
        feature.float_list.value.extend(float(v) for v in values)
    elif all(isinstance(v, (str, bytes, np.str_, np.bytes_)) for v in values):
        feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else bytes(v) for v in values)
    else:
        raise EncodingError(f"feature {name!r}: values must be all numbers or all strings, got {value!r}")


def to_example(row: Mapping[str, Any]) -> tfp.Example:
    ex = tfp.Example()
    features = ex.features.feature
    for name, value in row.items():
        if _missing(value):
            continue
        _fill(features[str(name)], str(name), value)
    return ex


def rows_of(examples: Any) -> list[Mapping[str, Any]]:
    """Rows from a sequence of mappings or a pandas DataFrame (pandas is imported only if given one)."""
    if type(examples).__module__.startswith("pandas"):
        columns = {str(c): examples[c].to_numpy(dtype=object).tolist() for c in examples.columns}
        n = len(examples)
        return [{c: v[i] for c, v in columns.items()} for i in range(n)]
    if isinstance(examples, Mapping):
        raise TypeError("examples must be a sequence of rows (mappings) or a pandas DataFrame, not one mapping")
    return list(examples)


def to_examples(examples: Iterable[Mapping[str, Any]] | Any) -> list[tfp.Example]:
    rows: Sequence[Mapping[str, Any]] = rows_of(examples)
    if not rows:
        raise EncodingError("no examples given")
    return [to_example(r) for r in rows]
