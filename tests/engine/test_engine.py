"""The engine: supersession, stable alert ids, schema-valid alerts, pseudonyms only."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from tests.builders import (
    BASE,
    KEY,
    at,
    directory,
    engine,
    event,
    feed,
    login,
    only,
    policy,
    rules,
    run,
)
from tests.engine.scenario import DIRECTORY, SECRET_SUBJECTS, SUBJECTS, events
from watchdog.alerts.factory import MAX_PSEUDONYMS, alert_id
from watchdog.alerts.model import encode_alert, now_rfc3339, rfc3339
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.engine.engine import Engine
from watchdog.events import epoch
from watchdog.rules import RULE_IDS, SUPERSEDES, default_rules

SCHEMAS = Path(__file__).resolve().parents[2] / "watchdog" / "schemas"


def scenario_alerts(pol=None, key: bytes = KEY):
    eng = Engine(pol or policy(), Pseudonymizer(key), default_rules())
    for rec in DIRECTORY:
        eng.apply_directory(rec)
    for srec in SUBJECTS:
        eng.apply_subject(srec)
    return feed(eng, events())


def test_the_scenario_fires_every_contract_rule():
    fired = {a.rule for a in scenario_alerts()}
    # the rules of 1.1 need account records and deadlines: tests/rules/ has them
    new = {"account_not_revoked", "erasure_overdue", "password_expired", "consent_missing",
           "authority_disclosure"}
    assert fired == set(RULE_IDS) - {"anomaly"} - new


# -- supersession ----------------------------------------------------------------------------

def bad_event(user: str):
    # off hours, no purpose, a category no role allows, from outside
    return event(user=user, when="2026-11-21T03:00:00+09:00", purpose=None,
                 categories=["identity", "payment"], ip="203.0.113.9")


def test_without_supersession_the_role_based_rules_fire():
    assert rules(run(bad_event("e1"))) == ["category_not_permitted", "external_network",
                                           "off_hours_access", "purpose_violation"]


def test_revoked_account_supersedes_the_role_based_rules():
    recs = [directory("e1", effective=BASE - timedelta(days=9)),
            directory("e1", "departed", effective=BASE, roles=[])]
    alerts = run(bad_event("e1"), dir_records=recs)
    assert rules(alerts) == ["external_network", "revoked_account"]


def test_unknown_account_supersedes_the_role_based_rules():
    assert rules(run(bad_event("ghost"))) == ["external_network", "unknown_account"]


def test_supersession_table():
    role_based = {"category_not_permitted", "purpose_violation", "off_hours_access"}
    assert {k: set(v) for k, v in SUPERSEDES.items()} == {
        "revoked_account": role_based, "unknown_account": role_based,
        "marketing_opt_out": {"consent_missing"}}


def test_transferred_account_inside_its_new_roles_keeps_the_role_based_rules():
    # revoked_account does not fire, so nothing is superseded: the purpose is still judged
    recs = [directory("e1", "transferred", effective=BASE, roles=["billing"])]
    assert rules(run(event(purpose=None), dir_records=recs)) == ["purpose_violation"]


# -- alert ids ---------------------------------------------------------------------------------

def test_alert_ids_are_stable_across_engines():
    first = [encode_alert(a) for a in scenario_alerts()]
    second = [encode_alert(a) for a in scenario_alerts()]
    assert first == second
    assert len(first) > 18


def test_alert_ids_are_distinct_and_well_formed():
    alerts = scenario_alerts()
    ids = [a.alert_id for a in alerts]
    assert len(set(ids)) == len(ids)
    for a in alerts:
        rule, digest = a.alert_id.split(":")
        assert rule == a.rule
        assert len(digest) == 16
        int(digest, 16)


def test_alert_id_depends_on_rule_account_event_and_key():
    base = alert_id("r", "u", "e", "")
    assert base == alert_id("r", "u", "e", "")
    assert len({base, alert_id("r2", "u", "e", ""), alert_id("r", "u2", "e", ""),
                alert_id("r", "u", "e2", ""), alert_id("r", "u", "e", "k")}) == 5


def test_alert_id_does_not_depend_on_the_pseudonym_key_or_policy_wording():
    a = [x.alert_id for x in scenario_alerts()]
    b = [x.alert_id for x in scenario_alerts(policy(clauses={}), key=b"another-key-0123456789")]
    assert a == b


# -- the alert document ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def alert_validator():
    schema = json.loads((SCHEMAS / "alert.schema.json").read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_every_alert_validates_against_the_schema(alert_validator):
    alerts = scenario_alerts()
    for a in alerts:
        doc = json.loads(encode_alert(msgspec.structs.replace(a, detected_at=now_rfc3339())))
        errors = [e.message for e in alert_validator.iter_errors(doc)]
        assert errors == [], (a.rule, errors)
        # and without detected_at, as the engine hands it out
        assert list(alert_validator.iter_errors(json.loads(encode_alert(a)))) == []


def test_format_checking_is_on(alert_validator):
    doc = json.loads(encode_alert(scenario_alerts()[0]))
    doc["ts"] = "yesterday"
    assert list(alert_validator.iter_errors(doc))


def test_contract_example_alert_validates(alert_validator, contract_dir):
    doc = json.loads((contract_dir / "examples" / "alert.json").read_bytes())
    assert list(alert_validator.iter_errors(doc)) == []


@pytest.mark.parametrize("name", ["access-event", "account-record", "alert", "directory-record",
                                  "policy", "subject-record"])
def test_schema_copies_equal_the_contract(contract_dir, name):
    ours = (SCHEMAS / f"{name}.schema.json").read_bytes()
    assert ours == (contract_dir / f"{name}.schema.json").read_bytes()


def test_alert_fields():
    alerts = scenario_alerts()
    for a in alerts:
        assert a.event_ids, a.rule
        assert ". Breaks: " in a.summary
        assert a.severity in ("critical", "high", "medium", "low")
    revoked = only("revoked_account", alerts)[0]
    assert revoked.ts == rfc3339(epoch(at(minutes=1)))
    assert revoked.clauses == ("Test §1 accounts of leavers are invalidated",)
    assert revoked.summary.endswith("Breaks: Test §1 accounts of leavers are invalidated")
    assert revoked.labels["dataset"] == "idp.auth"
    # a rule the policy cites no clause for states its commitment instead
    media = only("external_media", alerts)[0]
    assert media.clauses == ()
    assert "Breaks: no recording of personal data on external media" in media.summary


def test_policy_can_override_a_severity():
    pol = policy(severities={"external_network": "high"})
    alerts = only("external_network", run(event(ip="203.0.113.1"), pol))
    assert alerts[0].severity == "high"


# -- pseudonyms ------------------------------------------------------------------------------

def test_no_raw_subject_id_appears_in_any_alert():
    alerts = scenario_alerts()
    blob = b"\n".join(encode_alert(a) for a in alerts)
    for sid in SECRET_SUBJECTS:
        assert sid.encode() not in blob
    with_subjects = [a for a in alerts if a.subjects.pseudonyms]
    assert len(with_subjects) >= 5
    for a in with_subjects:
        assert all(p.startswith("s-") and len(p) == 18 for p in a.subjects.pseudonyms)


def test_pseudonyms_are_keyed_and_stable():
    p1, p2 = Pseudonymizer(KEY), Pseudonymizer(b"another-key-0123456789")
    assert p1("c-1") == Pseudonymizer(KEY)("c-1")
    assert p1("c-1") != p1("c-2")
    assert p1("c-1") != p2("c-1")


def test_pseudonyms_are_capped_but_the_count_is_exact():
    ids = [f"c-{i}" for i in range(600)]
    alerts = only("bulk_export", run(event(action="export", subject_ids=ids)))
    assert alerts[0].subjects.count == 600
    assert len(alerts[0].subjects.pseudonyms) == MAX_PSEUDONYMS
    assert list(alerts[0].subjects.pseudonyms) == sorted(alerts[0].subjects.pseudonyms)


# -- state -------------------------------------------------------------------------------------

def test_set_policy_keeps_windows():
    eng = engine()
    fails = [login(outcome="failure", when=at(seconds=i)) for i in range(6)]
    assert feed(eng, fails[:5]) == []
    eng.set_policy(policy(thresholds={"failed_logins": 6},
                          clauses={"brute_force": "New §9"}))
    alerts = feed(eng, fails[5:])
    assert [a.rule for a in alerts] == ["brute_force"]
    assert alerts[0].clauses == ("New §9",)


def test_evict_forgets_idle_windows():
    eng = engine()
    feed(eng, [login(outcome="failure", when=at(), dataset=None),
               event(action="export", subject_count=10, when=at(), dataset=None)])
    windowed = [r for r in eng.rules if r.windowed]
    assert {r.id: r.tracked() for r in windowed} == {
        "bulk_export": 1, "reidentification": 1, "brute_force": 1}
    assert eng.evict(epoch(at(minutes=5))) == 0  # still inside their windows
    assert eng.evict(epoch(at(days=2))) == 3
    assert eng.tracked() == 0


def test_login_is_not_personal_data_access():
    assert not login().is_personal
    assert event().is_personal
