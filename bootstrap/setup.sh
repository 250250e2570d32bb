#!/usr/bin/env bash
# EMR bootstrap action: install the job's pinned Python requirements on this node.
#
# Usage: setup.sh <s3://bucket/prefix/version/requirements-node.txt> [python]
#   python defaults to /usr/bin/python3, the interpreter PYSPARK_PYTHON points at.
# Runs on every node before any step; a failure here fails the cluster at bootstrap,
# with the reason in the node's bootstrap-actions log on S3.
set -euo pipefail

readonly USAGE="usage: setup.sh s3://bucket/prefix/version/requirements-node.txt [python]"
REQUIREMENTS_URI="${1:?$USAGE}"
PYTHON="${2:-/usr/bin/python3}"

fail() {
    echo "setup.sh: FAILED: $*" >&2
    exit 1
}

case "$REQUIREMENTS_URI" in
    s3://*) ;;
    *) fail "requirements location '$REQUIREMENTS_URI' is not an s3:// URI ($USAGE)" ;;
esac

command -v "$PYTHON" >/dev/null 2>&1 || fail "python interpreter '$PYTHON' not found on this node"
command -v aws >/dev/null 2>&1 || fail "the aws CLI is not on PATH; cannot download $REQUIREMENTS_URI"

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
requirements="$workdir/requirements.txt"

echo "setup.sh: downloading $REQUIREMENTS_URI"
aws s3 cp --only-show-errors "$REQUIREMENTS_URI" "$requirements" \
    || fail "could not download $REQUIREMENTS_URI (wrong bucket/key, or the EC2 instance profile lacks s3:GetObject)"

echo "setup.sh: installing requirements with $PYTHON ($("$PYTHON" --version 2>&1))"
sudo "$PYTHON" -m pip install --quiet --no-cache-dir --disable-pip-version-check -r "$requirements" \
    || fail "pip install -r $REQUIREMENTS_URI with $PYTHON failed (see pip's output above)"

sudo "$PYTHON" -c "import boto3, sqlalchemy, psycopg2, alembic, pyarrow, pandas, yaml, trino" \
    || fail "requirements installed but a module does not import with $PYTHON"

echo "setup.sh: done"
