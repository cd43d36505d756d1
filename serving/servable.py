"""A Servable: one loaded SavedModel version, as TF Serving holds it.

Loaded the way TF Serving loads: the MetaGraphDef with the requested tags (`serve`) is imported
into a graph of its own and restored in a session (`tf.compat.v1.saved_model.loader.load`), and
its SignatureDefs are run by tensor name. This loads TF1-era graphs with reference variables as
well as Keras 3 exports (`tf.saved_model.load` fails on a signature that exposes a reference-typed
tensor).

>>> s = Servable.load("m", 1, "tests/fixtures/does-not-exist")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
LoadError: ...
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serving.deadline import bucket

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
INIT_OP_SIGNATURE = "__saved_model_init_op"


class LoadError(Exception):
    """A SavedModel that cannot be loaded (missing, corrupt, no such tags, bad warmup)."""


class SignatureError(Exception):
    """A request that does not fit a signature. `kind` is "not_found" or "invalid_argument"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Signature:
    """One SignatureDef of a loaded version, with what every request needs read once at load: its
    input names (sorted), each input's dtype and dims (None: unknown rank), its output names."""

    def __init__(self, name: str, definition: Any) -> None:
        self.name = name
        self.method_name: str = definition.method_name
        self.inputs = definition.inputs  # alias -> TensorInfo
        self.outputs = definition.outputs
        self.input_names: list[str] = sorted(definition.inputs)
        self.output_names: tuple[str, ...] = tuple(sorted(definition.outputs))
        self.input_specs: dict[str, tuple[int, list[int] | None]] = {
            n: (t.dtype, None if t.tensor_shape.unknown_rank else [d.size for d in t.tensor_shape.dim])
            for n, t in definition.inputs.items()
        }


class Servable:
    def __init__(
        self, name: str, version: int, path: Path, session: Any, meta_graph: Any, run_in_caller_thread: bool = True
    ) -> None:
        self.name = name
        self.version = version
        self.path = path
        self._session = session
        self.meta_graph = meta_graph
        self.signatures = {k: Signature(k, v) for k, v in meta_graph.signature_def.items() if k != INIT_OP_SIGNATURE}
        # (signature, input names, outputs, session timeout in ms or 0) -> (session callable, output names)
        self._callables: dict[tuple[str, tuple[str, ...], tuple[str, ...], int], tuple[Any, tuple[str, ...]]] = {}
        self._lock = threading.Lock()
        self.run_in_caller_thread = run_in_caller_thread

    @classmethod
    def load(
        cls,
        name: str,
        version: int,
        path: str | Path,
        tags: Sequence[str] = ("serve",),
        run_in_caller_thread: bool = True,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
    ) -> Servable:
        import tensorflow as tf
        from tensorflow.python.util import deprecation

        path = Path(path)
        if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
            raise LoadError(f"no SavedModel (saved_model.pb) in {path}")
        graph = tf.Graph()
        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=intra_op_threads, inter_op_parallelism_threads=inter_op_threads
        )
        session = tf.compat.v1.Session(graph=graph, config=config)
        try:
            # The v1 loader is the one that loads what TF Serving loads; its deprecation notice is noise here.
            with graph.as_default(), deprecation.silence():
                meta_graph = tf.compat.v1.saved_model.loader.load(session, list(tags), str(path))
        except Exception as e:
            session.close()
            raise LoadError(f"cannot load the SavedModel in {path} with tags {list(tags)}: {e}") from e
        return cls(name, version, path, session, meta_graph, run_in_caller_thread)

    def signature(self, signature_name: str) -> Signature:
        """The signature named `signature_name` ("": serving_default); SignatureError if none."""
        sig = self.signatures.get(signature_name or DEFAULT_SIGNATURE)
        if sig is None:
            raise SignatureError(
                "not_found",
                f'Serving signature key "{signature_name}" not found; model {self.name} version {self.version} '
                f"has: {', '.join(sorted(self.signatures))}",
            )
        return sig

    def run(
        self,
        signature: str | Signature,
        feeds: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
        timeout_ms: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Run a signature (by name, or the `Signature` a handler already looked up) on numpy inputs
        keyed by the signature's input names. With `timeout_ms` TensorFlow stops the run at (about)
        that many milliseconds (DeadlineExceededError): see `serving.deadline` for the ladder of
        timeouts and what cannot be stopped."""
        sig = signature if isinstance(signature, Signature) else self.signature(signature)
        names = tuple(sorted(feeds))
        key = (sig.name, names, tuple(output_filter), 0 if timeout_ms is None else bucket(timeout_ms))
        entry = self._callables.get(key)
        if entry is None:  # first call with these names: check them and make the session callable
            entry = self._prepare(sig, key)
        fn, outs = entry
        values = fn(*(feeds[n] for n in names))
        return dict(zip(outs, (np.asarray(v) for v in values), strict=True))

    def _prepare(
        self, sig: Signature, key: tuple[str, tuple[str, ...], tuple[str, ...], int]
    ) -> tuple[Any, tuple[str, ...]]:
        signature_name, names, output_filter, timeout_ms = key
        missing = sorted(set(sig.inputs) - set(names))
        if missing:
            raise SignatureError(
                "invalid_argument", f"input {missing[0]!r} is missing; expected inputs: {', '.join(sorted(sig.inputs))}"
            )
        extra = sorted(set(names) - set(sig.inputs))
        if extra:
            raise SignatureError(
                "invalid_argument",
                f"input {extra[0]!r} is not an input of signature "
                f"{signature_name or DEFAULT_SIGNATURE!r}; expected: {', '.join(sorted(sig.inputs))}",
            )
        outs = output_filter or sig.output_names
        unknown = [o for o in outs if o not in sig.outputs]
        if unknown:
            raise SignatureError(
                "invalid_argument",
                f"output {unknown[0]!r} is not an output of the signature; it has: {', '.join(sorted(sig.outputs))}",
            )
        with self._lock:
            entry = self._callables.get(key)
            if entry is None:
                fn = self._make_callable(
                    [sig.inputs[n].name for n in names], [sig.outputs[o].name for o in outs], timeout_ms
                )
                entry = self._callables[key] = (fn, outs)
        return entry

    def _make_callable(self, feeds: list[str], fetches: list[str], timeout_ms: int = 0) -> Any:
        """A C++ Session callable (Session::MakeCallable) for these tensor names: the feeds go to
        TensorFlow positionally, without the feed-dict handling of Session.run (0.13 ms against
        0.36 ms per single-row penguins call here). With `run_in_caller_thread` the graph's ops run
        in the calling thread instead of being handed to the inter-op pool (0.05 ms): right for the
        small graphs served here, where the hand-off costs more than the ops; ops still use the
        intra-op pool inside themselves.

        With a timeout the run goes to the inter-op pool whatever `run_in_caller_thread` says: TF
        enforces `timeout_in_ms` only there (a caller-thread run of a looping graph ignores it)."""
        from tensorflow.core.protobuf import config_pb2

        options = config_pb2.CallableOptions(feed=feeds, fetch=fetches)
        if timeout_ms:
            options.run_options.timeout_in_ms = timeout_ms
        elif self.run_in_caller_thread:
            options.run_options.inter_op_thread_pool = -1
        return self._session._make_callable_from_options(options)

    def close(self) -> None:
        self._session.close()
