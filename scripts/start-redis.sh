#!/usr/bin/env bash
# Starts redis-server on 127.0.0.1:PORT in the background (no persistence
# unless extra arguments enable it). Writes DIR/redis.pid and DIR/redis.log
# and waits (bounded) until the port accepts connections.
# Usage: scripts/start-redis.sh PORT DIR [extra redis-server args...]
# Env: FRESHET_REDIS_SERVER (path of redis-server), FRESHET_START_TIMEOUT (seconds, default 20).
set -euo pipefail
if [ "$#" -lt 2 ]; then
    echo "usage: $0 PORT DIR [redis-server args...]" >&2
    exit 2
fi
port="$1"
dir="$2"
shift 2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
server="${FRESHET_REDIS_SERVER:-$root/.freshet/bin/redis-server}"
if [ ! -x "$server" ]; then
    server="$(command -v redis-server || true)"
fi
if [ -z "$server" ] || [ ! -x "$server" ]; then
    echo "start-redis: redis-server not found (run scripts/setup.sh)" >&2
    exit 1
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
log="$dir/redis.log"
pidfile="$dir/redis.pid"
timeout="${FRESHET_START_TIMEOUT:-20}"

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "start-redis: 127.0.0.1:$port is already in use" >&2
    exit 1
fi

nohup "$server" --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --daemonize no --dir "$dir" "$@" \
    >"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"

# shellcheck source=scripts/lib/wait-for-port.sh
source "$root/scripts/lib/wait-for-port.sh"
wait_for_port redis-server "$pid" "$port" "$pidfile" "$log" "$timeout" start-redis
