"""Regress: tf.Examples in, one value each out, from a signature with output `outputs` (float
[batch] or [batch, 1])."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serving.errors import invalid
from serving.handlers.common import fill_spec, held, run, signature
from serving.handlers.examples import REGRESS_METHOD, example_input_name, serialized_examples
from serving.servable import Signature

if TYPE_CHECKING:
    from serving.core import ServerCore
    from serving.manager import Version


def regress_in(core: ServerCore, v: Version, sig: Signature, inp: Any, result: Any) -> None:
    name = example_input_name(sig, REGRESS_METHOD, core.options.method_name_check)
    if "outputs" not in sig.outputs:
        raise invalid("Expected regression signature output 'outputs'")
    examples = serialized_examples(inp)
    values = run(core, v, sig, {name: examples}, ["outputs"])["outputs"]
    n = len(examples)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or values.shape[0] != n:
        raise invalid(
            f"Expected output Tensor 'outputs' of shape [batch_size] or [batch_size, 1] with batch_size "
            f"{n}, got {list(values.shape)}"
        )
    for x in values.tolist():
        result.regressions.add().value = float(x)


def regress(core: ServerCore, request: Any) -> Any:
    from tensorflow_serving.apis import regression_pb2

    response = regression_pb2.RegressionResponse()
    with held(core, request.model_spec) as v:
        sig = signature(v, request.model_spec.signature_name)
        regress_in(core, v, sig, request.input, response.result)
        fill_spec(response.model_spec, v, sig.name)
    return response
