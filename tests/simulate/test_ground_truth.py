"""`watchdog replay --accounts` on a simulated organisation whose policy is commitments finds
every injected violation with the right rule, raises nothing on clean events, on near misses
or from a rule the policy leaves off (precision and recall 1.0 for every rule)."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from watchdog.cli import main
from watchdog.simulate import SimConfig, build_world, write_world
from watchdog.simulate.catalog import RULES_OFF, RULES_ON
from watchdog.simulate.scoring import score, silent_hits, table


@pytest.mark.slow
def test_replay_finds_every_injected_violation_and_nothing_else(tmp_path):
    # 20 days: room for whole 14-day erasure windows
    world = build_world(SimConfig(seed=11, accounts=300, days=20, violations_per_rule=4))
    files = write_world(world, tmp_path)
    out = tmp_path / "alerts.jsonl"
    assert main(["replay", "--events", str(files["events"]), "--directory",
                 str(files["directory"]), "--subjects", str(files["subjects"]),
                 "--accounts", str(files["accounts"]), "--policy", str(files["policy"]),
                 "--out", str(out)]) == 0
    alerts = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert not Counter(a["rule"] for a in alerts if a["rule"] in RULES_OFF)
    truth = [*world.ground_truth, *world.silent]
    assert silent_hits(truth, alerts) == []
    scores = score(truth, alerts, [r for r in RULES_ON if r != "anomaly"])
    report = table(scores)
    for s in scores.values():
        assert s.expected > 0, f"no injection for {s.rule}\n{report}"
        assert s.recall == 1.0, f"{s.rule} missed {s.missed[:5]}\n{report}"
        assert s.precision == 1.0, f"{s.rule} raised on {s.unexpected[:5]}\n{report}"
    near = {t["rule"] for t in world.silent if t["why"] == "near_miss"}
    assert near == {"account_not_revoked", "erasure_overdue", "password_expired",
                    "consent_missing"}
