"""Prometheus metrics: the only module that imports prometheus_client.

The names and labels are ops-facing (dashboards and alert rules are built on them): change
none. No label ever carries a user id or subject id; ``dataset`` comes from the events, so a
value is used only if it is named in the configuration (``metrics.datasets``: an event's
dataset could be anything, ``c-SECRET-0001`` included); every other dataset is ``other``.

Hot paths count per batch through pre-bound children (``inc(n)``): a labelled ``.inc()`` per
event would cost more than the detection itself (see notes/performance.md).

Other parts of watchdog (the anomaly stage) report through :class:`Hooks`, a Protocol with no
prometheus_client in sight; :data:`NULL_HOOKS` is the do-nothing one for replay and tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from watchdog import __version__
from watchdog.daemon.histogram import BatchHistogram
from watchdog.daemon.promise_metrics import PromiseMetrics
from watchdog.rules import RULE_IDS

SEVERITIES = ("critical", "high", "medium", "low")

MAX_DATASETS = 200  # names allowed as label values at most
OTHER = "other"
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            300.0, 600.0)
_SINK = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SCORE = tuple(round(0.05 * i, 2) for i in range(1, 21))


class Hooks(Protocol):
    """What a detection stage reports (the anomaly stage's ``Observer``); :class:`Metrics`
    implements it."""

    def on_model(self, version: str, loaded: bool) -> None: ...

    def on_score(self, score: float) -> None: ...

    def on_scores(self, scores: Iterable[float]) -> None: ...


class NullHooks:
    def on_model(self, version: str, loaded: bool) -> None:
        pass

    def on_score(self, score: float) -> None:
        pass

    def on_scores(self, scores: Iterable[float]) -> None:
        pass


NULL_HOOKS: Hooks = NullHooks()


class Metrics:
    """Every ``watchdog_*`` metric, in its own registry (several daemons can share a process
    in tests)."""

    def __init__(self, registry: CollectorRegistry | None = None,
                 rules: Iterable[str] = RULE_IDS) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.events = Counter("watchdog_events_total", "Access events consumed and decoded",
                              ["dataset", "action"], registry=r)
        self.invalid = Counter("watchdog_events_invalid_total",
                               "Documents rejected (dead-lettered)", ["reason"], registry=r)
        self.alerts = Counter("watchdog_alerts_total", "Alerts raised (after deduplication)",
                              ["rule", "severity"], registry=r)
        self.event_to_alert = Histogram(
            "watchdog_event_to_alert_seconds",
            "Wall time from consuming the completing event to every sink accepting the alert",
            buckets=_LATENCY, registry=r)
        # group: the consumer group reading the partition ("" for the state topics, which every
        # instance reads in full): the rules and anomaly services share a topic, not a lag
        self.lag = Gauge("watchdog_consumer_lag", "Records behind the partition's end",
                         ["group", "topic", "partition"], registry=r)
        self.sink_errors = Counter("watchdog_sink_errors_total", "Failed deliveries (retried)",
                                   ["sink"], registry=r)
        self.sink_sent = Counter("watchdog_sink_sent_total", "Alerts accepted by a sink",
                                 ["sink"], registry=r)
        self.sink_skipped = Counter(
            "watchdog_sink_skipped_total", "Alerts a file sink (jsonl, audit) did not write "
            "again because it already held them (same alert_id: a retry after a timed-out "
            "write, or sent again after a restart); counted as delivered", ["sink"], registry=r)
        self.sink_latency = Histogram("watchdog_sink_latency_seconds",
                                      "Time of one successful delivery call to a sink",
                                      ["sink"], buckets=_SINK, registry=r)
        self.accounts = Gauge("watchdog_accounts_tracked",
                              "Accounts with window state in the engine", registry=r)
        # detection: what the instance runs (detection.only: "rules", "anomaly"; both: "all"),
        # so that panels counting events can leave out the anomaly service, which reads them
        # again (not "service": the Prometheus Operator's target label of that name would win)
        self.build = Gauge("watchdog_build_info", "Build of the running daemon",
                           ["version", "detection"], registry=r)
        self.queue = Gauge("watchdog_queue_depth", "Items waiting: alerts for sinks, events in "
                           "the reorder buffer", ["queue"], registry=r)
        self.state = Gauge("watchdog_state_entries", "Entries in the engine's state",
                           ["state"], registry=r)
        self.state_dropped = Counter(
            "watchdog_state_dropped_total", "Keys from events the engine forgot: idle past "
            "their window (reason=idle, changes nothing) or dropped past a cap (reason=cap: a "
            "window cut short, alerts may be missed)", ["state", "reason"], registry=r)
        self.ready = Gauge("watchdog_ready", "1 when state is loaded and the broker reachable",
                           registry=r)
        self.watermark = Gauge("watchdog_watermark_timestamp_seconds",
                               "Event-time watermark of the reorder buffer", registry=r)
        self.last_event = Gauge("watchdog_source_last_event_timestamp_seconds",
                                "Latest event time seen per dataset", ["dataset"], registry=r)
        self.suppressed = Counter("watchdog_alerts_suppressed_total",
                                  "Alerts an exception of the policy excused (not raised)",
                                  ["rule"], registry=r)
        self.deduplicated = Counter("watchdog_alerts_deduplicated_total",
                                    "Alerts not sent again (same alert_id, or re-read after a "
                                    "rebalance/restart)", registry=r)
        self.obligations_open = Gauge("watchdog_obligations_open",
                                      "Obligations with a deadline opened and not yet judged",
                                      ["rule"], registry=r)
        self.reloads = Counter("watchdog_policy_reloads_total", "Policy reloads (SIGHUP)",
                               ["result"], registry=r)
        self.model_info = Gauge("watchdog_model_info", "The loaded anomaly model", ["version"],
                                registry=r)
        self.model_loaded_g = Gauge("watchdog_model_loaded", "1 when an anomaly model is loaded",
                                    registry=r)
        self.score = BatchHistogram("watchdog_anomaly_score",
                                    "Anomaly scores of accounts' behaviour", _SCORE, r)
        self.batch = Histogram("watchdog_batch_seconds", "Processing time of one consumed batch",
                               buckets=_BATCH, registry=r)
        self.late = Counter("watchdog_events_late_total",
                            "Events behind the watermark, processed out of order", registry=r)
        self.duplicate = Counter("watchdog_events_duplicate_total",
                                 "Redelivered events (same event.id, same content) dropped",
                                 registry=r)
        self.id_conflicts = Counter("watchdog_events_id_conflicts_total",
                                    "Events that reused a known event.id with different "
                                    "content: processed, not dropped as duplicates", registry=r)
        self.sink_stalled = Gauge("watchdog_sink_stalled_seconds",
                                  "Seconds a sink (or the dead-letter topic) has accepted "
                                  "nothing while items wait for it (0: progressing)", ["sink"],
                                  registry=r)
        self.future = Counter("watchdog_events_future_total",
                              "Events held apart on arrival, further than "
                              "detection.future_seconds ahead of the present (a wrong clock; "
                              "or a stream resuming after a longer quiet spell, for a few "
                              "events)", registry=r)
        self.future_strays = Counter("watchdog_events_future_strays_total",
                                     "Events held ahead of the present judged strays (their "
                                     "stream went on without them): their records no longer "
                                     "hold the commit back", registry=r)
        self.checkpoints = Counter(
            "watchdog_checkpoints_total", "Checkpoints of the detector's state for MQTT: "
            "written, failed to write (retried), unreadable at start (started empty)",
            ["result"], registry=r)
        self.checkpoint_bytes = Gauge("watchdog_checkpoint_bytes",
                                      "Size of the last checkpoint written", registry=r)
        self.checkpoint_seconds = Histogram(
            "watchdog_checkpoint_seconds", "Time to capture, encode and durably write one "
            "checkpoint (the pipeline waits meanwhile)", buckets=_BATCH, registry=r)
        self.model_state_saves = Counter(
            "watchdog_model_state_saves_total", "Saves of the anomaly model's learnt state: "
            "ok, failed (retried), deferred (re-read records still in the buffer, or an alert "
            "waiting for a sink)",
            ["result"], registry=r)
        self.model_state_restores = Counter(
            "watchdog_model_state_restores_total", "Starts and the anomaly model's saved state: "
            "restored, none, unreadable or stale (started afresh)", ["result"], registry=r)
        self.model_state_bytes = Gauge("watchdog_model_state_bytes",
                                       "Size of the last saved model state", registry=r)
        # the alert WatchdogModelStateSavesDeferred: the last save's age against the period
        self.model_state_saved_at = Gauge(
            "watchdog_model_state_last_save_timestamp_seconds", "Wall time of the last model "
            "state saved (before the first save: the start; 0: no model state kept)", registry=r)
        self.model_state_period = Gauge("watchdog_model_state_period_seconds",
                                        "model_state.every_seconds (0: no model state kept)",
                                        registry=r)
        self.model_state_deferred = Gauge(
            "watchdog_model_state_deferred", "1 while the last save of the model's state was "
            "deferred (re-read records in the buffer, or an alert waiting for a sink)", registry=r)
        self.model_state_seconds = Histogram(
            "watchdog_model_state_capture_seconds", "Time to capture the model's state (the "
            "pipeline waits meanwhile; the write runs beside it)", buckets=_BATCH, registry=r)
        self.model_state_missed = Gauge(
            "watchdog_model_state_missed_events", "Events the anomaly model did not learn at "
            "the last start: over MQTT, processed and acknowledged between its last save and a "
            "crash (not delivered again); NaN: unknown (no rules' checkpoint to count them by)",
            registry=r)
        self.mqtt_unacked = Gauge(
            "watchdog_mqtt_unacknowledged", "MQTT messages received and not acknowledged yet "
            "(in the reorder buffer, alerts for sinks, awaiting a checkpoint; the broker sends "
            "at most 65535)", registry=r)
        self.rule_alerts_read = Counter(
            "watchdog_rule_alerts_read_total", "Rules' alerts the anomaly service read back for "
            "the accumulated risk: taken, foreign (an account of another instance), old or invalid",
            ["result"], registry=r)
        self.rules_follow_lifted = Counter(
            "watchdog_rules_follow_lifted_total", "Times the anomaly service stopped following "
            "the rules service's offsets (no progress for detection.follow_rules_seconds)",
            registry=r)
        self.future_held = Gauge("watchdog_events_future_held",
                                 "Events held ahead of the present now", registry=r)
        self.whole_stream_reader = Gauge(
            "watchdog_whole_stream_reader", "1 while this instance runs the whole-stream "
            "reader (log_gap over every partition, group <group>.whole-stream)", registry=r)
        self.log_gaps = Counter("watchdog_log_gaps_total", "log_gap alerts per dataset whose log "
                                "has the gap (the alert's user_id)", ["dataset"], registry=r)
        self.whole_stream_lag = Gauge("watchdog_whole_stream_lag",
                                      "Records behind the partition's end, whole-stream reader",
                                      ["topic", "partition"], registry=r)
        # the archive (watchdog.daemon.sinks.archive): dataset is one of five fixed names
        self.archive_rows = Counter("watchdog_archive_rows_total",
                                    "Documents written to archive segments", ["dataset"],
                                    registry=r)
        self.archive_errors = Counter("watchdog_archive_write_errors_total",
                                      "Archive flushes that failed (retried)", registry=r)
        self.archive_pending = Gauge("watchdog_archive_pending",
                                     "Documents waiting for the next archive segment",
                                     registry=r)
        self.archive_flushed = Gauge("watchdog_archive_last_flush_timestamp_seconds",
                                     "Wall time of the last successful archive flush",
                                     registry=r)
        self.archive_days = Gauge("watchdog_archive_days", "Days the archive holds",
                                  ["dataset"], registry=r)
        self.archive_missing = Gauge("watchdog_archive_missing_days",
                                     "Days without a segment between the archive's first and "
                                     "last day", ["dataset"], registry=r)
        self.archive_day_rows = Gauge("watchdog_archive_day_rows",
                                      "Rows archived per day (the last 35 days)",
                                      ["dataset", "day"], registry=r)
        self.archive_segments = Gauge("watchdog_archive_segments",
                                      "Live archive segments (as this instance last read the "
                                      "manifest)", ["dataset"], registry=r)
        self.archive_uncompacted = Gauge("watchdog_archive_uncompacted_days",
                                         "Days closed 2 days or more before the latest archived "
                                         "event still in several segments (not compacted)",
                                         ["dataset"], registry=r)

        self.promises = PromiseMetrics(r)
        self._rule_ids = tuple(rules)

        self.set_detection("all")
        self.model_loaded_g.set(0)
        self.ready.set(0)
        self.whole_stream_reader.set(0)
        for reason in ("too_large", "not_json", "missing_field", "bad_timestamp",
                       "invalid_value", "processing_error"):
            self.invalid.labels(reason)
        for result in ("ok", "error"):
            self.reloads.labels(result)
        for result in ("taken", "foreign", "old", "invalid"):
            self.rule_alerts_read.labels(result)
        for result in ("written", "failed", "unreadable"):
            self.checkpoints.labels(result)  # increase() needs the series before the first
        for result in ("ok", "failed", "deferred"):
            self.model_state_saves.labels(result)
        for result in ("restored", "none", "unreadable", "stale"):
            self.model_state_restores.labels(result)
        self.q_alerts = self.queue.labels("alerts")
        self.q_reorder = self.queue.labels("reorder")
        self.s_directory = self.state.labels("directory")
        self.s_subjects = self.state.labels("subjects")
        self.s_windows = self.state.labels("windows")
        self._forgot: dict[tuple[str, str], int] = {}
        for state in ("windows", "datasets"):
            for reason in ("idle", "cap"):
                self.state_dropped.labels(state, reason)
                self._forgot[(state, reason)] = 0
        self._events: dict[tuple[str, str], Counter] = {}
        self._last: dict[str, Gauge] = {}
        # every rule x severity exists at 0 from the start: increase() over a range that
        # holds a series' first alert counts it (a series born at 1 would not be counted)
        self._alerts: dict[tuple[str, str], Counter] = {
            (rule, sev): self.alerts.labels(rule, sev) for rule in self._rule_ids
            for sev in SEVERITIES}
        for rule in self._rule_ids:
            self.suppressed.labels(rule)  # excused alerts too: increase() counts the first
        self._invalid: dict[str, Counter] = {}
        self._datasets: frozenset[str] = frozenset()  # label values allowed (name_datasets)
        self._last_t: dict[str, float] = {}

    # -- per batch -------------------------------------------------------------------
    def set_detection(self, runs: str) -> None:
        """What this instance runs: ``rules``, ``anomaly`` or ``all`` (watchdog_build_info)."""
        self.build.clear()
        self.build.labels(__version__, runs).set(1)

    def name_datasets(self, names: Iterable[str]) -> None:
        """The datasets that may be label values (the configuration's); others are ``other``."""
        self._datasets = frozenset(list(names)[:MAX_DATASETS])

    def _dataset(self, name: str) -> str:
        return name if name in self._datasets else OTHER

    def count_events(self, counts: Mapping[tuple[str, str], int]) -> None:
        children = self._events  # by (dataset, action) as seen: named datasets only
        for key, n in counts.items():
            child = children.get(key)
            if child is None:
                label = self._dataset(key[0])
                child = self.events.labels(label, key[1])
                if label != OTHER:  # an id from an event is not kept as a key
                    children[key] = child
            child.inc(n)

    def last_event_times(self, latest: Mapping[str, float]) -> None:
        children = self._last  # by label: bounded by the named datasets + other
        for dataset, t in latest.items():
            label = self._dataset(dataset)
            child = children.get(label)
            if child is None:
                child = children[label] = self.last_event.labels(label)
                self.log_gaps.labels(label)  # at 0 before its first gap
                self._last_t[label] = t
            elif label == OTHER and t <= self._last_t[label]:
                continue  # other: the latest of them all
            self._last_t[label] = t
            child.set(t)

    def state_forgetting(self, counts: Mapping[str, tuple[int, int, int]]) -> None:
        """:meth:`Engine.forgetting`: keys kept, forgotten idle and dropped past a cap."""
        for state, (kept, idle, capped) in counts.items():
            self.state.labels(state).set(kept)
            for reason, n in (("idle", idle), ("cap", capped)):
                before = self._forgot.get((state, reason), 0)
                if n > before:
                    self.state_dropped.labels(state, reason).inc(n - before)
                    self._forgot[(state, reason)] = n

    def count_alert(self, rule: str, severity: str, user_id: str = "") -> None:
        key = (rule, severity)
        child = self._alerts.get(key)
        if child is None:
            child = self._alerts[key] = self.alerts.labels(rule, severity)
        child.inc()
        if rule == "log_gap":  # its user_id names the dataset
            self.log_gaps.labels(self._dataset(user_id)).inc()
        self.promises.count(rule, user_id)

    def count_invalid(self, reason: str, n: int = 1) -> None:
        child = self._invalid.get(reason)
        if child is None:
            child = self._invalid[reason] = self.invalid.labels(reason)
        child.inc(n)

    # -- Hooks -------------------------------------------------------------------------
    def on_model(self, version: str, loaded: bool) -> None:
        """A model was loaded (or a directory refused: the old model, if any, stays)."""
        if loaded:
            self.model_info.clear()
            self.model_info.labels(version).set(1)
            self.model_loaded_g.set(1)

    def on_score(self, score: float) -> None:
        self.score.observe(score)

    def on_scores(self, scores: Iterable[float]) -> None:
        """A batch of scores at once: a count per bucket, not a call per score (the anomaly
        stage scores thousands at a time)."""
        self.score.observe_many(scores)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
