"""The stream of the live anomaly property (test_fuzz_live_broker_anomaly), and what replay
says about it.

The insider scenario (:func:`tests.anomaly.conftest.insider_docs`: three days of office work by
30 accounts, then one account copying customers to a USB stick at night) with a repeat
offender (u010 copies a few customers every night: a risk alert the first night, then its
cool-down; its later windows read "usually 0-1 for this account" rather than "a new account":
state that a restart from nothing loses), moved forward by whole weeks to the last days before
now (the model sees the same weekdays and hours), then one login two days later: the **end
marker**.

**The stream's end.** With ``model_state`` the daemon *drains* the stage at its shutdown (the
open scoring window, and the rule alerts and day evidence that wait for a later scored window,
are left for the next start), while replay *flushes* it at the end of its file. Compared: the
alerts whose ``ts`` falls before the end marker's 10-minute scoring window (:data:`CUT`). Once
either has processed the marker it has scored every earlier window and applied what those
windows bring; what replay's final flush adds is dated at the marker's window or later. That
this cut is sound is checked, not assumed (:func:`expected_alerts`): the same events through an
in-process :class:`~watchdog.daemon.pipeline.Pipeline`, then every partition idle (a drain, as
the daemon at its end), give replay's alerts before the cut. Replay must raise at least one
window and one risk alert before it, else the property would hold trivially (it raises 5 and
2, and 1,049 rule alerts).
"""

from __future__ import annotations

import io
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson

from tests.anomaly.conftest import T0, directory_records, insider_docs, ts
from tests.anomaly.conftest import event as access_event
from tests.daemon.helpers import CollectAlerts, NoDeadLetters, QuietLog
from tests.fuzz._live_broker import comparable
from tests.fuzz._scenarios import KEY
from watchdog.alerts.model import Alert, encode_alert
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.anomaly.stage import load_stage
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sources.base import Raw
from watchdog.decode import Decoder
from watchdog.engine.detector import Detector
from watchdog.engine.engine import Engine
from watchdog.engine.ordering import Reorderer
from watchdog.events import AccessEvent, DirectoryRecord, check_times
from watchdog.files.jsonl import RejectedWriter
from watchdog.policy import load_policy
from watchdog.replay import REPLAY_RELEASE_STEP, replay
from watchdog.rules import default_rules

