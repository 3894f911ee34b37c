"""The audit sink: every alert the daemon delivers lands in the hash-chained audit trail.

The service (built from a config with ``sinks: {audit: ...}``, fed by the memory source) writes
replay's alerts, event ids included, to a trail that ``watchdog.audit.verify`` and
``watchdog verify-audit`` accept; the sink is counted like the others, continues the chain
after a restart without appending again an alert it already holds (nor does the JSONL
sink), does not append twice when a slow write timed out and is retried, reports
a partial batch, and refuses a trail that was tampered with or is held by another writer.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.daemon.helpers import World, wait_for
from tests.services.exposition import metric_value
from watchdog.alerts.model import Alert, AlertSubjects, encode_alert, now_rfc3339
from watchdog.audit import AuditError, AuditTrail, verify
from watchdog.daemon.app import Service
from watchdog.daemon.config import ConfigError, load_config
from watchdog.daemon.deadletter import MemoryDeadLetters
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sinks.audit import AuditSink
from watchdog.daemon.sinks.base import PartialDelivery
from watchdog.daemon.sinks.jsonl import JsonlSink
from watchdog.daemon.sources.memory import MemorySource

ROOT = Path(__file__).resolve().parents[2]


def alert(i: int) -> Alert:
    return Alert(alert_id=f"external_media:{i:016x}", rule="external_media", severity="critical",
                 ts="2026-11-20T00:15:02.123Z", user_id="e10042", event_ids=(f"ev-{i}",),
                 summary="Account e10042 wrote personal data to a USB stick",
                 subjects=AlertSubjects(1, ("s-1",)), clauses=("no external media",),
                 detected_at=now_rfc3339(), labels={})


def trail_alerts(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line)["alert"] for line in path.read_bytes().splitlines()]


def audit_service(world: World, tmp_path: Path, trail: Path,
                  jsonl: Path | None = None) -> Service:
    cfg_path = tmp_path / "watchdog.yaml"
    also = "" if jsonl is None else f", jsonl: {{path: '{jsonl}'}}"
    cfg_path.write_text(f"sinks: {{audit: {{path: '{trail}'}}{also}}}\n"
                        "delivery: {retry_initial_seconds: 0.01, retry_max_seconds: 0.05}\n")
    cfg = load_config(str(cfg_path), env={})

    def factory(p: Pipeline) -> MemorySource:
        src = MemorySource(p, 2)
        for part, docs in world.partitioned(2).items():
            src.feed(part, list(docs))
        return src

    # sinks from the config (the audit sink only); no broker, no listener
    return Service(cfg, world.engine(), dead_letters=MemoryDeadLetters(), sources=[factory],
                   kafka=False, listen=False)


async def test_the_daemon_writes_every_alert_to_a_verifiable_trail(
        world: World, tmp_path: Path) -> None:
    trail = tmp_path / "state" / "audit.jsonl"  # the directory is made at start
    jsonl = tmp_path / "state" / "alerts.jsonl"
    svc = audit_service(world, tmp_path, trail, jsonl)
    assert [s.name for s in svc.sinks] == ["jsonl", "audit"]
    run = asyncio.create_task(svc.run())
    sent = svc.metrics.sink_sent.labels("audit")
    await wait_for(lambda: metric_value(sent) >= len(world.expected), what="every alert")
    svc.request_stop()
    assert await asyncio.wait_for(run, 10) == 0

    result = verify(trail, require_head=True)
    assert result.ok, result.problem
    assert result.lines == len(world.expected)
    docs = trail_alerts(trail)
    assert {d["alert_id"]: d["event_ids"][-1] for d in docs} == world.expected
    assert all(d["event_ids"] and d["detected_at"] for d in docs)
    assert metric_value(sent) == len(world.expected)
    assert metric_value(svc.metrics.sink_errors.labels("audit")) == 0
    await verify_audit_cli(trail, len(world.expected))
    jsonl_lines = jsonl.read_bytes()
    assert sorted(orjson.loads(x)["alert_id"] for x in jsonl_lines.splitlines()) == sorted(
        world.expected)

    # a second run on the same files (a fresh engine sends every alert again, as a restart
    # sends the alerts raised on arrival of the events its buffer left): each is skipped,
    # counted as delivered, and the files have one line per alert still
    trail_bytes = trail.read_bytes()
    svc = audit_service(world, tmp_path, trail, jsonl)
    run = asyncio.create_task(svc.run())
    sent = svc.metrics.sink_sent.labels("audit")
    sent_jsonl = svc.metrics.sink_sent.labels("jsonl")
    await wait_for(lambda: min(metric_value(sent), metric_value(sent_jsonl))
                   >= len(world.expected), what="the second run")
    svc.request_stop()
    assert await asyncio.wait_for(run, 10) == 0
    assert trail.read_bytes() == trail_bytes
    assert jsonl.read_bytes() == jsonl_lines
    assert metric_value(svc.metrics.sink_errors.labels("audit")) == 0
    assert metric_value(svc.metrics.sink_errors.labels("jsonl")) == 0
    for name in ("audit", "jsonl"):  # each skip counted (and only those)
        assert metric_value(svc.metrics.sink_skipped.labels(name)) == len(world.expected)
    await verify_audit_cli(trail, len(world.expected))

    # a new alert after the restart is appended and chained as before
    sink = AuditSink(trail)
    await sink.start()
    await sink.send([alert(1), alert(1)])
    await sink.close()
    result = verify(trail, require_head=True)
    assert result.ok, result.problem
    assert result.lines == len(world.expected) + 1


async def verify_audit_cli(trail: Path, alerts: int) -> None:
    cli = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "watchdog", "verify-audit", str(trail),
                         "--require-head"], cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=False)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.strip() == f"ok: {alerts} alerts, chain intact"


async def test_a_torn_last_line_of_the_jsonl_does_not_stop_the_start(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(encode_alert(alert(1)) + b"\n" + encode_alert(alert(2))[:30])
    sink = JsonlSink(path)
    await sink.start()
    await sink.send([alert(1), alert(2), alert(3)])  # 1 is there; 2 was torn, never delivered
    await sink.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 4
    assert lines[1] == encode_alert(alert(2))[:30]
    assert [orjson.loads(x)["alert_id"] for x in (lines[0], *lines[2:])] == [
        alert(i).alert_id for i in (1, 2, 3)]


async def test_lines_are_the_canonical_alert_documents(tmp_path: Path) -> None:
    sink = AuditSink(tmp_path / "audit.jsonl")
    await sink.start()
    alerts = [alert(i) for i in range(5)]
    await sink.send(alerts[:2])
    await sink.send(alerts[2:])
    assert sink.head() == sink.trail.head()  # type: ignore[union-attr]
    assert (sink.head() or (0, ""))[0] == 5
    await sink.close()
    await sink.close()  # twice is fine
    lines = (tmp_path / "audit.jsonl").read_bytes().splitlines()
    assert [orjson.loads(ln)["seq"] for ln in lines] == [1, 2, 3, 4, 5]
    for ln, a in zip(lines, alerts, strict=True):
        assert encode_alert(a) in ln  # byte for byte what the other sinks publish
    assert verify(tmp_path / "audit.jsonl", require_head=True).ok
    with pytest.raises(ConnectionError, match="not open"):
        await sink.send(alerts)


async def test_an_excused_alert_is_written_with_the_exception_reason(tmp_path: Path) -> None:
    sink = AuditSink(tmp_path / "audit.jsonl")
    await sink.start()
    await sink.send([alert(1)])
    sink.note_excused(alert(2), "migration to the new CRM, ticket PRIV-1234",
                      "2026-12-31T00:00:00.000Z")
    await sink.close()  # waits for the noted entries
    lines = (tmp_path / "audit.jsonl").read_bytes().splitlines()
    assert len(lines) == 2
    excused = orjson.loads(lines[1])["alert"]
    assert excused["alert_id"] == alert(2).alert_id
    assert excused["labels"]["excused_by"] == "exception"
    assert excused["labels"]["exception_reason"] == "migration to the new CRM, ticket PRIV-1234"
    assert excused["labels"]["exception_until"] == "2026-12-31T00:00:00.000Z"
    assert verify(tmp_path / "audit.jsonl", require_head=True).ok


async def test_a_timed_out_write_is_not_appended_twice_on_retry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = AuditSink(tmp_path / "audit.jsonl", fsync=False)
    await sink.start()
    gate = threading.Event()
    real = AuditTrail.append

    def slow(self: AuditTrail, data: bytes) -> None:
        gate.wait(10)  # a disk that takes its time
        real(self, data)

    monkeypatch.setattr(AuditTrail, "append", slow)
    alerts = [alert(i) for i in range(4)]
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):  # as the outbox bounds a send
            await sink.send(alerts)
    retry = asyncio.create_task(sink.send(alerts))  # waits for the first thread
    await asyncio.sleep(0.05)
    assert not retry.done()
    gate.set()
    await asyncio.wait_for(retry, 10)
    await sink.close()
    docs = trail_alerts(tmp_path / "audit.jsonl")
    assert [d["alert_id"] for d in docs] == [a.alert_id for a in alerts]
    assert verify(tmp_path / "audit.jsonl").ok


async def test_a_failed_append_reports_what_was_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sink = AuditSink(tmp_path / "audit.jsonl", fsync=False)
    await sink.start()
    real = AuditTrail.append
    calls = 0

    def full_disk(self: AuditTrail, data: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(28, "No space left on device")
        real(self, data)

    monkeypatch.setattr(AuditTrail, "append", full_disk)
    alerts = [alert(i) for i in range(5)]
    with pytest.raises(PartialDelivery) as err:
        await sink.send(alerts)
    assert err.value.accepted == 2
    await sink.send(alerts[2:])  # the outbox retries the rest
    await sink.close()
    docs = trail_alerts(tmp_path / "audit.jsonl")
    assert [d["alert_id"] for d in docs] == [a.alert_id for a in alerts]
    assert verify(tmp_path / "audit.jsonl", require_head=True).ok


async def test_a_tampered_or_locked_trail_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(path)
    await sink.start()
    await sink.send([alert(i) for i in range(3)])
    other = AuditSink(path)
    with pytest.raises(AuditError, match="another writer"):
        await other.start()
    await sink.close()

    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))  # the tail cut off
    with pytest.raises(AuditError, match="does not match its head"):
        await AuditSink(path).start()


def test_config_of_the_audit_sink(tmp_path: Path) -> None:
    yaml = tmp_path / "watchdog.yaml"
    yaml.write_text("sinks: {audit: {path: /var/lib/watchdog/audit.jsonl}}\n")
    cfg = load_config(str(yaml), env={})
    assert cfg.sinks.kafka is None  # listing sinks replaces the default
    assert cfg.sinks.audit is not None
    assert (cfg.sinks.audit.path, cfg.sinks.audit.fsync) == ("/var/lib/watchdog/audit.jsonl",
                                                             True)
    for text, message in [
        ("sinks: {audit: {fsync: false}}\n", "sinks.audit: object missing required field path"),
        ("sinks: {audit: {path: a.jsonl, fsnyc: true}}\n",
         "sinks.audit.fsnyc: unknown key (did you mean 'fsync'?)"),
        ("sinks: {audit: {path: a.jsonl}, jsonl: {path: ./a.jsonl}}\n",
         "sinks.audit.path: the same file as sinks.jsonl.path"),
    ]:
        yaml.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_config(str(yaml), env={})
        assert str(err.value) == f"{yaml}: {message}"


async def test_the_key_from_the_credential_makes_a_keyed_trail(
        world: World, tmp_path: Path) -> None:
    from watchdog.daemon.config import ENV_SECRETS
    from watchdog.systemd import credentials_as_env

    trail = tmp_path / "audit.jsonl"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "audit-key").write_text("0123456789abcdef0123456789abcdef\n")
    env = credentials_as_env(ENV_SECRETS, {"CREDENTIALS_DIRECTORY": str(creds)})
    cfg_path = tmp_path / "watchdog.yaml"
    cfg_path.write_text(f"sinks: {{audit: {{path: '{trail}', fsync: false}}}}\n")
    cfg = load_config(str(cfg_path), env=env)
    svc = Service(cfg, world.engine(), dead_letters=MemoryDeadLetters(), sources=[],
                  kafka=False, listen=False)
    sink = svc.sinks[0]
    assert isinstance(sink, AuditSink)
    await sink.start()
    await sink.send([alert(1), alert(2)])
    await sink.close()
    assert verify(trail, key=b"0123456789abcdef0123456789abcdef").lines == 2
    assert not verify(trail).ok
    short = {"WATCHDOG_AUDIT_KEY": "short"}
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        load_config(str(cfg_path), env=short)
