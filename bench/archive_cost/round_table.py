"""The summary rows of bench/bench_archive.py's daemon rounds (``daemon_rounds``; also
bench/bench_model_share.py's): events per CPU-second of each daemon in each round, medians, the
change against the first daemon (without the archive, or rules only) within a round; and with
``--ab`` the one daemon's cost per record with and without."""

from __future__ import annotations

import statistics
import sys


def round_rows(pairs: int, names: list[str], results: dict[str, list[float]],
               split: dict[str, list[tuple[float, float]]],
               tails: dict[str, list[tuple[float, ...]]],
               batches: dict[str, list[float]]) -> list[tuple[str, str]]:
    """``results``: events per CPU-second of each run, by daemon; ``split``: its CPU s of the
    event loop and of the other threads; ``tails``: the same until every event was consumed,
    then until every offset was committed, and that last stretch's wall seconds;
    ``batches``: batches consumed."""
    rows: list[tuple[str, str]] = []
    base = results[names[0]]  # "without" the archive (or "rules only")
    for i in range(pairs):
        rows.append((f"round {i + 1}: events per daemon CPU-second, "
                     + " / ".join(names),
                     " / ".join(f"{results[name][i]:,.0f}" for name in names)))
    for name in names:
        rates = results[name]
        mains = [m for m, _o in split[name]]
        others = [o for _m, o in split[name]]
        rows.append((f"{name}: median events per CPU-second (lowest, highest)",
                     f"{statistics.median(rates):,.0f} ({min(rates):,.0f}, {max(rates):,.0f})"))
        rows.append((f"{name}: median CPU s, event loop / other threads (the writer)",
                     f"{statistics.median(mains):.2f} / {statistics.median(others):.2f}"))
        med = [statistics.median(x) for x in zip(*tails[name], strict=True)]
        rows.append((f"{name}: until consumed, then until committed: CPU s (loop / others)",
                     f"{med[0]:.2f} / {med[1]:.2f}, then {med[2]:.2f} / {med[3]:.2f} "
                     f"in {med[4]:.1f} s"))
        rows.append((f"{name}: median batches consumed",
                     f"{statistics.median(batches[name]):,.0f}"))
        if name != names[0]:
            changes = [(r - b) / b for r, b in zip(rates, base, strict=True)]
            rows.append((f"{name}: median change within a round (lowest, highest)",
                         f"{statistics.median(changes):+.1%} ({min(changes):+.1%}, "
                         f"{max(changes):+.1%})"))
            shares = sorted(1 + c for c in changes)
            rows.append((f"{name}: its rate as a share of {names[0]}'s, each round (sorted)",
                         " ".join(f"{x:.1%}" for x in shares)))
    return rows


def ab_run(stats: dict[str, list[float]], ab: dict[str, list[float]]) -> None:
    """One --ab daemon's totals (bench/daemon_ab.py): printed, and added to ``ab``."""
    for key, (cpu, n, batches, gc_cpu) in sorted(stats.items()):
        print(f"  {key}: {n:,.0f} records in {batches:,.0f} batches, event loop "
              f"{cpu / max(n, 1) * 1e6:.2f} us a record (collector {gc_cpu / max(n, 1) * 1e6:.2f})",
              file=sys.stderr)
        ab.setdefault(f"{key}: us a record, each run", []).append(cpu / max(n, 1) * 1e6)
        ab.setdefault(f"{key}: collector us a record, each run", []).append(
            gc_cpu / max(n, 1) * 1e6)


def ab_rows(ab: dict[str, list[float]]) -> list[tuple[str, str]]:
    return [(key, f"median {statistics.median(v):.2f} ({', '.join(f'{x:.2f}' for x in v)})")
            for key, v in sorted(ab.items())]


def print_table(rows: list[tuple[str, str]]) -> None:
    """The rows as the benches print them: a measure and its value per line."""
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
