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
                ci = r.get("ci95")
                band = f" [{ci[0]:.2f}-{ci[1]:.2f}]" if ci else ""
                cells.append(f"{_f(r['recall_in_time'])}{band} of {r['cases']} {mark}")
        rows.append(f"| {t['words']} | " + " | ".join(cells) + " |")
    notes = [f"- {t['words'].split(':')[0]}, in time by onset: " + "; ".join(
        f"{det} sudden {_onset(summary[det]['targets'][name], 'sudden')}, gradual "
        f"{_onset(summary[det]['targets'][name], 'gradual')}" for det in dets)
        for name, t in first["targets"].items() if "by_onset" in t]
    notes += [f"- {t['words'].split(':')[0]}, counted from when the case reaches "
              f"{t['level']:g}x (a reading, not the target: a gradual onset starts at 1x): " +
              "; ".join(f"{det} {_share(summary[det]['targets'][name]['in_time_from_level'])}"
                        for det in dets)
              for name, t in first["targets"].items() if "in_time_from_level" in t]
    return "\n".join(rows + (["", *notes] if notes else []))


def _share(kn: list[int]) -> str:
    k, n = kn
    return f"{k}/{n} ({k / n:.2f})" if n else "- (cases without their ramp recorded)"


def _onset(r: Mapping[str, Any], onset: str) -> str:
    k, n = r["by_onset"][onset]
    return f"{k}/{n}"


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
    if results.get("alert_examples"):
        parts += ["", "What the shipped detector's first alert on a case of each family says:"]
        parts += [f"- {fam}: {text}" for fam, text in results["alert_examples"].items()]
    parts += cost_lines(results)
    return "\n".join(parts)


def cost_lines(results: Mapping[str, Any]) -> list[str]:
    """The cost (throughput and memory), if measured."""
    parts: list[str] = []
    tp, mem = results.get("throughput"), results.get("memory")
    if tp:
        per = tp.get("per_round_share") or [tp["share"]]
        parts += ["", f"throughput ({tp['world']}, {tp['events']:,} events, median of "
                  f"{tp['rounds']} interleaved rounds, CPU time): rules only "
                  f"{tp['rules_only_events_per_cpu_s']:,.0f} events/s, with the model "
                  f"{tp['with_model_events_per_cpu_s']:,.0f} events/s = "
                  f"{100 * tp['share']:.0f}% of rules only (rounds "
                  f"{100 * min(per):.0f}-{100 * max(per):.0f}%; goal >= 75%: "
                  f"{'PASS' if tp['pass'] else 'FAIL'})"]
    if mem:
        parts += ["", f"memory: {mem['bytes_per_account']:,.0f} bytes per tracked account "
                  f"({mem['accounts']:,} accounts, the shipped stage) -> "
                  f"{mem['gb_for_1m_accounts']:.2f} GB for 1,000,000 (goal <= 2 KB: "
                  f"{'PASS' if mem['pass'] else 'FAIL'})"]
    return parts


def cost_markdown(results: Mapping[str, Any]) -> str:
    return "\n".join(cost_lines(results)).strip()
