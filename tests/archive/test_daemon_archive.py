"""The daemon's archive with the real daemon, the real broker (Tansu) and a real S3 protocol
server (moto): a live run archives exactly the events produced; kill -9 mid-stream and a
restart leave no gap and no duplicate; verify catches a changed, deleted or reordered segment.

"Committed" implies "archived": the group's offsets move past an event only once its segment
and manifest entry are written, so the checks run as soon as the whole stream is committed.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from tests.archive.helpers import s3_keys_in_credentials
from tests.faults.harness import (
    Daemon,
    FaultWorld,
    Offsets,
    Run,
    Stream,
    event_id,
    prepare_broker,
    until,
)
from tests.services.tansu import MotoS3
from watchdog.archive.layout import FORMAT_KEY
from watchdog.archive.manifest import contents
from watchdog.archive.reader import ArchiveQuery
from watchdog.archive.report import subject_report
from watchdog.archive.store import ACCESS_KEY_ENV, SECRET_KEY_ENV, Store, open_store
from watchdog.archive.verify import verify

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_location(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A fresh bucket; the keys in a credentials directory, not in the config."""
    s3_keys_in_credentials(monkeypatch, tmp_path)
    return f"s3://{moto_s3.create_bucket()}/archive?endpoint={moto_s3.endpoint}"


@contextlib.asynccontextmanager
async def archiving_daemon(bootstrap: str, world: FaultWorld, tmp: Path, location: str,
                           *, rate: float = 2000) -> AsyncIterator[Run]:
    await prepare_broker(bootstrap, world)
    daemon = Daemon(tmp, bootstrap, world, archive={
        "location": location, "writer": "daemon-1", "flush_seconds": 0.5})
    run = Run(world, bootstrap, daemon, Stream(bootstrap, world.events, rate=rate),
              Offsets(bootstrap))
    try:
        daemon.start()
        await daemon.wait_consuming()
        run.stream.start()
        yield run
    finally:
        await run.stream.close()
        await run.offsets.reset()
        await daemon.aclose()


def archived(store: Store, dataset: str) -> list[str]:
    ids: list[str] = []
    for seg in contents(store).of(dataset):
        t = pq.read_table(store.path(seg.path), columns=["id"], filesystem=store.fs)
        ids += t.column("id").to_pylist()
    return ids


def check_archive(store: Store, world: FaultWorld) -> None:
    events = archived(store, "events")
    dups = {k: n for k, n in Counter(events).items() if n > 1}
    assert not dups, f"archived twice: {sorted(dups)[:10]}"
    produced = {event_id(e) for e in world.events}
    missing = produced - set(events)
    assert not missing, f"{len(missing)} event(s) not archived: {sorted(missing)[:10]}"
    assert set(events) == produced
    alerts = archived(store, "alerts")
    assert len(alerts) == len(set(alerts))
    assert set(alerts) == set(world.expected)
    # the state records too (directory and register, each once)
    assert len(archived(store, "directory")) == len(set(world.directory))
    assert len(archived(store, "subjects")) == len(set(world.subjects))
    report = verify(store)
    assert report.ok, report.problems
    check_subject_reports(store, world)


def check_subject_reports(store: Store, world: FaultWorld) -> None:
    """The daemon writes format 3 (subject ids not stored; a compactor, format 1): a subject
    report reads them from the documents and lists exactly the events produced that name the
    subject."""
    formats = {(s.path.rsplit("/", 1)[-1].startswith("daemon-"),
                pq.read_schema(store.path(s.path), filesystem=store.fs).metadata[FORMAT_KEY])
               for s in contents(store).of("events")}
    assert formats
    assert formats <= {(True, b"3"), (False, b"1")}
    docs = [orjson.loads(raw) for raw in world.events]
    named = Counter(s for d in docs for s in d.get("data", {}).get("subject_ids", ()))
    q = ArchiveQuery(store)
    try:
        for subject, _n in named.most_common(3):
            found = [e["id"] for e in subject_report(q, subject, "p").events]
            assert sorted(found) == sorted(
                d["event"]["id"] for d in docs
                if subject in d.get("data", {}).get("subject_ids", ())), subject
    finally:
        q.close()


