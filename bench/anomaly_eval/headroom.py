"""What a perfect detector could reach on the issue's clock: the targets' headroom, measured.

    python -m bench.anomaly_eval.headroom --bench tuning.json WORLD_DIR [WORLD_DIR ...]

For tuning worlds already built and trained by ``bench/bench_anomaly.py`` (their ``model``
directory is reused; report seeds are refused). Each world is replayed once through the
shipped stage and every committed bucket's own counts (events, exports, subject ids) are
recorded with the day scale's usual day at that moment (``headroom.npz`` in the world's
directory, reused). Then, against the detector's outcomes in ``--bench`` (the JSON of a
``bench_anomaly.py --json`` run on the same worlds: which cases it already finds in time):

1. **sustained 2-3x, gradual onsets**: the ratio of each case's first two working days to
   the account's usual day (the day scale's measure: the best of events, exports and events
   naming a customer, with its pseudo-counts), against the same ratio on ordinary working
   days (no case, no notice period): how many a one-day threshold, or a two-day CUSUM (the
   sum of ``log(day / allowance)`` over two consecutive working days), reaches at a given
   false rate. Within two days only the first two days count (the deadline is 40 minutes
   into the third).
2. **bursts >= 5x >= 1 h not yet found in time**: events naming a customer in the last hour
   (each bucket's subject ids capped at its events, summed over the last six buckets),
   against three tops: the usual day's hourly rate (usual day / 8.5 h), the account's own
   99th percentile of its training hours, and the higher of that and its department's 99th
   percentile (the "beyond both" of the tail score); the customers uncapped (as
   ``subjects_1h`` counts them) against the own 99th percentile; and a Poisson test (the
   variance-stabilised gap to the account's own mean training hour, alone and divided by its
   department's over-dispersion). For each multiple of a top (or gap), the false alerts per
   1,000 account-days it would add (one per account-hour) and the target bursts it would
   reach within their first hour. The levels are swept on the evaluated days themselves: an
   oracle, an upper bound on what a calibrated threshold would give.

Offline arithmetic over recorded counts; nothing here changes the detector.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from bench.anomaly_eval.detect import AlertSink, Run  # noqa: E402
from watchdog.alerts.pseudonym import DEMO_KEY  # noqa: E402
from watchdog.anomaly import day_baseline as db  # noqa: E402
from watchdog.anomaly.stage import load_stage  # noqa: E402
from watchdog.anomaly.vocabulary import BUCKET, PER_HOUR  # noqa: E402
from watchdog.files.jsonl import RejectedWriter  # noqa: E402
from watchdog.policy import load_policy  # noqa: E402
from watchdog.replay import build_engine, replay  # noqa: E402
from watchdog.simulate.drawn.usual import WORKING_HOURS  # noqa: E402

DAY = 86400


def record(world: Path) -> dict[str, np.ndarray]:
    """Every committed bucket row of a replay: account, bucket, its own counts, the day
    scale's usual day (log1p) and learnt days before it, the day cut's shift."""
    parts: list[tuple[np.ndarray, ...]] = []
    names: dict[str, int] = {}
    inner = db.DayBaselines.observe

    def observe(self: db.DayBaselines, users: Sequence[str], slots: np.ndarray,
                buckets: np.ndarray, t_last: np.ndarray, counts: np.ndarray,
                bucket_seconds: int, shift: int = 0) -> list[db.DayEvidence]:
        if len(users):
            uid = np.fromiter((names.setdefault(u, len(names)) for u in users), np.int32,
                              len(users))
            s = slots.astype(np.int64)
            level = np.zeros((len(users), db.NM), np.float32)
            learnt = np.zeros(len(users), np.int32)
            ok = s < len(self.level)
            level[ok], learnt[ok] = self.level[s[ok]], self.learnt[s[ok]]
            parts.append((uid, buckets.astype(np.int64), counts[:, :3].astype(np.float32),
                          level, learnt, np.full(len(users), shift, np.int64)))
        return inner(self, users, slots, buckets, t_last, counts, bucket_seconds, shift)

    os.environ.pop("WATCHDOG_PSEUDONYM_KEY", None)
    engine = build_engine(load_policy(str(world / "policy.yaml")), DEMO_KEY)
    stage = load_stage(world / "model", engine)
    rejected = RejectedWriter(world / "headroom.rejected.jsonl")
    db.DayBaselines.observe = observe  # type: ignore[method-assign]
    try:
        replay(str(world / "events.jsonl"), AlertSink(Run()), engine,  # type: ignore[arg-type]
               directory=str(world / "directory.jsonl"), subjects=str(world / "subjects.jsonl"),
               accounts=str(world / "accounts.jsonl"), stages=[stage], rejected=rejected)
    finally:
        db.DayBaselines.observe = inner  # type: ignore[method-assign]
        rejected.close()
    keys = ("user", "bucket", "counts", "level", "learnt", "shift")
    out = {k: np.concatenate([p[i] for p in parts]) for i, k in enumerate(keys)}
    out["names"] = np.array(list(names))
    return out


def per_key(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row index of each distinct key in key order, the values summed per key)."""
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    return order[starts], np.add.reduceat(values[order], starts, axis=0)


