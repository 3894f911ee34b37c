"""``watchdog simulate --insiders N`` (``SimConfig.insiders``): N cases of each insider
scenario for the anomaly model, planned by the simulator's own planner, in the ground truth
with every rule they also break, deterministic, and found by the shipped default model."""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from watchdog.cli import main
from watchdog.rules import RULE_IDS
from watchdog.simulate import SimConfig, add_arguments, build_world, run, write_world
from watchdog.simulate.insiders import INSIDERS, NOT_BEFORE
from watchdog.simulate.scoring import score, table

MODEL = Path(__file__).resolve().parents[2] / "watchdog" / "models" / "default"
# The leaver needs a working day 10 days after the baseline (first 40%): 20 days at least.
CFG = SimConfig(accounts=200, days=20, violations_per_rule=1)
SIM_ARGS = ("--accounts", "200", "--days", "20", "--violations-per-rule", "1")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="watchdog simulate")
    add_arguments(parser)
    return parser.parse_args(list(argv))


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _cases(truth: list[dict[str, Any]]) -> dict[tuple[str, str], list[float]]:
    """Insider cases, (scenario, account) -> times of its injected events."""
    cases: dict[tuple[str, str], list[float]] = {}
    for t in truth:
        if t["scenario"] in INSIDERS:
            cases.setdefault((t["scenario"], t["user_id"]), []).append(_t(t["ts"]))
    return cases


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def _truth(out: Path) -> list[dict[str, Any]]:
    return [t for x in (out / "truth.jsonl").read_bytes().splitlines()
            if (t := orjson.loads(x)).get("expected", True)]


def test_off_by_default() -> None:
    assert SimConfig().insiders == 0
    assert _args("--out", "x").insiders == 0
    truth = build_world(CFG).ground_truth
    assert not [t for t in truth if t["rule"] == "anomaly" or t["scenario"] in INSIDERS]


@pytest.mark.parametrize("n", [1, 2])
def test_n_cases_of_each_scenario_join_the_truth(n: int) -> None:
    base = build_world(CFG)
    world = build_world(replace(CFG, insiders=n))
    truth = world.ground_truth
    cases = _cases(truth)
    assert Counter(sc for sc, _ in cases) == dict.fromkeys(INSIDERS, n)
    # planned after everything else: the other scenarios are exactly the ones without insiders
    assert [t for t in truth if t["scenario"] not in INSIDERS] == base.ground_truth
    # every injected insider event is an ``anomaly``; only insiders are
    assert {t["event_id"] for t in truth if t["rule"] == "anomaly"} == \
        {t["event_id"] for t in truth if t["scenario"] in INSIDERS}
    assert {t["scenario"] for t in truth if t["rule"] == "anomaly"} == set(INSIDERS)
    # the rules they break as well are in their own cases
    assert {t["rule"] for t in truth if t["scenario"] in INSIDERS} == \
        {"anomaly", "external_media", "category_not_permitted"}
    # off_hours_access is off in the simulated policy: those lines expect nothing
    assert {t["rule"] for t in world.silent if t["scenario"] in INSIDERS} == {"off_hours_access"}
    # the first 40% of the period stays a clean baseline to train on
    lo = CFG.start.timestamp() + NOT_BEFORE * CFG.days * 86400
    assert min(min(v) for v in cases.values()) >= lo
    assert world.planned_event_ids >= {t["event_id"] for t in truth
                                       if not t["event_id"].startswith(("directory/", "subj"))}


def test_same_seed_same_bytes_from_the_cli_and_the_api(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = replace(CFG, accounts=100, insiders=1)
    write_world(build_world(cfg), tmp_path / "api")
    assert run(_args("--out", str(tmp_path / "cli"), "--accounts", "100", "--days", "20",
                     "--violations-per-rule", "1", "--insiders", "1")) == 0
    assert f"{len(_truth(tmp_path / 'cli'))} expected alerts" in capsys.readouterr().out
    assert _digests(tmp_path / "api") == _digests(tmp_path / "cli")
    other = build_world(replace(cfg, seed=12)).ground_truth  # another seed, other insiders
    assert _cases(other).keys() != _cases(_truth(tmp_path / "api")).keys()


def test_bad_insider_settings_are_clear_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="insiders"):
        SimConfig(insiders=-1)
    assert run(_args("--out", str(tmp_path), "--accounts", "100", "--days", "10",
                     "--insiders", "1")) == 2
    assert "simulate more days" in capsys.readouterr().err
    assert run(_args("--out", str(tmp_path), *SIM_ARGS, "--insiders", "3")) == 2
    assert "--subjects" in capsys.readouterr().err  # each leaver takes ~2,000 customers


@pytest.mark.slow
def test_replay_with_the_default_model_finds_insiders_and_rules_stay_exact(
        tmp_path: Path) -> None:
    out = tmp_path / "world"
    assert main(["simulate", "--out", str(out), *SIM_ARGS, "--insiders", "1"]) == 0
    alerts_path = tmp_path / "alerts.jsonl"
    assert main(["replay", "--events", str(out / "events.jsonl"), "--directory",
                 str(out / "directory.jsonl"), "--subjects", str(out / "subjects.jsonl"),
                 "--accounts", str(out / "accounts.jsonl"),
                 "--policy", str(out / "policy.yaml"), "--model", str(MODEL),
                 "--out", str(alerts_path)]) == 0
    truth = _truth(out)
    alerts = [orjson.loads(x) for x in alerts_path.read_bytes().splitlines()]

    # every rule alert, the insiders' included, is in the ground truth, and vice versa
    rules = [r for r in RULE_IDS if r != "anomaly"]
    scores = score([t for t in truth if t["rule"] != "anomaly"],
                   [a for a in alerts if a["rule"] != "anomaly"], rules)
    assert scores.keys() == set(rules)
    report = table(scores)
    for s in scores.values():
        assert s.recall == 1.0, f"{s.rule} missed {s.missed[:5]}\n{report}"
        assert s.precision == 1.0, f"{s.rule} raised on {s.unexpected[:5]}\n{report}"

    # an anomaly alert on an insider's account from 1 h before its first injected event to
    # 24 h after its last detects the case (as bench/bench_anomaly.py counts)
    cases = _cases(truth)
    rule_cases: dict[str, list[float]] = {}
    for t in truth:
        if t["scenario"] not in INSIDERS:
            rule_cases.setdefault(t["user_id"], []).append(_t(t["ts"]))
    found: set[tuple[str, str]] = set()
    unexplained = []
    for a in (a for a in alerts if a["rule"] == "anomaly"):
        ts, uid = _t(a["ts"]), a["user_id"]
        hit = {k for k, v in cases.items()
               if k[1] == uid and min(v) - 3600 <= ts <= max(v) + 86400}
        found |= hit
        if not hit and not any(abs(ts - r) <= 86400 for r in rule_cases.get(uid, ())):
            unexplained.append((uid, a["ts"], a["score"]))
    detected = sorted(sc for sc, _ in found)
    assert "after_hours_usb" in detected, (detected, sorted(cases))
    assert len(detected) >= 2, detected
    assert not unexplained, unexplained  # nothing clean is called anomalous
