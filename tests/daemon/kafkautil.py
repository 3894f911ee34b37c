"""Kafka helpers for the daemon's integration tests (the broker itself comes from
tests/services)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.services.tansu import create_topics


async def make_topics(bootstrap: str, partitions: int = 4) -> None:
    await create_topics(bootstrap, ["access-logs"], partitions=partitions)
    await create_topics(bootstrap, ["directory", "subjects", "alerts", "access-logs.dlq"],
                        partitions=1)


def _event_ms(doc: Any) -> int | None:
    try:
        return int(datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00")).timestamp()
                   * 1000)
    except (KeyError, ValueError, TypeError):
        return None


_KEYS = {"user": lambda d: d["user"]["id"],
         "directory": lambda d: d["user_id"],
         "subject": lambda d: f"{d['subject_id']}/{d['type']}"}


def _key(kind: str | None, doc: Any) -> bytes | None:
    if kind is None:
        return None
    try:
        return str(_KEYS[kind](doc)).encode()
    except (KeyError, TypeError):
        return None  # an invalid document: no key, as a shipper would send it


async def produce(bootstrap: str, topic: str, docs: list[bytes], *,
                  key: str | None = None, event_time: bool = False,
                  max_request_size: int = 1 << 20,
                  partitions: list[int] | None = None) -> None:
    """Send ``docs``; ``key``: "user" (user.id), "directory", "subject"; timestamps = event
    time when ``event_time`` (as a log shipper would stamp them); ``partitions``: spread over
    these in turn instead."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_request_size=max_request_size)
    await producer.start()
    try:
        futures = []
        for i, raw in enumerate(docs):
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                doc = None
            ms = _event_ms(doc) if event_time else None
            part = partitions[i % len(partitions)] if partitions else None
            futures.append(await producer.send(topic, raw, key=_key(key, doc), timestamp_ms=ms,
                                               partition=part))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_state(bootstrap: str, world: Any) -> None:
    await produce(bootstrap, "directory", world.directory, key="directory")
    await produce(bootstrap, "subjects", world.subjects, key="subject")


async def read_all(bootstrap: str, topic: str, *, idle_ms: int = 500) -> list[Any]:
    """Every record of ``topic`` (all partitions) until nothing new for ``idle_ms``."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                         auto_offset_reset="earliest")
    await c.start()
    try:
        await c.topics()
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        out: list[Any] = []
        while True:
            data = await c.getmany(timeout_ms=idle_ms)
            if not data:
                return out
            for recs in data.values():
                out.extend(recs)
    finally:
        await c.stop()


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offset per partition; 0 where nothing was ever committed (an
    empty partition has nothing to commit)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        out = {}
        for p in range(partitions):
            off = await c.committed(TopicPartition(topic, p))
            out[p] = 0 if off is None else off
        return out
    finally:
        await c.stop()


def daemon_config(path: Path, bootstrap: str, **extra: Any) -> Path:
    """A watchdog.yaml for tests: fast group joins, quick idle detection."""
    cfg: dict[str, Any] = {
        "kafka": {"bootstrap": bootstrap, "heartbeat_interval_ms": 300,
                  "session_timeout_ms": 3000, "idle_after_seconds": 5.0,
                  "commit_interval_seconds": 0.2, "request_timeout_ms": 10000},
        "detection": {"lateness_seconds": 60},
        "delivery": {"retry_initial_seconds": 0.05, "retry_max_seconds": 0.5},
        "shutdown_timeout_seconds": 8,
        # beside the config, not in the working directory (a later test would restore it)
        "model_state": {"path": str(path.with_suffix(".anomaly.state"))},
    }
    for section, values in extra.items():
        if isinstance(values, dict) and isinstance(cfg.get(section), dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    path.write_text(yaml.safe_dump(cfg))
    return path


async def insider_topics(bootstrap: str, partitions: int) -> list[bytes]:
    """The topics, with the insider world's directory produced (tests.anomaly); returns its
    access events, for the test to produce (as they are, or with what it adds)."""
    from tests.anomaly.conftest import directory_records, insider_docs

    await make_topics(bootstrap, partitions=partitions)
    await produce(bootstrap, "directory",
                  [msgspec.json.encode(r) for r in directory_records(30)], key="directory")
    return [msgspec.json.encode(d) for d in insider_docs()]
