"""From a training run to a served-ready, published SavedModel version.

`signatures` (Predict on raw features, Classify/Regress on tf.Example), `examples` (rows to
tf.Example), `warmup` (the warmup requests), `model_card`, `validate` (load in a fresh process as TF
Serving does and compare), `gate` (the differential gate against the version in production),
`publish` (atomic rename into `models/<name>/<version>/`, pruning), `pipeline` (the steps in order).
"""
