#!/usr/bin/env bash
# The end-to-end demo on the embedded defaults, on a base path of its own that it resets each time:
# train, export (gated, atomic), serve with the local TF-Serving-compatible server, predict over gRPC
# and REST, publish a second version and watch it roll over, stop the server.
# Each step prints the command it runs, so it can be repeated by hand.
set -euo pipefail
PY=${PY:-.venv/bin/python}
DEMO=${DEMO:-artifacts/demo}
rm -rf "$DEMO"
mkdir -p "$DEMO"

step() { echo; echo "\$ $*"; "$@"; }
newest_run() { ls -1d "$DEMO"/runs/*/ | sort | tail -n 1; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "== 1. train the penguins classifier (seed 42)"
step "$PY" -m train -q --spec specs/penguins.toml --seed 42 --out "$DEMO/runs"
first=$(newest_run)

echo; echo "== 2. export it: signatures, warmup, model card, fresh-process validation, atomic publish"
step "$PY" -m export -q --newest-takes-all --run "$first" --model-base-path "$DEMO/models"

echo; echo "== 3. serve it with the local TF-Serving-compatible server"
GRPC=$(free_port); REST=$(free_port)
echo "\$ $PY -m serving --port=$GRPC --rest_api_port=$REST --model_name=penguins --model_base_path=$DEMO/models/penguins --bind_address=127.0.0.1 &"
"$PY" -m serving --port="$GRPC" --rest_api_port="$REST" --model_name=penguins \
  --model_base_path="$(pwd)/$DEMO/models/penguins" --bind_address=127.0.0.1 > "$DEMO/server.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$REST/v1/models/penguins" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "the server exited:"; tail -20 "$DEMO/server.log"; exit 1; }
  sleep 0.2
done
step curl -s "http://127.0.0.1:$REST/v1/models/penguins"
echo

echo; echo "== 4. predict held-out penguins over gRPC (TF Serving's API) and over REST"
step "$PY" scripts/demo_client.py predict --target "127.0.0.1:$GRPC" --run "$first"
body='{"instances": [{"bill_length_mm": 46.5, "bill_depth_mm": 17.9, "flipper_length_mm": 192.0, "body_mass_g": 3500.0, "island": "Dream", "sex": "female", "year": 2007}]}'
step curl -s -X POST "http://127.0.0.1:$REST/v1/models/penguins:predict" -d "$body"
echo

echo; echo "== 5. train again with another seed and export: version 2 is published only if it passes the gate"
step "$PY" -m train -q --spec specs/penguins.toml --seed 7 --out "$DEMO/runs"
second=$(newest_run)
set +e
echo; echo "\$ $PY -m export -q --newest-takes-all --run $second --model-base-path $DEMO/models"
"$PY" -m export -q --newest-takes-all --run "$second" --model-base-path "$DEMO/models"
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
  echo; echo "== 6. the server picks version 2 up on its next poll and rolls over (1 is unloaded after 2 is AVAILABLE)"
  step "$PY" scripts/demo_client.py wait-version --target "127.0.0.1:$GRPC" --version 2
  step "$PY" scripts/demo_client.py predict --target "127.0.0.1:$GRPC" --run "$second"
  step curl -s "http://127.0.0.1:$REST/v1/models/penguins"
  echo
elif [ "$rc" -eq 1 ]; then
  echo "(the differential gate refused the second model, so version 1 keeps serving; report: ${second}differential_report.json)"
else
  exit "$rc"
fi

echo; echo "== 7. stop the server (SIGTERM: requests in flight finish)"
kill -TERM $server; wait $server || true
trap - EXIT
grep -E "AVAILABLE|unloading|stopped" "$DEMO/server.log" | sed 's/^/  /'
echo; echo "published versions under $DEMO/models/penguins: $(ls "$DEMO/models/penguins" | tr '\n' ' ')"
