"""What every handler needs: resolving a ModelSpec to a held version, and running a signature."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from serving import deadline
from serving.errors import ServingError, failed_precondition, from_tf_error, invalid
from serving.servable import DEFAULT_SIGNATURE, Signature, SignatureError
from serving.tensors import dtype_name

if TYPE_CHECKING:
    from serving.core import ServerCore
    from serving.manager import Version


def spec_of(model_spec: Any) -> tuple[str, int | None, str | None]:
    if not model_spec.name:
        raise invalid("Missing ModelSpec: model_spec.name is empty")
    which = model_spec.WhichOneof("version_choice")
    if which == "version":
        return model_spec.name, model_spec.version.value, None
    if which == "version_label":
        return model_spec.name, None, model_spec.version_label
    return model_spec.name, None, None


@contextmanager
def held(core: ServerCore, model_spec: Any) -> Iterator[Version]:
    name, version, label = spec_of(model_spec)
    with core.manager.get(name, version, label) as v:
        yield v


def fill_spec(out: Any, v: Version, signature_name: str | None) -> None:
    out.name = v.model
    out.version.value = v.number
    if signature_name is not None:
        out.signature_name = signature_name


def signature(v: Version, name: str) -> Signature:
    """The request's signature, looked up once per request and passed to everything after."""
    try:
        return v.servable.signature(name or DEFAULT_SIGNATURE)
    except SignatureError:
        raise failed_precondition(f'Serving signature key "{name or DEFAULT_SIGNATURE}" not found.') from None


def check_inputs(sig: Signature, feeds: Mapping[str, np.ndarray], dtypes: Mapping[str, int]) -> None:
    """Names and dtypes of the request's tensors against the signature's, naming the input. Shapes
    are not checked here: as in TF Serving, the session run decides (a signature declaring [-1, 1]
    takes [1] when its graph can), and its error is answered with the input named (`run`)."""
    expected, expect = sig.input_names, sig.input_specs
    if len(feeds) != len(expected) or any(name not in expect for name in feeds):
        for name in sorted(feeds):
            if name not in expect:
                raise invalid(
                    f"input tensor alias not found in signature: {name}. Inputs expected to be in the "
                    f"set {{{','.join(expected)}}}."
                )
        missing = [n for n in expected if n not in feeds]
        raise invalid(
            f"input tensor alias not found in request: missing input {missing[0]!r}; the signature "
            f"expects {{{','.join(expected)}}}"
        )
    for i, name in enumerate(expected):
        want = expect[name][0]
        got = dtypes[name]
        if want != got:
            raise invalid(f"Expects arg[{i}] ({name!r}) to be {dtype_name(want)} but {dtype_name(got)} is provided")


def _shape_hint(sig: Signature, feeds: Mapping[str, np.ndarray]) -> str:
    """The inputs whose shapes differ from what the signature declares: the likely cause of a session
    error, which itself names graph nodes rather than the request's inputs."""
    expect = sig.input_specs
    hints = []
    for name, value in sorted(feeds.items()):
        dims = expect[name][1] if name in expect else None
        have = value.shape
        if dims is not None and (
            len(have) != len(dims) or any(d >= 0 and d != h for d, h in zip(dims, have, strict=False))
        ):
            hints.append(f"input {name!r} has shape {list(have)}, the signature declares {dims} (-1: any size)")
        if len(hints) == 3:
            break
    return f" ({'; '.join(hints)})" if hints else ""


def run(
    core: ServerCore,
    v: Version,
    sig: Signature,
    feeds: Mapping[str, np.ndarray],
    output_filter: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    for o in output_filter:
        if o not in sig.outputs:
            raise invalid(
                f"output tensor alias not found in signature: {o} Outputs expected to be in the set "
                f"{{{','.join(sig.output_names)}}}."
            )
    if len(set(output_filter)) != len(output_filter):
        raise invalid("duplicate output tensor alias in output_filter")
    until = deadline.current()
    timeout_ms = deadline.remaining_ms(until)
    try:
        if core.batcher is not None:
            return core.batcher.run(v, sig, feeds, tuple(output_filter), until)
        return v.servable.run(sig, feeds, tuple(output_filter), timeout_ms)
    except ServingError:
        raise
    except (SignatureError, ValueError) as e:  # ValueError: a feed the session refuses
        raise invalid(f"{e}{_shape_hint(sig, feeds)}") from None
    except MemoryError:
        raise ServingError(
            grpc.StatusCode.RESOURCE_EXHAUSTED, f"out of memory running the signature{_shape_hint(sig, feeds)}"
        ) from None
    except Exception as e:  # noqa: BLE001 - TF errors carry their own canonical code
        if hasattr(e, "error_code"):
            err = from_tf_error(e)
            if err.code == grpc.StatusCode.INVALID_ARGUMENT:
                err = invalid(f"{err.message}{_shape_hint(sig, feeds)}")
            raise err from None
        raise ServingError(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}") from None
