"""`watchdog replay` on a simulated organisation finds every injected violation with the right
rule and raises nothing on clean events (precision and recall 1.0 for every rule)."""

from __future__ import annotations

import orjson
import pytest

from watchdog.cli import main
from watchdog.rules import RULE_IDS
from watchdog.simulate import SimConfig, build_world, write_world
from watchdog.simulate.scoring import score, table


@pytest.mark.slow
def test_replay_finds_every_injected_violation_and_nothing_else(tmp_path):
    world = build_world(SimConfig(seed=11, accounts=300, days=8, violations_per_rule=4))
    files = write_world(world, tmp_path)
    out = tmp_path / "alerts.jsonl"
    assert main(["replay", "--events", str(files["events"]), "--directory",
                 str(files["directory"]), "--subjects", str(files["subjects"]),
                 "--policy", str(files["policy"]), "--out", str(out)]) == 0
    alerts = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    scores = score(world.ground_truth, alerts, [r for r in RULE_IDS if r != "anomaly"])
    report = table(scores)
    for s in scores.values():
        assert s.expected > 0, f"no injection for {s.rule}\n{report}"
        assert s.recall == 1.0, f"{s.rule} missed {s.missed[:5]}\n{report}"
        assert s.precision == 1.0, f"{s.rule} raised on {s.unexpected[:5]}\n{report}"
