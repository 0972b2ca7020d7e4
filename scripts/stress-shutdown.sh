#!/bin/bash
# Shutdown stress: start `BIN run` N times against one local Tansu broker and
# redis-server (fresh group and topics each time), make Redis refuse writes,
# SIGTERM it, and check the exit code and the log for aborts.
#
# Usage: scripts/stress-shutdown.sh BIN N MODE
#   MODE recover: REPLICAOF nowhere (READONLY), two clicks, heal, SIGTERM once
#                 the features landed (expects exit 0; RedisFaultTests' READONLY case)
#        retry:   SIGTERM while the writer retries READONLY (expects exit 1)
#        oom:     SIGTERM while the writer retries OOM (expects exit 1)
#        quick:   SIGTERM right after ready (expects exit 0)
# BIN may be a wrapper that sets e.g. LD_PRELOAD=libc_malloc_debug.so.0 and
# GLIBC_TUNABLES=glibc.malloc.check=3:glibc.malloc.perturb=165.
# Prints one line per failed iteration (its log is kept) and a summary.
BIN=$(realpath "$1"); N=$2; MODE=${3:-recover}
cd "$(dirname "$0")/.." && source scripts/env.sh
D=${TMPDIR:-/tmp}/freshet-stress-$$; mkdir -p $D
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
BP=$(free_port); RP=$(free_port)
tansu broker --listener-url tcp://127.0.0.1:$BP --advertised-listener-url tcp://127.0.0.1:$BP --storage-engine memory://tansu/ > $D/tansu.log 2>&1 &
TP=$!
redis-server --port $RP --save '' --appendonly no > $D/redis.log 2>&1 &
RSP=$!
trap 'kill $TP $RSP 2>/dev/null' EXIT
sleep 2
R="redis-cli -p $RP"
readyz() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:$1/readyz; }
body() { curl -s --max-time 2 http://127.0.0.1:$1/readyz; }
waitfor() { local t=$1; shift; for ((k=0;k<t*10;k++)); do if eval "$@"; then return 0; fi; sleep 0.1; done; return 1; }
fails=0
for ((i=1;i<=N;i++)); do
  G=g$$-$i; AP=$(free_port)
  cat > $D/top-$i.yaml <<T
checkpoint:
  interval: 1s
progress:
  interval: 0s
event_time:
  idle_timeout: 1s
sources:
  interactions: int-$G
  impressions: imp-$G
  partitions: 1
T
  $R replicaof no one >/dev/null
  L=$D/run-$i.log
  $BIN run --topology $D/top-$i.yaml --brokers 127.0.0.1:$BP --redis redis://127.0.0.1:$RP --group $G --admin-port=$AP > $L 2>&1 &
  P=$!
  waitfor 60 '[ "$(readyz $AP)" = 200 ]' || echo "iter $i: never ready"
  NOW=$(date +%s%3N)
  if [ $MODE != quick ]; then
    [ $MODE = recover -o $MODE = retry ] && $R replicaof 127.0.0.1 1 >/dev/null
    [ $MODE = oom ] && $R config set maxmemory 1 >/dev/null
    printf '{"user_id":"u1","item_id":"i1","action":"click","ts":%s}\n{"user_id":"u1","item_id":"i2","action":"click","ts":%s}\n' $NOW $((NOW+1)) > $D/clicks-$i.jsonl
    $BIN produce --brokers 127.0.0.1:$BP --topology $D/top-$i.yaml --file $D/clicks-$i.jsonl > $D/produce-$i.log 2>&1 || echo "iter $i: produce failed"
    waitfor 30 'body $AP | grep -q "refuses writes"' || echo "iter $i: refusal not seen"
    if [ $MODE = recover ]; then
      $R replicaof no one >/dev/null
      waitfor 60 '[ "$($R hget user:u1 interaction_count)" != "" ] && [ "$(readyz $AP)" = 200 ]' || echo "iter $i: not resumed"
    fi
  fi
  kill -TERM $P
  wait $P; rc=$?
  [ $MODE = oom ] && $R config set maxmemory 0 >/dev/null
  $R replicaof no one >/dev/null
  $R del user:u1 >/dev/null
  if grep -q "crashed\|malloc\|corrupt\|double free\|AddressSanitizer\|ThreadSanitizer\|Fatal error" $L; then
    echo "iter $i: rc=$rc CRASH-LIKE OUTPUT in $L"; fails=$((fails+1))
  elif [ $MODE = recover -o $MODE = quick ] && [ $rc != 0 ]; then
    echo "iter $i: rc=$rc (expected 0) $L"; fails=$((fails+1))
  elif [ $MODE != recover -a $MODE != quick ] && [ $rc != 1 ]; then
    echo "iter $i: rc=$rc (expected 1) $L"; fails=$((fails+1))
  else
    rm -f $L $D/top-$i.yaml $D/clicks-$i.jsonl $D/produce-$i.log
  fi
done
echo "MODE=$MODE N=$N failures=$fails dir=$D"
