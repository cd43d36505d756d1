"""What TF Serving does, in Python: load SavedModels the way it loads them and run their signatures.

Knows only what TF Serving knows (SavedModels on disk, config files, requests); never imports
train or export. `servable` (a loaded SavedModel: session plus SignatureDefs), `warmup` (the
`assets.extra/tf_serving_warmup_requests` replayed at load).
"""
