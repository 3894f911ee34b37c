"""Contract 1.1 live: the daemon, reading the ``accounts`` topic beside the directory and the
subject register, gives exactly the alerts ``watchdog replay --accounts`` gives (byte for byte
apart from ``detected_at``), obligations included (judged at the first event after their
deadline, in event-time order across partitions); a bad account record goes to the dead
letters and is counted.
"""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from tests.builders import POLICY_DOC, event_doc
from tests.daemon.helpers import KEY, cancel_all, join_in_turn, stop_all, wait_async, wait_for
from tests.daemon.kafkautil import daemon_config, produce, read_all
from tests.services.procs import free_port
from tests.services.tansu import create_topics
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.engine.engine import Engine
from watchdog.files.jsonl import RejectedWriter
from watchdog.policy import load_policy
from watchdog.replay import replay
from watchdog.rules import default_rules

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 18, 0, 0, tzinfo=UTC)
USERS = ["e1", "e2", "d1", "m1"]
DETECTED = re.compile(rb',?"detected_at":"[^"]*"')

DIRECTORY = [
    {"user_id": "e1", "status": "active", "effective": "2025-04-01T00:00:00+09:00",
     "roles": ["support_agent"]},
    {"user_id": "e2", "status": "active", "effective": "2025-04-01T00:00:00Z",
     "roles": ["billing"]},
    {"user_id": "d1", "status": "active", "effective": "2025-04-01T00:00:00Z", "roles": ["dba"]},
    {"user_id": "m1", "status": "active", "effective": "2025-04-01T00:00:00Z",
     "roles": ["marketer"]},
    # left, still enabled at the deadline: account_not_revoked (effective as written: +09:00)
    {"user_id": "x1", "status": "departed", "effective": "2026-11-18T09:00:00+09:00"},
    # suspended and disabled ten minutes later: silent
    {"user_id": "x2", "status": "suspended", "effective": "2026-11-18T02:00:00Z"},
    # transferred, keeps a role the directory took away: account_not_revoked
    {"user_id": "x3", "status": "transferred", "effective": "2026-11-18T04:00:00.5Z",
     "roles": ["billing"]},
]
ACCOUNTS = [
    {"user_id": "x1", "enabled": True, "effective": "2025-01-01T00:00:00Z"},
    {"user_id": "x2", "enabled": True, "effective": "2025-01-01T00:00:00Z"},
    {"user_id": "x2", "enabled": False, "effective": "2026-11-18T02:10:00Z"},
    {"user_id": "x3", "enabled": True, "effective": "2025-01-01T00:00:00Z",
     "roles": ["billing", "dba"]},
    {"user_id": "e1", "enabled": True, "effective": "2025-01-01T00:00:00Z",
     "password_changed_at": "2026-01-01T00:00:00Z"},
]
BAD_ACCOUNT = b'{"user_id":"e2","enabled":"yes","effective":"2025-01-01T00:00:00Z"}'
SUBJECTS = [
    # two resources must delete c-9 within a day; only one does
    {"subject_id": "c-9", "type": "erasure_requested", "effective": "2026-11-18T00:30:00Z",
     "resources": ["crm.customers", "mail.archive"]},
    # any one delete fulfils c-8's request
    {"subject_id": "c-8", "type": "erasure_requested", "effective": "2026-11-18T01:00:00Z"},
]


