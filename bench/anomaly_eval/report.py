"""The evaluation's tables, in markdown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watchdog.simulate.drawn import FAMILIES


def _f(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def families_table(summary: Mapping[str, Any]) -> str:
    rows = ["| family | detector | cases | recall | in time | deadline | time to first alert "
            "(median / p90) |", "|---|---|---|---|---|---|---|"]
    for fam in FAMILIES:
        for det, s in summary.items():
            f = s["families"][fam]
            ttd = (f"{_f(f['ttd_median_h'], '.1f')} h / {_f(f['ttd_p90_h'], '.1f')} h"
                   if f["ttd_median_h"] is not None else "-")
            dl = f["deadline_h"]
            rows.append(f"| {fam} | {det} | {f['cases']} | {_f(f['recall'])} | "
                        f"{_f(f['recall_in_time'])} | {dl:g} h | {ttd} |")
    return "\n".join(rows)


def targets_table(summary: Mapping[str, Any]) -> str:
    dets = list(summary)
    rows = ["| target (issue 13) | " + " | ".join(dets) + " |",
            "|---|" + "---|" * len(dets)]
    first = next(iter(summary.values()))
    for name, t in first["targets"].items():
        cells = []
        for det in dets:
            r = summary[det]["targets"][name]
            mark = "PASS" if r["pass"] else "FAIL"
            if "value" in r:
                cells.append(f"{r['value']:.2f} {mark}")
            else:
                cells.append(f"{_f(r['recall_in_time'])} of {r['cases']} {mark}")
        rows.append(f"| {t['words']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def worlds_table(worlds: list[dict[str, Any]]) -> str:
    if not worlds:
        return ""
    dets = list(worlds[0]["false_per_1000"])
    rows = ["| world | accounts | cases | evaluated account-days | model threshold | " +
            " | ".join(f"{d} false/1000 acct-days" for d in dets) + " |",
            "|---|---|---|---|---|" + "---|" * len(dets)]
    for w in worlds:
        rows.append(f"| {w['name']} | {w['accounts']} | {w['cases']} | "
                    f"{w['account_days']:,.0f} | {w['threshold']:.3f} | " +
                    " | ".join(f"{w['false_per_1000'][d]:.2f} ({w['false'][d]})"
                               for d in dets) + " |")
    return "\n".join(rows)


def markdown(results: Mapping[str, Any]) -> str:
    s = results["summary"]
    parts = [f"seeds {results['config']['seeds']} ({results['config']['seed_set']}), sizes "
             f"{results['config']['sizes']}, {results['config']['days']} days "
             f"({results['config']['train_days']} training)", "", targets_table(s), "",
             families_table(s), "", worlds_table(results["worlds"])]
    return "\n".join(parts)
