"""The declared feature spec: a TOML file under `specs/`, checked key by key.

A spec names the features with their kind, the label, the task, the hyper-parameters and the
seed. Every table and key is checked: an unknown key is an error, never a silently ignored typo.

>>> spec = load_spec("specs/penguins.toml")
>>> spec.task, spec.label, [f.name for f in spec.features][:2]
('classification', 'species', ['bill_length_mm', 'bill_depth_mm'])
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from train.errors import InputError

TASKS = ("classification", "regression")
KINDS = ("numeric", "string", "integer", "text", "image")
TEXT_OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")
TEXT_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none")
# The keys each kind takes besides name, kind and required.
KIND_KEYS = {
    "numeric": {"bucketize", "shape"},
    "string": {"hash_bins"},
    "integer": {"hash_bins"},
    "text": {"max_tokens", "output_mode", "sequence_length", "ngrams", "standardize"},
    "image": {"height", "width", "channels"},
}


@dataclass(frozen=True)
class Feature:
    """One raw input of the model.

    kind:
    - "numeric": float32; missing values imputed, with a missing indicator. `shape = [8, 8]` makes it
      a fixed-shape tensor per row (imputed element-wise, no indicator). `bucketize` adds one-hot
      buckets of a scalar numeric feature at the given boundaries.
    - "string" / "integer": categorical, vocabulary learned on the training split with one
      out-of-vocabulary bucket; `hash_bins` hashes into that many bins instead.
    - "text": free text, a TextVectorization layer inside the model (vocabulary adapted on the
      training split): `max_tokens`, `output_mode` (int, multi_hot, count, tf_idf), `sequence_length`
      (int mode), `ngrams`, `standardize`.
    - "image": encoded PNG or JPEG bytes; decoded, resized to `height` x `width` x `channels` and
      scaled to [0, 1] inside the model.
    `required`: a missing value (NaN, "", empty bytes) is refused by the served model, and training
    rows missing it are dropped and counted.
    """

    name: str
    kind: str
    bucketize: tuple[float, ...] | None = None
    hash_bins: int | None = None
    shape: tuple[int, ...] | None = None
    required: bool = False
    max_tokens: int | None = None
    output_mode: str | None = None
    sequence_length: int | None = None
    ngrams: int | None = None
    standardize: str | None = None
    height: int | None = None
    width: int | None = None
    channels: int | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """An image feature's decoded shape: (height, width, channels)."""
        if self.height is None or self.width is None or self.channels is None:
            raise ValueError(f"feature {self.name!r} is not an image feature")
        return self.height, self.width, self.channels

    @property
    def tensor_shape(self) -> tuple[int, ...]:
        """The shape of one row as the served model takes it (() for a scalar)."""
        return self.shape or ()


@dataclass(frozen=True)
class Training:
    seed: int = 42
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 0.01
    hidden_units: tuple[int, ...] = (16,)
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    # The split hashes each row key with split_seed, not with `seed`: retraining with another seed
    # keeps the same test rows, so two models can be compared on rows neither was trained on.
    split_seed: int = 0
    # Stop when the validation loss has not improved for this many epochs and keep the best epoch's
    # weights (0: train every epoch and keep the last).
    early_stopping_patience: int = 0
    # "adam", "adamw", "sgd" or "rmsprop", at learning_rate; momentum for sgd and rmsprop, weight_decay for adamw.
    optimizer: str = "adam"
    momentum: float = 0.0
    weight_decay: float = 0.0
    # "balanced": each class weighted by n / (classes * its count) in the training split; "none": equal.
    class_weight: str = "none"


@dataclass(frozen=True)
class DataSettings:
    key: str = "row_id"
    table: str | None = None
    timestamp_column: str | None = None


