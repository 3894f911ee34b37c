"""Documents buffered in pieces (watchdog.archive.buffer) become exactly the documents handed
over, in order, whatever the pieces: whole batches, parts of batches, single documents, bytes
that are not UTF-8; and the writer's bulk path drops every repeated id."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.archive.buffer import Buffer, Chunk, Item
from watchdog.archive.layout import EVENTS
from watchdog.archive.manifest import contents
from watchdog.archive.store import open_store
from watchdog.archive.writer import ArchiveWriter

DAY = 86_400.0


def _items(n: int, start: int = 0, t0: float = 1_780_000_000.0, size: int = 40) -> list[Item]:
    return [(f"e{i}", t0 + i, b'{"i":%d,"pad":"%s"}' % (i, b"x" * (i % size)), (f"s{i % 7}",))
            for i in range(start, start + n)]


docs = st.lists(st.binary(max_size=30).map(lambda b: b'{"b":"' + b.hex().encode() + b'"}'),
                min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(docs, min_size=1, max_size=5), data=st.data())
def test_the_column_is_the_documents_in_order(batches: list[list[bytes]],
                                              data: st.DataObject) -> None:
    buf = Buffer()
    expect: list[bytes] = []
    n = 0
    for batch in batches:
        items = [(f"e{n + i}", float(n + i), raw, ()) for i, raw in enumerate(batch)]
        n += len(batch)
        chunk = Chunk.of(items)
        a = data.draw(st.integers(0, len(batch) - 1))
        b = data.draw(st.integers(a + 1, len(batch)))
        buf.add_run(chunk, a, b)  # a part of the batch, or all of it
        expect += batch[a:b]
        if data.draw(st.booleans()):
            buf.add("single", 0.0, b'{"one":1}', ())
            expect.append(b'{"one":1}')
    assert buf.docs() == expect
    assert buf.raw_column().to_pylist() == [d.decode() for d in expect]
    assert buf.without({"single"}).docs() == [d for d in expect if d != b'{"one":1}']


def test_small_pieces_are_grouped_and_large_ones_kept_whole() -> None:
    buf = Buffer()
    for i in range(3000):
        buf.add(f"e{i}", 0.0, b'{"i":%d}' % i, ())
    big = Chunk.of(_items(20_000, size=200))
    buf.add_run(big, 0, len(big))
    col = buf.raw_column()
    assert col.num_chunks < 10  # not one per single document
    assert col.to_pylist()[:2] == ['{"i":0}', '{"i":1}']
    assert col.to_pylist()[3000:] == [r.decode() for _i, _t, r, _s in _items(20_000, size=200)]


def test_bytes_that_are_not_utf8_are_kept_replaced_not_lost() -> None:
    buf = Buffer()
    buf.add_run(Chunk.of([("a", 0.0, b'{"x":"\xff"}', ()), ("b", 0.0, b'{"y":1}', ())]), 0, 2)
    assert buf.raw_column().to_pylist() == ['{"x":"\ufffd"}', '{"y":1}']


def test_bulk_path_drops_repeats_within_a_batch_across_days_and_after_a_flush(
        tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    w = ArchiveWriter(store, "w")
    items = [(i, t + (DAY if n % 3 == 0 else 0.0), r, s) for n, (i, t, r, s) in
             enumerate(_items(100))]  # two days interleaved
    repeated = [*items, *items[:10], items[5]]
    assert w.add_many(EVENTS, repeated) == 100
    assert w.duplicates == 11
    w.flush()
    assert w.add_many(EVENTS, items[40:60] + _items(5, start=100)) == 5
    w.flush()
    ids: list[str] = []
    rows: dict[str, str] = {}
    for seg in contents(store).of(EVENTS):
        t = pq.read_table(store.path(seg.path), columns=["id", "raw"])
        ids += t.column("id").to_pylist()
        rows.update(zip(t.column("id").to_pylist(), t.column("raw").to_pylist(), strict=True))
    assert sorted(ids) == sorted({i for i, *_ in items} | {f"e{n}" for n in range(100, 105)})
    assert all(rows[i] == r.decode() for i, _t, r, _s in items)


@pytest.mark.parametrize("store_subject_ids", [False, True])
async def test_the_sink_writes_when_the_sources_are_caught_up(
        tmp_path: Path, store_subject_ids: bool) -> None:
    """flush_seconds is an hour: only quiet() (every source caught up) can write the batch;
    the partition's commit is held until the segment is written, then released. The subject
    ids are asked of the pipeline, and stored, only with ``store_subject_ids``."""
    import asyncio

    import structlog

    from tests.daemon.helpers import wait_for
    from watchdog.daemon.metrics import Metrics
    from watchdog.daemon.offsets import PartitionBook
    from watchdog.daemon.settings import Archive, Topics
    from watchdog.daemon.sinks.archive import DaemonArchive

    sink = DaemonArchive(Archive(location=str(tmp_path / "a"), writer="w", flush_seconds=3600,
                                 store_subject_ids=store_subject_ids),
                         Topics(), Metrics(), structlog.get_logger())
    assert sink.keeps_subjects is store_subject_ids
    task = asyncio.create_task(sink.run())
    book = PartitionBook(0, 0)
    batch = _items(50)
    sink.put_events([b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch],
                    [b[3] for b in batch] if sink.keeps_subjects else None, book, 0)
    book.consumed(50)
    assert book.safe() == 0  # held: not archived yet
    await asyncio.sleep(0.05)  # the writer task waits (an hour, unless told)
    assert sink.pending == 50
    sink.quiet()
    await wait_for(lambda: book.safe() == 50, 10, "the segment, then the commit released")
    assert sink.pending == 0
    store = open_store(str(tmp_path / "a"))
    (seg,) = contents(store).of(EVENTS)
    table = pq.read_table(store.path(seg.path))
    assert table.column("raw").to_pylist() == [r.decode() for _i, _t, r, _s in batch]
    assert table.column("subject_ids").to_pylist() == (
        [list(s) for _i, _t, _r, s in batch] if store_subject_ids else [None] * len(batch))
    task.cancel()
