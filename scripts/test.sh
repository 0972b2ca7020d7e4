#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs
# (apt packages, the Tansu broker and Confluent's librdkafka under .freshet/),
# builds, and runs unit and integration tests. Integration tests start their
# own broker and Redis on free loopback ports.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
# Feast (for the Feast tests) installs from PyPI while the build uses the CPU.
mkdir -p .freshet
bash scripts/setup-feast.sh > .freshet/setup-feast.log 2>&1 &
feast_setup=$!
swift build --build-tests
if ! wait "$feast_setup"; then
    echo "test.sh: scripts/setup-feast.sh failed; the Feast tests will retry it:" >&2
    tail -20 .freshet/setup-feast.log >&2
fi
# Three test processes at a time (FRESHET_TEST_WORKERS to change): the
# integration tests spend most of their time waiting (group joins, session
# timeouts, outages), so on a 2-core machine two workers left the cores
# idle half the time; three took the suite from ~24 to ~16 minutes on a
# slow host (README, "Two commands"). Each test starts its own broker
# and Redis on free ports.
swift test --skip-build --parallel --num-workers "${FRESHET_TEST_WORKERS:-3}" "$@"
