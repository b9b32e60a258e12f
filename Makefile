# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing and installs into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | md5sum | cut -c1-12)
DATA_ROOT ?= $(or $(LENSLAKE_DATA_ROOT),.lenslake)

.PHONY: setup system-deps test demo serve bench check-java clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel on this machine; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c requirements.lock -e ".[dev]"
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

setup: $(STAMP)

# Debian's stunnel4: the TLS 1.3 terminator the Kafka TLS test puts in front of the test broker.
system-deps:
	@command -v stunnel4 >/dev/null 2>&1 || command -v stunnel >/dev/null 2>&1 || { \
	  echo "installing stunnel4 (for the Kafka TLS test)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stunnel4 >/dev/null; }

check-java:
	@if [ "$${LENSLAKE_ENGINE:-duckdb}" = "spark" ] && ! command -v java >/dev/null 2>&1; then \
	  echo "The Spark engine needs Java 17: install it (apt-get install openjdk-17-jre-headless) or use the default DuckDB engine."; exit 2; fi

test: setup system-deps
	GX_ANALYTICS_ENABLED=false $(BIN)/python -m pytest -q

demo: setup check-java
	GX_ANALYTICS_ENABLED=false $(BIN)/lenslake demo --source $${DEMO_SOURCE:-files}
	@if [ "$${DEMO_SERVE:-1}" != "0" ]; then $(MAKE) --no-print-directory serve; fi

serve: setup
	DAGSTER_HOME=$$(realpath $(DATA_ROOT))/dagster GX_ANALYTICS_ENABLED=false $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $${DAGSTER_PORT:-3000}

bench: setup
	$(BIN)/python bench/bench_pipeline.py

clean:
	rm -rf $(DATA_ROOT)
