"""A small CNN for the digits example (`specs/digits_cnn.toml`), as a `[model] builder`.

The image arrives decoded and scaled to [0, 1] (`ctx.inputs["image"]`, float32 [8, 8, 1]); the
pipeline has seeded everything before `build` runs, so the initial weights are fixed by the spec's seed.
"""

from __future__ import annotations

from typing import Any

import keras


def build(ctx: Any) -> keras.Model:
    x = ctx.inputs["image"]
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_1")(x)
    x = keras.layers.MaxPooling2D(name="pool_1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv_2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool_2")(x)
    x = keras.layers.Dense(32, activation="relu", name="dense")(x)
    return keras.Model(inputs=ctx.inputs, outputs=ctx.head(x), name="digits_cnn")
