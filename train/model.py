"""Shipyard's preprocessing layers per feature kind, and the built-in model on top of them.

Raw values go in (float32 with NaN for missing numbers, strings with "" for missing categories and
text, int64 integer categories with -1 for missing, decoded images as float32 [h, w, c] in [0, 1]);
nothing outside the model transforms a feature (images are decoded by `train.images`, inside the
exported signature). Every statistic the preprocessing needs (imputation value, mean and variance,
vocabularies, text vocabularies and idf weights) is computed on the training split only and handed
to the layers as constants, so the layers of two builds of one spec are identical.

Every layer is named after its feature, so two builds of the same spec have the same weight paths.
A model of the user's own (`[model] builder`, see `train.builder`) gets the same inputs and the same
preprocessed tensors to build on.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from train.layers import ImputeMissing, IsMissing
from train.spec import Feature, Spec

INPUT_DTYPES = {"numeric": "float32", "string": "string", "integer": "int64", "text": "string", "image": "float32"}
EMBEDDING_DIM = 16  # the built-in model's token embedding for text in "int" mode


def input_shape(feature: Feature) -> tuple[int, ...]:
    """The shape of one row of the model's input (the decoded image for an image feature)."""
    if feature.kind == "image":
        return feature.image_shape
    return feature.tensor_shape


@dataclass
class FeatureStats:
    """What the preprocessing of one feature learned from the training split."""

    name: str
    kind: str
    mean: float | list[float] | None = None
    variance: float | list[float] | None = None
    missing_rate: float = 0.0
    vocabulary: list[Any] = field(default_factory=list)
    idf_weights: list[float] | None = None


