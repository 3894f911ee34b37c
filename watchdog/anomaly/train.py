"""``watchdog train``: fit the anomaly model on a baseline period and write a model directory.

::

    watchdog train --events EVENTS.jsonl [--directory DIR.jsonl] [--subjects SUBJ.jsonl]
                   [--policy POLICY.yaml] --out MODEL_DIR
                   [--target-false-rate 0.5] [--leaver-false-rate 20] [--seed 0]

The events go through the same plumbing as ``watchdog replay`` (decoding, rejections, ordering
on event time, directory on event time, the rules), with a collecting stage in place of the
scorer. Behaviour around a rule alert (the day before it, the hour after) is left out of
both the training and the held-out rows: it is not the normal the model should learn, and it
would inflate the false-alert estimate.

Each account's active 10-minute buckets give feature vectors; account-days are split (by a
hash, so the split is reproducible) into training and held-out. The forest is fit on one
vector per account-hour of the training days; the thresholds are calibrated on the vectors of
the held-out days that the stage would score (an account's latest per ~20 minutes) to
``--target-false-rate`` false alerts per 1,000 accounts per day, counted as the stage counts
them (one per account per hour): the tail score's levels for at most half of it (events and
exports in the last hour and in the last 20 minutes each their own, 1.5x-10x beyond the
usual ranges; 10x for the other counts), the forest's for the rest
(:func:`calibrate_with_tail`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from watchdog.alerts.model import rfc3339
from watchdog.anomaly import model as M
from watchdog.anomaly import store
from watchdog.anomaly.calibration import calibrate, calibrate_with_tail
from watchdog.anomaly.collect import AlertTimes, Collector
from watchdog.anomaly.retrain import alerts_to_leave_out, select_training_rows
from watchdog.anomaly.risk_calibration import LEAVER_TARGET, calibrate_risk
from watchdog.anomaly.vocabulary import BUCKET, FEATURE_NAMES, FEATURE_VERSION
from watchdog.engine.engine import Engine
from watchdog.rules import default_rules

DEFAULT_TARGET = 0.5  # false anomaly alerts per 1,000 accounts per day
MAX_TRAIN_ROWS = 200_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", required=True,
                   help="baseline access events JSONL ('-' stdin, .gz ok)")
    p.add_argument("--directory", help="directory records JSONL (peer groups)")
    p.add_argument("--subjects", help="subject-register records JSONL")
    p.add_argument("--policy", help="policy YAML/JSON (default: the embedded default policy)")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--labels", help="analysts' labels (watchdog label): false positives are "
                   "learnt as normal, true positives left out")
    p.add_argument("--target-false-rate", type=float, default=DEFAULT_TARGET,
                   metavar="N", help="false anomaly alerts per 1,000 accounts per day to "
                   f"calibrate the threshold to (default {DEFAULT_TARGET})")
    p.add_argument("--leaver-false-rate", type=float, default=LEAVER_TARGET, metavar="N",
                   help="false risk alerts per 1,000 notice-period days that a leaver's "
                   "ordinary days may raise: the leaver factor is calibrated to it "
                   f"(default {LEAVER_TARGET:g})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--kind", choices=M.KINDS, default="isolation_forest",
                   help="model kind (default isolation_forest; zscore is the baseline)")
    p.add_argument("--trees", type=int, default=200, help="isolation-forest trees (200)")
    p.add_argument("--heldout", type=float, default=0.3,
                   help="share of account-days held out for calibration (0.3)")
    p.add_argument("--warmup-hours", type=float, default=25.0, help=argparse.SUPPRESS)


def _fail(msg: str) -> int:
    print(f"watchdog: error: {msg}", file=sys.stderr)
    return 2


@contextmanager
def _progress(events: str) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar over the bytes of ``events`` when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from watchdog.files.jsonl import size_of

    with Progress(TextColumn("train: reading baseline"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("events", total=size_of(events))
        yield lambda n: bar.advance(task, n)


def train(
    events: str,
    out_dir: str,
    *,
    policy_path: str | None = None,
    directory: str | None = None,
    subjects: str | None = None,
    target: float = DEFAULT_TARGET,
    seed: int = 0,
    kind: str = "isolation_forest",
    trees: int = 200,
    heldout: float = 0.3,
    warmup: float = 25 * 3600.0,
    progress: Callable[[int], None] | None = None,
    say: Callable[[str], None] = lambda _m: None,
    labels: str | None = None,
    leaver_target: float = LEAVER_TARGET,
) -> tuple[M.AnomalyModel, dict[str, Any]]:
    """Read a baseline, fit, calibrate, save; returns the model and its manifest.

    Raises ``ValueError`` (too little data), ``PolicyError``, ``InputError``.
    """
    from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer, key_from_env
    from watchdog.anomaly.labels_file import read_labels
    from watchdog.files.jsonl import RejectedWriter
    from watchdog.policy import load_policy
    from watchdog.replay import rejected_path_for, replay

    labelled = read_labels(labels) if labels else None  # a bad file fails before the work
    policy = load_policy(policy_path)
    # the rules run too: the windows of behaviour that led to an alert are not "normal"
    engine = Engine(policy, Pseudonymizer(key_from_env() or DEMO_KEY), default_rules())
    collector = Collector(engine, seed=seed, heldout=heldout, warmup=warmup)
    rejected = RejectedWriter(rejected_path_for(str(out_dir).rstrip("/") + ".jsonl"))
    alerts = AlertTimes()
    try:
        result = replay(events, alerts, engine, directory=directory,  # type: ignore[arg-type]
                        subjects=subjects, stages=[collector], rejected=rejected,
                        progress=progress)
    finally:
        rejected.close()
    got = collector.out
    x = got.train_matrix()
    hx, husers, ht, htail = got.held_matrix()
    n_x, n_hx = len(x), len(hx)
    leave_out, let_in, added = alerts.by_user, 0, 0
    if labelled:
        leave_out, let_in, added = alerts_to_leave_out(alerts.found, labelled,
                                                       engine.pseudonymize, got.accounts)
        say(f"labels: {let_in:,} alert(s) labelled false positive learnt as normal, "
            f"{added:,} true positive(s) left out")
    if leave_out:
        keep = select_training_rows(got.train_users, np.asarray(got.train_t), leave_out,
                                    now=None)
        x = x[keep]
        hkeep = select_training_rows(husers, ht, leave_out, now=None)
        hx, ht, htail = hx[hkeep], ht[hkeep], htail[hkeep]
        husers = [u for u, k in zip(husers, hkeep.tolist(), strict=True) if k]
    say(f"read {result.events:,} events ({sum(result.invalid.values()):,} rejected) from "
        f"{len(got.accounts):,} accounts; {got.vectors:,} account-bucket vectors: "
        f"{len(x):,} account-hours for training, {len(hx):,} held out "
        f"({n_x - len(x) + n_hx - len(hx):,} left out near {alerts.count:,} rule alerts)")
    if len(x) < 100 or len(hx) < 50:
        raise ValueError(
            f"too little baseline to train on ({len(x)} training rows, {len(hx)} held-out "
            "rows): give more days of events (at least 3 days are needed, "
            "2 weeks or more are better)")
    rng = np.random.default_rng(seed)
    if len(x) > MAX_TRAIN_ROWS:
        x = x[np.sort(rng.choice(len(x), MAX_TRAIN_ROWS, replace=False))]
    model = M.fit(x, FEATURE_NAMES, kind=kind, seed=seed, n_estimators=trees)
    say(f"fitted {kind} on {len(x):,} rows; calibrating on held-out baseline")
    if kind == "isolation_forest":
        cal = calibrate_with_tail(model.score(hx), htail, husers, ht,
                                  account_days=len(got.held_days), target=target)
        assert cal.tail_threshold is not None
        assert cal.tail_levels is not None
        model.tail_threshold = cal.tail_threshold
        model.tail_levels = np.asarray(cal.tail_levels)
    else:  # the baseline as it is
        cal = calibrate(model.score(hx), husers, ht, account_days=len(got.held_days),
                        target=target)
    model.threshold, model.threshold_high = cal.threshold, cal.threshold_high
    # the risk adds up the scores the stage reads (the forest's with the tail's)
    held_scores = model.combine(model.score(hx), model.tail_of(htail))
    risk = calibrate_risk(held_scores, husers, ht, window_threshold=cal.threshold,
                          days=got.held_days, rule_alerts=alerts.rules, target=target,
                          seed=seed, day_points=_per_account(got.day_points, leave_out),
                          leaver_target=leaver_target)
    manifest: dict[str, Any] = {
        "training": {
            "start": rfc3339(got.first) if got.vectors else None,
            "end": rfc3339(got.last) if got.vectors else None,
            "events": result.events,
            "rejected": sum(result.invalid.values()),
            "accounts": len(got.accounts),
            "vectors": got.vectors,
            "train_rows": len(x),
            "heldout_rows": len(hx),
            "rule_alerts": alerts.count,
            "rows_left_out_near_rule_alerts": n_x - len(x) + n_hx - len(hx),
            "labels": {"false_positives_learnt": let_in, "true_positives_left_out": added},
            "heldout_share": heldout,
            "seed": seed,
            "inputs": {k: Path(v).name for k, v in (("events", events),
                                                    ("directory", directory),
                                                    ("subjects", subjects)) if v},
            "policy": policy.organization,
        },
        "params": model.info.get("params", {}),
        "calibration": cal.to_dict(),
        "config": {"bucket_seconds": BUCKET, "warmup_hours": warmup / 3600,
                   "cooldown_seconds": 3600, "feature_version": FEATURE_VERSION},
        "peers": collector.features.peers.to_dict(),
        "risk": risk.to_dict(),
    }
    store.save(model, out_dir, manifest)
    return model, model.info


def _per_account(points: dict[tuple[str, int], float],
                 leave_out: dict[str, list[float]]) -> dict[str, list[float]]:
    """The day scale's points per account, days with a rule alert left out (as near-alert
    windows are: what led to an alert is not the normal)."""
    near = {(u, int(t // 86400)) for u, ts in leave_out.items() for t in ts}
    out: dict[str, list[float]] = {}
    for (u, d), p in sorted(points.items()):
        if (u, d) not in near:
            out.setdefault(u, []).append(p)
    return out


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from watchdog.files.jsonl import InputError
    from watchdog.policy import PolicyError

    for label, path in (("--events", args.events), ("--directory", args.directory),
                        ("--subjects", args.subjects)):
        if path and path != "-" and not Path(path).is_file():
            return _fail(f"{label} {path}: no such file")
    if not 0 < args.target_false_rate < 1000:
        return _fail("--target-false-rate must be above 0 (alerts per 1,000 accounts per day)")
    if not 0 < args.leaver_false_rate < 1000:
        return _fail("--leaver-false-rate must be above 0 (alerts per 1,000 notice days)")
    if not 0.05 <= args.heldout <= 0.7:
        return _fail("--heldout must be between 0.05 and 0.7")
    console = Console(stderr=True)
    try:
        with ExitStack() as stack:
            progress = stack.enter_context(_progress(args.events))
            model, doc = train(
                args.events, args.out, policy_path=args.policy, directory=args.directory,
                subjects=args.subjects, target=args.target_false_rate, seed=args.seed,
                kind=args.kind, trees=args.trees, heldout=args.heldout,
                warmup=args.warmup_hours * 3600, progress=progress, labels=args.labels,
                leaver_target=args.leaver_false_rate,
                say=lambda m: console.print(f"train: {m}", highlight=False))
    except PolicyError as err:
        return _fail(str(err))
    except InputError as err:
        return _fail(str(err))
    except ValueError as err:
        return _fail(str(err))
    except OSError as err:
        return _fail(f"{args.out}: {err.strerror or err}")
    table = Table(title=f"watchdog train: {args.out}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for k, v in summary_rows(doc, model.version, model.threshold, model.threshold_high):
        table.add_row(k, v)
    console.print(table)
    console.print(calibration_note(doc["calibration"]), highlight=False)
    return 0


def summary_rows(doc: dict[str, Any], version: str, threshold: float, threshold_high: float
                 ) -> list[tuple[str, str]]:
    """The rows of ``watchdog train``'s summary (no header row: each row says what it is)."""
    cal, tr = doc["calibration"], doc["training"]
    return [
        ("model version", version),
        ("training period", f"{tr['start']} .. {tr['end']}"),
        ("accounts / events", f"{tr['accounts']:,} / {tr['events']:,}"),
        ("training rows / held out", f"{tr['train_rows']:,} / {tr['heldout_rows']:,}"),
        ("threshold (high)", f"{threshold:.4f} ({threshold_high:.4f})"),
        ("false alerts /1000 accounts/day",
         f"target {cal['target_false_alerts_per_1000_accounts_per_day']}, held-out "
         f"{cal['heldout_false_alerts_per_1000_accounts_per_day']} ({cal['method']})"),
    ] + ([("person-level risk threshold",
           f"{doc['risk']['threshold']:.2f} points (windows above {doc['risk']['floor']:.4f})"),
          ("leaver period", _leaver_row(doc["risk"]))]
         if "risk" in doc else [])


