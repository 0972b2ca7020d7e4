#!/usr/bin/env bash
# Stops the broker and Redis started by start-broker.sh / start-redis.sh with
# the same DIR, by their pid files (SIGTERM, then SIGKILL after a bounded wait).
# Usage: scripts/stop-services.sh DIR
set -uo pipefail
if [ "$#" -lt 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir="$1"
status=0
for name in tansu redis; do
    pidfile="$dir/$name.pid"
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    rm -f "$pidfile"
    case "$pid" in ''|*[!0-9]*) continue ;; esac
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || status=1
    fi
done
exit "$status"