def vocabulary(values: np.ndarray | Counter[Any]) -> list[Any]:
    """Categories by falling frequency, ties by value: fixed by the data alone."""
    counts = values if isinstance(values, Counter) else Counter(values.tolist())
    return [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


STATS_BLOCK_ROWS = 65_536  # fixed: the statistics of a column never depend on how it was read


class Moments:
    """Count, mean and variance of the present (non-NaN) values, per column of [rows, k] blocks,
    combined block by block (Chan et al.'s pairwise update). Blocks of fixed boundaries give the same
    bits however the rows were read; a single block gives exactly numpy's mean and var."""

    def __init__(self) -> None:
        self.n: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.var: np.ndarray | None = None

    @staticmethod
    def _of(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = block.reshape(len(block), -1)
        present = ~np.isnan(x)
        n = present.sum(axis=0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: NaN, as intended
            if x.shape[1] == 1:  # a scalar column: numpy's own mean and var of the present values
                v = x[present[:, 0], 0]
                return n, np.array([v.mean() if len(v) else np.nan]), np.array([v.var() if len(v) else np.nan])
            return n, np.nanmean(x, axis=0), np.nanvar(x, axis=0)

    def update(self, block: np.ndarray) -> None:
        nb, mb, vb = self._of(block)
        if self.n is None:
            self.n, self.mean, self.var = nb, mb, vb
            return
        assert self.mean is not None and self.var is not None
        na, ma, va = self.n, self.mean, self.var
        n = na + nb
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = mb - ma
            mean = ma + delta * (nb / n)
            var = (va * na + vb * nb + delta * delta * (na * nb / n)) / n
        self.n = n
        self.mean = np.where(nb == 0, ma, np.where(na == 0, mb, mean))
        self.var = np.where(nb == 0, va, np.where(na == 0, vb, var))

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Counts, means and population variances (NaN where nothing was present)."""
        assert self.n is not None and self.mean is not None and self.var is not None
        return self.n, self.mean, self.var


class _StatsAccumulator:
    """What one feature's preprocessing learns, gathered block by block over the training split."""

    def __init__(self, feature: Feature) -> None:
        self.feature = feature
        self.rows = 0
        self.missing = 0
        self.moments = Moments()
        self.counts: Counter[Any] = Counter()

    def update(self, values: np.ndarray) -> None:
        f = self.feature
        self.rows += len(values)
        if f.kind == "numeric":
            self.missing += int(np.isnan(values.reshape(len(values), -1)).any(axis=1).sum())
            self.moments.update(values)
        elif f.kind == "text":
            self.missing += sum(1 for v in values.tolist() if len(v) == 0)
        elif f.hash_bins is None:
            self.counts.update(values.tolist())
            self.missing += int(np.sum(values == ("" if f.kind == "string" else -1)))

    def result(self, text_blocks: Any = None) -> FeatureStats:
        f = self.feature
        st = FeatureStats(f.name, f.kind)
        st.missing_rate = float(self.missing / self.rows) if self.rows else 0.0
        if f.kind == "numeric":
            n, mean, var = self.moments.result() if self.rows else (np.zeros(1), np.zeros(1), np.ones(1))
            if f.shape:
                st.mean = np.nan_to_num(mean, nan=0.0).tolist()
                st.variance = np.nan_to_num(var, nan=1.0).tolist()
            else:
                st.mean = float(mean[0]) if n[0] else 0.0
                st.variance = float(var[0]) if n[0] > 1 else 1.0
        elif f.kind == "text":
            # Keras's adapt orders tokens by count, ties by the token: fixed by the data alone, and the
            # same whether it sees the column at once or block by block.
            layer = text_vectorizer(f)
            layer.adapt(text_blocks)
            st.vocabulary = [str(t) for t in layer.get_vocabulary(include_special_tokens=False)]
            if f.output_mode == "tf_idf":
                weights = np.asarray(layer._lookup_layer.idf_weights, dtype=np.float64)  # [OOV, vocabulary...]
                st.idf_weights = weights[1:].tolist()
        elif f.kind != "image" and f.hash_bins is None:
            st.vocabulary = vocabulary(self.counts)
        return st


def split_stats(features: Sequence[Feature], table: Any) -> dict[str, FeatureStats]:
    """Every feature's statistics over a training split (a `train.store.ColumnStore`, read in fixed
    blocks: memory stays one block whatever the rows)."""
    acc = {f.name: _StatsAccumulator(f) for f in features}
    n = len(table)
    read = [f.name for f in features if f.kind != "image"]  # of an image only whether it is there: its length
    for start in range(0, n, STATS_BLOCK_ROWS):
        stop = min(n, start + STATS_BLOCK_ROWS)
        block = table.slice(start, stop, read) if read else {}
        for f in features:
            a = acc[f.name]
            if f.kind == "image":
                lengths = table.lengths(f.name, start, stop)
                a.rows += len(lengths)
                a.missing += int((lengths == 0).sum())
            else:
                a.update(block[f.name])
    out = {}
    for f in features:
        text = None
        if f.kind == "text":
            import tensorflow as tf

            def blocks(name: str = f.name) -> Any:
                for start in range(0, n, STATS_BLOCK_ROWS):
                    yield table.slice(start, min(n, start + STATS_BLOCK_ROWS), [name])[name]

            text = tf.data.Dataset.from_generator(blocks, output_signature=tf.TensorSpec([None], tf.string))
        out[f.name] = acc[f.name].result(text)
    return out


def feature_stats(feature: Feature, values: np.ndarray) -> FeatureStats:
    """One feature's statistics over a column in memory (the same blocks and arithmetic as `split_stats`)."""
    from train.store import ArrayTable

    return split_stats([feature], ArrayTable({feature.name: values}))[feature.name]


def text_vectorizer(feature: Feature, **kwargs: Any) -> keras.layers.TextVectorization:
    """A TextVectorization layer configured as the spec says (no vocabulary unless given)."""
    return keras.layers.TextVectorization(
        max_tokens=feature.max_tokens,
        standardize=None if feature.standardize == "none" else feature.standardize,
        ngrams=feature.ngrams if feature.ngrams and feature.ngrams > 1 else None,
        output_mode=feature.output_mode,
        output_sequence_length=feature.sequence_length if feature.output_mode == "int" else None,
        **kwargs,
    )


def preprocess(feature: Feature, st: FeatureStats, raw: Any) -> Any:
    """Shipyard's preprocessing of one input: a [batch, k] float tensor for numbers, categories and
    text in a bag mode; [batch, sequence_length] token ids for text in "int" mode; the decoded image
    [batch, h, w, c] as it is."""
    n = feature.name
    if feature.kind == "image":
        return raw
    if feature.kind == "text":
        kwargs: dict[str, Any] = {"vocabulary": st.vocabulary or None}
        if st.idf_weights is not None:
            kwargs["idf_weights"] = np.asarray(st.idf_weights)
        return text_vectorizer(feature, name=f"{n}__vectorize", **kwargs)(raw)
    if feature.kind == "numeric" and feature.shape:
        x = keras.layers.Flatten(name=f"{n}__flatten")(raw)
        mean = np.asarray(st.mean, dtype=np.float64)
        imputed = ImputeMissing(float(mean.mean()), name=f"{n}__impute")(x)
        variance = np.maximum(np.asarray(st.variance, dtype=np.float64), 1e-12)
        return keras.layers.Normalization(mean=mean, variance=variance, name=f"{n}__normalize")(imputed)
    parts = _encode_scalar(feature, st, raw)
    return parts[0] if len(parts) == 1 else keras.layers.Concatenate(name=f"{n}__encoded")(parts)


def _encode_scalar(feature: Feature, st: FeatureStats, raw: Any) -> list[Any]:
    n = feature.name
    x = keras.layers.Reshape((1,), name=f"{n}__column")(raw)
    if feature.kind == "numeric":
        assert isinstance(st.mean, float) and isinstance(st.variance, float)  # a scalar feature's statistics
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


def flat_view(feature: Feature, preprocessed: Any) -> Any:
    """One feature's preprocessed tensor as [batch, k] floats: token ids embedded and averaged, images
    flattened, the rest as they are."""
    if feature.kind == "text" and feature.output_mode == "int":
        vocab_size = (feature.max_tokens or 0) + 2
        x = keras.layers.Embedding(vocab_size, EMBEDDING_DIM, name=f"{feature.name}__embed")(preprocessed)
        return keras.layers.GlobalAveragePooling1D(name=f"{feature.name}__pool")(x)
    if feature.kind == "image":
        return keras.layers.Flatten(name=f"{feature.name}__flatten")(preprocessed)
    return preprocessed


def make_inputs(spec: Spec) -> dict[str, Any]:
    return {f.name: keras.Input(shape=input_shape(f), dtype=INPUT_DTYPES[f.kind], name=f.name) for f in spec.features}


def task_head(spec: Spec, x: Any, n_classes: int | None, label_mean: float = 0.0, label_std: float = 1.0) -> Any:
    """Classification: softmax `probabilities` over `n_classes`. Regression: one value in the label's
    units (the last layer rescales by the training label's mean and std, so the network itself works
    on a unit scale)."""
    if spec.task == "classification":
        assert n_classes is not None
        return keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    z = keras.layers.Dense(1, name="standardized_prediction")(x)
    return keras.layers.Rescaling(scale=label_std, offset=label_mean, name="prediction")(z)


def build_model(
    spec: Spec,
    stats: dict[str, FeatureStats],
    n_classes: int | None,
    label_mean: float = 0.0,
    label_std: float = 1.0,
    classes: list[str] | None = None,
) -> keras.Model:
    """The built-in model (see `train.builder.builtin`) on the given statistics."""
    from train.builder import BuildContext, builtin

    if classes is None and n_classes is not None:
        classes = [str(i) for i in range(n_classes)]
    return builtin(BuildContext(spec, make_inputs(spec), stats, {}, classes, label_mean, label_std))


def model_inputs(spec: Spec, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw feature columns as the model takes them (strings as object arrays, see FIELD-NOTES;
    images decoded by `train.images`, the function the exported signature runs)."""
    out = {}
    for f in spec.features:
        v = columns[f.name]
        if f.kind == "numeric":
            out[f.name] = v.astype(np.float32)
        elif f.kind == "image":
            from train.images import decode_to_numpy

            out[f.name] = decode_to_numpy(v, f.name, *f.image_shape)
        else:
            out[f.name] = v
    return out