def hour_sums(users: np.ndarray, buckets: np.ndarray, x: np.ndarray, width: int = PER_HOUR,
              ) -> np.ndarray:
    """Per row (sorted by account, then bucket; one row per account and bucket): the sum of
    ``x`` over the account's last ``width`` buckets (buckets without a row count 0)."""
    key = users.astype(np.int64) * (1 << 40) + buckets
    out = x.astype(np.float64).copy()
    for j in range(1, width):
        pos = np.minimum(np.searchsorted(key, key - j), len(key) - 1)
        ok = key[pos] == key - j
        out[ok] += x[pos[ok]]
    return out


def _world(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, np.ndarray]]:
    meta = json.loads((path / "meta.json").read_text())
    if meta["seed"] >= 200:
        raise SystemExit(f"{path.name}: report seeds are not for tuning")
    cases = [json.loads(x) for x in (path / "cases.jsonl").read_text().splitlines()]
    cache = path / "headroom.npz"
    if not cache.exists():
        np.savez_compressed(cache, **record(path))
    with np.load(cache) as z:
        return meta, cases, {k: z[k] for k in z.files}


def _account_days(meta: dict[str, Any]) -> float:
    return float(meta["directory_accounts"] * (meta["end"] - meta["train_end"]) / DAY)


def _gradual_sustained(c: dict[str, Any]) -> bool:
    return (c["family"] == "sustained" and c["onset"] == "gradual" and 2 <= c["intensity"] <= 3
            and c["workdays"] >= 5)


def _target_burst(c: dict[str, Any]) -> bool:
    return c["family"] == "burst" and c["intensity"] >= 5 and c["duration_ms"] >= 3_600_000


def days_of(meta: dict[str, Any], cases: list[dict[str, Any]], z: dict[str, np.ndarray],
            ) -> tuple[np.ndarray, list[list[float]]]:
    """(ordinary working days' ratios in account order, each gradual sustained target case's
    first two working days' ratios)."""
    cfg = db.DayConfig()
    c = z["counts"]
    m3 = np.stack([c[:, 0], c[:, 1], np.minimum(c[:, 2], c[:, 0])], 1)
    day = (z["bucket"] * BUCKET + z["shift"]) // DAY
    first, tot = per_key(z["user"].astype(np.int64) * 100_000 + day, m3)
    level, learnt, user, d = z["level"][first], z["learnt"][first], z["user"][first], day[first]
    t0 = z["bucket"][first] * BUCKET
    pseudo = np.asarray(cfg.pseudo)
    ratio = ((tot + pseudo) / (np.expm1(level) + pseudo)).max(axis=1)
    work = np.log1p(tot[:, 0]) > level[:, 0] + np.log(cfg.idle_share)
    busy = np.zeros(len(user), bool)
    names = z["names"][user]
    pairs: list[list[float]] = []
    for cs in cases:
        mine = names == cs["user_id"]
        s, e = cs["start_ms"] / 1000, cs["end_ms"] / 1000
        since = cs["notice_at_ms"] / 1000 if cs["notice_at_ms"] else s
        busy |= mine & (t0 >= since - DAY) & (t0 <= e + DAY)
        if _gradual_sustained(cs):
            rows = np.flatnonzero(mine & (t0 >= s - 3600) & (t0 <= e) & work)[:2]
            pairs.append([float(ratio[i]) for i in rows] + [1.0] * (2 - len(rows)))
    ok = (learnt >= cfg.min_days) & (t0 >= meta["train_end"]) & ~busy & work
    order = np.lexsort((d[ok], user[ok]))
    return np.stack([user[ok][order], ratio[ok][order]], 1), pairs


