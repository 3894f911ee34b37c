"""A stand-in for ``watchdog run``'s /metrics: the same metric names, types and labels.

Used by tests/grafana/conftest.py only while the daemon cannot be started (its
``watchdog.daemon.cli`` module is missing). Run: ``python fake_exporter.py --port N``.
It serves 127.0.0.1 only, moves every metric a little every 0.2 s, and stops by
itself after ``--max-seconds``.

``METRICS`` is the daemon's metric set as agreed for issue 5: the dashboards and
alert rules may use these names and nothing else (plus process_* and ``up``).
"""

from __future__ import annotations

import argparse
import random
import time

# name -> (type, labels). Counters are listed without their _total suffix.
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "watchdog_events": ("counter", ("dataset", "action")),
    "watchdog_events_invalid": ("counter", ("reason",)),
    "watchdog_alerts": ("counter", ("rule", "severity")),
    "watchdog_event_to_alert_seconds": ("histogram", ()),
    "watchdog_consumer_lag": ("gauge", ("group", "topic", "partition")),
    "watchdog_sink_errors": ("counter", ("sink",)),
    "watchdog_accounts_tracked": ("gauge", ()),
    "watchdog_build_info": ("gauge", ("version", "detection")),
    "watchdog_sink_sent": ("counter", ("sink",)),
    "watchdog_sink_skipped": ("counter", ("sink",)),
    "watchdog_sink_latency_seconds": ("histogram", ("sink",)),
    "watchdog_queue_depth": ("gauge", ("queue",)),
    "watchdog_state_entries": ("gauge", ("state",)),
    "watchdog_state_dropped": ("counter", ("state", "reason")),
    "watchdog_ready": ("gauge", ()),
    "watchdog_watermark_timestamp_seconds": ("gauge", ()),
    "watchdog_source_last_event_timestamp_seconds": ("gauge", ("dataset",)),
    "watchdog_alerts_suppressed": ("counter", ("rule",)),
    "watchdog_alerts_deduplicated": ("counter", ()),
    "watchdog_obligations_open": ("gauge", ("rule",)),
    "watchdog_policy_reloads": ("counter", ("result",)),
    "watchdog_model_info": ("gauge", ("version",)),
    "watchdog_model_loaded": ("gauge", ()),
    "watchdog_anomaly_score": ("histogram", ()),
    "watchdog_batch_seconds": ("histogram", ()),
    "watchdog_events_late": ("counter", ()),
    "watchdog_events_duplicate": ("counter", ()),
    "watchdog_events_id_conflicts": ("counter", ()),
    "watchdog_whole_stream_reader": ("gauge", ()),
    "watchdog_log_gaps": ("counter", ("dataset",)),
    "watchdog_archive_rows": ("counter", ("dataset",)),
    "watchdog_archive_write_errors": ("counter", ()),
    "watchdog_archive_pending": ("gauge", ()),
    "watchdog_archive_last_flush_timestamp_seconds": ("gauge", ()),
    "watchdog_archive_days": ("gauge", ("dataset",)),
    "watchdog_archive_missing_days": ("gauge", ("dataset",)),
    "watchdog_archive_day_rows": ("gauge", ("dataset", "day")),
    "watchdog_archive_segments": ("gauge", ("dataset",)),
    "watchdog_archive_uncompacted_days": ("gauge", ("dataset",)),
    "watchdog_whole_stream_lag": ("gauge", ("topic", "partition")),
    "watchdog_commitment_info": ("gauge", ("commitment", "clause")),
    "watchdog_commitment_alerts": ("counter", ("commitment",)),
    "watchdog_account_alerts": ("counter", ("account",)),
    "watchdog_sink_stalled_seconds": ("gauge", ("sink",)),
    "watchdog_checkpoints": ("counter", ("result",)),
    "watchdog_model_state_saves": ("counter", ("result",)),
    "watchdog_model_state_restores": ("counter", ("result",)),
    "watchdog_model_state_bytes": ("gauge", ()),
    "watchdog_model_state_capture_seconds": ("histogram", ()),
    "watchdog_model_state_missed_events": ("gauge", ()),
    "watchdog_model_state_last_save_timestamp_seconds": ("gauge", ()),
    "watchdog_model_state_period_seconds": ("gauge", ()),
    "watchdog_model_state_deferred": ("gauge", ()),
    "watchdog_rule_alerts_read": ("counter", ("result",)),
    "watchdog_rules_follow_lifted": ("counter", ()),
}

