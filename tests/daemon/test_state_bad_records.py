"""Bad records on the directory, subject register and accounts topics (real Tansu broker).

Each is dead-lettered with its reason, counted, and changes nothing: the daemon becomes ready,
keeps reading the state topics, and raises exactly the alerts ``watchdog replay`` raises from
the good records. A tombstone (compaction's delete) is skipped, not dead-lettered. On the
access log, a document over the limit (and over the consumer's fetch size) and an empty
message before the events are dead-lettered too, and the events after them processed; a
record with a key over the producer's limit goes to the dead letters as a reference without it.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.daemon.helpers import World, cancel_all, service, stop_all, wait_for
from tests.daemon.kafkautil import daemon_config, make_topics, produce, read_all
from tests.services.tansu import create_topics
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config

pytestmark = pytest.mark.integration

BIG = 1 << 20  # the decoder's limit; a record over it is too_large


def bad_records(good: bytes) -> list[tuple[bytes, str]]:
    """Broken variants of a valid state record, each with the reason it is refused for."""
    doc = orjson.loads(good)
    return [
        (b"{not json", "not_json"),
        (b"\xff\xfe\x00", "not_json"),
        (b"[1, 2, 3]", "invalid_value"),
        (good[: len(good) // 2], "not_json"),  # cut off mid-write
        (b"{}", "missing_field"),
        (orjson.dumps({**doc, "effective": "yesterday"}), "bad_timestamp"),
        (orjson.dumps({**doc, "effective": 17}), "bad_timestamp"),
        (orjson.dumps({**doc, "pad": "x" * BIG}), "too_large"),
    ]


async def send_raw(bootstrap: str, topic: str, values: list[bytes | None], *,
                   key: bytes = b"k") -> None:
    """As a writer that does not validate would (and compaction's tombstones: None)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                max_request_size=4 * BIG)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def invalid(svc: Service) -> float:
    return sum(x.value for m in svc.metrics.invalid.collect() for x in m.samples
               if x.name.endswith("_total"))


async def test_bad_state_records_are_dead_lettered_and_change_nothing(
        tansu_broker, world: World, tmp_path: Path) -> None:
    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=2)
    await create_topics(bs, ["accounts"], partitions=1)
    account = orjson.dumps({"user_id": world.user_of(world.events[0]), "enabled": True,
                            "effective": "2026-01-01T00:00:00Z"})
    bad = {topic: bad_records(good) for topic, good in (
        ("directory", world.directory[0]), ("subjects", world.subjects[0]),
        ("accounts", account))}
    # bad records first, between the good ones and after them
    half = len(world.directory) // 2
    await send_raw(bs, "directory", [b for b, _ in bad["directory"][:3]])
    await produce(bs, "directory", world.directory[:half], key="directory")
    await send_raw(bs, "directory", [None, *(b for b, _ in bad["directory"][3:])])
    await produce(bs, "directory", world.directory[half:], key="directory")
    await send_raw(bs, "subjects", [b for b, _ in bad["subjects"]])
    await produce(bs, "subjects", world.subjects, key="subject")
    await send_raw(bs, "accounts", [None, *(b for b, _ in bad["accounts"])])
    # and on the access log, before the events: a document over the limit (a record over the
    # consumer's fetch size) and an empty message
    event = orjson.loads(world.events[0])
    await send_raw(bs, "access-logs", [orjson.dumps({**event, "pad": "x" * 2 * BIG}), None])
    # and a record whose key is over the producer's limit: its dead letter, even as a
    # reference, would be refused for that key and retried forever (every commit behind it)
    huge_key = b"u" * (2 * BIG)
    await send_raw(bs, "access-logs", [b"{not json"], key=huge_key)
    bad["access-logs"] = [(b"", "too_large"), (b"", "not_json"), (b"", "not_json")]
    await produce(bs, "access-logs", world.events, key="user", event_time=True)

    svc = service(load_config(str(daemon_config(
        tmp_path / "watchdog.yaml", bs,
        sinks={"kafka": {}}))), world)
    run = asyncio.create_task(svc.run())
    try:
        await wait_for(lambda: svc.readiness()[0], within=40, what="ready")
        await wait_for(lambda: svc.pipeline.detector.processed == len(world.events),
                       within=60, what="every event processed")
        n_bad = sum(len(v) for v in bad.values())
        await wait_for(lambda: invalid(svc) == n_bad and len(svc.dlq) == 0, within=20,
                       what="every bad record counted and dead-lettered")
        await stop_all([svc], [run], 20)
    finally:
        cancel_all([svc], [run])

    on_topic = [r.key.decode() for r in await read_all(bs, "alerts")]
    assert sorted(on_topic) == sorted(world.expected)  # the bad records changed nothing
    dlq = await read_all(bs, "access-logs.dlq")
    got = sorted((dict(r.headers)["source_topic"].decode(), dict(r.headers)["reason"].decode())
                 for r in dlq)
    assert got == sorted((t, reason) for t, recs in bad.items() for _, reason in recs)
    assert len(dlq) == n_bad  # the tombstones of the state topics were skipped
    (ref,) = [r for r in dlq if r.value.startswith(b'{"dead_letter_reference"')
              and b"key_size" in r.value]
    doc = orjson.loads(ref.value)["dead_letter_reference"]
    assert ref.key is None
    assert doc["key_size"] == len(huge_key)
    assert doc["key_sha256"] == hashlib.sha256(huge_key).hexdigest()
    assert doc["size"] == len(b"{not json")