def sustained_report(worlds: list[tuple[dict[str, Any], list[dict[str, Any]],
                                        dict[str, np.ndarray]]]) -> list[str]:
    days, cases, ad = [], [], 0.0
    for meta, cs, z in worlds:
        a, b = days_of(meta, cs, z)
        days.append(a)
        cases += b
        ad += _account_days(meta)
    every = np.concatenate(days)
    same = np.r_[False, every[1:, 0] == every[:-1, 0]]
    two = np.stack([every[:-1, 1], every[1:, 1]], 1)[same[1:]]
    one = every[:, 1]
    out = [f"sustained 2-3x >= 5 working days, gradual onsets: {len(cases)} cases; "
           f"{len(one):,} ordinary working account-days, {len(two):,} consecutive pairs "
           f"(lag-1 correlation of log ratios "
           f"{np.corrcoef(np.log(two[:, 0]), np.log(two[:, 1]))[0, 1]:.2f})",
           "  first two days' ratios: " + ", ".join(
               f"{a:.2f}/{b:.2f}" for a, b in sorted(cases, key=max))]
    for q in (0.99, 0.995, 0.999, 0.9995, 0.9998):
        th = float(np.quantile(one, q))
        rate = 1000 * (1 - q) * len(one) / ad
        out.append(f"  one day >= {th:.2f}x: {rate:.2f} false per 1,000 account-days, "
                   f"{sum(max(p) >= th for p in cases)} of {len(cases)}")
    for allowance in (1.2, 1.3, 1.5):
        stat = np.maximum(0.0, np.log(two / allowance)).sum(axis=1)
        got = np.array([sum(max(0.0, float(np.log(x / allowance))) for x in p) for p in cases])
        for q in (0.999, 0.9995, 0.9998):
            h = float(np.quantile(stat, q))
            rate = 1000 * (1 - q) * len(two) / ad
            out.append(f"  two-day CUSUM, allowance {allowance}x, h {h:.2f}: {rate:.2f} false "
                       f"per 1,000 account-days, {int((got >= h).sum())} of {len(cases)}")
    return out


def departments(path: Path, names: np.ndarray) -> np.ndarray:
    """Each recorded account's department in the world's training directory ("" if none)."""
    dept: dict[str, str] = {}
    for line in (path / "train-directory.jsonl").read_text().splitlines():
        doc = json.loads(line)
        dept[doc["user_id"]] = str(doc.get("department"))
    return np.array([dept.get(str(x), "") for x in names])


def _own_p99(users: np.ndarray, x: np.ndarray, keep: np.ndarray, n: int) -> np.ndarray:
    """Per account (``n``), the 99th percentile of ``x`` over its ``keep`` rows (NaN: none)."""
    own = np.full(n, np.nan)
    su, sv = users[keep], x[keep]
    order = np.argsort(su, kind="stable")
    su, sv = su[order], sv[order]
    starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], len(su)], strict=True):
        own[su[a]] = np.quantile(sv[a:b], 0.99)
    return own


def _tops(of: np.ndarray, users: np.ndarray, reads: np.ndarray, level: np.ndarray,
          train: np.ndarray) -> dict[str, np.ndarray]:
    """Per row, the three tops of an hour's customer reads (``of``: each account's
    department)."""
    own = _own_p99(users, reads, train, len(of))
    su, sv = users[train], reads[train]
    peers = {d: float(np.quantile(sv[of[su] == d], 0.99)) for d in set(of[su].tolist())}
    peer = np.array([peers.get(d, 0.0) for d in of])
    return {"usual day / 8.5 h": np.expm1(level) / WORKING_HOURS,
            "own p99": own[users], "max(own p99, department p99)": np.maximum(own, peer)[users]}


