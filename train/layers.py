"""Two small preprocessing layers that Keras lacks: imputing NaN, and flagging it.

Both are registered as serializable, so a saved `.keras` model loads once `train.layers` is imported.

>>> import numpy as np
>>> x = np.array([[1.0], [np.nan]], dtype="float32")
>>> ImputeMissing(fill_value=5.0)(x).numpy().ravel().tolist()
[1.0, 5.0]
>>> IsMissing()(x).numpy().ravel().tolist()
[0.0, 1.0]
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="shipyard")
class ImputeMissing(keras.layers.Layer):
    """Replaces NaN by a constant fixed at build time (the training split's mean)."""

    def __init__(self, fill_value: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fill_value = float(fill_value)

    def call(self, x: Any) -> Any:
        return ops.where(ops.isnan(x), ops.cast(self.fill_value, x.dtype), x)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"fill_value": self.fill_value}


@keras.saving.register_keras_serializable(package="shipyard")
class IsMissing(keras.layers.Layer):
    """1.0 where the input is NaN, 0.0 elsewhere: lets the network learn from missingness."""

    def call(self, x: Any) -> Any:
        return ops.cast(ops.isnan(x), "float32")

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape
