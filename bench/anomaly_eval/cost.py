"""What the detector costs: events per CPU-second with and without the model, and memory per
tracked account (issue 13: with the model at least 75% of the rules-only rate; at most 2 KB
per tracked account, measured for a million accounts).

- Throughput: ``replay`` (the engine of ``watchdog replay``, every rule) of a world's
  evaluated part in this process, rules only and with the world's model, interleaved
  ``rounds`` times (the machine is shared and drifts by tens of percent: only runs made back
  to back compare); CPU time of the replay itself, the model already loaded; medians.
  The issue words the goal for the daemon, whose rules-only rate is about half the replay
  engine's (Kafka, record decoding, offsets): ``bench/bench_model_share.py`` measures that,
  ``watchdog run`` rules only and with the default model at once on one real broker.
- Memory: ``tracemalloc`` of what the shipped stage (``load_stage``: whatever state it keeps
  per account) holds after one event from each of ``accounts`` accounts, per account.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson

from bench.anomaly_eval.worlds import WorldFiles
from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer
from watchdog.anomaly.stage import load_stage
from watchdog.anomaly.train import train
from watchdog.engine.engine import Engine
from watchdog.events import AccessEvent
from watchdog.files.jsonl import RejectedWriter
from watchdog.policy import load_policy
from watchdog.replay import build_engine, replay

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "watchdog" / "models" / "default"
GOAL_SHARE = 0.75
GOAL_BYTES = 2048


def _eval_part(w: WorldFiles) -> Path:
    out = w.root / "eval.jsonl"
    if not out.exists():
        skip = (w.root / "train.jsonl").stat().st_size
        with (w.root / "events.jsonl").open("rb") as src, out.open("wb") as dst:
            src.seek(skip)
            while chunk := src.read(1 << 22):
                dst.write(chunk)
    return out


def ensure_model(w: WorldFiles) -> Path:
    """The world's model (``watchdog train`` defaults on its first part), trained if missing."""
    model = w.root / "model"
    if not (model / "manifest.json").exists():
        os.environ.pop("WATCHDOG_PSEUDONYM_KEY", None)  # the demo key, as train falls back to
        train(w.path("train.jsonl"), str(model), policy_path=w.path("policy.yaml"),
              directory=w.path("train-directory.jsonl"),
              subjects=w.path("train-subjects.jsonl"))
    return model


def _cpu(w: WorldFiles, events: Path, model: Path | None) -> tuple[float, int]:
    engine = build_engine(load_policy(w.path("policy.yaml")), DEMO_KEY)
    stages = [load_stage(model, engine)] if model else []
    rejected = RejectedWriter(w.root / "cost.rejected.jsonl")
    try:
        with open(os.devnull, "wb") as out:
            began = time.process_time()
            res = replay(str(events), out, engine, directory=w.path("directory.jsonl"),
                         subjects=w.path("subjects.jsonl"), accounts=w.path("accounts.jsonl"),
                         stages=stages, rejected=rejected)
            return time.process_time() - began, res.events
    finally:
        rejected.close()


def throughput(w: WorldFiles, rounds: int = 5) -> dict[str, Any]:
    events = _eval_part(w)
    model = w.root / "model"
    without: list[float] = []
    with_: list[float] = []
    n = 0
    for _ in range(rounds):
        cpu, n = _cpu(w, events, None)
        without.append(cpu)
        cpu, n = _cpu(w, events, model)
        with_.append(cpu)
    a, b = float(np.median(without)), float(np.median(with_))
    share = a / b
    return {"world": w.root.name, "events": n, "rounds": rounds,
            "rules_only_events_per_cpu_s": n / a, "with_model_events_per_cpu_s": n / b,
            "share": share, "per_round_share": [x / y for x, y in zip(without, with_,
                                                                       strict=True)],
            "goal": GOAL_SHARE, "pass": share >= GOAL_SHARE}


def account_events(accounts: int) -> Iterator[tuple[AccessEvent, float]]:
    """One event from each of ``accounts`` accounts, all inside half an hour (every account
    tracked at once), with its event time."""
    t0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC).timestamp()
    dec = msgspec.json.Decoder(AccessEvent)
    for i in range(accounts):
        t = t0 + i * (1800.0 / accounts)
        doc = {"@timestamp": datetime.fromtimestamp(t, UTC).isoformat(),
               "event": {"id": f"m{i}", "action": "read", "dataset": "crm.audit"},
               "user": {"id": f"e{1_000_000 + i}"},
               "source": {"ip": f"10.{i % 250}.{i // 250 % 250}.7"},
               "data": {"resource": "crm.customers", "categories": ["identity"],
                        "subject_ids": [f"c-{i:07d}"], "records": 1, "purpose": "x"}}
        ev = dec.decode(orjson.dumps(doc))
        yield ev, ev.timestamp.timestamp()


def memory(accounts: int = 100_000, model: Path = DEFAULT_MODEL) -> dict[str, Any]:
    """Bytes the shipped stage keeps per tracked account (one event from each)."""
    engine = Engine(load_policy(None), Pseudonymizer(DEMO_KEY), rules=())
    stage = load_stage(model, engine)
    began = time.perf_counter()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for ev, t in account_events(accounts):
        stage.observe(ev, t)
    stage.flush()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per = (after - before) / accounts
    return {"accounts": accounts, "bytes_per_account": per,
            "gb_for_1m_accounts": per * 1_000_000 / 1e9, "goal_bytes": GOAL_BYTES,
            "pass": per <= GOAL_BYTES, "seconds": time.perf_counter() - began}
