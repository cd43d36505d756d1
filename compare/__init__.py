"""The comparison of two models, and of live data with training data, in one place that train, export
and monitor import and none of them owns: metrics and their deltas against thresholds, agreement and
the flip matrix (`compare.metrics`), their plots (`compare.plots`), and the per-row text and image
summaries whose distributions the model card records and drift compares (`compare.summaries`).
No TensorFlow here."""
