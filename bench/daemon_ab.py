"""``watchdog run`` with the archive handed only every other ``AB_BATCHES`` batches, for
bench/bench_archive.py ``--ab``: the archive's cost on the event loop measured inside ONE
process (same heap, same moment, same load), not between two daemons whose rates differ by
10-25% on this shared machine.

Each consumed batch's ``Pipeline.ingest`` (decode, rules, the hand-over) is timed on the event
loop's thread (CPU, not wall) and counted under: archive on / off for this batch, and whether
a flush (the writer thread) ran during it; the collector's passes inside the batch too. At
exit the totals go, as JSON, to ``$WATCHDOG_BENCH_AB_OUT``. Events of the "off" batches are
not archived: a measurement, never a way to run the daemon.

    python -m bench.daemon_ab run --config watchdog.yaml
"""

from __future__ import annotations

import atexit
import gc
import os
import runpy
import sys
import time
from typing import Any

import orjson

from watchdog.daemon import pipeline as pl
from watchdog.daemon.sinks import archive as sa

AB_BATCHES = 1  # batches in a row with the archive, then as many without

_stats: dict[str, list[float]] = {}  # key -> [cpu s, records, batches, gc cpu s]
_flushing = [0]
_gc = [0.0, 0.0]  # start of the running pass, CPU of every pass so far
_batches = [0]


def _gc_timer(phase: str, _info: dict[str, Any]) -> None:
    if phase == "start":
        _gc[0] = time.thread_time()
    else:
        _gc[1] += time.thread_time() - _gc[0]


_ingest = pl.Pipeline.ingest
_flush = sa.DaemonArchive._flush


def ingest(self: pl.Pipeline, pkey: int, records: Any, topic: str) -> float:
    _batches[0] += 1
    on = (_batches[0] // AB_BATCHES) % 2 == 0
    archive = self.archive
    if not on:
        self.archive = None
    during = _flushing[0] > 0
    c0, g0 = time.thread_time(), _gc[1]
    try:
        return _ingest(self, pkey, records, topic)
    finally:
        cpu = time.thread_time() - c0
        self.archive = archive
        key = (f"archive {'on' if on and archive is not None else 'off'}, "
               f"{'a flush running' if during or _flushing[0] else 'no flush'}")
        s = _stats.setdefault(key, [0.0, 0, 0, 0.0])
        s[0] += cpu
        s[1] += len(records)
        s[2] += 1
        s[3] += _gc[1] - g0


async def flush(self: sa.DaemonArchive) -> bool:
    _flushing[0] += 1
    try:
        return await _flush(self)
    finally:
        _flushing[0] -= 1


def _dump() -> None:
    out = os.environ.get("WATCHDOG_BENCH_AB_OUT")
    if out:
        with open(out, "wb") as f:
            f.write(orjson.dumps(_stats))


def main() -> None:
    pl.Pipeline.ingest = ingest  # type: ignore[method-assign]
    sa.DaemonArchive._flush = flush  # type: ignore[method-assign]
    gc.callbacks.append(_gc_timer)
    atexit.register(_dump)
    sys.argv = ["watchdog", *sys.argv[1:]]
    runpy.run_module("watchdog", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
