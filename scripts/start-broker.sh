#!/usr/bin/env bash
# Starts the Tansu Kafka broker (memory storage) on 127.0.0.1:PORT in the
# background. Writes DIR/tansu.pid and DIR/tansu.log and waits (bounded) until
# the port accepts connections.
# Usage: scripts/start-broker.sh PORT DIR
# Env: FRESHET_TANSU (path of the tansu binary; default .freshet/bin/tansu, then PATH),
#      FRESHET_START_TIMEOUT (seconds to wait for the port, default 20).
set -euo pipefail
if [ "$#" -lt 2 ]; then
    echo "usage: $0 PORT DIR" >&2
    exit 2
fi
port="$1"
dir="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tansu="${FRESHET_TANSU:-$root/.freshet/bin/tansu}"
if [ ! -x "$tansu" ]; then
    tansu="$(command -v tansu || true)"
fi
if [ -z "$tansu" ] || [ ! -x "$tansu" ]; then
    echo "start-broker: tansu binary not found (run scripts/setup.sh)" >&2
    exit 1
fi
mkdir -p "$dir"
log="$dir/tansu.log"
pidfile="$dir/tansu.pid"
timeout="${FRESHET_START_TIMEOUT:-20}"

# A port already in use would make the wait below succeed against someone else's server.
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "start-broker: 127.0.0.1:$port is already in use" >&2
    exit 1
fi

nohup "$tansu" broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "memory://tansu/" \
    >"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"

# shellcheck source=scripts/lib/wait-for-port.sh
source "$root/scripts/lib/wait-for-port.sh"
wait_for_port tansu "$pid" "$port" "$pidfile" "$log" "$timeout" start-broker
