"""Why cases are missed: every scored row of a world's replay, recorded for offline reading.

    python -m bench.anomaly_eval.diagnose WORLD_DIR [--out rows.npz]

Replays a world (already built and trained by ``bench/bench_anomaly.py``: its ``model``
directory is reused) through the shipped stage, and records, for every row the stage scores:
the account, the time, the forest's score, the combined score, and every count the tail
score reads (the window value, the account's own mean and variance, its peers' 99th
percentile, whether the row was cold). Then prints, per burst case of the issue's target
(>= 5x, >= 1 h), the best row within its first hour: scores against the threshold and the
count that deviated most. Tuning seeds only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from bench.anomaly_eval.detect import AlertSink, Run  # noqa: E402
from watchdog.alerts.pseudonym import DEMO_KEY  # noqa: E402
from watchdog.anomaly.batch import FeatureBatch  # noqa: E402
from watchdog.anomaly.stage import AnomalyStage, load_stage  # noqa: E402
from watchdog.anomaly.vocabulary import TAIL_COLS, WINDOW_FEATURES  # noqa: E402
from watchdog.files.jsonl import RejectedWriter  # noqa: E402
from watchdog.policy import load_policy  # noqa: E402
from watchdog.replay import build_engine, replay  # noqa: E402
from watchdog.simulate.drawn import Case  # noqa: E402

TAIL_NAMES = [WINDOW_FEATURES[i] for i in TAIL_COLS]


class Recorder:
    def __init__(self, stage: AnomalyStage) -> None:
        self.parts: list[dict[str, Any]] = []
        self.stage = stage
        inner = stage._score

        def score(due: list[tuple[FeatureBatch, np.ndarray, np.ndarray]],
                  complete_below: float = math.inf) -> Any:
            from watchdog.anomaly.scoring_windows import latest_per_window, split_windows
            d2 = latest_per_window(due) if len(due) > 1 and split_windows(due) else due
            model = stage.model
            for b, idx, _ in d2:
                raw, m, v, q, cold = b.inputs(idx)
                x, tail, col = b.scoring(idx)
                forest = model.score(x)
                self.parts.append({
                    "user": np.array([b.users[i] for i in idx.tolist()]),
                    "t": b.t_last[idx].astype(np.float64),
                    "forest": forest, "tail": tail, "col": col,
                    "raw": raw[:, TAIL_COLS].astype(np.float32),
                    "mean": m[:, TAIL_COLS].astype(np.float32),
                    "var": v[:, TAIL_COLS].astype(np.float32),
                    "p99": q[:, 2, TAIL_COLS].astype(np.float32),
                    "cold": cold,
                })
            return inner(due, complete_below)

        stage._score = score  # type: ignore[method-assign]

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}


def record(world: Path) -> tuple[dict[str, np.ndarray], Run, float]:
    os.environ.pop("WATCHDOG_PSEUDONYM_KEY", None)
    engine = build_engine(load_policy(str(world / "policy.yaml")), DEMO_KEY)
    stage = load_stage(world / "model", engine)
    rec = Recorder(stage)
    run = Run()
    rejected = RejectedWriter(world / "diag.rejected.jsonl")
    try:
        replay(str(world / "events.jsonl"), AlertSink(run), engine,  # type: ignore[arg-type]
               directory=str(world / "directory.jsonl"), subjects=str(world / "subjects.jsonl"),
               accounts=str(world / "accounts.jsonl"), stages=[stage], rejected=rejected)
    finally:
        rejected.close()
    return rec.arrays(), run, float(stage.model.threshold)


def cases_of(world: Path) -> list[Case]:
    return [Case.from_doc(orjson.loads(x))
            for x in (world / "cases.jsonl").read_bytes().splitlines()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("world", type=Path)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    meta = json.loads((args.world / "meta.json").read_text())
    if meta["seed"] >= 200:
        print("report seeds are not for diagnosis", file=sys.stderr)
        return 2
    rows, run, thr = record(args.world)
    out = args.out or args.world / "diag.npz"
    np.savez_compressed(out, threshold=thr, **rows)
    print(f"{len(rows['t']):,} scored rows -> {out}; {len(run.anomaly)} anomaly alerts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
