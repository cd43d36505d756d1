# Shipyard: every target sets up what it needs first (`make setup` is quick when nothing changed).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.shipyard-installed
PIP_VERSION := 26.3

SPEC   ?= specs/penguins.toml
RUNS   ?= artifacts/runs
SQL_URL ?= sqlite:///artifacts/penguins.db
AS_OF  ?= 2024-01-08T00:00:00
MODELS ?= models
NAME   ?= penguins
GRPC_PORT ?= 8500
REST_PORT ?= 8501
SERVER ?= 127.0.0.1:$(GRPC_PORT)
IMAGE  ?= shipyard-serving:2.21.0

.PHONY: example-digits example-text shadow-demo diff drift help setup protos demo train train-sql penguins-db reproduce export serve models-config promote canary rollback \
	serve-docker test-docker test test-fast check lint bench bench-large clean

help:
	@echo "make demo       set up, then train, export and publish the penguins model end to end (artifacts/demo)"
	@echo "make test       set up, then make check and run the whole test suite"
	@echo "make test-fast  the tests that need no server, no training and no database server (under 2 minutes)"
	@echo "make train      train SPEC (default $(SPEC)) into $(RUNS)/<run_id>/"
	@echo "make penguins-db  load the penguins rows into a SQLite table with timestamps ($(SQL_URL))"
	@echo "make train-sql  train from that table as of AS_OF (default $(AS_OF))"
	@echo "make reproduce  retrain the newest run from its snapshot and check its weights hash"
	@echo "make export     export the newest run in $(RUNS) to $(MODELS)/<name>/<version>/"
	@echo "make example-digits / make example-text   write the example's data, train its builder, export to $(MODELS)"
	@echo "make serve      serve $(MODELS) with the local server (gRPC $(GRPC_PORT), REST $(REST_PORT))"
	@echo "make promote [VERSION=N] / make canary VERSION=N / make rollback   stable to the canary (or N); canary to N;"
	@echo "                 stable back to the previous stable (the label history is beside models.config)"
	@echo "make serve-docker  the same with the official TF Serving image (needs a Docker engine)"
	@echo "make shadow-demo  stable and canary on the local server, held-out rows through ShadowClient, the report"
	@echo "make diff / make drift   the differential test of the demo's two versions; drift of fresh and drifted requests"
	@echo "make bench      run the benchmarks (table on stdout, JSON in artifacts/bench/)"
	@echo "make bench-large  training 5M rows streaming: wall per row and peak RSS (about ten minutes)"
	@echo "make check      ruff lint and format, mypy on every package, the SDK alone without TensorFlow (tox -e sdk)"

setup: $(STAMP)

$(STAMP): requirements/lock.txt pyproject.toml client_sdk/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "pip==$(PIP_VERSION)"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . -e client_sdk
	@touch $@

# Regenerate the committed protobuf modules (a test fails when they are stale).
protos: setup
	$(PY) -m grpc_tools.protoc -I client_sdk/protos --python_out=client_sdk/src --pyi_out=client_sdk/src \
	  client_sdk/protos/shipyard_client/_proto/tf_types.proto client_sdk/protos/shipyard_client/_proto/serving_apis.proto
	$(PY) -m grpc_tools.protoc -I serving/protos --python_out=serving/_proto --pyi_out=serving/_proto \
	  serving/protos/shipyard_serving_configs.proto

demo: setup
	PY=$(PY) bash scripts/demo.sh

train: setup
	$(PY) -m train --spec $(SPEC) --out $(RUNS)

penguins-db: setup
	$(PY) -m train.sql_table --url $(SQL_URL)

train-sql: penguins-db
	$(PY) -m train --spec $(SPEC) --source $(SQL_URL) --as-of $(AS_OF) --out $(RUNS)

reproduce: setup
	@latest=$$(ls -1d $(RUNS)/*/ 2>/dev/null | grep -v '/\.' | sort | tail -n 1); \
	if [ -z "$$latest" ]; then echo "no run in $(RUNS): make train first" >&2; exit 2; fi; \
	$(PY) -m train --reproduce $$latest

export: setup
	@latest=$$(ls -1d $(RUNS)/*/ 2>/dev/null | grep -v '/\.' | sort | tail -n 1); \
	if [ -z "$$latest" ]; then echo "no run in $(RUNS): make train first" >&2; exit 2; fi; \
	$(PY) -m export --run $$latest --model-base-path $(MODELS)

