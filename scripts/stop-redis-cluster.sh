#!/usr/bin/env bash
# Stops every node started by start-redis-cluster.sh with the same DIR, all
# at once (each: SIGTERM, then SIGKILL after a bounded wait).
# Usage: scripts/stop-redis-cluster.sh DIR
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pids=()
for node in "$1"/node-*; do
    [ -d "$node" ] || continue
    "$root/scripts/stop-services.sh" "$node" &
    pids+=("$!")
done
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
exit "$status"