def _leaver_row(risk: dict[str, Any]) -> str:
    """'signals x2.45; 9.8 false alerts per 1,000 notice days (target 10)'."""
    cal = risk.get("calibration", {})
    got = cal.get("simulated_false_alerts_per_1000_leaver_days")
    target = cal.get("target_false_alerts_per_1000_leaver_days")
    return (f"signals x{float(risk.get('leaver_factor', 2.0)):.2f}"
            + (f"; {got} false alerts per 1,000 notice days" if got is not None else "")
            + (f" (target {target:g})" if target is not None else ""))


def calibration_note(cal: dict[str, Any]) -> str:
    """What the false-alert row means, in words (its figures alone puzzled users)."""
    seen = (f"On the held-out baseline ({cal['heldout_account_days']:,} account-days, "
            f"{cal['heldout_rows']:,} scored rows) the threshold raised "
            f"{cal['heldout_alerts']:,} alert(s): "
            f"{cal['heldout_false_alerts_per_1000_accounts_per_day']} per 1,000 accounts a "
            "day, taken as false alerts since the baseline is assumed normal.")
    if cal["method"] == "tail fit":
        how = ("'tail fit': the target allows fewer alerts than the held-out days can show "
               "one by one, so the threshold was extrapolated from the highest scores (a "
               "generalised Pareto fit of their tail), never below what the held-out rows "
               "show; 0.0 held-out is then expected, and the real rate is about the target. "
               "More baseline days give an empirical threshold.")
    else:
        how = ("'empirical': the threshold is the lowest score that keeps the held-out "
               "alerts within the target.")
    return f"{seen} {how}"
