"""An unreachable broker: one warning per retry interval that names the connection error,
nothing about idempotence, no "Unclosed AIOKafkaProducer"; SIGINT still stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from tests.services.procs import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_connection_error_is_named_once_per_retry(tmp_path: Path) -> None:
    port = free_port()  # nobody listens there
    cfg = tmp_path / "watchdog.yaml"
    cfg.write_text(f"kafka: {{bootstrap: '127.0.0.1:{port}'}}\nlisten: '127.0.0.1:0'\n")
    log = tmp_path / "daemon.log"
    env = {**os.environ, "WATCHDOG_PSEUDONYM_KEY": "0123456789abcdef0123"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "watchdog", "run", "--config", str(cfg),
                                 "--policy", str(ROOT / "watchdog/policies/default.yaml")],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while log.read_bytes().count(b'"kafka_unreachable"') < 3:  # 0.5 + 1 + 2 s of retries
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "producer_idempotence_unavailable" not in text
    assert "Unclosed" not in text
    assert "Traceback" not in text
    records = [orjson.loads(ln) for ln in text.splitlines() if ln.startswith("{")]
    warnings = [r for r in records if r.get("event") == "kafka_unreachable"]
    assert len(warnings) >= 3
    for w in warnings:
        assert w["detail"] == f"127.0.0.1:{port}: Connection refused"
    assert [w["retry_in"] for w in warnings[:3]] == [0.5, 1.0, 2.0]
