"""Classify: tf.Examples in, (label, score) pairs out, from a signature with outputs `classes`
(string [batch, n]) and/or `scores` (float [batch, n])."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from serving.errors import invalid
from serving.handlers.common import fill_spec, held, run, signature
from serving.handlers.examples import CLASSIFY_METHOD, example_input_name, serialized_examples
from serving.servable import Signature

if TYPE_CHECKING:
    from serving.core import ServerCore
    from serving.manager import Version


def classify_in(core: ServerCore, v: Version, sig: Signature, inp: Any, result: Any) -> None:
    name = example_input_name(sig, CLASSIFY_METHOD, core.options.method_name_check)
    if "classes" not in sig.outputs and "scores" not in sig.outputs:
        raise invalid("Expected classification signature outputs 'classes' and/or 'scores'")
    examples = serialized_examples(inp)
    wanted = [o for o in ("classes", "scores") if o in sig.outputs]
    out = run(core, v, sig, {name: examples}, wanted)
    classes, scores = out.get("classes"), out.get("scores")
    n = len(examples)
    for key, arr in (("classes", classes), ("scores", scores)):
        if arr is not None and (arr.ndim != 2 or arr.shape[0] != n):
            raise invalid(
                f"Expected output Tensor '{key}' of shape [batch_size, num_classes] with batch_size "
                f"{n}, got {list(arr.shape)}"
            )
    if classes is not None and scores is not None and classes.shape != scores.shape:
        raise invalid("Tensors 'classes' and 'scores' must have the same shape")
    present = classes if classes is not None else scores
    assert present is not None  # a classify signature has classes or scores (checked at load)
    width = present.shape[1]
    for i in range(n):
        c = result.classifications.add()
        for j in range(width):
            item = c.classes.add()
            if classes is not None:
                item.label = classes[i, j].decode() if isinstance(classes[i, j], bytes) else str(classes[i, j])
            if scores is not None:
                item.score = float(np.float32(scores[i, j]))


def classify(core: ServerCore, request: Any) -> Any:
    from tensorflow_serving.apis import classification_pb2

    response = classification_pb2.ClassificationResponse()
    with held(core, request.model_spec) as v:
        sig = signature(v, request.model_spec.signature_name)
        classify_in(core, v, sig, request.input, response.result)
        fill_spec(response.model_spec, v, sig.name)
    return response
