"""A text classifier with preprocessing of its own, as a `[model] builder` (`specs/docstrings.toml`).

It shows the contract's way to own the preprocessing: a TextVectorization layer of its own, adapted
on `ctx.train` (the training split, nothing else), then a small network and the task's head.
"""

from __future__ import annotations

from typing import Any

import keras


def build(ctx: Any) -> keras.Model:
    vectorize = keras.layers.TextVectorization(max_tokens=4000, ngrams=2, output_mode="tf_idf", name="own_vectorize")
    vectorize.adapt(ctx.train["text"])
    x = vectorize(ctx.inputs["text"])
    x = keras.layers.Dense(64, activation="relu", name="dense")(x)
    return keras.Model(inputs=ctx.inputs, outputs=ctx.head(x), name="docstrings_tfidf")
