#!/usr/bin/env bash
# Stops every node started by start-redis-cluster.sh with the same DIR.
# Usage: scripts/stop-redis-cluster.sh DIR
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
status=0
for node in "$1"/node-*; do
    [ -d "$node" ] || continue
    "$root/scripts/stop-services.sh" "$node" || status=1
done
exit "$status"
