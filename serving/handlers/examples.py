"""The `Input` of Classify, Regress and MultiInference: an ExampleList, or an ExampleListWithContext
whose context features are merged into every example (an example's own feature wins)."""

from __future__ import annotations

from typing import Any

import numpy as np

from serving.errors import invalid

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def serialized_examples(inp: Any) -> np.ndarray:
    kind = inp.WhichOneof("kind")
    if kind == "example_list":
        examples = [e.SerializeToString() for e in inp.example_list.examples]
    elif kind == "example_list_with_context":
        ctx = inp.example_list_with_context.context
        examples = []
        for e in inp.example_list_with_context.examples:
            merged = type(ctx)()
            merged.CopyFrom(ctx)
            merged.MergeFrom(e)
            examples.append(merged.SerializeToString())
    else:
        raise invalid("Input is empty: it has neither example_list nor example_list_with_context")
    if not examples:
        raise invalid("Input is empty: no examples")
    return np.array(examples, dtype=object)


def example_input_name(sig: Any, method: str, check_method: bool) -> str:
    """The one DT_STRING input of a Classify/Regress signature."""
    if check_method and sig.method_name != method:
        raise invalid(
            f"Expected {method.rsplit('/', 1)[-1]} signature method_name to be {method}. Was: {sig.method_name}"
        )
    if len(sig.inputs) != 1:
        raise invalid(f"Expected one input Tensor (serialized tf.Example), the signature has {len(sig.inputs)}")
    (name,) = sig.inputs
    if sig.inputs[name].dtype != 7:
        raise invalid("Expected the input Tensor to be of type string (serialized tf.Example)")
    return name