def poisson_gap(reads: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """How far an hour's count is above a Poisson mean, variance-stabilised (Anscombe):
    about N(0, 1) for a Poisson count, whatever its mean."""
    out: np.ndarray = 2.0 * (np.sqrt(reads + 0.375) - np.sqrt(mean + 0.375))
    return out


MULTIPLES = (1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 3.5, 4.0)
GAPS = (2.0, 3.0, 4.0, 5.0, 5.5, 6.0, 6.5, 7.0)  # Poisson gaps (about standard deviations)


class _Test(NamedTuple):
    stat: np.ndarray  # per row; -inf where the test is not armed
    levels: tuple[float, ...]  # swept
    unit: str  # after a level: "x" for a multiple of a top


def _tests(meta: dict[str, Any], path: Path, z: dict[str, np.ndarray], users: np.ndarray,
           buckets: np.ndarray, tot: np.ndarray, first: np.ndarray, t: np.ndarray,
           pseudo: float) -> dict[str, _Test]:
    """Each test of an hour's reads."""
    reads = hour_sums(users, buckets, tot[:, 1])
    level, learnt = z["level"][first, 2], z["learnt"][first]
    after, train = t >= meta["train_end"], t < meta["train_end"]
    of = departments(path, z["names"])
    n = len(of)
    out: dict[str, _Test] = {}

    def ratio(x: np.ndarray, top: np.ndarray, armed: np.ndarray) -> _Test:
        return _Test(np.where(armed, (x + pseudo) / (np.nan_to_num(top) + pseudo), -np.inf),
                     MULTIPLES, "x")

    for name, top in _tops(of, users, reads, level, train).items():
        armed = np.isfinite(top) & after
        if name.startswith("usual day"):
            armed &= learnt >= db.DayConfig().min_days
        out[f"events naming a customer / {name}"] = ratio(reads, top, armed)
    # customers as ``subjects_1h`` counts them, uncapped: one report names hundreds
    every = hour_sums(users, buckets, tot[:, 2])
    own = _own_p99(users, every, train, n)[users]
    out["customers (uncapped) / own p99"] = ratio(every, own, np.isfinite(own) & after)
    # a Poisson count against the account's own mean training hour, alone and divided by
    # its department's over-dispersion (variance / mean of the training hours' residuals)
    mean = (np.bincount(users[train], reads[train], n)
            / np.maximum(np.bincount(users[train], None, n), 1))
    gap = np.where(after, poisson_gap(reads, mean[users]), -np.inf)
    phi = np.ones(n)
    for d in set(of.tolist()):
        m = train & (of[users] == d)
        if m.sum() > 10:
            resid = reads[m] - mean[users[m]]
            phi[of == d] = max(1.0, float((resid**2).sum() / max(mean[users[m]].sum(), 1e-9)))
    out["Poisson gap / own mean hour"] = _Test(gap, GAPS, "")
    out["Poisson gap / own mean hour, over-dispersed"] = _Test(gap / np.sqrt(phi[users]), GAPS,
                                                               "")
    return out


def burst_report(worlds: list[tuple[Path, dict[str, Any], list[dict[str, Any]],
                                    dict[str, np.ndarray]]], in_time: set[tuple[str, str]],
                 pseudo: float = 2.0) -> list[str]:
    tests: dict[str, _Test] = {}
    false: dict[str, np.ndarray] = {}
    found: dict[str, list[list[str]]] = {}
    ad, left = 0.0, 0
    for path, meta, cases, z in worlds:
        c = z["counts"]
        first, tot = per_key(z["user"].astype(np.int64) * (1 << 40) + z["bucket"],
                             np.stack([c[:, 0], np.minimum(c[:, 2], c[:, 0]), c[:, 2]], 1))
        users, buckets = z["user"][first], z["bucket"][first]
        t = (buckets + 1) * BUCKET
        names = z["names"][users]
        ad += _account_days(meta)
        # rows of a case's account from its notice (or start) to a day after it: not false
        near = np.zeros(len(t), bool)
        for cs in cases:
            s, e = cs["start_ms"] / 1000, cs["end_ms"] / 1000
            since = cs["notice_at_ms"] / 1000 if cs["notice_at_ms"] else s
            near |= (names == cs["user_id"]) & (t >= since - 600) & (t <= e + DAY)
        # the first hour of each target burst not yet found in time
        hits = [(f"{cs['case_id']} ({cs['role']}, {cs['onset']})",
                 (names == cs["user_id"]) & (t >= cs["start_ms"] / 1000 - 600)
                 & (t <= cs["start_ms"] / 1000 + 3600))
                for cs in cases if _target_burst(cs) and (path.name, cs["case_id"]) not in in_time]
        left += len(hits)
        for name, test in _tests(meta, path, z, users, buckets, tot, first, t, pseudo).items():
            tests[name] = test
            false.setdefault(name, np.zeros(len(test.levels)))
            found.setdefault(name, [[] for _ in test.levels])
            for j, m in enumerate(test.levels):
                f = (test.stat >= m) & ~near
                false[name][j] += len(set(zip(users[f].tolist(), (t[f] // 3600).tolist(),
                                              strict=True)))
                found[name][j] += [label for label, hit in hits if (test.stat[hit] >= m).any()]
    out = [f"bursts >= 5x >= 1 h not found in time by the detector: {left}; the last hour's "
           f"reads against a top (pseudo-count {pseudo:g} on both sides) or a Poisson mean"]
    for name, test in tests.items():
        out.append(f"  {name}:")
        for j, m in enumerate(test.levels):
            out.append(f"    {m:g}{test.unit}: +{1000 * false[name][j] / ad:.2f} false per "
                       f"1,000 account-days, {len(found[name][j])} more in time "
                       f"{found[name][j] if found[name][j] else ''}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("worlds", type=Path, nargs="+")
    p.add_argument("--bench", type=Path, required=True,
                   help="bench_anomaly.py --json of the shipped detector on these worlds")
    args = p.parse_args(argv)
    bench = json.loads(args.bench.read_text())
    if bench["config"].get("seed_set") == "report" or set(bench["config"]["seeds"]) & set(
            range(200, 300)):
        print("report seeds are not for tuning", file=sys.stderr)
        return 2
    in_time = {(c["world"], c["case_id"]) for c in bench["cases"]
               if c["detector"] == "shipped" and c["ttd_s"] is not None
               and c["ttd_s"] <= 3600 and c["family"] == "burst"}
    loaded = [(w, *_world(w)) for w in args.worlds]
    print("\n".join(sustained_report([(m, c, z) for _, m, c, z in loaded])))
    print("\n".join(burst_report(loaded, in_time)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
