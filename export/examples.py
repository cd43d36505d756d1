"""Rows to serialized `tf.Example`, the input of the Classify and Regress signatures.

A missing value is left out of the Example (the signature's parser fills NaN, "" or -1, as the
model expects for a missing number, category or integer category). A numeric feature with a shape
is its flat list of numbers (C order); text is its UTF-8 bytes; an image its encoded bytes.

>>> import numpy as np
>>> from train.spec import Feature
>>> feats = (Feature("x", "numeric"), Feature("s", "string"))
>>> ex = to_examples(feats, {"x": np.array([1.5, np.nan]), "s": np.array(["a", ""], dtype=object)})
>>> len(ex), isinstance(ex[0], bytes)
(2, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from train.data import MISSING_INT
from train.spec import Feature


def to_example_protos(features: Sequence[Feature], columns: Mapping[str, np.ndarray]) -> list:
    import tensorflow as tf

    n = len(next(iter(columns.values())))
    out = []
    for i in range(n):
        feats = {}
        for f in features:
            v = columns[f.name][i]
            if f.kind == "numeric" and f.shape:
                flat = np.asarray(v, dtype=np.float64).reshape(-1)
                if not np.isnan(flat).all():
                    feats[f.name] = tf.train.Feature(float_list=tf.train.FloatList(value=flat.tolist()))
            elif f.kind == "numeric":
                if not np.isnan(v):
                    feats[f.name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
            elif f.kind == "image":
                if len(v):
                    feats[f.name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[bytes(v)]))
            elif f.kind == "integer":
                if int(v) != MISSING_INT:
                    feats[f.name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))
            elif v != "":
                feats[f.name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(v).encode()]))
        out.append(tf.train.Example(features=tf.train.Features(feature=feats)))
    return out


def to_examples(features: Sequence[Feature], columns: Mapping[str, np.ndarray]) -> list[bytes]:
    return [e.SerializeToString() for e in to_example_protos(features, columns)]
