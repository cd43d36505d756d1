"""Model code of the user's: the spec's `[model] builder` names a function that builds the Keras model.

    [model]
    builder = "examples.digits_cnn:build"     # a module importable from the current directory
    builder = "my_models/cnn.py:build"        # or a Python file, relative to the current directory

The contract. `build(ctx: BuildContext) -> keras.Model`, called once per training, after seeding,
inside the distribution strategy's scope. `ctx` gives:
- `ctx.inputs`: one `keras.Input` per spec feature, named after it, in the dtype and shape the model
  takes (numbers float32 with NaN for missing, `shape` numbers [*shape], categories and text as
  strings, integer categories int64, images decoded to float32 [height, width, channels] in [0, 1]).
  The returned model must take exactly these inputs (by name) and nothing else.
- `ctx.preprocessed[name]`: Shipyard's preprocessing of that input, statistics from the training split
  only: numbers imputed and normalized (with a missing indicator), categories one-hot, text through a
  TextVectorization layer with its adapted vocabulary, images as they are.
- `ctx.features()`: every feature as one [batch, k] tensor, the way the built-in model sees them.
- `ctx.train`: the training split's inputs as numpy arrays (images decoded), to `adapt()` layers of
  one's own on the training split and nothing else (`ctx.train["text"]`): every training row up to
  100,000, beyond that 100,000 rows picked by a seeded permutation, in key order (`builder_sample_rows`
  in the manifest), so memory stays bounded on large data.
- `ctx.head(x)`: the task's output layer (softmax over the classes, or the rescaled regression output).
- `ctx.spec`, `ctx.task`, `ctx.classes`, `ctx.n_classes`, `ctx.seed`.

The model's one output must be, for classification, [batch, n_classes] probabilities (softmax, not
logits) in `ctx.classes` order; for regression, [batch] or [batch, 1] in the label's units. It may
come back compiled (its optimizer and loss are then used; the labels it is fitted on are class indices,
int64, for classification and float32 values for regression) or not (it is compiled with the spec's
optimizer and the task's loss). Custom layers must be registered with
`keras.saving.register_keras_serializable` (no Lambda layers: a saved model with one does not load
safely). The pipeline still owns seeding and op determinism, the data and its snapshot, the split,
the callbacks (progress, early stopping), the metrics and the export.

The builder's module file is copied into the run directory (`builder/`) and its SHA-256 recorded in
the manifest and the model card; `--reproduce` runs that copy. Only that one file is recorded: code it
imports from elsewhere is not.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from train.errors import InputError
from train.spec import Spec

log = logging.getLogger(__name__)

BUILDER_DIR = "builder"


@dataclass(frozen=True)
class BuilderSource:
    """Where a builder's code is: the spec's text, its module file, the function's name and the file's hash."""

    name: str  # as written in the spec
    file: Path
    function: str
    sha256: str

    @property
    def record(self) -> dict[str, str]:
        return {"builder": self.name, "file": f"{BUILDER_DIR}/{self.file.name}", "sha256": self.sha256}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def locate(name: str, cwd: Path | None = None) -> BuilderSource:
    """Find the builder's module file without running it. Raises InputError naming what is missing."""
    module, _, function = name.rpartition(":")
    where = Path(cwd or Path.cwd())
    if module.endswith(".py") or "/" in module:
        path = (where / module).resolve()
        if not path.is_file():
            raise InputError(f"builder {name!r}: there is no file {module} (relative to {where})")
    else:
        sys.path.insert(0, str(where))
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        finally:
            sys.path.remove(str(where))
        if found is None or not found.origin or not found.origin.endswith(".py"):
            raise InputError(f"builder {name!r}: no module {module!r} importable from {where}")
        path = Path(found.origin)
    return BuilderSource(name, path, function, file_sha256(path))


def load_function(source: BuilderSource, file: Path | None = None) -> Callable[..., Any]:
    """Run the module file (the recorded copy when `file` is given) and return its builder function."""
    path = file or source.file
    module_name = f"shipyard_builder_{file_sha256(path)[:16]}"
    module: ModuleType | None = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 - the user's module: one line, the traceback at debug level
            del sys.modules[module_name]
            log.debug("importing %s failed:\n%s", path, traceback.format_exc())
            raise InputError(f"builder {source.name!r}: importing {path.name} raised {type(e).__name__}: {e}") from None
        finally:
            sys.path.remove(str(path.parent))
    fn = getattr(module, source.function, None)
    if not callable(fn):
        raise InputError(f"builder {source.name!r}: {path.name} has no function {source.function!r}")
    return fn  # type: ignore[no-any-return]


class _Preprocessed(Mapping[str, Any]):
    """Shipyard's preprocessing per input, built on first use (so that a builder that does not use a
    feature's preprocessing gets no layers for it)."""

    def __init__(self, ctx: BuildContext) -> None:
        self._ctx = ctx
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            from train.model import preprocess

            f = self._ctx.feature(name)
            self._built[name] = preprocess(f, self._ctx.stats[name], self._ctx.inputs[name])
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ctx.inputs)

    def __len__(self) -> int:
        return len(self._ctx.inputs)


