"""Run the shipped detector on a world exactly as a user would.

1. ``watchdog train`` with its defaults (the same function the command calls) on the world's
   first ``train_days`` days, with the directory, register and account records a user has by
   then;
2. ``watchdog replay --model`` (the same ``replay`` function, the same engine with every
   rule, the same ``load_stage``) over the whole stream, so each account's history is warm
   when the evaluated part begins; alerts of the evaluated part are scored.

Nothing here knows what the model is made of: what ``train`` writes and ``load_stage`` loads
is what is measured, so a change to the detector shows up without a change here.

The same pass also records the model's input rows (the training ``Collector`` with every
account's latest vector per scoring window, as the stage scores them), so the baselines are
fitted and scored on exactly the same features and the same rows.
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.anomaly_eval.worlds import WorldFiles
from watchdog.alerts.pseudonym import DEMO_KEY
from watchdog.anomaly.collect import Collector
from watchdog.anomaly.stage import load_stage
from watchdog.anomaly.train import train
from watchdog.files.jsonl import RejectedWriter
from watchdog.policy import load_policy
from watchdog.replay import build_engine, replay


@dataclass(frozen=True)
class Found:
    """One ``anomaly`` alert: account, event time (epoch s), score, what it says."""

    user_id: str
    t: float
    score: float
    summary: str


@dataclass
class Run:
    anomaly: list[Found] = field(default_factory=list)
    rule_times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    rule_counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    x: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    users: list[str] = field(default_factory=list)
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    threshold: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


class AlertSink:
    """Stands in for replay's output file: keeps anomaly alerts and rule-alert times."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def write(self, line: bytes) -> int:
        doc = orjson.loads(line)
        t = _t(doc["ts"])
        if doc["rule"] == "anomaly":
            self.run.anomaly.append(Found(doc["user_id"], t, float(doc.get("score") or 0.0),
                                          str(doc.get("summary", ""))))
        else:
            self.run.rule_times[doc["user_id"]].append(t)
            self.run.rule_counts[doc["rule"]] += 1
        return len(line)

    def flush(self) -> None:
        return None


def train_world(w: WorldFiles, model_dir: Path) -> Any:
    """``watchdog train`` with its defaults on the world's first part; the model."""
    model, _ = train(w.path("train.jsonl"), str(model_dir), policy_path=w.path("policy.yaml"),
                     directory=w.path("train-directory.jsonl"),
                     subjects=w.path("train-subjects.jsonl"))
    return model


def replay_world(w: WorldFiles, engine: Any, stages: list[Any], out: Run,
                 name: str = "replay") -> Any:
    """``watchdog replay`` of the whole stream with ``stages``, its alerts kept in ``out``."""
    rejected = RejectedWriter(w.root / f"{name}.rejected.jsonl")
    try:
        return replay(w.path("events.jsonl"), AlertSink(out), engine,  # type: ignore[arg-type]
                      directory=w.path("directory.jsonl"), subjects=w.path("subjects.jsonl"),
                      accounts=w.path("accounts.jsonl"), stages=stages, rejected=rejected)
    finally:
        rejected.close()


def run_world(w: WorldFiles, *, rows: bool = True) -> Run:
    """Train (defaults) on the first part, replay everything with the model."""
    os.environ.pop("WATCHDOG_PSEUDONYM_KEY", None)  # the demo key, as train falls back to
    out = Run()
    model_dir = w.root / "model"
    began = time.perf_counter()
    model = train_world(w, model_dir)
    out.threshold = float(model.threshold)
    out.seconds["train"] = time.perf_counter() - began
    engine = build_engine(load_policy(w.path("policy.yaml")), DEMO_KEY)
    stages: list = [load_stage(model_dir, engine)]
    collector = Collector(engine, heldout=1.0) if rows else None
    if collector is not None:
        stages.append(collector)
    began = time.perf_counter()
    res = replay_world(w, engine, stages, out)
    out.seconds["replay"] = time.perf_counter() - began
    if collector is not None:
        x, users, times, _ = collector.out.held_matrix()
        out.x, out.users, out.times = x, list(users), np.asarray(times, dtype=np.float64)
    print(f"{w.root.name}: trained in {out.seconds['train']:.0f}s (threshold "
          f"{out.threshold:.3f}); replayed {res.events:,} events in "
          f"{out.seconds['replay']:.0f}s: {len(out.anomaly)} anomaly alerts, "
          f"{sum(out.rule_counts.values())} rule alerts", file=sys.stderr)
    return out
