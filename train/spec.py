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

from train.errors import InputError

TASKS = ("classification", "regression")
KINDS = ("numeric", "string", "integer")


@dataclass(frozen=True)
class Feature:
    """One raw input of the model.

    kind: "numeric" (float32; missing values imputed, with a missing indicator), "string"
    (categorical, vocabulary learned on the training split with one out-of-vocabulary bucket) or
    "integer" (categorical on int64 values, likewise). `bucketize` adds one-hot buckets of a
    numeric feature at the given boundaries; `hash_bins` hashes a categorical feature into that
    many bins instead of learning a vocabulary.
    """

    name: str
    kind: str
    bucketize: tuple[float, ...] | None = None
    hash_bins: int | None = None


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

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def with_seed(self, seed: int) -> Spec:
        return replace(self, training=replace(self.training, seed=seed))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source_text")
        return d


GATE_KEYS = {
    "classification": ("max_accuracy_drop", "max_log_loss_increase", "min_class_agreement"),
    "regression": ("max_rmse_increase", "max_mae_increase"),
}


def _check_keys(where: str, table: dict[str, Any], allowed: set[str], required: set[str] = frozenset()) -> None:
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


def _feature(i: int, raw: Any) -> Feature:
    where = f"[[features]] #{i + 1}"
    if not isinstance(raw, dict):
        raise InputError(f"spec: {where} must be a table")
    _check_keys(where, raw, {"name", "kind", "bucketize", "hash_bins"}, {"name", "kind"})
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
    bucketize = raw.get("bucketize")
    if bucketize is not None:
        if kind != "numeric":
            raise InputError(f"spec: {where}: bucketize applies to numeric features only, not {kind}")
        if (
            not isinstance(bucketize, list)
            or not bucketize
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bucketize)
        ):
            raise InputError(f"spec: {where}: bucketize must be a non-empty list of numbers, got {bucketize!r}")
        if sorted(bucketize) != bucketize or len(set(bucketize)) != len(bucketize):
            raise InputError(f"spec: {where}: bucketize boundaries must be strictly increasing, got {bucketize!r}")
        bucketize = tuple(float(b) for b in bucketize)
    hash_bins = raw.get("hash_bins")
    if hash_bins is not None:
        if kind == "numeric":
            raise InputError(f"spec: {where}: hash_bins applies to string and integer features, not numeric")
        _typed(f"{where}.hash_bins", hash_bins, int, "an integer")
        if hash_bins < 2:
            raise InputError(f"spec: {where}: hash_bins must be at least 2, got {hash_bins}")
    return Feature(name=name, kind=kind, bucketize=bucketize, hash_bins=hash_bins)


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
    _check_keys("[model]", model, {"name", "task", "label"}, {"name", "task", "label"})
    name = _typed("[model].name", model["name"], str, "a string")
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise InputError(f"spec: [model].name must be letters, digits, '_' or '-', got {name!r}")
    task = model["task"]
    if task not in TASKS:
        raise InputError(f"spec: [model].task is {task!r}; expected one of {', '.join(TASKS)}")
    label = _typed("[model].label", model["label"], str, "a string")

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
    return Spec(name, task, label, features, training, data, gate, text)


def load_spec(path: str | Path) -> Spec:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"spec: cannot read {p}: {e.strerror}") from None
    return parse_spec(text, str(p))
