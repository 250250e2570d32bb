#!/usr/bin/env bash
# EMR bootstrap action: check that this node's Python can load the job's dependency archive.
#
# Usage: setup.sh [python] [machine]
#   python defaults to /usr/bin/python3, the interpreter PYSPARK_PYTHON points at; machine (x86_64,
#   the default, or aarch64 on Graviton) is the architecture the cluster's archive was built for.
# Nothing is installed here: every third-party package comes in deps-<hash>.tar.gz, built for
# CPython 3.9 on manylinux x86_64 or aarch64 and unpacked by Spark in each container (spark.archives), so the
# node never reaches PyPI. This only refuses, at bootstrap, a node whose Python could not load it.
# A failure fails the cluster with the reason in the node's bootstrap-actions log on S3.
set -euo pipefail

PYTHON="${1:-/usr/bin/python3}"
readonly WANT_VERSION="3.9"
readonly WANT_MACHINE="${2:-x86_64}"

fail() {
    echo "setup.sh: FAILED: $*" >&2
    exit 1
}

command -v "$PYTHON" >/dev/null 2>&1 || fail "python interpreter '$PYTHON' not found on this node"

found="$("$PYTHON" -c 'import platform, sys; print("%d.%d %s" % (sys.version_info[0], sys.version_info[1], platform.machine()))')" \
    || fail "'$PYTHON' does not run"
version="${found% *}"
machine="${found#* }"
[ "$version" = "$WANT_VERSION" ] \
    || fail "'$PYTHON' is Python $version; the dependency archive is built for CPython $WANT_VERSION (pick an EMR 7.x release or set emr.python)"
[ "$machine" = "$WANT_MACHINE" ] \
    || fail "this node is $machine; the dependency archive holds $WANT_MACHINE wheels (use $WANT_MACHINE instance types in every group or fleet)"

echo "setup.sh: $PYTHON is Python $version on $machine: the dependency archive fits"
