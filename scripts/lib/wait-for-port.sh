# Sourced by the start-* scripts: waits until a just-started server accepts
# connections on 127.0.0.1:PORT, or fails clearly (process died, or timeout).
# Usage: wait_for_port NAME PID PORT PIDFILE LOG TIMEOUT_SECONDS SCRIPT
wait_for_port() {
    local name="$1" pid="$2" port="$3" pidfile="$4" log="$5" timeout="$6" script="$7"
    local deadline=$((SECONDS + timeout))
    while true; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$script: $name exited during start-up; last log lines:" >&2
            tail -n 20 "$log" >&2 || true
            rm -f "$pidfile"
            exit 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "$script: 127.0.0.1:$port not accepting connections after ${timeout}s; log: $log" >&2
            kill "$pid" 2>/dev/null || true
            rm -f "$pidfile"
            exit 1
        fi
        sleep 0.1
    done
    echo "$script: $name (pid $pid) listening on 127.0.0.1:$port" >&2
}
