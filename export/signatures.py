"""The SavedModel's signatures, written with Keras 3's ExportArchive.

- `serving_default` (Predict): one input per raw feature, named as in the spec, shape [batch] (or
  [batch, *shape] for a numeric feature with a shape), in its natural dtype (float32 numeric, string
  categorical and text, int64 integer categorical, string for an image: the encoded PNG or JPEG
  bytes, decoded inside by `train.images`). A `required` feature's missing value (NaN, "", -1, empty
  bytes) fails the request with INVALID_ARGUMENT naming the feature. Outputs:
  classification `probabilities` [batch, n_classes], `class_ids` [batch] int64, `classes` [batch]
  string; regression `predictions` [batch] float32.
- `classification` (Classify API) or `regression` (Regress API): one input `inputs`, serialized
  `tf.Example` [batch]. Outputs `classes` string [batch, n_classes] and `scores` float [batch,
  n_classes], or `outputs` float [batch].

TF2 SavedModels carry the method name `tensorflow/serving/predict` on every signature and
ExportArchive cannot set another, so `set_method_names` rewrites `saved_model.pb` afterwards: the
classify and regress signatures then also serve under TF Serving's
`--enable_signature_method_name_check`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from train.data import MISSING_INT
from train.images import decode_images
from train.spec import Feature, Spec

_MISSING_WORDS = {
    "numeric": "NaN",
    "string": "an empty string",
    "text": "an empty string",
    "integer": "-1",
    "image": "empty bytes",
}


def _missing(feature: Feature, values: Any) -> Any:
    """Per row: is the value missing? (the same rule as train.data.is_missing, in the graph)"""
    import tensorflow as tf

    if feature.kind == "numeric":
        flat = tf.reshape(values, [tf.shape(values)[0], -1])
        return tf.reduce_any(tf.math.is_nan(flat), axis=1)
    if feature.kind == "integer":
        return tf.equal(values, MISSING_INT)
    return tf.equal(tf.strings.length(values), 0)


PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
PREDICT_SIGNATURE = "serving_default"
CLASSIFY_SIGNATURE = "classification"
REGRESS_SIGNATURE = "regression"


def method_names(task: str) -> dict[str, str]:
    if task == "classification":
        return {PREDICT_SIGNATURE: PREDICT_METHOD, CLASSIFY_SIGNATURE: CLASSIFY_METHOD}
    return {PREDICT_SIGNATURE: PREDICT_METHOD, REGRESS_SIGNATURE: REGRESS_METHOD}


def write_saved_model(model: Any, spec: Spec, classes: list[str] | None, path: Path, track: Any = None) -> None:
    """Write `model` (raw features in, see train.model) with the three signatures to `path`.
    `track`: the Keras object holding the variables, when `model` is a plain callable around it."""
    import keras
    import tensorflow as tf

    dtypes = {"numeric": tf.float32, "string": tf.string, "integer": tf.int64, "text": tf.string, "image": tf.string}
    feature_specs = {f.name: tf.TensorSpec([None, *f.tensor_shape], dtypes[f.kind], name=f.name) for f in spec.features}
    parse_spec = {}
    for f in spec.features:
        default: Any = {"numeric": float("nan"), "integer": MISSING_INT}.get(f.kind, "")
        if f.shape:
            default = [float("nan")] * int(np.prod(f.shape))
        parse_spec[f.name] = tf.io.FixedLenFeature(list(f.tensor_shape), dtypes[f.kind], default_value=default)

    def model_inputs(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The raw request tensors -> the model's inputs: required values checked, images decoded."""
        checks = []
        for f in spec.features:
            if f.required:
                checks.append(
                    tf.debugging.Assert(
                        tf.logical_not(tf.reduce_any(_missing(f, features[f.name]))),
                        [f"feature `{f.name}` is required and a value is missing ({_MISSING_WORDS[f.kind]})"],
                    )
                )
        with tf.control_dependencies(checks):
            out = {k: tf.identity(v) for k, v in features.items()}
        for f in spec.features:
            if f.kind == "image":
                out[f.name] = decode_images(out[f.name], f.name, *f.image_shape)
        return out

    archive = keras.export.ExportArchive()
    archive.track(model if track is None else track)

    if spec.task == "classification":
        assert classes
        class_names = tf.constant(classes, dtype=tf.string)

        def predict(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            probabilities = model(model_inputs(features), training=False)
            class_ids = tf.argmax(probabilities, axis=1)
            return {
                "probabilities": probabilities,
                "class_ids": class_ids,
                "classes": tf.gather(class_names, class_ids),
            }

        def classify(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            features = tf.io.parse_example(inputs, parse_spec)
            scores = model(model_inputs(features), training=False)
            batch = tf.shape(inputs)[0]
            return {"classes": tf.tile(class_names[tf.newaxis, :], [batch, 1]), "scores": scores}

        archive.add_endpoint(PREDICT_SIGNATURE, predict, input_signature=[feature_specs])
        archive.add_endpoint(
            CLASSIFY_SIGNATURE, classify, input_signature=[tf.TensorSpec([None], tf.string, name="inputs")]
        )
    else:

        def predict(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            return {"predictions": tf.reshape(model(model_inputs(features), training=False), [-1])}

        def regress(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            features = tf.io.parse_example(inputs, parse_spec)
            return {"outputs": tf.reshape(model(model_inputs(features), training=False), [-1])}

        archive.add_endpoint(PREDICT_SIGNATURE, predict, input_signature=[feature_specs])
        archive.add_endpoint(
            REGRESS_SIGNATURE, regress, input_signature=[tf.TensorSpec([None], tf.string, name="inputs")]
        )
    archive.write_out(str(path), verbose=False)
    set_method_names(path, method_names(spec.task))


def read_saved_model_proto(path: Path) -> Any:
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((path / "saved_model.pb").read_bytes())
    return sm


def set_method_names(path: Path, names: dict[str, str]) -> None:
    """Rewrite the method_name of the given signatures in `path/saved_model.pb` (in place, atomically)."""
    sm = read_saved_model_proto(path)
    for mg in sm.meta_graphs:
        for sig_name, method in names.items():
            if sig_name in mg.signature_def:
                mg.signature_def[sig_name].method_name = method
    tmp = path / "saved_model.pb.tmp"
    tmp.write_bytes(sm.SerializeToString())
    tmp.replace(path / "saved_model.pb")


def describe_signatures(path: Path, tags: tuple[str, ...] = ("serve",)) -> dict[str, Any]:
    """The SignatureDefs of the MetaGraph with `tags`, as plain data: method name, inputs and outputs
    with dtype and shape (-1 for unknown dimensions)."""
    from tensorflow.core.framework import types_pb2

    sm = read_saved_model_proto(path)
    for mg in sm.meta_graphs:
        if set(mg.meta_info_def.tags) == set(tags):
            break
    else:
        raise ValueError(f"no MetaGraph tagged {list(tags)} in {path}")

    def tensors(m: Any) -> dict[str, Any]:
        return {
            k: {
                "dtype": types_pb2.DataType.Name(v.dtype),
                "shape": None if v.tensor_shape.unknown_rank else [d.size for d in v.tensor_shape.dim],
            }
            for k, v in sorted(m.items())
        }

    return {
        name: {"method_name": s.method_name, "inputs": tensors(s.inputs), "outputs": tensors(s.outputs)}
        for name, s in sorted(mg.signature_def.items())
        if not name.startswith("__")
    }
