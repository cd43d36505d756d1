"""The operator's command line over a model base path: writes `models.config` and moves version labels
(canary, promote, rollback), through a running server's HandleReloadConfigRequest where one is given.
It uses the on-disk contract (`modelbase`) and TF Serving's gRPC API, nothing of the server itself,
so it drives TF Serving and the local server alike. See `release.model_config`."""
