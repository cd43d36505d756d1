"""Seeded, deterministic training of a Keras model whose first layers are the preprocessing.

The stages, one module each: `spec` (the declared features), `data` (CSV or SQL "as of" a
timestamp), `snapshot` (the exact rows and their content hash), `split` (seeded, by row key),
`model` (preprocessing layers plus network), `fit` (determinism and the training loop),
`manifest` (what a run recorded), `run` (a run directory, written atomically).
"""
