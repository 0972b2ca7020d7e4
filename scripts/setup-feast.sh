#!/usr/bin/env bash
# Idempotent: a venv of its own with Feast (feast[redis] 0.67.0, the version
# FEAST_LAYOUT.md was checked against) for the Feast integration test and for
# trying the shipped feast_repo/. Kept apart from .freshet/venv so that Feast's
# pinned dependencies (protobuf, pandas, pyarrow) never disturb the broker's.
# 91 s and 590 MB with an empty pip cache (measured: `time scripts/setup-feast.sh` on a fresh venv).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.freshet/feast-venv"
version="${FRESHET_FEAST_VERSION:-0.67.0}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import feast, sys; sys.exit(feast.__version__ != '$version')" 2>/dev/null; then
    echo "setup-feast: installing feast[redis]==$version from PyPI into $venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check "feast[redis]==$version"
fi
echo "$venv/bin/python"
