"""``watchdog check-policy POLICY [--text POLICY_TEXT] [--json]``.

Reports every problem of the file (one line each, naming the file and the path inside it),
checks the commitments' quotes against the organisation's own policy text, and shows which
rules each commitment turns on and which are off: a table on a terminal, JSON with ``--json``.
Exit 0 when nothing is wrong, 1 when the policy has problems, 2 when it cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from watchdog.policy.check import RuleMatrix
    from watchdog.policy.model import Policy


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("policy", nargs="?", help="policy YAML/JSON (default: embedded)")
    p.add_argument("--text", metavar="POLICY_TEXT",
                   help="the organisation's privacy policy text: every commitment's quote "
                        "must occur in it")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _print_table(source: str, policy: Policy, matrix: RuleMatrix, notes: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    if matrix.version == "1":
        console.print(f"{source}: {policy.organization}: version 1 'clauses' policy: every "
                      "rule runs")
        table = Table("rule", "clause cited")
        for rule in matrix.on:
            table.add_row(rule, policy.clauses.get(rule, "-"))
        console.print(table)
        for note in notes:
            console.print(note)
        return
    table = Table("commitment", "clause", "rules it turns on", title=policy.organization,
                  show_lines=True)
    for cid, clause, _quote, rules in matrix.commitments:
        table.add_row(cid, clause, ", ".join(rules))
    console.print(table)
    console.print(f"rules on ({len(matrix.on)}): {', '.join(matrix.on)}")
    console.print(f"rules off ({len(matrix.off)}): {', '.join(matrix.off) or 'none'}")
    for note in notes:
        console.print(note)


def run(args: argparse.Namespace) -> int:
    from watchdog.policy.check import (
        missing_quotes,
        purpose_problems,
        rule_matrix,
        threshold_problems,
        unquoted,
    )
    from watchdog.policy.loader import (
        PolicyError,
        compile_policy,
        policy_problems,
        read_policy_file,
    )

    try:
        source, doc, problems = read_policy_file(args.policy)
    except PolicyError as err:
        print(f"watchdog: error: {err}", file=sys.stderr)
        return 2
    text = None
    if args.text:
        try:
            text = Path(args.text).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
            print(f"watchdog: error: {args.text}: cannot read: {reason}", file=sys.stderr)
            return 2
    fatal = policy_problems(doc)  # the daemon would refuse the file for any of these
    problems = problems + fatal
    if isinstance(doc, dict):
        problems += purpose_problems(doc) + threshold_problems(doc)
    # the matrix and the quotes need a policy that compiles; check-policy's own strictness
    # (purposes, duplicate keys) does not stop it from showing them
    policy = compile_policy(doc, source) if not fatal else None
    if policy is not None and text is not None:
        problems += missing_quotes(policy, text)
    problems = list(dict.fromkeys(problems))
    matrix = rule_matrix(policy) if policy is not None else None
    notes = []
    if policy is not None and text is not None and not policy.commitments:
        notes.append("a version 1 'clauses' policy quotes nothing: nothing was checked "
                     "against the text")
    elif policy is not None and text is not None and (ids := unquoted(policy)):
        notes.append(f"not checked against the text (no quote): {', '.join(ids)}")

    if args.json:
        out: dict[str, Any] = {"policy": source, "ok": not problems,
                               "problems": [f"{source}: {p}" for p in problems],
                               "text": args.text, "notes": notes}
        out.update(matrix.as_json() if matrix is not None else {})
        sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        for p in problems:
            print(f"{source}: {p}", file=sys.stderr)
        if policy is not None and matrix is not None:
            _print_table(source, policy, matrix, notes)
        if not problems:
            checked = (f", every quote found in {args.text}"
                       if text is not None and policy is not None and policy.commitments else "")
            print(f"{source}: ok{checked}")
    return 1 if problems else 0
