#!/usr/bin/env bash
# The end-to-end demo on the embedded defaults, on a base path of its own that it resets each time.
# Each step prints the command it runs, so it can be repeated by hand.
set -euo pipefail
PY=${PY:-.venv/bin/python}
DEMO=${DEMO:-artifacts/demo}
rm -rf "$DEMO"
mkdir -p "$DEMO"

step() { echo; echo "\$ $*"; "$@"; }
newest_run() { ls -1d "$DEMO"/runs/*/ | sort | tail -n 1; }

echo "== 1. train the penguins classifier (seed 42)"
step "$PY" -m train -q --spec specs/penguins.toml --seed 42 --out "$DEMO/runs"
first=$(newest_run)

echo; echo "== 2. export it: signatures, warmup, model card, fresh-process validation, atomic publish"
step "$PY" -m export -q --run "$first" --model-base-path "$DEMO/models"

echo; echo "== 3. train again with another seed, and export: published as version 2 only if it passes the gate"
step "$PY" -m train -q --spec specs/penguins.toml --seed 7 --out "$DEMO/runs"
second=$(newest_run)
set +e
echo; echo "\$ $PY -m export -q --run $second --model-base-path $DEMO/models"
"$PY" -m export -q --run "$second" --model-base-path "$DEMO/models"
rc=$?
set -e
if [ "$rc" -eq 1 ]; then
  echo "(the differential gate refused the second model; its report: ${second}differential_report.json)"
elif [ "$rc" -ne 0 ]; then
  exit "$rc"
fi

echo; echo "== published versions under $DEMO/models/penguins:"
ls -1 "$DEMO/models/penguins"