@dataclass(frozen=True)
class Spec:
    name: str
    task: str
    label: str
    features: tuple[Feature, ...]
    training: Training
    data: DataSettings
    gate: dict[str, float] = field(default_factory=dict)
    source_text: str = ""  # the TOML as read, kept so that a run can be repeated from its manifest
    # "module:function" or "path/to/file.py:function" that builds the Keras model (None: the built-in one).
    builder: str | None = None

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def with_seed(self, seed: int) -> Spec:
        return replace(self, training=replace(self.training, seed=seed))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source_text")
        # Options a feature's kind does not take stay out (they are None).
        d["features"] = [{k: v for k, v in f.items() if v is not None} for f in d["features"]]
        return d


GATE_KEYS = {
    "classification": ("max_accuracy_drop", "max_log_loss_increase", "min_class_agreement"),
    "regression": ("max_rmse_increase", "max_mae_increase"),
}


def _check_keys(
    where: str, table: dict[str, Any], allowed: set[str], required: frozenset[str] | set[str] = frozenset()
) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise InputError(
            f"spec: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"in {where} (allowed: {', '.join(sorted(allowed))})"
        )
    missing = sorted(required - set(table))
    if missing:
        raise InputError(f"spec: missing key {', '.join(map(repr, missing))} in {where}")


def _typed(where: str, value: Any, types: type | tuple[type, ...], what: str) -> Any:
    # bool is an int in Python; a spec that says `epochs = true` is still wrong.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise InputError(f"spec: {where} must be {what}, got {value!r}")
    if not isinstance(value, types):
        raise InputError(f"spec: {where} must be {what}, got {value!r}")
    return value


# What a feature name must be to name a Keras input and a SignatureDef input: TensorFlow's op-name
# rule ([A-Za-z0-9.][A-Za-z0-9_.\-/]*) without the '/' that Keras refuses.
FEATURE_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-]*")


def _positive_int(where: str, value: Any, minimum: int = 1) -> int:
    _typed(where, value, int, "an integer")
    if value < minimum:
        raise InputError(f"spec: {where} must be at least {minimum}, got {value}")
    return int(value)


def _choice(where: str, value: Any, choices: tuple[str, ...]) -> str:
    _typed(where, value, str, "a string")
    if value not in choices:
        raise InputError(f"spec: {where} is {value!r}; expected one of {', '.join(choices)}")
    return str(value)