@dataclass
class BuildContext:
    spec: Spec
    inputs: dict[str, Any]
    stats: dict[str, Any]
    train: dict[str, np.ndarray]
    classes: list[str] | None
    label_mean: float = 0.0
    label_std: float = 1.0
    preprocessed: Mapping[str, Any] = field(init=False)
    _features: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.preprocessed = _Preprocessed(self)

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def n_classes(self) -> int | None:
        return len(self.classes) if self.classes is not None else None

    @property
    def seed(self) -> int:
        return self.spec.training.seed

    def feature(self, name: str) -> Any:
        for f in self.spec.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def features(self) -> Any:
        """Every feature as one [batch, k] float tensor (the built-in model's view)."""
        if self._features is None:
            import keras

            from train.model import flat_view

            parts = [flat_view(self.feature(n), self.preprocessed[n]) for n in self.inputs]
            self._features = keras.layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
        return self._features

    def head(self, x: Any) -> Any:
        from train.model import task_head

        return task_head(self.spec, x, self.n_classes, self.label_mean, self.label_std)


def build(fn: Callable[..., Any], name: str, ctx: BuildContext) -> Any:
    """Call a builder and check what it returns against the contract (InputError on a breach)."""
    try:
        model = fn(ctx)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's code: one line, the traceback at debug level
        log.debug("the builder failed:\n%s", traceback.format_exc())
        raise InputError(f"builder {name!r} raised {type(e).__name__}: {e}") from None
    check_model(model, name, ctx)
    return model


def check_model(model: Any, name: str, ctx: BuildContext) -> None:
    import keras

    from train.model import INPUT_DTYPES, input_shape

    if not isinstance(model, keras.Model):
        raise InputError(f"builder {name!r} returned {type(model).__name__}, not a keras.Model")
    try:
        inputs = list(model.inputs)
    except (AttributeError, ValueError):
        raise InputError(f"builder {name!r}: the model has no defined inputs (build it on ctx.inputs)") from None
    got = {t.name.split(":")[0]: t for t in inputs}
    wanted = ctx.spec.feature_names
    missing = [n for n in wanted if n not in got]
    extra = sorted(n for n in got if n not in wanted)
    if missing or extra:
        raise InputError(
            f"builder {name!r}: the model's inputs do not match the spec's features"
            + (f"; it does not take {', '.join(missing)}" if missing else "")
            + (f"; it takes {', '.join(extra)}, which the spec does not declare" if extra else "")
        )
    for f in ctx.spec.features:
        t = got[f.name]
        if str(t.dtype) != INPUT_DTYPES[f.kind] or tuple(t.shape[1:]) != input_shape(f):
            raise InputError(
                f"builder {name!r}: input {f.name!r} is {t.dtype} {list(t.shape)}; the {f.kind} feature needs "
                f"{INPUT_DTYPES[f.kind]} {[None, *input_shape(f)]} (use ctx.inputs)"
            )
    if len(model.outputs) != 1:
        raise InputError(f"builder {name!r}: the model has {len(model.outputs)} outputs; it must have one")
    shape = tuple(model.outputs[0].shape[1:])
    if ctx.task == "classification" and shape != (ctx.n_classes,):
        raise InputError(
            f"builder {name!r}: a classifier of {ctx.n_classes} classes must output [batch, {ctx.n_classes}] "
            f"probabilities, this one outputs {[None, *shape]}"
        )
    if ctx.task == "regression" and shape not in ((), (1,)):
        raise InputError(f"builder {name!r}: a regressor must output [batch] or [batch, 1], not {[None, *shape]}")
    rows = min(8, len(next(iter(ctx.train.values())))) if ctx.train else 0
    if rows:
        sample = {k: v[:rows] for k, v in ctx.train.items()}
        out = np.asarray(model(sample, training=False))
        if not np.isfinite(out).all():
            raise InputError(f"builder {name!r}: the untrained model outputs non-finite values on training rows")
        if ctx.task == "classification" and (
            (out < -1e-6).any() or (out > 1 + 1e-6).any() or not np.allclose(out.sum(axis=1), 1.0, atol=1e-3)
        ):
            raise InputError(
                f"builder {name!r}: the outputs are not probabilities (rows must be in [0, 1] and sum to 1; "
                "end with a softmax, or use ctx.head(x))"
            )


def builtin(ctx: BuildContext) -> Any:
    """The built-in model: every feature preprocessed, `hidden_units` ReLU layers, the task's head."""
    import keras

    x = ctx.features()
    for i, units in enumerate(ctx.spec.training.hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")(x)
    return keras.Model(inputs=ctx.inputs, outputs=ctx.head(x), name=ctx.spec.name)