def events() -> list[bytes]:
    docs = []
    for i in range(2 * 24 * 12):  # two days, every five minutes, by turns
        when = START + timedelta(minutes=5 * i)
        user = USERS[i % len(USERS)]
        docs.append(event_doc(id=f"ev-{i}", user=user, when=when, dataset=None,
                              subject_ids=[f"c-{i % 50}"], roles=None))
        if i % 40 == 0:
            docs.append(event_doc(id=f"login-{i}", user="e1", action="login", data=False,
                                  dataset=None, when=when + timedelta(seconds=1)))
    docs.append(event_doc(id="del-9", user="d1", action="delete", subject_ids=["c-9"],
                          purpose="maintenance", categories=["identity"], dataset=None,
                          when=START + timedelta(hours=5)))
    docs.append(event_doc(id="del-8", user="d1", action="delete", subject_ids=["c-8"],
                          resource="billing.invoices", purpose="maintenance",
                          categories=["identity"], dataset=None,
                          when=START + timedelta(hours=6)))
    # one account's events arrive in event-time order (the contract's arrival order)
    docs.sort(key=lambda d: d["@timestamp"])
    return [orjson.dumps(d) for d in docs]


def jsonl(docs: list[bytes]) -> bytes:
    return b"".join(d + b"\n" for d in docs)


def replay_lines(tmp: Path, evs: list[bytes], policy: Path) -> list[bytes]:
    paths = {name: tmp / f"{name}.jsonl" for name in ("events", "dir", "subj", "acct")}
    paths["events"].write_bytes(jsonl(evs))
    paths["dir"].write_bytes(jsonl([orjson.dumps(d) for d in DIRECTORY]))
    paths["subj"].write_bytes(jsonl([orjson.dumps(d) for d in SUBJECTS]))
    paths["acct"].write_bytes(jsonl([*(orjson.dumps(d) for d in ACCOUNTS), BAD_ACCOUNT]))
    engine = Engine(load_policy(str(policy)), Pseudonymizer(KEY.encode()), default_rules())
    out = io.BytesIO()
    rejected = RejectedWriter(tmp / "rejected.jsonl")
    result = replay(str(paths["events"]), out, engine, directory=str(paths["dir"]),
                    subjects=str(paths["subj"]), accounts=str(paths["acct"]),
                    rejected=rejected)
    rejected.close()
    assert dict(result.invalid) == {"invalid_value": 1}
    return sorted(DETECTED.sub(b"", ln) for ln in out.getvalue().splitlines())


async def test_the_daemon_gives_replays_alerts_with_accounts_and_obligations(
        tansu_broker, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({**POLICY_DOC, "thresholds": {
        **POLICY_DOC["thresholds"], "erasure_days": 1, "revocation_minutes": 30}}))
    evs = events()
    expected = replay_lines(tmp_path, evs, policy)
    rules = {orjson.loads(x)["rule"] for x in expected}
    assert {"account_not_revoked", "erasure_overdue", "password_expired"} <= rules
    refs = {orjson.loads(x)["event_ids"][0] for x in expected
            if orjson.loads(x)["rule"] == "account_not_revoked"}
    assert refs == {"directory/x1/2026-11-18T09:00:00+09:00",
                    "directory/x3/2026-11-18T04:00:00.5Z"}

    bs = tansu_broker.bootstrap_servers
    await create_topics(bs, ["access-logs"], partitions=4)
    await create_topics(bs, ["directory", "subjects", "accounts", "alerts", "access-logs.dlq"],
                        partitions=1)
    await produce(bs, "directory", [orjson.dumps(d) for d in DIRECTORY], key="directory")
    await produce(bs, "subjects", [orjson.dumps(d) for d in SUBJECTS], key="subject")
    await produce(bs, "accounts", [*(orjson.dumps(d) for d in ACCOUNTS), BAD_ACCOUNT],
                  key="directory")
    await produce(bs, "access-logs", evs, key="user", event_time=True)
    listen = f"127.0.0.1:{free_port()}"
    cfg = load_config(str(daemon_config(tmp_path / "watchdog.yaml", bs, listen=listen,
                                        sinks={"kafka": {}})))
    engine = Engine(load_policy(str(policy)), Pseudonymizer(KEY.encode()), default_rules())
    svc = Service(cfg, engine)
    run = asyncio.create_task(svc.run())
    try:
        async with httpx.AsyncClient(base_url=f"http://{listen}") as http:
            p = svc.pipeline
            # consumed and every partition idle: a stop before keeps the buffer for the next
            # start (shutdown_without_flush), as it should
            await wait_for(lambda: p.detector.processed + len(p.order) == len(evs)
                           and p.all_idle(), within=60, what="every event consumed, all idle")
            await wait_for(lambda: len(engine.accounts) == 4, within=10,
                           what="the account records applied")
            metrics = (await http.get("/metrics")).text
        await stop_all([svc], [run], 15)
    finally:
        cancel_all([svc], [run])

    got = sorted(DETECTED.sub(b"", r.value) for r in await read_all(bs, "alerts"))
    assert got == expected  # byte for byte apart from detected_at: no missing, no extra
    dlq = await read_all(bs, "access-logs.dlq")
    bad = [r for r in dlq if r.value == BAD_ACCOUNT]
    assert len(bad) == 1
    assert dict(bad[0].headers)["source_topic"] == b"accounts"
    assert 'watchdog_events_invalid_total{reason="invalid_value"} 1.0' in metrics
    assert "watchdog_obligations_open{" in metrics
    assert engine.open_obligations() == {"account_not_revoked": 0, "erasure_overdue": 0}


