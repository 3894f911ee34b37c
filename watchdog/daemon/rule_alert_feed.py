"""The rules service's alerts, read back by the anomaly service for the accumulated risk.

In one process the detector hands every rule alert to the anomaly stage, whose risk ledger
counts it for the account (docs/risk-and-labels.md). Split in two services
(``detection.only``), the anomaly service runs no rule and its risk added windows and the
leaver period only: an insider whose rule alerts and small anomalies add up in one process
raised no risk alert in the split deployment. The rules service publishes its alerts to the
Kafka sink's topic (``sinks.kafka``); this reader takes them from there.

- A consumer outside any group reads every partition of the topic (alerts are few), from
  ``LOOKBACK_SECONDS`` of broker time before the start (the ledger's saved state says which
  alert ids it already took: those are skipped, so a restart counts none twice), then tails.
- Only rule alerts of the accounts this instance reads are taken: an alert of an account it
  has not seen yet waits (at most ``HOLD_SECONDS``, ``MAX_HELD`` of them) for its events, as
  the anomaly service may lag the rules service; one that never comes belongs to another
  instance's partitions and is dropped. Its own ``anomaly`` alerts are left out.
- One older than the ledger remembers the ids it took (a day of event time behind its clock:
  ``forgets_before``) is skipped as ``old``: read again after a restart, it was counted before.
- A rule alert counts at its event time, as in one process; one that arrives after the
  ledger's clock passed it counts decayed to the present (the ledger treats any earlier signal
  so). So the split deployment's risk equals the single process's when the rules service is
  ahead of the anomaly service, and is at most a few seconds' decay lower when it is behind.
- A document that is not an alert is counted (``invalid``) and skipped; a broker that is away
  is retried; the topic missing is said once and looked for again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from watchdog.alerts.model import Alert
from watchdog.daemon.config import Config
from watchdog.daemon.kafka_client import keep_reading
from watchdog.daemon.metrics import Metrics

LOOKBACK_SECONDS = 86_400.0
HOLD_SECONDS = 600.0
MAX_HELD = 10_000
MISSING_RETRY_SECONDS = 5.0  # the topic looked for again (the rules service creates it)
RULE_OF_THE_MODEL = "anomaly"

_decode = msgspec.json.Decoder(Alert).decode


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


@runtime_checkable
class TakesRuleAlerts(Protocol):
    """The anomaly stage as this feed uses it."""

    late_rule_alerts: bool

    def observe_alerts(self, alerts: Sequence[Alert]) -> None: ...
    def tracks(self, user_id: str) -> bool: ...
    def on_new_account(self, hook: Callable[[str], None]) -> None: ...
    def forgets_before(self) -> float: ...


class RuleAlertFeed:
    """``observe(alerts)`` gets the rule alerts of tracked accounts (``tracks(user_id)``),
    ``count(result, n)`` what became of them: taken, foreign, old, invalid."""

    def __init__(self, topic: str, client_kwargs: dict[str, Any], *,
                 observe: Callable[[Sequence[Alert]], None], tracks: Callable[[str], bool],
                 count: Callable[[str, int], None], log: Any,
                 forgets_before: Callable[[], float] = lambda: float("-inf"),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.topic = topic
        self.client_kwargs = client_kwargs
        self.observe = observe
        self.tracks = tracks
        self.count = count  # (result, n): taken, foreign, invalid
        self.log = log.bind(topic=topic)
        self.clock = clock
        self.forgets_before = forgets_before  # event time before which taken ids are forgotten
        self.consumer: AIOKafkaConsumer | None = None
        # the next offset of each partition to read (from the start: the follower asks it)
        self.resume: dict[TopicPartition, int] = {}
        self.held: dict[str, tuple[float, Alert]] = {}  # alert id -> (held since, alert)
        self.waiting: dict[str, list[str]] = {}  # account -> its held alerts' ids

    # -- pure part: what to take ----------------------------------------------------------------
    def take(self, raws: Sequence[bytes]) -> None:
        """Decode, filter and hand over one fetch's documents (and any held alert whose
        account has appeared); drop what waited too long."""
        now = self.clock()
        fresh: list[Alert] = []
        invalid = 0
        for raw in raws:
            try:
                a = _decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                invalid += 1
                continue
            if a.rule != RULE_OF_THE_MODEL:
                fresh.append(a)
        if invalid:
            self.count("invalid", invalid)
            self.log.warning("rule_alert_invalid", documents=invalid)
        if fresh:
            horizon = self.forgets_before()
            kept = [a for a in fresh if _epoch(a.ts) >= horizon]
            if len(kept) < len(fresh):
                self.count("old", len(fresh) - len(kept))
            fresh = kept
        for a in fresh:
            if a.alert_id not in self.held:
                self.held[a.alert_id] = (now, a)
                self.waiting.setdefault(a.user_id, []).append(a.alert_id)
        ready, foreign = [], 0
        for aid, (since, a) in list(self.held.items()):
            if self.tracks(a.user_id):
                ready.append(a)
                self._unhold(aid, a.user_id)
            elif now - since > HOLD_SECONDS:
                foreign += 1
                self._unhold(aid, a.user_id)
        while len(self.held) > MAX_HELD:  # the oldest first (dicts keep insertion order)
            aid = next(iter(self.held))
            self._unhold(aid, self.held[aid][1].user_id)
            foreign += 1
        if foreign:
            self.count("foreign", foreign)
        self._hand_over(ready)

    def seen(self, user_id: str) -> None:
        """The stage has the account's first events: its held alerts go to it now, before its
        windows are scored (at the next fetch they could come after)."""
        ids = self.waiting.pop(user_id, None)
        if ids:
            self._hand_over([self.held.pop(aid)[1] for aid in ids])

    def _unhold(self, aid: str, user_id: str) -> None:
        del self.held[aid]
        ids = self.waiting.get(user_id)
        if ids is not None:
            ids.remove(aid)
            if not ids:
                del self.waiting[user_id]

    def _hand_over(self, ready: list[Alert]) -> None:
        if ready:
            ready.sort(key=lambda a: (a.ts, a.alert_id))
            self.observe(ready)
            self.count("taken", len(ready))

    def reached(self, ends: Mapping[TopicPartition, int]) -> bool:
        """Whether every alert below ``ends`` was read and taken (or held for its account):
        what :mod:`.rules_follow` waits for."""
        return all(self.resume.get(tp, -1) >= end for tp, end in ends.items() if end > 0)

    # -- I/O ------------------------------------------------------------------------------------
    async def run(self) -> None:
        await keep_reading(self._step, self.close, self.log, "rule_alerts_fetch_failed")

    async def _step(self) -> None:
        if self.consumer is None and not await self._open():
            await asyncio.sleep(MISSING_RETRY_SECONDS)  # the topic is not there (yet)
            return
        assert self.consumer is not None
        data = await self.consumer.getmany(timeout_ms=1000, max_records=5000)
        for tp, recs in data.items():
            if recs:
                self.resume[tp] = recs[-1].offset + 1
        self.take([r.value for recs in data.values() for r in recs if r.value is not None])

    async def _open(self) -> bool:
        c = AIOKafkaConsumer(enable_auto_commit=False, **self.client_kwargs)
        try:
            await c.start()
        except BaseException:
            await c.stop()
            raise
        parts = c.partitions_for_topic(self.topic)
        if not parts:
            await c.stop()
            self.log.warning("rule_alerts_topic_missing",
                             consequence="the risk adds windows and the leaver period only "
                                         "until the rules service's alerts topic exists")
            return False
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        c.assign(tps)
        since = int((time.time() - LOOKBACK_SECONDS) * 1000)
        new = [tp for tp in tps if tp not in self.resume]  # (a reconnect goes on where it was)
        found = await c.offsets_for_times(dict.fromkeys(new, since)) if new else {}
        for tp in tps:
            at = found.get(tp)
            if tp in self.resume:
                c.seek(tp, self.resume[tp])
            elif at is None:
                await c.seek_to_end(tp)
                self.resume[tp] = await c.position(tp)
            else:
                c.seek(tp, at.offset)
                self.resume[tp] = at.offset
        self.consumer = c
        self.log.info("rule_alerts_reading", partitions=len(tps),
                      lookback_hours=LOOKBACK_SECONDS / 3600)
        return True

    async def close(self) -> None:
        c, self.consumer = self.consumer, None
        if c is not None:
            await c.stop()


def configured_feed(cfg: Config, stages: Sequence[object], client: dict[str, Any],
                    metrics: Metrics, log: Any) -> RuleAlertFeed | None:
    """The feed of the anomaly service (``detection.only: anomaly``) whose rules service
    publishes its alerts to Kafka (``sinks.kafka``); None otherwise (said once)."""
    if cfg.detection.rules:
        return None  # the rules run here: the detector hands their alerts over
    # (by what it does, not its class: importing the anomaly stage loads numba and scikit-learn)
    stage = next((s for s in stages if isinstance(s, TakesRuleAlerts)), None)
    if stage is None:
        return None
    if cfg.sinks.kafka is None:
        log.warning("rule_alerts_off", reason="no Kafka sink: the rules service's alerts are "
                    "not on a topic", consequence="the accumulated risk adds windows and the "
                    "leaver period only, not the rules' alerts")
        return None
    counter = metrics.rule_alerts_read
    stage.late_rule_alerts = True  # applied at the next tick when their time has passed
    feed = RuleAlertFeed(cfg.sinks.kafka.topic or cfg.topics.alerts, client,
                         observe=stage.observe_alerts, tracks=stage.tracks,
                         count=lambda result, n: counter.labels(result).inc(n), log=log,
                         forgets_before=stage.forgets_before)
    stage.on_new_account(feed.seen)
    return feed
