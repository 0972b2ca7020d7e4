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
swift build --build-tests
swift test --skip-build "$@"