async def test_two_instances_raise_each_obligation_once(tansu_broker, tmp_path: Path) -> None:
    """With the partitions split over two instances, neither main pipeline sees the whole
    stream: they hold the obligations back, and the owner of partition 0's whole-stream reader
    raises each once, judged on every partition's events (the deletes included)."""
    from collections import Counter

    from watchdog.daemon.metrics import Metrics

    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({**POLICY_DOC, "thresholds": {
        **POLICY_DOC["thresholds"], "erasure_days": 1, "revocation_minutes": 30}}))
    evs = events()
    expected = replay_lines(tmp_path, evs, policy)
    obligations = {orjson.loads(x)["alert_id"] for x in expected
                   if orjson.loads(x)["rule"] in ("account_not_revoked", "erasure_overdue")}
    assert len(obligations) == 3

    bs = tansu_broker.bootstrap_servers
    await create_topics(bs, ["access-logs"], partitions=4)
    await create_topics(bs, ["directory", "subjects", "accounts", "alerts", "access-logs.dlq"],
                        partitions=1)
    await produce(bs, "directory", [orjson.dumps(d) for d in DIRECTORY], key="directory")
    await produce(bs, "subjects", [orjson.dumps(d) for d in SUBJECTS], key="subject")
    await produce(bs, "accounts", [orjson.dumps(d) for d in ACCOUNTS], key="directory")
    cfg = load_config(str(daemon_config(tmp_path / "watchdog.yaml", bs, sinks={"kafka": {}})))
    services = [Service(cfg, Engine(load_policy(str(policy)), Pseudonymizer(KEY.encode()),
                                    default_rules()), metrics=Metrics(), listen=False)
                for _ in range(2)]
    runs: list[asyncio.Task[int]] = []
    try:
        await join_in_turn(services, runs, 4)
        owner = next(s for s in services if 0 in s.sources[0].assigned)
        await wait_for(lambda: owner.whole_stream is not None
                       and owner.whole_stream.reader is not None
                       and len(owner.whole_stream.reader.assigned) == 4,
                       within=40, what="the owner of partition 0 reads every partition")
        await produce(bs, "access-logs", evs, key="user", event_time=True)
        await wait_for(lambda: sum(s.pipeline.detector.processed + len(s.pipeline.order)
                                   for s in services) == len(evs), within=60,
                       what="every event consumed by one of the instances")

        async def arrived() -> bool:
            keys = {r.key.decode() for r in await read_all(bs, "alerts")}
            return obligations <= keys

        await wait_async(arrived, within=60, what="the obligation alerts")
        await stop_all(services, runs, 30)
    finally:
        cancel_all(services, runs)
    sent = Counter(r.key.decode() for r in await read_all(bs, "alerts"))
    assert all(sent[a] == 1 for a in obligations), sent
