#!/bin/sh
# Seeded training, then export into the model base path (published only if it passes the gate).
# Environment: SPEC (default specs/penguins.toml), SEED (default: the spec's), MODEL_BASE_PATH (default /models),
# RUNS (default /models/.runs: a name TF Serving ignores).
set -eu
SPEC=${SPEC:-specs/penguins.toml}
MODEL_BASE_PATH=${MODEL_BASE_PATH:-/models}
RUNS=${RUNS:-$MODEL_BASE_PATH/.runs}
set -- --spec "$SPEC" --out "$RUNS"
if [ -n "${SEED:-}" ]; then set -- "$@" --seed "$SEED"; fi
python3 -m train "$@"
run=$(ls -1d "$RUNS"/*/ | sort | tail -n 1)
python3 -m export --run "$run" --model-base-path "$MODEL_BASE_PATH"
