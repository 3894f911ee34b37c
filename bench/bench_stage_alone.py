"""The anomaly stage alone, per event, as the live daemon feeds it (issue 13's cost goal).

``bench/bench_model_share.py`` measures the daemon with and without the model; this measures
the part that differs: the stage (``load_stage`` with a model, ``observe_many`` over released
lists of ``--list`` events in event-time order, then ``flush``) over the same backlog (the
simulated world of ``--events`` events, ``events // 220`` accounts over 10 days), CPU time of
this process, ``--rounds`` times. Compare two trees by running it from each in alternation
(``cd OTHER && python bench/bench_stage_alone.py``): only interleaved ratios mean anything on
a shared machine.

    .venv/bin/python bench/bench_stage_alone.py [--events 200000] [--rounds 3] [--list 8]
        [--model DIR]

Prints the tree it imported, each round's seconds and microseconds per event; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import watchdog  # noqa: E402
from bench.archive_cost.traffic import bench_world  # noqa: E402
from watchdog.anomaly.stage import load_stage  # noqa: E402
from watchdog.decode import Decoder  # noqa: E402
from watchdog.events import AccessEvent, DirectoryRecord, SubjectRecord  # noqa: E402
from watchdog.policy.loader import parse_policy  # noqa: E402
from watchdog.replay import build_engine  # noqa: E402

KEY = b"bench-stage-alone-key-0123456789"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--list", type=int, default=8, help="events per released list")
    p.add_argument("--model", default=str(Path(watchdog.__file__).parent / "models" / "default"))
    args = p.parse_args()
    world, raws = bench_world(args.events)
    engine = build_engine(parse_policy(world.policy), KEY)
    directory, subjects = Decoder(DirectoryRecord), Decoder(SubjectRecord)
    for d in world.directory:
        engine.apply_directory(directory.decode(orjson.dumps(d)))  # type: ignore[arg-type]
    for s in world.subjects:
        engine.apply_subject(subjects.decode(orjson.dumps(s)))  # type: ignore[arg-type]
    dec = Decoder(AccessEvent)
    events = [dec.decode(r) for r in raws]
    items = sorted(((e, e.timestamp.timestamp()) for e in events  # type: ignore[union-attr]
                    ), key=lambda x: x[1])
    lists = [items[i:i + args.list] for i in range(0, len(items), args.list)]
    print(f"{watchdog.__file__}: {len(items):,} events in lists of {args.list}")
    for r in range(args.rounds):
        stage = load_stage(args.model, engine)
        gc.collect()
        t0 = time.process_time()
        alerts = 0
        for batch in lists:
            alerts += len(stage.observe_many(batch))
        alerts += len(stage.flush())
        s = time.process_time() - t0
        print(f"round {r + 1}: {s:.3f} s, {s / len(items) * 1e6:.2f} us an event, "
              f"{alerts} alerts")


if __name__ == "__main__":
    main()
