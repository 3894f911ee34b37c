"""``watchdog label ALERT_ID false_positive|true_positive``: an analyst's verdict on an alert.

::

    watchdog label ALERT_ID false_positive|true_positive [--note TEXT] [--days 14]
                   [--labels LABELS.jsonl] [--alerts FILE ...] [--config watchdog.yaml]

The alert is looked up by its id in ``--alerts`` (alerts JSONL files or alert audit trails;
default: the configuration's ``sinks.audit.path`` and ``sinks.jsonl.path``) for its account,
rule, time and pattern; the label is appended to the labels file (``--labels``, default the
configuration's ``labels``), a hash-chained audit trail that ``watchdog verify-audit`` checks
and that the daemon (re-read on change) and ``watchdog train --labels`` read. The same entry
is first appended to the daemon's audit trail, when one is named (``--audit``,
``$WATCHDOG_AUDIT_TRAIL``, the configuration's ``sinks.audit.path``; its key from
``$WATCHDOG_AUDIT_KEY``, the credential ``audit-key`` or ``sinks.audit.key``), also while the
daemon runs. The label names
the account by its keyed-hash pseudonym (``WATCHDOG_PSEUDONYM_KEY`` or the configuration's
``pseudonym_key``: the daemon's key, else the damping never matches). Exit 0 labelled, 2 with
one line saying why not.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from watchdog.alerts.model import now_rfc3339, safe_text
from watchdog.anomaly.labels import (
    DEFAULT_DAMP_DAYS,
    MAX_NOTE,
    VERDICTS,
    Label,
    behaviours_of,
    parse_time,
)

AUDIT_ENV = "WATCHDOG_AUDIT_TRAIL"
AUDIT_KEY_ENV = "WATCHDOG_AUDIT_KEY"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("alert_id", metavar="ALERT_ID", help="the alert's alert_id")
    p.add_argument("verdict", metavar="VERDICT", help="false_positive or true_positive")
    p.add_argument("--note", default="", help=f"why (at most {MAX_NOTE} characters; no "
                   "personal data: the labels file is kept with the audit trail)")
    p.add_argument("--days", type=float, default=DEFAULT_DAMP_DAYS,
                   help="false_positive: damp the alert's pattern for this account for so "
                   f"many days of event time after the alert (default {DEFAULT_DAMP_DAYS:g})")
    p.add_argument("--labels", help="the labels file (default: the configuration's labels)")
    p.add_argument("--alerts", action="append", default=[], metavar="FILE",
                   help="alerts JSONL or alert audit trail holding the alert (repeatable; "
                   "default: the configuration's sinks.audit.path and sinks.jsonl.path)")
    p.add_argument("--audit", help="the daemon's audit trail to record the label in (default "
                   "$WATCHDOG_AUDIT_TRAIL, else the configuration's sinks.audit.path)")
    p.add_argument("--config", help="the daemon's configuration (watchdog.yaml)")


def _fail(msg: str) -> int:
    print(f"watchdog: error: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer, key_from_env
    from watchdog.anomaly.labels_file import append_label, find_alert, read_labels
    from watchdog.audit import AuditError, AuditTrail

    if args.verdict not in VERDICTS:
        return _fail(f"label {args.verdict!r}: give false_positive or true_positive")
    if not 0 <= args.days <= 3650:
        return _fail("--days must be between 0 and 3650")
    if len(args.note) > MAX_NOTE:
        return _fail(f"--note: at most {MAX_NOTE} characters ({len(args.note)} given)")
    from watchdog.systemd import credentials_as_env

    env = {**credentials_as_env([AUDIT_KEY_ENV]), **os.environ}
    labels, alerts, key = args.labels, list(args.alerts), key_from_env()
    audit, audit_key = args.audit or env.get(AUDIT_ENV) or None, env.get(AUDIT_KEY_ENV) or None
    if args.config:
        from watchdog.daemon.config import ConfigError, load_config

        try:
            cfg = load_config(args.config, env=env)
        except ConfigError as err:
            return _fail(str(err))
        labels = labels or cfg.labels
        if not alerts:
            alerts = [s.path for s in (cfg.sinks.audit, cfg.sinks.jsonl) if s is not None]
        key = key or key_from_env(cfg.pseudonym_key)
        if cfg.sinks.audit is not None:
            audit = audit or cfg.sinks.audit.path
            audit_key = audit_key or cfg.sinks.audit.key
    if not labels:
        return _fail("no labels file: give --labels FILE (or --config with labels: set)")
    if not alerts:
        return _fail("no alerts to look the alert up in: give --alerts FILE (or --config with "
                     "an audit or jsonl sink)")
    for name in alerts:
        if not Path(name).is_file():
            return _fail(f"--alerts {name}: no such file")
    if key is None:
        print("watchdog: warning: no WATCHDOG_PSEUDONYM_KEY set; the account pseudonym uses "
              "the public demo key", file=sys.stderr)
        key = DEMO_KEY
    try:
        read_labels(labels, missing_ok=True)  # refuse to append to a broken trail
        doc = find_alert(args.alert_id, alerts)
    except (ValueError, OSError) as err:
        return _fail(str(err) if isinstance(err, ValueError) else
                     f"{err.filename}: {err.strerror}")
    if doc is None:
        return _fail(f"alert {args.alert_id!r} not found in {', '.join(alerts)}")
    try:
        label = Label(args.alert_id, args.verdict, str(doc["rule"]),
                      Pseudonymizer(key)(str(doc["user_id"])), behaviours_of(doc),
                      parse_time(str(doc["ts"])), float(args.days), now_rfc3339(),
                      safe_text(args.note))
    except (KeyError, ValueError) as err:
        return _fail(f"alert {args.alert_id!r}: not an alert document ({err})")
    try:
        if audit:  # recorded first: a label that takes effect is always in the trail
            with AuditTrail(audit, key=audit_key.encode() if audit_key else None,
                            owner=False) as trail:
                trail.append_entry(label.to_entry())
        seq = append_label(labels, label)
    except (AuditError, OSError) as err:
        return _fail(str(err) if isinstance(err, AuditError) else
                     f"{err.filename or labels}: {err.strerror}")
    what = ", ".join(label.behaviours) or "nothing"
    if label.verdict == "false_positive":
        until = _day(label.damps_until)
        print(f"labelled {label.alert_id} false_positive (entry {seq} of {labels}): "
              f"{what} of account {label.account} damped until {until}; left in retraining")
    else:
        print(f"labelled {label.alert_id} true_positive (entry {seq} of {labels}): "
              f"account {label.account}'s behaviour around it is left out of retraining")
    return 0


def _day(t: float) -> str:
    from watchdog.alerts.model import rfc3339

    return rfc3339(t)[:16].replace("T", " ") + " UTC"