DAY = 86400.0
WEEK = 7 * DAY
WINDOW = 600.0  # the stage's scoring window (watchdog.anomaly.vocabulary.SCORING_WINDOW)
ACCOUNTS = 30


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _stream() -> list[dict[str, Any]]:
    docs = insider_docs()
    for d in range(3):  # u010 copies a few customers to a USB stick every night at 22:30 JST
        t0 = T0 + d * DAY + 13.5 * 3600
        docs.extend(access_event(t0 + i * 60, "u010", f"y{d}-{i}", "copy",
                                 resource="billing.payments", categories=("payment",),
                                 ids=tuple(f"c8{d}{i:03d}{k}" for k in range(5)), records=5,
                                 ip="10.98.1.1", dest={"kind": "external_media"})
                    for i in range(12))
    docs.sort(key=lambda doc: str(doc["@timestamp"]))
    last = epoch(docs[-1]["@timestamp"])
    # the marker two days later at 10:00 JST (01:00 UTC), a working day; all before now
    marker = (last // DAY + 2) * DAY + 3600.0
    shift = ((time.time() - DAY - marker) // WEEK) * WEEK
    out = [{**d, "@timestamp": ts(epoch(d["@timestamp"]) + shift)} for d in docs]
    out.append(access_event(marker + shift, "u000", "end-marker", "login", ip="10.1.0.2"))
    return out


DOCS = _stream()
RAWS = [msgspec.json.encode(d) for d in DOCS]
TIMES = [epoch(d["@timestamp"]) for d in DOCS]
assert sorted(TIMES) == TIMES
USERS = [str(d["user"]["id"]) for d in DOCS]
CUT = TIMES[-1] // WINDOW * WINDOW  # compared: the alerts dated before the marker's window
# where a kill may fall: after the first day of events, before the end marker; on the second
# day, on the third before the insider's night, or within the last night's copies
_DAY2, _DAY3 = (next(i for i, t in enumerate(TIMES) if t >= TIMES[0] + d * DAY) for d in (1, 2))
_NIGHT = next(i for i, d in enumerate(DOCS) if d["event"]["id"] == "x0")
KILL_SPANS = ((_DAY2, _DAY3), (_DAY3, _NIGHT), (_NIGHT, len(DOCS) - 1))
# the nights' copies (u010's three, the insider's): a stop there finds an unusual window open
NIGHT_SPANS = tuple(
    (min(ix), max(ix) + 1) for ix in (
        [i for i, d in enumerate(DOCS) if str(d["event"]["id"]).startswith(prefix)]
        for prefix in ("y0-", "y1-", "y2-", "x")))


def cut_at(k: int) -> int:
    """``k`` moved forward to a change of event time (no cut within one time)."""
    while k < len(TIMES) - 1 and TIMES[k] == TIMES[k - 1]:
        k += 1
    return k


# where the restart tests of the model's state stop the daemon (MQTT alone, or with Kafka)
TERM_AT = cut_at(sum(NIGHT_SPANS[1]) // 2)  # SIGTERM in u010's second night of copies
SAVED = cut_at(NIGHT_SPANS[0][0] - 40)  # kill -9 test: saved before u010's first night ...
KILLED = cut_at(NIGHT_SPANS[0][1] + 40)  # ... killed after it, read and acknowledged
NEVER = 3600.0  # model_state.every_seconds there: the only saves are the SIGTERMs'


def before_cut(alerts: set[bytes]) -> set[bytes]:
    return {a for a in alerts if epoch(orjson.loads(a)["ts"]) < CUT}


def kind(raw: bytes) -> str:
    """``rule``, or the anomaly stage's ``window`` or ``risk`` alert."""
    doc = orjson.loads(raw)
    if doc["rule"] != "anomaly":
        return "rule"
    return "risk" if (doc.get("explanation") or {}).get("kind") == "risk" else "window"


def engine() -> Engine:
    """An engine as the daemon builds it (default policy, the test key), with the directory."""
    eng = Engine(load_policy(None), Pseudonymizer(KEY), default_rules())
    for rec in directory_records(ACCOUNTS):
        eng.apply_directory(msgspec.convert(rec, DirectoryRecord))
    return eng


def _replayed(model: Path, tmp: Path) -> set[bytes]:
    events, directory = tmp / "events.jsonl", tmp / "directory.jsonl"
    events.write_bytes(b"".join(r + b"\n" for r in RAWS))
    directory.write_bytes(b"".join(msgspec.json.encode(d) + b"\n"
                                   for d in directory_records(ACCOUNTS)))
    eng = Engine(load_policy(None), Pseudonymizer(KEY), default_rules())
    out = io.BytesIO()
    rejected = RejectedWriter(tmp / "rejected.jsonl")
    replay(str(events), out, eng, directory=str(directory), stages=[load_stage(model, eng)],
           rejected=rejected)
    rejected.close()
    assert rejected.count == 0
    return comparable(out.getvalue().splitlines())


def _alone(model: Path) -> set[bytes]:
    """What replay gives with the stages alone (no such option: its detector, ``rules=False``,
    over the events in the file's order, then flushed), as the anomaly service runs them."""
    eng = engine()
    detector = Detector(eng, Reorderer(release_step=REPLAY_RELEASE_STEP),
                        [load_stage(model, eng)], rules=False)
    decoder = Decoder(AccessEvent, check=check_times)
    alerts: list[Alert] = []
    for raw in RAWS:
        ev = decoder.decode(raw)
        assert isinstance(ev, AccessEvent), ev
        alerts.extend(detector.push(ev, ev.timestamp.timestamp()).alerts)
    alerts.extend(detector.flush())
    return comparable([encode_alert(a) for a in alerts])


def _drained(model: Path, rules: bool = True) -> set[bytes]:
    """The events in order through the daemon's pipeline, then idle: drained, not flushed."""
    eng = engine()
    delivery = CollectAlerts()
    pipeline = Pipeline(eng, delivery, NoDeadLetters(), Metrics(),  # type: ignore[arg-type]
                        QuietLog(), stages=[load_stage(model, eng)], lateness=60.0,
                        rules=rules)
    pipeline.open_partition(0, 0)
    for lo in range(0, len(RAWS), 500):
        pipeline.ingest(0, [Raw(r, lo + k, 0) for k, r in enumerate(RAWS[lo:lo + 500])],
                        "access-logs")
    pipeline.mark_idle(0)
    return comparable([encode_alert(a) for a in delivery.alerts])


class Alerts(frozenset[bytes]):
    def __repr__(self) -> str:  # (hypothesis prints the fixtures of a failing example)
        return f"<{len(self)} alerts>"


def expected_alerts(model: Path, tmp: Path, rules: bool = True) -> Alerts:
    """Replay's alerts before the cut, checked: a drained pipeline agrees, and they hold window
    and risk alerts. ``rules=False``: the stages' alone (the anomaly service's, which weigh no
    rule alert in the risk)."""
    expected = before_cut(_replayed(model, tmp) if rules else _alone(model))
    drained = before_cut(_drained(model, rules))
    assert drained == expected, ("the cut is not sound: a drain and a flush differ before it",
                                 sorted(expected - drained), sorted(drained - expected))
    kinds = [kind(a) for a in expected]
    assert kinds.count("window") >= 1, kinds
    assert kinds.count("risk") >= 1, kinds
    return Alerts(expected)


# -- a failure, said precisely ------------------------------------------------------------------
def _paths(a: Any, b: Any, at: str = "") -> list[str]:
    """Where two JSON documents differ: ``path: a -> b``."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in sorted(a.keys() | b.keys())
                for p in _paths(a.get(k), b.get(k), f"{at}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for k, (x, y) in enumerate(zip(a, b, strict=True))
                for p in _paths(x, y, f"{at}[{k}]")]
    return [] if a == b else [f"{at}: {str(a)[:160]} -> {str(b)[:160]}"]


def explain(missing: list[bytes], extra: list[bytes]) -> str:
    """The differences by alert: an ``alert_id`` on both sides by its fields, else whole."""
    ours = {orjson.loads(a)["alert_id"]: a for a in extra}
    lines = []
    for raw in missing:
        doc = orjson.loads(raw)
        live = ours.pop(doc["alert_id"], None)
        if live is None:
            lines.append(f"missing {kind(raw)} {doc['alert_id']} {doc['ts']} {doc['user_id']} "
                         f"score={doc.get('score')}")
        else:
            lines.append(f"differs {kind(raw)} {doc['alert_id']} {doc['ts']}: replay -> live "
                         + "; ".join(_paths(doc, orjson.loads(live))))
    for raw in ours.values():
        doc = orjson.loads(raw)
        lines.append(f"extra {kind(raw)} {doc['alert_id']} {doc['ts']} {doc['user_id']} "
                     f"score={doc.get('score')}")
    return "\n".join(lines)


def assert_replays(reference: Alerts, live: set[bytes]) -> None:
    """The daemon's alerts (before the cut) are replay's: none missing, none extra."""
    missing, extra = sorted(reference - live), sorted(live - reference)
    assert (missing, extra) == ([], []), (
        f"{len(missing)} of replay's {len(reference)} alerts missing, {len(extra)} extra "
        f"(before the cut; {[kind(a) for a in missing]} / {[kind(a) for a in extra]})\n"
        f"{explain(missing, extra)}")