# The examples of model code of one's own: data written from installed packages, trained, exported.
example-digits: setup
	$(PY) -m examples.digits_data --out data/digits
	$(PY) -m train --spec specs/digits_cnn.toml --source data/digits/digits.csv --out $(RUNS)/digits
	$(PY) -m export --run $$(ls -1d $(RUNS)/digits/*/ | grep -v '/\.' | sort | tail -n 1) --model-base-path $(MODELS)

example-text: setup
	$(PY) -m examples.text_data --out data/docstrings.csv
	$(PY) -m train --spec specs/docstrings.toml --source data/docstrings.csv --out $(RUNS)/docstrings
	$(PY) -m export --run $$(ls -1d $(RUNS)/docstrings/*/ | grep -v '/\.' | sort | tail -n 1) --model-base-path $(MODELS)

models-config: setup
	$(PY) -m release write --model-base-path $(MODELS)

serve: setup
	@test -f $(MODELS)/models.config || $(PY) -m release write --model-base-path $(MODELS)
	$(PY) -m serving --port=$(GRPC_PORT) --rest_api_port=$(REST_PORT) --bind_address=127.0.0.1 \
	  --model_config_file=$(MODELS)/models.config --model_config_file_poll_wait_seconds=5 \
	  --monitoring_config_file=serving/configs/monitoring.config \
	  --enable_batching --batching_parameters_file=serving/configs/batching.config

# The release flow: export labels a new version canary; promote moves stable to it; rollback moves
# stable back to the previous stable (from the label history beside models.config).
promote: setup
	@if [ -n "$(VERSION)" ]; then \
	  $(PY) -m release label --model-base-path $(MODELS) --name $(NAME) --label stable \
	    --version $(VERSION) --server $(SERVER); \
	else \
	  $(PY) -m release promote --model-base-path $(MODELS) --name $(NAME) --server $(SERVER); \
	fi

canary: setup
	@test -n "$(VERSION)" || { echo "usage: make canary VERSION=N [NAME=$(NAME)] [MODELS=$(MODELS)]" >&2; exit 2; }
	$(PY) -m release canary --model-base-path $(MODELS) --name $(NAME) \
	  --version $(VERSION) --server $(SERVER)

rollback: setup
	$(PY) -m release rollback --model-base-path $(MODELS) --name $(NAME) --server $(SERVER)

# The official TF Serving image. The model base path is mounted at the same absolute path inside
# the container, so the same models.config serves both servers.
serve-docker: setup
	@docker info >/dev/null 2>&1 || { echo "make serve-docker needs a running Docker engine; none answers here" \
	  "(use make serve for the local server)" >&2; exit 1; }
	@test -f $(MODELS)/models.config || $(PY) -m release write --model-base-path $(MODELS)
	docker build -f Dockerfile.serving -t $(IMAGE) .
	docker run --rm -p $(GRPC_PORT):8500 -p $(REST_PORT):8501 -v "$(abspath $(MODELS)):$(abspath $(MODELS))" \
	  $(IMAGE) --model_config_file=$(abspath $(MODELS))/models.config

test-docker: setup
	@docker info >/dev/null 2>&1 || { echo "make test-docker needs a running Docker engine; none answers here" >&2; \
	  exit 1; }
	$(PY) -m pytest tests/serving -k docker

DEMO ?= artifacts/demo

$(DEMO)/models/penguins/2:
	PY=$(PY) bash scripts/demo.sh

shadow-demo: setup $(DEMO)/models/penguins/2
	$(PY) scripts/shadow_demo.py --demo $(DEMO)

diff: setup $(DEMO)/models/penguins/2
	$(PY) -m monitor diff --baseline-dir $(DEMO)/models/penguins/1 --candidate-dir $(DEMO)/models/penguins/2 \
	  --data $$(ls -1d $(DEMO)/runs/2*/ | sort | tail -n 1) --out $(DEMO)/monitor/diff

drift: setup $(DEMO)/models/penguins/2
	$(PY) scripts/make_requests.py --out $(DEMO)
	@echo "== fresh requests (drawn from the penguins data): no drift expected"
	$(PY) -m monitor drift --card $(DEMO)/models/penguins/2 --inputs $(DEMO)/fresh.csv --out $(DEMO)/monitor/fresh
	@echo "== drifted requests (longer bills, heavier bodies, an unseen island): drift flagged, exit 1"
	$(PY) -m monitor drift --card $(DEMO)/models/penguins/2 --inputs $(DEMO)/drifted.csv --out $(DEMO)/monitor/drifted; \
	  test $$? -eq 1

lint: check

# The checks CI runs before the tests: ruff (lint and format), mypy on every package (the SDK strictly),
# and the SDK's own tests installed alone, without TensorFlow (tox env sdk; fetches its few packages).
check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	cd client_sdk && ../$(VENV)/bin/mypy
	$(VENV)/bin/tox -q -e sdk

test: check
	$(PY) -m pytest

# Everything that needs no server, no training and no database server (under 2 minutes).
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) -m bench

# Training 5M rows streaming (about ten minutes; not part of `make bench`).
bench-large: setup
	$(PY) -m bench train_scale_5m

clean:
	rm -rf artifacts models .pytest_cache .ruff_cache
