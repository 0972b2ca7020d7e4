#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, build, and run
# `freshet run` with its embedded default (a local Tansu broker and Redis on
# loopback, synthetic events flowing). Extra arguments go to `freshet run`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
swift build -c release --product freshet
exec .build/release/freshet run --topology topologies/recsys.yaml "$@"
