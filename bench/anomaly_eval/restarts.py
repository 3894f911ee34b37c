"""What restarts cost the anomaly detector when its learnt state is not kept (``model_state:
null``, or before it existed): the same worlds, the same trained model, replayed once as one
run (what ``model_state`` gives: a restored stage raises exactly the uninterrupted run's
alerts, tests/anomaly/test_stage_state.py and the live property tests) and once with the stage
started afresh every ``--every-days`` of event time, as a daemon restarted without its state
(a shutdown flushes the stage, the next process starts a new one).

    python -m bench.anomaly_eval.restarts --sizes 100,500 --seeds 101 --every-days 1,7

Tuning seeds by default: this measures an operating condition, not the detector's quality.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.anomaly_eval import worlds as W
from bench.anomaly_eval.detect import Run, replay_world, train_world
from bench.anomaly_eval.score import TARGETS, match
from watchdog.alerts.model import Alert
from watchdog.alerts.pseudonym import DEMO_KEY
from watchdog.anomaly.stage import AnomalyStage, load_stage
from watchdog.events import AccessEvent
from watchdog.policy import load_policy
from watchdog.replay import build_engine

DAY = 86400.0


class Restarting:
    """The anomaly stage, started afresh each time event time passes one of ``at``."""

    def __init__(self, make: Callable[[], AnomalyStage], at: Sequence[float]) -> None:
        self.make = make
        self.at = sorted(at)
        self.stage = make()
        self.restarts = 0

    def _restart_before(self, t: float) -> list[Alert]:
        out: list[Alert] = []
        while self.at and t >= self.at[0]:
            self.at.pop(0)
            out.extend(self.stage.flush())  # the shutdown of a daemon without model_state
            self.stage = self.make()
            self.restarts += 1
        return out

    def observe(self, ev: AccessEvent, t: float) -> list[Alert]:
        return self.observe_many([(ev, t)])

    def observe_many(self, items: Sequence[tuple[AccessEvent, float]]) -> list[Alert]:
        alerts: list[Alert] = []
        start = 0
        for i, (_, t) in enumerate(items):
            if self.at and t >= self.at[0]:
                if i > start:
                    alerts.extend(self.stage.observe_many(items[start:i]))
                alerts.extend(self._restart_before(t))
                start = i
        if start < len(items):
            alerts.extend(self.stage.observe_many(items[start:]))
        return alerts

    def observe_alerts(self, alerts: Sequence[Alert]) -> None:
        self.stage.observe_alerts(alerts)

    def drain(self) -> list[Alert]:
        return self.stage.drain()

    def flush(self) -> list[Alert]:
        return self.stage.flush()


def _replay(w: W.WorldFiles, model_dir: Path, every: float | None) -> tuple[Run, int]:
    engine = build_engine(load_policy(w.path("policy.yaml")), DEMO_KEY)
    stage: Any
    if every is None:
        stage = load_stage(model_dir, engine)
    else:
        n = int((w.end - w.train_end) // every) + 1
        stage = Restarting(lambda: load_stage(model_dir, engine),
                           [w.train_end + 3 * 3600.0 + k * every for k in range(n)])
    out = Run()
    replay_world(w, engine, [stage], out, "restarts")
    return out, getattr(stage, "restarts", 0)


def _row(w: W.WorldFiles, run: Run) -> dict[str, Any]:
    outs, false = match(w.cases, run.anomaly, w.root.name, w.train_end)
    row: dict[str, Any] = {"false": false}
    for fam in ("burst", "sustained", "low_and_slow", "off_pattern"):
        cases = [o for o in outs if o.case.family == fam]
        row[fam] = (sum(o.in_time for o in cases), sum(o.found for o in cases), len(cases))
    for tg in TARGETS:
        sel = [o for o in outs if o.case.family == tg.family and tg.select(o.case)]
        row[tg.name] = (sum(o.in_time for o in sel), len(sel))
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100,500")
    p.add_argument("--seeds", default=",".join(map(str, W.TUNING_SEEDS)))
    p.add_argument("--every-days", default="1,7")
    p.add_argument("--work", type=Path,
                   default=Path(tempfile.gettempdir()) / "watchdog-bench-anomaly")
    args = p.parse_args(argv)
    os.environ.pop("WATCHDOG_PSEUDONYM_KEY", None)
    totals: dict[str, dict[str, Any]] = {}
    for size in map(int, args.sizes.split(",")):
        for seed in map(int, args.seeds.split(",")):
            w = W.make_world(args.work, size, seed)
            model_dir = w.root / "model"
            train_world(w, model_dir)
            ad = w.directory_accounts * w.eval_days
            for label, every in [("kept", None), *[(f"every {d} d", float(d) * DAY)
                                                    for d in args.every_days.split(",")]]:
                run, restarts = _replay(w, model_dir, every)
                row = _row(w, run)
                print(f"{w.root.name} {label} ({restarts} restarts): {row} false/1000 "
                      f"{1000.0 * row['false'] / ad:.2f}", file=sys.stderr, flush=True)
                t = totals.setdefault(label, {"ad": 0.0})
                t["ad"] += ad
                for k, v in row.items():  # counts, or tuples of counts: added up
                    t[k] = (v if k not in t else t[k] + v if isinstance(v, int)
                            else tuple(map(sum, zip(t[k], v, strict=True))))
    print("| state | " + " | ".join(tg.name + " in time" for tg in TARGETS)
          + " | bursts / sustained / low-and-slow / off-pattern in time (found) | false per "
          "1,000 account-days |")
    print("|---|" + "---|" * (len(TARGETS) + 2))
    for label, t in totals.items():
        tg_cells = [f"{t[tg.name][0]}/{t[tg.name][1]}" for tg in TARGETS]
        fams = " / ".join(f"{t[f][0]} ({t[f][1]}) of {t[f][2]}"
                          for f in ("burst", "sustained", "low_and_slow", "off_pattern"))
        print(f"| {label} | " + " | ".join(tg_cells)
              + f" | {fams} | {1000.0 * t['false'] / t['ad']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
