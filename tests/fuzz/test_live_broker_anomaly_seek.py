"""The Kafka source's seek back to the saved model state decides where a restart reads from,
with real processes: the broker (Tansu), ``watchdog run`` with ``model:`` and ``model_state:``,
killed -9 and restarted, against ``watchdog replay --model``.

In :mod:`test_fuzz_live_broker_anomaly` the windows' rebuild always reaches back past the saved
state's place (Tansu finds no offset by time: ``offsets_for_times`` answers 0, and the rebuild's
bound is two window horizons of records), so the seek to ``resume`` never chooses the start.
Here the state is saved once (``model_state.every_seconds`` an hour: the only save is a
SIGTERM's, after the first part of the stream), then a chunk of more than twice
``kafka.rebuild_max_records`` records is read and committed, and the daemon is killed -9: its
committed offset lies :data:`CHUNK` records past the saved ``resume``, the windows' rebuild
would start ``rebuild_max_records`` before it, and only the seek to ``resume`` feeds the
restored stage what it had not seen. The cuts: the state before u010's first night of copies
(its first risk alert, the start of its cool-down and of its own usual range), the kill in the
middle of the second day, the nights after it read live.

Checked: the state restored; the records read again by the restarted daemon (its
``watchdog_events_total`` once caught up) are the chunk's, as the ``model_state_restored`` log
line's ``reread`` says, more than ``rebuild_max_records``; no periodic save; every offset
committed; the alerts (before the end marker's scoring window, ``detected_at`` aside) are
replay's.

Measured by breaking the seek on a scratch copy (``_assign`` ignoring ``restore_from``'s
answer, the windows' rebuild deciding): the restart read back 275 events, not 642 (the chunk:
643 records, ``rebuild_max_records`` 276), and, that check put aside, of replay's 1,056 alerts
3 were missing and 5 extra: u010's risk alert again on the second night (its cool-down
forgotten), a window alert of u010 more, and three of its window alerts with other scores and
usual ranges (its night of copies never fed to the stage). With the same break the property
test of :mod:`test_fuzz_live_broker_anomaly` passes (3 examples).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.daemon.kafkautil import committed
from tests.fuzz._anomaly_live import (
    SAVES_OK,
    Plan,
    prepare,
    rebuild_records,
)
from tests.fuzz._anomaly_stream import (
    DOCS,
    KILL_SPANS,
    NIGHT_SPANS,
    Alerts,
    assert_replays,
    before_cut,
    cut_at,
)
from tests.fuzz._daemon_process import Daemon, wait_until
from tests.fuzz._live_broker import comparable

pytestmark = pytest.mark.integration

NEVER = 3600.0  # model_state.every_seconds: no periodic save within the test


SAVED = cut_at(NIGHT_SPANS[0][0] - 200)  # the state saved before u010's first night
KILLED = cut_at(sum(KILL_SPANS[0]) // 2)  # killed in the middle of the second day
PLAN = Plan(parts=1, keyed=True, lateness=60.0,
            chunks=[[(i, 0) for i in range(lo, hi)]
                    for lo, hi in ((0, SAVED), (SAVED, KILLED), (KILLED, len(DOCS)))],
            pauses=[True, True, True], kill_after=1, kill_during_next=False, kill_delay=0.0,
            term_after=0, term_idle=True, copies=0)
CHUNK = KILLED - SAVED + 1  # the records between the saved state and the kill (+ a sentinel)
LIMIT = rebuild_records(PLAN)  # kafka.rebuild_max_records
# (a restart reading back only the rebuild's records would feed the stage none of that night)
assert CHUNK > 2 * LIMIT, (CHUNK, LIMIT)
assert SAVED < NIGHT_SPANS[0][0] < NIGHT_SPANS[0][1] < KILLED - LIMIT


def restored_line(daemon: Daemon) -> dict[str, Any]:
    """The ``model_state_restored`` line of the daemon's JSON log since its last start."""
    since = daemon.proc.log_text().rsplit("--- start:", 1)[-1]
    for line in since.splitlines():
        if line.startswith("{"):
            doc = orjson.loads(line)
            if doc.get("event") == "model_state_restored":
                return dict(doc)
    raise AssertionError(f"no model_state_restored line\n{daemon.proc.log_tail()}")


async def run_seek(bs: str, tmp: Path, model: Path) -> tuple[set[bytes], dict[str, Any]]:
    """The stream delivered in three chunks, a SIGTERM after the first, a kill -9 after the
    second; the daemon's alerts before the cut, and what the restart after the kill read."""
    run, cfg, topics = await prepare(bs, tmp, model, PLAN, state_every=NEVER)
    daemon = run.daemon
    group = str(yaml.safe_load(cfg.read_text())["kafka"]["group"])
    topic = topics["access_logs"]
    first, chunk, rest = PLAN.chunks
    try:
        await daemon.start(1)
        await run.produce(first)
        await run.read("the first chunk read")
        await daemon.idle(1, "idle after the first chunk")
        await run.restart("term")  # the one save: the stage up to the first chunk's end
        saved = run.ends[0]
        await run.produce(chunk)
        await run.read("the chunk read")
        await daemon.idle(1, "idle after the chunk")

        async def all_committed() -> bool:
            return await committed(bs, group, topic, 1) == run.ends

        await wait_until(all_committed, "the chunk committed", daemon.proc)
        assert (await daemon.metrics()).get(SAVES_OK, 0.0) == 0, "a periodic save: not the test"
        assert run.ends[0] - saved == CHUNK
        await run.restart("kill")  # checks the state restored
        await daemon.idle(1, "the restart caught up")
        seen = {"reread": restored_line(daemon)["reread"],
                "events": await daemon.total("watchdog_events_total")}
        await run.produce(rest)
        await run.read("the rest read")
        await daemon.idle(1, "idle at the end")
        await run.account()
        assert daemon.proc.stop() == 0, daemon.proc.log_tail()
        assert await committed(bs, group, topic, 1) == run.ends, "an offset not committed"
    finally:
        await run.close()
    assert run.late == 0, "an event was made late"
    lines = (tmp / "alerts.jsonl").read_bytes().splitlines()
    whole = []
    for ln in lines:  # (a line torn by the kill: sent again)
        try:
            orjson.loads(ln)
        except orjson.JSONDecodeError:
            continue
        whole.append(ln)
    return before_cut(comparable(whole)), seen


def test_a_restart_reads_back_to_the_saved_state_past_the_windows_rebuild(
        broker: str, tiny_model: Path, reference: Alerts, tmp_path: Path) -> None:
    live, seen = asyncio.run(run_seek(broker, tmp_path, tiny_model))
    # the seek decided: read again from the saved place, not from the windows' rebuild
    assert seen["reread"] == {"0": CHUNK}, seen
    assert seen["events"] == CHUNK - 1 > LIMIT, (seen, LIMIT)  # (the chunk's sentinel: invalid)
    assert_replays(reference, live)