def _feature(i: int, raw: Any) -> Feature:
    where = f"[[features]] #{i + 1}"
    if not isinstance(raw, dict):
        raise InputError(f"spec: {where} must be a table")
    _check_keys(where, raw, {"name", "kind", "required"} | set().union(*KIND_KEYS.values()), {"name", "kind"})
    name = _typed(f"{where}.name", raw["name"], str, "a string")
    if not FEATURE_NAME.fullmatch(name):
        raise InputError(
            f"spec: feature name {name!r} cannot name a model input (Keras refuses '/', TensorFlow op names "
            "allow letters, digits, '_', '.' and '-', not first '_' or '-'); rename the column"
        )
    where = f"feature {name!r}"
    kind = raw["kind"]
    if kind not in KINDS:
        raise InputError(f"spec: {where} has kind {kind!r}; expected one of {', '.join(KINDS)}")
    foreign = sorted(set(raw) - {"name", "kind", "required"} - KIND_KEYS[kind])
    if foreign:
        raise InputError(
            f"spec: {where}: {', '.join(map(repr, foreign))} do{'es' if len(foreign) == 1 else ''} not apply to "
            f"{kind} features (they take: {', '.join(sorted(KIND_KEYS[kind])) or 'nothing more'})"
        )
    required = _typed(f"{where}.required", raw.get("required", False), bool, "true or false")
    out: dict[str, Any] = {"name": name, "kind": kind, "required": required}
    bucketize = raw.get("bucketize")
    if bucketize is not None:
        if (
            not isinstance(bucketize, list)
            or not bucketize
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bucketize)
        ):
            raise InputError(f"spec: {where}: bucketize must be a non-empty list of numbers, got {bucketize!r}")
        if sorted(bucketize) != bucketize or len(set(bucketize)) != len(bucketize):
            raise InputError(f"spec: {where}: bucketize boundaries must be strictly increasing, got {bucketize!r}")
        out["bucketize"] = tuple(float(b) for b in bucketize)
    shape = raw.get("shape")
    if shape is not None:
        if (
            not isinstance(shape, list)
            or not 1 <= len(shape) <= 4
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise InputError(f"spec: {where}: shape must be a list of 1 to 4 positive integers, got {shape!r}")
        if bucketize is not None:
            raise InputError(f"spec: {where}: bucketize applies to scalar numeric features, not to a shape")
        out["shape"] = tuple(shape)
    if "hash_bins" in raw:
        out["hash_bins"] = _positive_int(f"{where}.hash_bins", raw["hash_bins"], 2)
    if kind == "text":
        out["max_tokens"] = _positive_int(f"{where}.max_tokens", raw.get("max_tokens", 10000), 3)
        out["output_mode"] = _choice(f"{where}.output_mode", raw.get("output_mode", "int"), TEXT_OUTPUT_MODES)
        out["ngrams"] = _positive_int(f"{where}.ngrams", raw.get("ngrams", 1))
        out["standardize"] = _choice(
            f"{where}.standardize", raw.get("standardize", "lower_and_strip_punctuation"), TEXT_STANDARDIZE
        )
        if out["output_mode"] == "int":
            out["sequence_length"] = _positive_int(f"{where}.sequence_length", raw.get("sequence_length", 64))
        elif "sequence_length" in raw:
            raise InputError(f'spec: {where}: sequence_length applies to output_mode = "int" only')
    if kind == "image":
        missing = [k for k in ("height", "width") if k not in raw]
        if missing:
            raise InputError(f"spec: {where}: an image feature needs {' and '.join(missing)}")
        out["height"] = _positive_int(f"{where}.height", raw["height"])
        out["width"] = _positive_int(f"{where}.width", raw["width"])
        channels = _typed(f"{where}.channels", raw.get("channels", 3), int, "an integer")
        if channels not in (1, 3):
            raise InputError(f"spec: {where}.channels must be 1 (grayscale) or 3 (RGB), got {channels}")
        out["channels"] = channels
    return Feature(**out)


STRING_CHOICES = {"optimizer": ("adam", "adamw", "sgd", "rmsprop"), "class_weight": ("none", "balanced")}


def _training(raw: dict[str, Any]) -> Training:
    _check_keys("[training]", raw, set(Training.__dataclass_fields__))
    defaults = Training()
    ints = {"seed", "epochs", "batch_size", "split_seed", "early_stopping_patience"}
    values: dict[str, Any] = {}
    for key in Training.__dataclass_fields__:
        value = raw.get(key, getattr(defaults, key))
        where = f"[training].{key}"
        if key in ints:
            _typed(where, value, int, "an integer")
            if key == "early_stopping_patience" and value < 0:
                raise InputError(f"spec: {where} must be 0 (off) or more, got {value}")
            if key not in ("seed", "split_seed", "early_stopping_patience") and value < 1:
                raise InputError(f"spec: {where} must be at least 1, got {value}")
            if key in ("seed", "split_seed") and not 0 <= value < 2**32:
                raise InputError(f"spec: {where} must be in [0, 2**32), got {value}")
        elif key in STRING_CHOICES:
            _typed(where, value, str, "a string")
            if value not in STRING_CHOICES[key]:
                raise InputError(f"spec: {where} is {value!r}; expected one of {', '.join(STRING_CHOICES[key])}")
        elif key == "hidden_units":
            if not isinstance(value, (list, tuple)) or not all(
                isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in value
            ):
                raise InputError(f"spec: {where} must be a list of positive integers, got {value!r}")
            value = tuple(value)
        else:
            _typed(where, value, (int, float), "a number")
            value = float(value)
            if key == "learning_rate" and value <= 0:
                raise InputError(f"spec: {where} must be positive, got {value}")
            if key.endswith("_fraction") and not 0 < value < 0.5:
                raise InputError(f"spec: {where} must be in (0, 0.5), got {value}")
            if key == "momentum" and not 0 <= value < 1:
                raise InputError(f"spec: {where} must be in [0, 1), got {value}")
            if key == "weight_decay" and value < 0:
                raise InputError(f"spec: {where} must be 0 or more, got {value}")
        values[key] = value
    training = Training(**values)
    if training.momentum and training.optimizer not in ("sgd", "rmsprop"):
        raise InputError(f"spec: [training].momentum applies to sgd and rmsprop, not {training.optimizer}")
    if training.weight_decay and training.optimizer != "adamw":
        raise InputError(f"spec: [training].weight_decay applies to adamw, not {training.optimizer}")
    return training


def parse_spec(text: str, origin: str = "<spec>") -> Spec:
    """Parse and check a spec from TOML text. Raises InputError naming the first problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"spec: {origin} is not valid TOML: {e}") from None
    _check_keys("the spec", raw, {"model", "data", "features", "training", "gate"}, {"model", "features"})
    model = raw["model"]
    _check_keys("[model]", model, {"name", "task", "label", "builder"}, {"name", "task", "label"})
    name = _typed("[model].name", model["name"], str, "a string")
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise InputError(f"spec: [model].name must be letters, digits, '_' or '-', got {name!r}")
    task = model["task"]
    if task not in TASKS:
        raise InputError(f"spec: [model].task is {task!r}; expected one of {', '.join(TASKS)}")
    label = _typed("[model].label", model["label"], str, "a string")
    builder = model.get("builder")
    if builder is not None:
        _typed("[model].builder", builder, str, "a string")
        module, sep, function = builder.rpartition(":")
        if not sep or not module or not function.isidentifier():
            raise InputError(
                f"spec: [model].builder must be 'module:function' or 'path/to/file.py:function', got {builder!r}"
            )

    data_raw = raw.get("data", {})
    _check_keys("[data]", data_raw, set(DataSettings.__dataclass_fields__))
    for k, v in data_raw.items():
        _typed(f"[data].{k}", v, str, "a string")
    data = DataSettings(**data_raw)

    if not isinstance(raw["features"], list) or not raw["features"]:
        raise InputError("spec: [[features]] must list at least one feature")
    features = tuple(_feature(i, f) for i, f in enumerate(raw["features"]))
    names = [f.name for f in features]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"spec: feature {dupes[0]!r} is declared more than once")
    if label in names:
        raise InputError(f"spec: the label {label!r} is also declared as a feature")
    if data.key in names or data.key == label:
        raise InputError(f"spec: the row key {data.key!r} cannot be a feature or the label")

    training = _training(raw.get("training", {}))
    if training.validation_fraction + training.test_fraction >= 0.8:
        raise InputError("spec: [training] validation_fraction + test_fraction must leave at least 20% for training")

    gate_raw = raw.get("gate", {})
    _check_keys("[gate]", gate_raw, set(GATE_KEYS[task]))
    gate = {k: float(_typed(f"[gate].{k}", v, (int, float), "a number")) for k, v in gate_raw.items()}
    if training.class_weight != "none" and task != "classification":
        raise InputError(f"spec: [training].class_weight applies to classification, not {task}")
    return Spec(name, task, label, features, training, data, gate, text, builder)


def load_spec(path: str | Path) -> Spec:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"spec: cannot read {p}: {e.strerror}") from None
    return parse_spec(text, str(p))


def encode_labels(spec: Spec, labels: np.ndarray, classes: list[str] | None) -> np.ndarray:
    """Labels as the model is trained on them: class indices (in `classes` order), or float32 values."""
    if spec.task == "classification":
        assert classes is not None
        index = {c: i for i, c in enumerate(classes)}
        return np.array([index[v] for v in labels.tolist()], dtype=np.int64)
    return labels.astype(np.float32)