async def test_live_run_archives_exactly_the_events_produced(
        tansu_broker, fault_world: FaultWorld, tmp_path: Path, s3_location: str) -> None:
    async with archiving_daemon(tansu_broker.bootstrap_servers, fault_world, tmp_path,
                                s3_location) as run:
        await run.finish()
        store = open_store(s3_location, {ACCESS_KEY_ENV: "test", SECRET_KEY_ENV: "test"})
        check_archive(store, fault_world)
        samples = await run.daemon.metrics()
        assert samples['watchdog_archive_rows_total{dataset="events"}'] == len(
            fault_world.events)
        assert samples['watchdog_archive_missing_days{dataset="events"}'] == 0
        # one instance: its own segments are every live one
        assert samples['watchdog_archive_segments{dataset="events"}'] == len(
            contents(store).of("events"))
        assert run.daemon.proc.stop() == 0

    # tampering with what the daemon wrote: changed, deleted, reordered
    segs = sorted(s.path for s in contents(store).of("events"))
    assert len(segs) >= 3
    a, b, c = segs[:3]
    d = sorted(s.path for s in contents(store).of("alerts"))[0]
    data = bytearray(store.read_bytes(a))
    data[len(data) // 2] ^= 1
    store.write_bytes(a, bytes(data))
    store.delete(b)
    c_bytes, d_bytes = store.read_bytes(c), store.read_bytes(d)
    store.write_bytes(c, d_bytes)
    store.write_bytes(d, c_bytes)
    problems = "\n".join(verify(store).problems)
    assert f"segment {a}: changed" in problems
    assert f"segment {b}: removed" in problems
    assert f"segment {c}: holds the bytes of {d}" in problems
    assert f"segment {d}: holds the bytes of {c}" in problems


async def test_kill9_mid_stream_leaves_no_gap_and_no_duplicate(
        tansu_broker, fault_world: FaultWorld, tmp_path: Path, s3_location: str) -> None:
    # slower than the live test: the kill must land while the stream is still coming
    async with archiving_daemon(tansu_broker.bootstrap_servers, fault_world, tmp_path,
                                s3_location, rate=600) as run:
        await run.until_committed(0.2)
        run.daemon.proc.stop(kill=True)  # SIGKILL: staged events, a flush maybe half done
        assert run.daemon.proc.returncode == -9
        assert run.stream.sent < run.n, "the kill must come in the middle of the stream"
        run.daemon.start()  # the stream goes on meanwhile
        await run.daemon.wait_consuming()
        await run.finish("the restarted daemon to commit the whole stream")
        store = open_store(s3_location, {ACCESS_KEY_ENV: "test", SECRET_KEY_ENV: "test"})
        check_archive(store, fault_world)
        assert run.daemon.proc.stop() == 0
        chain = contents(store).chains[0]
        print(f"\narchive after kill -9: {len(archived(store, 'events'))} events in "
              f"{len(contents(store).of('events'))} segments, {len(chain.entries)} entries; "
              f"log: {orjson.dumps(run.daemon.log_events('archive_opened')).decode()[:300]}")


async def test_two_instances_and_rebalances_read_each_event_once(
        tansu_broker, fault_world: FaultWorld, tmp_path: Path, s3_location: str) -> None:
    """Two daemons of one group archive into one bucket: a second instance joins mid-stream
    (the first gives up partitions it archived but had not committed), then the first is
    killed (the second re-reads what it had not committed). Each writer drops what the other
    archived meanwhile; what a query reads holds each event exactly once (docs: the guarantee)."""
    bs = tansu_broker.bootstrap_servers
    await prepare_broker(bs, fault_world)

    def instance(name: str) -> Daemon:
        return Daemon(tmp_path, bs, fault_world, name=name, archive={
            "location": s3_location, "writer": name, "flush_seconds": 0.5})

    first, second = instance("daemon-1"), instance("daemon-2")
    run = Run(fault_world, bs, first, Stream(bs, fault_world.events, rate=600), Offsets(bs))
    try:
        first.start()
        await first.wait_consuming()
        run.stream.start()
        await run.until_committed(0.2)
        second.start()  # a rebalance
        await run.until_committed(0.5)
        first.proc.stop(kill=True)  # another: the second takes every partition over
        await second.wait_consuming()
        await run.stream.done()
        ends = run.stream.ends()
        await until(lambda: run.offsets.reached(ends), within=90,
                    what="the second instance to commit the whole stream")
        store = open_store(s3_location, {ACCESS_KEY_ENV: "test", SECRET_KEY_ENV: "test"})
        c = contents(store)
        assert {ch.writer for ch in c.chains} == {"daemon-1", "daemon-2"}
        stored = archived(store, "events")
        produced = {event_id(e) for e in fault_world.events}
        assert set(stored) == produced
        q = ArchiveQuery(store)
        total, distinct = q.sql("SELECT count(*), count(DISTINCT id) FROM events")[0]
        q.close()
        assert total == distinct == len(produced)
        report = verify(store)
        assert report.ok, report.problems
        print(f"\ntwo instances: {len(stored)} events stored for {len(produced)} produced "
              f"(copies: {report.copies or 'none'})")
        assert second.proc.stop() == 0
    finally:
        await run.stream.close()
        await run.offsets.reset()
        await first.aclose()
        await second.aclose()