RULES = {
    "revoked_account": "critical", "unknown_account": "high", "bulk_export": "critical",
    "external_media": "critical", "external_email": "high", "unapproved_third_party": "critical",
    "cross_border_transfer": "high", "purpose_violation": "medium",
    "category_not_permitted": "high", "subject_restricted": "high", "marketing_opt_out": "high",
    "minor_data": "high", "reidentification": "high", "retention_expired": "medium",
    "off_hours_access": "low", "external_network": "medium", "brute_force": "medium",
    "log_gap": "high", "anomaly": "medium",
}
DATASETS = {"crm.audit": ("read", "update", "export"), "idp.auth": ("login",),
            "mkt.audit": ("read", "export"), "hr.audit": ("read",)}
SINKS = ("kafka", "alertmanager", "webhook")
REASONS = ("too_large", "not_json", "missing_field", "bad_timestamp", "invalid_value")


def serve(port: int, max_seconds: float) -> None:
    from prometheus_client import Counter, Gauge, Histogram, start_http_server

    lat = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
    events = Counter("watchdog_events", "Valid access events read.", ["dataset", "action"])
    invalid = Counter("watchdog_events_invalid", "Invalid input documents.", ["reason"])
    alerts = Counter("watchdog_alerts", "Alerts raised.", ["rule", "severity"])
    e2a = Histogram("watchdog_event_to_alert_seconds", "Consume to alert sent.", buckets=lat)
    lag = Gauge("watchdog_consumer_lag", "Consumer lag.", ["group", "topic", "partition"])
    sink_err = Counter("watchdog_sink_errors", "Failed sends.", ["sink"])
    accounts = Gauge("watchdog_accounts_tracked", "Accounts with state.")
    build = Gauge("watchdog_build_info", "Build.", ["version", "detection"])
    sent = Counter("watchdog_sink_sent", "Alerts sent.", ["sink"])
    Counter("watchdog_sink_skipped", "Alerts a file sink already held.", ["sink"]).labels(
        sink="jsonl")
    sink_lat = Histogram("watchdog_sink_latency_seconds", "Send latency.", ["sink"], buckets=lat)
    queue = Gauge("watchdog_queue_depth", "Queue depth.", ["queue"])
    state = Gauge("watchdog_state_entries", "State entries.", ["state"])
    dropped = Counter("watchdog_state_dropped", "Keys from events forgotten.",
                      ["state", "reason"])
    for kind in ("windows", "datasets"):
        for reason in ("idle", "cap"):
            dropped.labels(state=kind, reason=reason)
    ready = Gauge("watchdog_ready", "1 when ready.")
    watermark = Gauge("watchdog_watermark_timestamp_seconds", "Event-time watermark.")
    last_event = Gauge("watchdog_source_last_event_timestamp_seconds", "Newest event time.",
                       ["dataset"])
    suppressed = Counter("watchdog_alerts_suppressed", "Alerts excused by an exception.",
                         ["rule"])
    deduplicated = Counter("watchdog_alerts_deduplicated", "Duplicate alerts not sent.")
    obligations = Gauge("watchdog_obligations_open", "Open obligations.", ["rule"])
    reloads = Counter("watchdog_policy_reloads", "Policy reloads.", ["result"])
    model_info = Gauge("watchdog_model_info", "Model.", ["version"])
    model_loaded = Gauge("watchdog_model_loaded", "1 when a model is loaded.")
    # no model: the score histogram stays at zero (its buckets still exist)
    Histogram("watchdog_anomaly_score", "Anomaly scores.",
              buckets=tuple(round(0.05 * i, 2) for i in range(1, 21)))
    batch = Histogram("watchdog_batch_seconds", "Batch time.", buckets=lat)
    late = Counter("watchdog_events_late", "Events behind the watermark.")
    dup = Counter("watchdog_events_duplicate", "Duplicate events.")
    Counter("watchdog_events_id_conflicts", "Known event ids with other content.")
    whole = Gauge("watchdog_whole_stream_reader", "1 while running the whole-stream reader.")
    Gauge("watchdog_whole_stream_lag", "Whole-stream reader lag.", ["topic", "partition"])
    info = Gauge("watchdog_commitment_info", "Commitments.", ["commitment", "clause"])
    by_commitment = Counter("watchdog_commitment_alerts", "Alerts per commitment.",
                            ["commitment"])
    by_account = Counter("watchdog_account_alerts", "Alerts per account.", ["account"])
    whole.set(1)
    Counter("watchdog_archive_rows", "Archived documents.", ["dataset"])
    Counter("watchdog_archive_write_errors", "Failed archive flushes.")
    Gauge("watchdog_archive_pending", "Documents waiting for a segment.")
    Gauge("watchdog_archive_last_flush_timestamp_seconds", "Last archive flush.")
    Gauge("watchdog_archive_days", "Archived days.", ["dataset"])
    Gauge("watchdog_archive_missing_days", "Missing days.", ["dataset"])
    Gauge("watchdog_archive_day_rows", "Rows per day.", ["dataset", "day"])
    Gauge("watchdog_archive_segments", "Live archive segments.", ["dataset"])
    Gauge("watchdog_archive_uncompacted_days", "Closed days not compacted.", ["dataset"])
    gaps = Counter("watchdog_log_gaps", "log_gap alerts per dataset.", ["dataset"])
    for dataset in DATASETS:
        gaps.labels(dataset=dataset)
    for rule in RULES:
        info.labels(commitment=rule, clause=f"the promise {rule} enforces").set(1)
        by_commitment.labels(commitment=rule)

    # Label sets the daemon creates at start (so that series exist at zero).
    build.labels(version="0.1.0", detection="all").set(1)
    model_loaded.set(0)  # like `watchdog run` without --model: no watchdog_model_info series
    del model_info
    for rule, severity in RULES.items():
        alerts.labels(rule=rule, severity=severity)
    for reason in REASONS:
        invalid.labels(reason=reason)
    for sink in SINKS:
        sent.labels(sink=sink)
        sink_err.labels(sink=sink)
        sink_lat.labels(sink=sink)
    for result in ("ok", "error"):
        reloads.labels(result=result)
    reloads.labels(result="ok").inc()

    start_http_server(port, addr="127.0.0.1")
    rnd = random.Random(5)
    deadline = time.monotonic() + max_seconds
    tick = 0
    while time.monotonic() < deadline:
        tick += 1
        now = time.time()
        for dataset, actions in DATASETS.items():
            if dataset == "hr.audit" and tick > 5:
                continue  # falls silent after one second
            for action in actions:
                events.labels(dataset=dataset, action=action).inc(rnd.randint(1, 20))
            last_event.labels(dataset=dataset).set(now - rnd.random())
        invalid.labels(reason=rnd.choice(REASONS)).inc()
        rule = rnd.choice(list(RULES))
        alerts.labels(rule=rule, severity=RULES[rule]).inc()
        by_commitment.labels(commitment=rule).inc()
        by_account.labels(account=f"a-{rnd.randrange(16):016x}").inc()
        e2a.observe(rnd.expovariate(20))
        for sink in SINKS:
            sent.labels(sink=sink).inc()
            sink_lat.labels(sink=sink).observe(rnd.expovariate(50))
        sink_err.labels(sink="webhook").inc(tick % 2)
        for p in range(2):
            lag.labels(group="watchdog", topic="access-logs", partition=str(p)).set(
                rnd.randint(0, 50))
        lag.labels(group="", topic="directory", partition="0").set(0)
        lag.labels(group="", topic="subjects", partition="0").set(0)
        accounts.set(100 + tick % 10)
        queue.labels(queue="alerts").set(rnd.randint(0, 5))
        queue.labels(queue="reorder").set(rnd.randint(0, 200))
        state.labels(state="directory").set(200)
        state.labels(state="subjects").set(50)
        state.labels(state="windows").set(rnd.randint(50, 80))
        state.labels(state="datasets").set(5)
        dropped.labels(state="windows", reason="idle").inc(rnd.randint(0, 3))
        ready.set(1)
        watermark.set(now - 2)
        deduplicated.inc(tick % 3 == 0)
        suppressed.labels(rule="external_email").inc(tick % 11 == 0)
        obligations.labels(rule="erasure_overdue").set(3)
        obligations.labels(rule="account_not_revoked").set(1)
        batch.observe(rnd.expovariate(100))
        late.inc(tick % 5 == 0)
        dup.inc(tick % 7 == 0)
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    args = parser.parse_args()
    serve(args.port, args.max_seconds)


if __name__ == "__main__":
    main()
