"""The evaluation's worlds: sizes, the fixed seed split, and the files each world is written as.

TUNING seeds are for anyone tuning the detector (thresholds, features, weights): measure on
them as often as you like. REPORT seeds are never tuned on: the numbers a release states come
from them only. Both lists are fixed here so that the split cannot drift.

A world is an organisation of ``accounts`` simulated over ``days`` days of clean traffic
(no rule scenarios, no benign edge cases: every ``anomaly`` alert outside a drawn case is a
false alert), with drawn insider cases (``watchdog.simulate.drawn``) after its first
``train_days`` days. Written once under ``work`` and reused (the directory name says the
parameters).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from watchdog.simulate import SimConfig, write_world
from watchdog.simulate.drawn import Case, default_per_family, drawn_world

SIZES = (100, 500, 2000)
TUNING_SEEDS = (101, 102, 103)
REPORT_SEEDS = (201, 202, 203)
DAYS = 38  # two weeks of training, then 24 days: room for a three-week case and its aftermath
TRAIN_DAYS = 14
GENERATION = 4  # bump when the worlds' generator changes: cached worlds are then rebuilt
QUICK = {"sizes": (100, 500), "days": 26, "seeds": 1}


@dataclass(frozen=True)
class WorldFiles:
    root: Path
    accounts: int
    seed: int
    train_end: float  # epoch seconds
    end: float
    cases: tuple[Case, ...]
    skipped: tuple[str, ...]
    directory_accounts: int

    def path(self, name: str) -> str:
        return str(self.root / name)

    @property
    def eval_days(self) -> float:
        return (self.end - self.train_end) / 86400.0


def _ts(line: bytes) -> float:
    return datetime.fromisoformat(orjson.loads(line)["@timestamp"]).timestamp()


def _cut_offset(path: Path, cut: float) -> int:
    """Byte offset of the first event at or after ``cut`` (events are in time order)."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        lo, hi = 0, fh.tell()
        while hi - lo > 1 << 16:  # bisect on line starts, then scan
            mid = (lo + hi) // 2
            fh.seek(mid)
            fh.readline()
            line = fh.readline()
            if not line or _ts(line) >= cut:
                hi = mid
            else:
                lo = mid
        fh.seek(lo)
        if lo:
            fh.readline()
        while True:
            at = fh.tell()
            line = fh.readline()
            if not line or _ts(line) >= cut:
                return at


def _before(src: Path, dst: Path, cut: float) -> None:
    """The records of a JSONL file effective before ``cut`` (what a user has at training)."""
    keep = []
    for line in src.read_bytes().splitlines():
        doc = orjson.loads(line)
        stamp = doc.get("effective") or doc.get("changed_at") or doc.get("@timestamp")
        if stamp is None or datetime.fromisoformat(stamp).timestamp() < cut:
            keep.append(line)
    dst.write_bytes(b"".join(x + b"\n" for x in keep))


def make_world(work: Path, accounts: int, seed: int, *, days: int = DAYS,
               train_days: int = TRAIN_DAYS, per_family: int | None = None) -> WorldFiles:
    per = per_family if per_family is not None else default_per_family(accounts)
    root = work / f"world-g{GENERATION}-a{accounts}-s{seed}-d{days}-t{train_days}-p{per}"
    meta = root / "meta.json"
    if not meta.exists():
        began = time.perf_counter()
        cfg = SimConfig(accounts=accounts, days=days, seed=seed, violations_per_rule=0,
                        benign_per_kind=0)
        world, planned = drawn_world(cfg, per, train_days)
        write_world(world, root)
        train_end = cfg.start.timestamp() + train_days * 86400.0
        events = root / "events.jsonl"
        with events.open("rb") as src, (root / "train.jsonl").open("wb") as dst:
            left = _cut_offset(events, train_end)
            while left > 0:
                chunk = src.read(min(left, 1 << 22))
                dst.write(chunk)
                left -= len(chunk)
        for name in ("directory", "subjects", "accounts"):
            _before(root / f"{name}.jsonl", root / f"train-{name}.jsonl", train_end)
        (root / "cases.jsonl").write_bytes(
            b"".join(orjson.dumps(c.to_doc()) + b"\n" for c in planned.cases))
        doc: dict[str, Any] = {
            "accounts": accounts, "seed": seed, "days": days, "train_days": train_days,
            "per_family": per, "train_end": train_end,
            "end": cfg.start.timestamp() + days * 86400.0, "skipped": planned.skipped,
            "directory_accounts": world.accounts}
        meta.write_text(json.dumps(doc, indent=1))
        print(f"world {root.name}: {len(planned.cases)} cases, skipped {planned.skipped} "
              f"({time.perf_counter() - began:.0f}s)", file=sys.stderr)
    doc = json.loads(meta.read_text())
    cases = tuple(Case.from_doc(orjson.loads(x))
                  for x in (root / "cases.jsonl").read_bytes().splitlines())
    return WorldFiles(root, accounts, seed, doc["train_end"], doc["end"], cases,
                      tuple(doc["skipped"]), doc["directory_accounts"])
