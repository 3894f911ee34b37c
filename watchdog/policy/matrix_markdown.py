"""The commitments matrix of several policies as Markdown, for an auditor.

One table of every contract rule against every policy (which commitments turn it on, or
off), then each policy's commitments with their clause and quote. ``watchdog/policies/
README.md`` carries it for the shipped packs; ``scripts/packs-matrix.py`` regenerates it and a
test keeps it in sync.
"""

from __future__ import annotations

from watchdog.policy.check import rule_matrix
from watchdog.policy.model import Policy
from watchdog.policy.rule_ids import CONTRACT_RULE_IDS

OFF = "off"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_matrix(packs: list[tuple[str, str, Policy]]) -> str:
    """``packs``: (short name, file name, policy). Version 1 policies show every rule on."""
    header = "| rule | " + " | ".join(f"{name} (`{file}`)" for name, file, _ in packs) + " |"
    lines = [header, "|---" * (len(packs) + 1) + "|"]
    matrices = [rule_matrix(p) for _, _, p in packs]
    for rule in CONTRACT_RULE_IDS:
        cells = []
        for m in matrices:
            ids = m.on.get(rule)
            cells.append(OFF if ids is None else ", ".join(ids) if m.version == "1.1" else "on")
        lines.append(f"| `{rule}` | " + " | ".join(cells) + " |")
    counts = [str(len(m.on)) for m in matrices]
    lines.append("| **rules on** | " + " | ".join(counts) + " |")
    for name, file, policy in packs:
        if not policy.commitments:
            continue
        lines += ["", f"### {name} (`{file}`)", "",
                  "| commitment | clause | quote (verbatim) | rules |", "|---|---|---|---|"]
        for c in policy.commitments:
            lines.append(f"| {c.id} | {_cell(c.clause)} | {_cell(c.quote or '')} | "
                         + ", ".join(f"`{r}`" for r in c.rules) + " |")
        facts = []
        if policy.allow_anonymized_provision:
            facts.append("`allow_anonymized_provision: true`")
        if policy.category_purposes:
            facts.append("`category_purposes`: " + "; ".join(
                f"{cat} -> {', '.join(sorted(ps))}"
                for cat, ps in policy.category_purposes.items()))
        if policy.consent_purposes:
            facts.append("`consent_purposes`: " + ", ".join(sorted(policy.consent_purposes)))
        if facts:
            lines += ["", "Also: " + "; ".join(facts) + "."]
    return "\n".join(lines) + "\n"
