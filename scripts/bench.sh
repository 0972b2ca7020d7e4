#!/usr/bin/env bash
# Every benchmark in one go, as reported in the README. Each starts its own
# local broker and Redis on free loopback ports (pass --brokers/--redis to a
# subcommand to use others). Release build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
swift build -c release --product freshet
bin=.build/release/freshet
$bin bench e2e --events 2000000
# The processing-cost figure: 3 M events, features only (events per processor CPU-second).
$bin bench e2e --events 3000000 --users 200000 --items 50000 --no-with-embeddings
$bin bench core --events 2000000
# The task layer alone (no broker, no Redis): features only and the default topology.
$bin bench tasks
$bin bench memory --users 1000000 --items 100000
$bin bench restore --users 1000000
# Freshness at about half the maximum of each configuration (features only; with embeddings).
$bin bench freshness --rate "${FRESHNESS_RATE:-38000}" --seconds 30 --no-embeddings
$bin bench freshness --rate "${FRESHNESS_RATE_EMBEDDINGS:-8000}" --seconds 30 --probes 10
$bin bench embeddings
$bin bench redis
