"""The anomaly stage: micro-batches, alerts (schema, explanation, ids), life cycle, hooks."""

from __future__ import annotations

import itertools
import json
import shutil
from datetime import datetime
from pathlib import Path

import jsonschema
import msgspec
import pytest

from tests.anomaly.conftest import baseline, decode, insider_docs, make_engine
from watchdog.alerts.model import Alert, encode_alert
from watchdog.anomaly.model import AnomalyModel
from watchdog.anomaly.stage import AnomalyStage, load_stage

SCHEMA = Path(__file__).resolve().parents[2] / "watchdog" / "schemas" / "alert.schema.json"


class Recorder:
    def __init__(self) -> None:
        self.scores: list[float] = []
        self.models: list[tuple[str, bool]] = []

    def on_score(self, score: float) -> None:
        self.scores.append(score)

    def on_model(self, version: str, loaded: bool) -> None:
        self.models.append((version, loaded))


def run(stage: AnomalyStage, docs: list[dict]) -> list[Alert]:
    alerts: list[Alert] = []
    for doc in docs:
        ev = decode(doc)
        alerts.extend(stage.observe(ev, ev.timestamp.timestamp()))
    alerts.extend(stage.flush())
    return alerts


def stage_for(model_dir: Path, **kw: object) -> AnomalyStage:
    return load_stage(model_dir, make_engine(), warmup=6 * 3600.0, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def insider_alerts(tiny_model: Path) -> list[Alert]:
    return run(stage_for(tiny_model), insider_docs())


def test_the_insider_is_found(insider_alerts: list[Alert]) -> None:
    mine = [a for a in insider_alerts if a.user_id == "u004"]
    assert mine, [a.user_id for a in insider_alerts]
    a = mine[0]
    assert a.rule == "anomaly"
    assert a.event_ids
    assert all(e.startswith("x") for e in a.event_ids)
    assert a.ts >= "2026-11-04T13:00"


def test_alerts_validate_against_the_contract(insider_alerts: list[Alert]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert insider_alerts
    for a in insider_alerts:
        doc = json.loads(encode_alert(msgspec.structs.replace(
            a, detected_at="2026-11-23T00:00:00.000Z")))
        validator.validate(doc)
        assert doc["severity"] in ("medium", "high")
        assert isinstance(doc["score"], float)


def test_explanation_names_features_values_and_ranges(insider_alerts: list[Alert]) -> None:
    a = next(a for a in insider_alerts if a.user_id == "u004")
    ex = a.explanation
    assert isinstance(ex, dict)
    assert ex["model_version"].startswith("if-")
    assert ex["peer_group"] == "billing"
    assert 1 <= len(ex["drivers"]) <= 3
    for d in ex["drivers"]:
        assert (d["signals"] == ["tail"]
                or d["feature"] in {s.rsplit("_vs_", 1)[0] for s in d["signals"]})
        assert isinstance(d["value"], int | float)
        lo, hi = d["account_usual"]
        assert lo <= hi
        lo, hi = d["peers_usual"]
        assert lo <= hi
        assert d["description"]
        assert d["description"] in ex["text"]
    # in words: "... in the last hour: 40 (usually 0-1 for this account; 0-1 for its peers in
    # billing)"
    assert "usually" in ex["text"]
    assert "for its peers in billing" in ex["text"]
    assert ex["text"] in a.summary
    assert a.summary.startswith("Unusual behaviour by account u004")
    assert "Breaks:" in a.summary


def test_no_raw_subject_id_in_alerts(insider_alerts: list[Alert]) -> None:
    blob = b"".join(encode_alert(a) for a in insider_alerts)
    # the insider's customers (c9<i><k>) never appear; a bare "c9" could be part of a hash
    leaked = {s for d in insider_docs()
              for s in d.get("data", {}).get("subject_ids", ()) if s.encode() in blob}
    assert len({s for d in insider_docs() for s in d.get("data", {}).get("subject_ids", ())}) > 1000
    assert not leaked
    # the subjects of the events an alert cites, as keyed-hash pseudonyms (at most ten)
    mine = [a for a in insider_alerts if a.user_id == "u004"]
    assert any(a.subjects.pseudonyms for a in mine)
    engine = make_engine()
    ids_of = {d["event"]["id"]: d.get("data", {}).get("subject_ids", ()) for d in insider_docs()}
    windows = [a for a in mine if not (a.explanation and "contributions" in a.explanation)]
    assert windows  # (a risk alert gives its own account of what added up)
    for a in windows:
        cited = {engine.alerts.pseudonymize(s) for e in a.event_ids for s in ids_of[e]}
        assert a.subjects.pseudonyms
        assert set(a.subjects.pseudonyms) <= cited
    for a in insider_alerts:
        assert len(a.subjects.pseudonyms) <= 10
        assert all(p.startswith("s-") and len(p) == 18 for p in a.subjects.pseudonyms)
        assert a.subjects.count >= len(a.subjects.pseudonyms)


def test_scoring_happens_in_batches(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = AnomalyModel.score

    def counting(self: AnomalyModel, x: object) -> object:
        calls.append(len(x))  # type: ignore[arg-type]
        return original(self, x)  # type: ignore[arg-type]

    monkeypatch.setattr(AnomalyModel, "score", counting)
    stage = stage_for(tiny_model)
    est = stage.model.estimator
    per_call: list[int] = []
    real = est.score_samples
    monkeypatch.setattr(est, "score_samples", lambda x: per_call.append(len(x)) or real(x))
    docs = baseline(n_accounts=30, days=2, seed=9)
    run(stage, docs)
    assert stage.scored > 0
    assert len(calls) == stage.batches
    assert sum(calls) == stage.scored - stage.skipped
    # micro-batches, not one call per event or per vector
    assert len(calls) <= len(docs) / 20
    assert stage.scored / len(calls) >= 5
    # scikit-learn itself is called at most once per batch (plus one probe of the fast path)
    assert len(per_call) <= len(calls) + 1


def test_draining_early_changes_when_not_what(tiny_model: Path) -> None:
    """The daemon drains every tick (commits the closed buckets, scores the ended windows);
    a replay commits an hour at a time: the same alerts, in the same order, only sooner."""
    docs = insider_docs()
    hourly = run(stage_for(tiny_model), docs)
    stage = stage_for(tiny_model)
    ticked: list[Alert] = []
    first_at: dict[str, float] = {}  # alert id -> event time when the tick raised it
    for i, doc in enumerate(docs):
        ev = decode(doc)
        t = ev.timestamp.timestamp()
        ticked.extend(stage.observe(ev, t))
        if i % 40 == 0:
            for a in stage.drain():
                ticked.append(a)
                first_at[a.alert_id] = t
    ticked.extend(stage.flush())
    assert any(a.user_id == "u004" for a in hourly)
    assert [encode_alert(a) for a in ticked] == [encode_alert(a) for a in hourly]
    # scoring at every commit rather than in batches of thousands: the same alerts too
    eager = run(stage_for(tiny_model, batch_size=1), docs)
    assert [encode_alert(a) for a in eager] == [encode_alert(a) for a in hourly]
    # a drained alert came out within two buckets of its window's end, not at the hour
    mine = next(a for a in ticked if a.user_id == "u004")
    assert mine.alert_id in first_at
    end = datetime.fromisoformat(mine.explanation["window_end"].replace("Z", "+00:00"))
    assert first_at[mine.alert_id] - end.timestamp() <= 1200


def test_same_events_same_alerts(tiny_model: Path) -> None:
    docs = insider_docs()
    one = run(stage_for(tiny_model), docs)
    two = run(stage_for(tiny_model), docs)
    assert [encode_alert(a) for a in one] == [encode_alert(a) for a in two]
    assert len({a.alert_id for a in one}) == len(one)
    assert all(a.alert_id.startswith("anomaly:") for a in one)


def test_cool_down_one_alert_per_account_per_hour(tiny_model: Path) -> None:
    stage = stage_for(tiny_model)
    stage.model.threshold = 0.0  # everything scored is "anomalous"
    alerts = run(stage, baseline(n_accounts=10, days=2, seed=3))
    by_user: dict[str, list[str]] = {}
    for a in alerts:
        by_user.setdefault(a.user_id, []).append(a.ts)
    assert by_user
    for stamps in by_user.values():
        times = sorted(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
                       for s in stamps)
        assert all(b - a >= 3600 for a, b in itertools.pairwise(times))


def test_observer_hooks_and_hot_swap(tiny_model: Path, tmp_path: Path) -> None:
    rec = Recorder()
    stage = stage_for(tiny_model, observer=rec)
    first = stage.model_version
    assert rec.models == [(first, True)]
    run(stage, baseline(n_accounts=30, days=2, seed=9))
    assert len(rec.scores) == stage.scored > 0
    # a damaged directory is refused and the old model stays
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model, bad)
    (bad / "model.skops").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="checksum"):
        stage.swap(bad)
    assert stage.model_version == first
    assert rec.models[-1] == (first, False)  # the refused one claims the same version
    # a good one replaces it atomically and keeps the accounts' history
    tracked = stage.tracked()
    good = tmp_path / "good"
    shutil.copytree(tiny_model, good)
    doc = json.loads((good / "manifest.json").read_text())
    assert stage.swap(good) == doc["model_version"]
    assert rec.models[-1] == (doc["model_version"], True)
    assert stage.tracked() == tracked


def test_load_stage_refuses_with_one_line(tiny_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model, bad)
    (bad / "manifest.json").write_text("{}")
    rec = Recorder()
    with pytest.raises(ValueError, match="checksum") as err:
        load_stage(bad, make_engine(), observer=rec)
    assert "checksum mismatch for manifest.json" in str(err.value)
    assert "\n" not in str(err.value)
    assert rec.models == [("unknown", False)]


def test_replay_with_model_via_cli(tiny_model: Path, tiny_inputs: dict[str, Path],
                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from watchdog.cli import main

    out = tmp_path / "alerts.jsonl"
    args = ["replay", "--events", str(tiny_inputs["events"]), "--directory",
            str(tiny_inputs["directory"]), "--model", str(tiny_model), "--out", str(out)]
    assert main(args) == 0
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model, bad)
    (bad / "SHA256SUMS").write_text("0" * 64 + "  manifest.json\n")
    capsys.readouterr()
    assert main([*args[:-4], "--model", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("watchdog: error: model ")
    assert "checksum mismatch" in err[-1]


def test_commitments_not_naming_anomaly_silence_it(tiny_model: Path,
                                                   insider_alerts: list[Alert]) -> None:
    """Contract 1.1: anomaly raises nothing unless a commitment names it, even with a model."""
    from tests.builders import policy_doc
    from watchdog.policy import parse_policy

    assert insider_alerts
    doc = policy_doc()
    del doc["clauses"]
    doc["commitments"] = [{"id": "A", "clause": "§1", "rules": ["external_media"]}]
    stage = stage_for(tiny_model)
    stage.engine.set_policy(parse_policy(doc, "p"))
    assert run(stage, insider_docs()) == []
    doc["commitments"].append({"id": "B", "clause": "§2", "quote": "we watch",
                               "rules": ["anomaly"]})
    stage = stage_for(tiny_model)
    stage.engine.set_policy(parse_policy(doc, "p"))
    named = run(stage, insider_docs())
    assert [a.alert_id for a in named] == [a.alert_id for a in insider_alerts]
    assert all(a.clauses == ("§2: we watch",) for a in named)
