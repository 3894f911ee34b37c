#!/usr/bin/env bash
# Offline demo: simulate a small organisation with injected violations, replay it, show the catch.
set -euo pipefail
cd "$(dirname "$0")/.."
out=out/demo-replay
mkdir -p "$out"
export WATCHDOG_PSEUDONYM_KEY="${WATCHDOG_PSEUDONYM_KEY:-demo-only-key-$(hostname)-0000}"
.venv/bin/watchdog simulate --out "$out" --accounts 200 --days 7 --seed 7
.venv/bin/watchdog replay --events "$out/events.jsonl" --directory "$out/directory.jsonl" \
  --subjects "$out/subjects.jsonl" --policy "$out/policy.yaml" --out "$out/alerts.jsonl"
echo
echo "A few of the alerts (all in $out/alerts.jsonl):"
.venv/bin/python - "$out/alerts.jsonl" <<'PY'
import sys, orjson
seen = set()
for line in open(sys.argv[1], "rb"):
    a = orjson.loads(line)
    if a["rule"] not in seen:
        seen.add(a["rule"])
        print(f"  [{a['severity']:>8}] {a['rule']:<24} {a['summary'][:150]}")
PY
