#!/usr/bin/env bash
# Starts a Redis Cluster on loopback: one redis-server per PORT (cluster mode,
# no persistence), then `redis-cli --cluster create` with one replica per
# master (6 ports: 3 masters + 3 replicas). Each node lives in DIR/node-PORT
# (redis.pid, redis.log, nodes.conf). Waits (bounded) for cluster_state:ok
# on every node and for every replica's link to its master.
# Usage: scripts/start-redis-cluster.sh DIR PORT PORT PORT PORT PORT PORT
# Env: FRESHET_CLUSTER_NODE_TIMEOUT (ms before a silent master is failed over, default 2000),
#      FRESHET_START_TIMEOUT (seconds, default 20).
set -euo pipefail
if [ "$#" -lt 7 ]; then
    echo "usage: $0 DIR PORT x6" >&2
    exit 2
fi
dir="$1"
shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_timeout="${FRESHET_CLUSTER_NODE_TIMEOUT:-2000}"
timeout="${FRESHET_START_TIMEOUT:-20}"
cli="$(command -v redis-cli || true)"
if [ -z "$cli" ]; then
    echo "start-redis-cluster: redis-cli not found (Debian package redis-tools, installed with redis-server)" >&2
    exit 1
fi
nodes=()
for port in "$@"; do
    "$root/scripts/start-redis.sh" "$port" "$dir/node-$port" --cluster-enabled yes \
        --cluster-config-file nodes.conf --cluster-node-timeout "$node_timeout"
    nodes+=("127.0.0.1:$port")
done
"$cli" --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/cluster-create.log" 2>&1 || {
    echo "start-redis-cluster: redis-cli --cluster create failed:" >&2
    cat "$dir/cluster-create.log" >&2
    exit 1
}
deadline=$((SECONDS + timeout))
for port in "$@"; do
    until "$cli" -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "start-redis-cluster: node $port did not reach cluster_state:ok within ${timeout}s" >&2
            exit 1
        fi
        sleep 0.1
    done
    # Replicas in sync, so that a master's writes can be acknowledged (WAIT) from the start.
    until ! "$cli" -p "$port" info replication 2>/dev/null | grep -q '^role:slave' \
        || "$cli" -p "$port" info replication 2>/dev/null | grep -q '^master_link_status:up'; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "start-redis-cluster: replica $port did not finish its sync within ${timeout}s" >&2
            exit 1
        fi
        sleep 0.1
    done
done
