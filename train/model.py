"""The Keras 3 model: one named input per raw feature, the preprocessing as its first layers.

Raw values go in (float32 with NaN for missing numbers, strings with "" for missing categories,
int64 integer categories); nothing outside the model transforms a feature. Every statistic the
preprocessing needs (imputation value, mean and variance, vocabularies) is computed on the
training split only, in float64 with numpy, and handed to the layers: no `adapt()`, no order of
`tf.data` elements to depend on.

Every layer is named after its feature, so two builds of the same spec have the same weight paths.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from train.layers import ImputeMissing, IsMissing
from train.spec import Feature, Spec

INPUT_DTYPES = {"numeric": "float32", "string": "string", "integer": "int64"}


@dataclass
class FeatureStats:
    """What the preprocessing of one feature learned from the training split."""

    name: str
    kind: str
    mean: float | None = None
    variance: float | None = None
    missing_rate: float = 0.0
    vocabulary: list[Any] = field(default_factory=list)


def vocabulary(values: np.ndarray) -> list[Any]:
    """Categories by falling frequency, ties by value: fixed by the data alone."""
    counts = Counter(values.tolist())
    return [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def feature_stats(feature: Feature, values: np.ndarray) -> FeatureStats:
    st = FeatureStats(feature.name, feature.kind)
    if feature.kind == "numeric":
        present = values[~np.isnan(values)]
        st.missing_rate = float(1 - len(present) / len(values))
        st.mean = float(present.mean()) if len(present) else 0.0
        st.variance = float(present.var()) if len(present) > 1 else 1.0
    elif feature.hash_bins is None:
        st.vocabulary = vocabulary(values)
        st.missing_rate = float(np.mean(values == ("" if feature.kind == "string" else -1)))
    return st


def _encode(feature: Feature, st: FeatureStats, raw: Any) -> list[Any]:
    n = feature.name
    x = keras.layers.Reshape((1,), name=f"{n}__column")(raw)
    if feature.kind == "numeric":
        imputed = ImputeMissing(st.mean, name=f"{n}__impute")(x)
        parts = [
            keras.layers.Normalization(mean=st.mean, variance=max(st.variance or 1.0, 1e-12), name=f"{n}__normalize")(
                imputed
            ),
            IsMissing(name=f"{n}__is_missing")(x),
        ]
        if feature.bucketize:
            parts.append(
                keras.layers.Discretization(
                    bin_boundaries=list(feature.bucketize), output_mode="one_hot", name=f"{n}__buckets"
                )(imputed)
            )
        return parts
    if feature.hash_bins is not None:
        return [keras.layers.Hashing(num_bins=feature.hash_bins, output_mode="one_hot", name=f"{n}__hash")(x)]
    if feature.kind == "string":
        layer = keras.layers.StringLookup(
            vocabulary=st.vocabulary, num_oov_indices=1, output_mode="one_hot", name=f"{n}__lookup"
        )
    else:
        layer = keras.layers.IntegerLookup(
            vocabulary=np.asarray(st.vocabulary, dtype=np.int64),
            num_oov_indices=1,
            output_mode="one_hot",
            vocabulary_dtype="int64",
            name=f"{n}__lookup",
        )
    return [layer(x)]


def build_model(
    spec: Spec, stats: dict[str, FeatureStats], n_classes: int | None, label_mean: float = 0.0, label_std: float = 1.0
) -> keras.Model:
    """The functional model. Classification: softmax `probabilities` over `n_classes`. Regression:
    one value in the label's units (the last layer rescales by the training label's mean and std, so
    the network itself works on a unit scale)."""
    inputs = {f.name: keras.Input(shape=(), dtype=INPUT_DTYPES[f.kind], name=f.name) for f in spec.features}
    parts: list[Any] = []
    for f in spec.features:
        parts.extend(_encode(f, stats[f.name], inputs[f.name]))
    x = keras.layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
    for i, units in enumerate(spec.training.hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")(x)
    if spec.task == "classification":
        assert n_classes is not None
        out = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    else:
        z = keras.layers.Dense(1, name="standardized_prediction")(x)
        out = keras.layers.Rescaling(scale=label_std, offset=label_mean, name="prediction")(z)
    return keras.Model(inputs=inputs, outputs=out, name=spec.name)


def model_inputs(spec: Spec, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw feature columns as the model takes them (strings as object arrays, see FIELD-NOTES)."""
    out = {}
    for f in spec.features:
        v = columns[f.name]
        out[f.name] = v.astype(np.float32) if f.kind == "numeric" else v
    return out
