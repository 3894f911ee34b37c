"""Live equals replay for the anomaly stage across restarts, with real processes: ``watchdog
run`` with ``model:`` and ``model_state:`` against the real broker (Tansu), killed -9 and
restarted, against ``watchdog replay --model`` over the same events.

The stream, the tiny model (``tests/anomaly/model_fixtures.py``) and how its end is compared
are in :mod:`tests.fuzz._anomaly_stream`: the insider scenario with a repeat offender, then an
end marker two days later; compared, the alerts dated before the marker's scoring window (the
daemon drains the stage at its shutdown where replay flushes it; that the cut is sound is
checked against an in-process drained pipeline).

Hypothesis draws the delivery: 1-3 partitions, keyed by account or not, chunks cut between
event times, the partitions interleaved in runs of any length (each partition in time order),
some records produced twice (a producer's retry: a new offset), an idle pause (or none) after
each chunk, a ``kill -9`` of the daemon at a drawn point after the first day (once the chunk up
to it was read and a state save followed, ``watchdog_model_state_saves_total``; then, after a
drawn delay, at once or while the next chunk is read), perhaps a graceful SIGTERM (anywhere,
or within a night's copies, where a stop that closed the open windows rather than draining
them would show; after an idle pause, or while a chunk is read), each followed by a restart,
which must restore the saved state (``watchdog_model_state_restores_total{result="restored"}``).
Records carry their event time as Kafka timestamp, as a live producer's would. Tansu (memory
and s3 storage alike) finds no offset by time, so the re-read bounded by
``kafka.rebuild_max_records`` (:func:`rebuild_records`) always reaches back to the saved
state's place: the Kafka source's seek back to it is not told apart here (a restart where
it decides: :mod:`test_live_broker_anomaly_seek`).

The property: the daemon's alerts (the rules', the ``anomaly`` window alerts and the risk
alerts, ``detected_at`` aside, as sets: a redelivery after a crash may send an alert again,
with the same ``alert_id``) are replay's; no event is processed late, no state save fails,
every offset ends committed and the last SIGTERM exits 0.

Before ``model_state`` (the state in memory only; this test with the key removed) a kill in
the middle of the second day gave, of replay's 1,056 alerts: an extra risk alert of u010 on the
second night (its cool-down forgotten), an extra window alert of u010, and two of its window
alerts with another own usual range (rebuilt from a few hours); a kill at the start of the
second day, four window alerts with other scores and explanations. With it, the test fails
if the restored stage is fed again the events it holds (5 alerts missing, 32 extra, the first
example), or if a shutdown closes the stage's open windows instead of draining them (a SIGTERM
in u010's third night: its window alert from a half-window at 13:32 rather than at 13:39).

The broker is shared by the module; each example has its own topics, group, state file and
daemon. ``WATCHDOG_LIVE_EXAMPLES`` sets the number of examples (default 3: about a minute).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given

from tests.fuzz._anomaly_live import Plan, plans, run_plan
from tests.fuzz._anomaly_stream import (
    Alerts,
    assert_replays,
)
from tests.fuzz._live_broker import process_settings

pytestmark = pytest.mark.integration

@process_settings(3)
@given(plan=plans())
def test_the_daemon_killed_and_restarted_gives_the_anomaly_alerts_replay_gives(
        broker: str, tiny_model: Path, reference: Alerts,
        tmp_path_factory: pytest.TempPathFactory, plan: Plan) -> None:
    live = asyncio.run(run_plan(broker, tmp_path_factory.mktemp("live"), tiny_model, plan))
    assert_replays(reference, live)
