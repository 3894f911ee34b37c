"""load_policy / parse_policy: good files compile; every bad one is a one-line PolicyError that
names the file and the path inside it."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
import yaml

from tests.builders import POLICY_DOC, policy_doc
from watchdog.policy import PolicyError, load_policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, doc, name: str = "policy.yaml") -> Path:
    p = tmp_path / name
    if isinstance(doc, (str, bytes)):
        p.write_bytes(doc.encode() if isinstance(doc, str) else doc)
    else:
        p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return p


def error_of(path: Path) -> str:
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: ")
    return msg[len(f"{path}: "):]


# -- good policies ----------------------------------------------------------------------------

def test_contract_example_policy_loads(contract_dir):
    pol = load_policy(contract_dir / "examples" / "policy.yaml")
    assert pol.organization == "Example K.K."
    assert pol.roles["dba"].bulk_export
    assert pol.roles["dba"].after_hours
    assert pol.roles["billing"].categories == frozenset({"identity", "contact", "payment"})
    assert pol.business_hours is not None
    assert pol.business_hours.start_minute == 8 * 60
    assert pol.business_hours.end_minute == 20 * 60
    assert pol.business_hours.weekdays == frozenset({1, 2, 3, 4, 5})
    assert pol.internal_networks == (ipaddress.ip_network("10.0.0.0/8"),)
    assert [p.name for p in pol.processors] == ["PayQuick", "MailCloud"]
    assert pol.processors[1].safeguards == "SCC"
    assert pol.thresholds.bulk_export_subjects == 500
    assert pol.thresholds.failed_logins == 10  # schema default
    assert pol.clauses["external_media"].startswith("LiveSmart §10")


def test_embedded_default_policy_loads():
    assert load_policy(None).roles


def test_json_policy_loads(tmp_path):
    p = tmp_path / "policy.json"
    p.write_text(json.dumps(POLICY_DOC))
    assert load_policy(p).organization == "Test K.K."


def test_defaults_when_optional_parts_are_absent():
    pol = parse_policy({"organization": "Tiny", "roles": {}})
    assert pol.business_hours is None
    assert pol.internal_networks == ()
    assert pol.thresholds.reidentification_window_minutes == 60
    assert pol.thresholds.source_silence_minutes == 30


def test_domains_are_compared_lowercase():
    pol = parse_policy(policy_doc(internal_domains=["Example.CO.JP"]))
    assert pol.is_internal_domain("mail.example.co.jp")


# -- one-line errors ----------------------------------------------------------------------------

def test_typo_in_a_threshold_key_suggests_the_right_one(tmp_path):
    msg = error_of(write(tmp_path, policy_doc(thresholds={"bulk_export_subjcts": 100})))
    assert msg == ("thresholds.bulk_export_subjcts: unknown key "
                   "(did you mean 'bulk_export_subjects'?)")


@pytest.mark.parametrize(("over", "expected"), [
    ({"thresholdz": {}}, "thresholdz: unknown key (did you mean 'thresholds'?)"),
    ({"roles": {"x": {"after_hour": True}}},
     "roles.x.after_hour: unknown key (did you mean 'after_hours'?)"),
    ({"business_hours": {"timezon": "UTC"}},
     "business_hours.timezon: unknown key (did you mean 'timezone'?)"),
])
def test_unknown_keys_elsewhere(tmp_path, over, expected):
    assert error_of(write(tmp_path, {**POLICY_DOC, **over} if "thresholdz" in over
                          else policy_doc(**over))) == expected


def test_unknown_key_in_a_processor(tmp_path):
    doc = policy_doc(processors=[{"name": "A", "domain": ["a.example"]}])
    assert error_of(write(tmp_path, doc)) == ("processors[0].domain: unknown key "
                                              "(did you mean 'domains'?)")


def test_bad_category_in_a_role(tmp_path):
    msg = error_of(write(tmp_path, policy_doc(roles={"x": {"categories": ["paymnt"]}})))
    assert msg == "roles.x.categories: unknown category 'paymnt' (did you mean 'payment'?)"


def test_bad_category_in_a_processor(tmp_path):
    doc = policy_doc(processors=[{"name": "A", "categories": ["contact", "adress"]}])
    assert error_of(write(tmp_path, doc)) == ("processors[0].categories: unknown category "
                                              "'adress' (did you mean 'address'?)")


def test_bad_category_in_retention_days(tmp_path):
    msg = error_of(write(tmp_path, policy_doc(retention_days={"purchse": 1825})))
    assert msg == "retention_days: unknown category 'purchse' (did you mean 'purchase'?)"


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "10.0.0", "intranet"])
def test_bad_cidr(tmp_path, cidr):
    msg = error_of(write(tmp_path, policy_doc(internal_networks=["192.168.0.0/16", cidr])))
    assert msg == f"internal_networks[1]: '{cidr}' is not a CIDR block"


@pytest.mark.parametrize("tz", ["Asia/Tokio", "", "../../etc/passwd"])
def test_bad_time_zone(tmp_path, tz):
    msg = error_of(write(tmp_path, policy_doc(business_hours={"timezone": tz})))
    assert msg == f"business_hours.timezone: unknown time zone '{tz}'"


def test_bad_time_of_day(tmp_path):
    msg = error_of(write(tmp_path, policy_doc(business_hours={"end": "25:00"})))
    assert msg == "business_hours.end: '25:00' is not a time of day"


def test_unquoted_time_gets_a_hint(tmp_path):
    # YAML 1.1 reads 08:00 unquoted as a sexagesimal integer
    text = yaml.safe_dump(POLICY_DOC).replace("start: 08:00", "start: 8:00")
    text = text.replace("start: '08:00'", "start: 8:00")
    msg = error_of(write(tmp_path, text))
    assert msg.startswith("business_hours.start must be string")
    assert '"08:00"' in msg


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    msg = error_of(write(tmp_path, "organization: x\nroles: {a: [\n"))
    assert msg.startswith("not valid YAML/JSON (line 3, column 1): ")


def test_json_syntax_error(tmp_path):
    p = tmp_path / "policy.json"
    p.write_text('{"organization": ')
    assert error_of(p).startswith("not valid YAML/JSON")


def test_missing_organization(tmp_path):
    doc = {k: v for k, v in POLICY_DOC.items() if k != "organization"}
    msg = error_of(write(tmp_path, doc))
    assert "organization" in msg
    assert "roles" not in msg


def test_missing_roles(tmp_path):
    doc = {k: v for k, v in POLICY_DOC.items() if k != "roles"}
    assert "roles" in error_of(write(tmp_path, doc))


@pytest.mark.parametrize(("over", "path"), [
    ({"thresholds": {"failed_logins": "ten"}}, "thresholds.failed_logins"),
    ({"retention_days": {"behavior": 0}}, "retention_days.behavior"),
    ({"business_hours": {"weekdays": [1, 8]}}, "business_hours.weekdays[1]"),
    ({"roles": {"x": None}}, "roles.x"),
    ({"processors": [{"domains": ["a"]}]}, "processors[0]"),
])
def test_schema_violations_name_the_path(tmp_path, over, path):
    assert error_of(write(tmp_path, policy_doc(**over))).startswith(f"{path} must")


def test_bad_severity_override(tmp_path):
    msg = error_of(write(tmp_path, {**POLICY_DOC, "severities": {"brute_force": "urgent"}}))
    assert msg == "severities.brute_force: 'urgent' is not one of critical, high, medium, low"


def test_severities_that_are_not_a_mapping(tmp_path):
    msg = error_of(write(tmp_path, {**POLICY_DOC, "severities": ["brute_force"]}))
    assert msg.startswith("severities must be a mapping")


@pytest.mark.parametrize(("text", "what"), [("", "NoneType"), ("just a string", "str"),
                                            ("- a\n- b\n", "list")])
def test_not_a_mapping(tmp_path, text, what):
    assert error_of(write(tmp_path, text)) == f"the policy must be a mapping, got {what}"


def test_missing_file(tmp_path):
    assert error_of(tmp_path / "nope.yaml") == "cannot read: No such file or directory"


def test_directory_instead_of_a_file(tmp_path):
    assert error_of(tmp_path).startswith("cannot read: ")


def test_binary_garbage(tmp_path):
    assert error_of(write(tmp_path, b"organization: \x80\x81\n")).startswith("not valid YAML/JSON")


def test_parse_policy_names_its_source():
    with pytest.raises(PolicyError, match=r"^inline: the policy must contain"):
        parse_policy({"roles": {}}, "inline")


@pytest.mark.parametrize("pack", sorted((ROOT / "watchdog" / "policies").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_policy_pack_loads(pack):
    assert load_policy(pack).roles


@pytest.mark.parametrize("doc", [
    {"organization": "x", "roles": {"\n": None}},
    {"organization": "x", "roles": {"a\r\nb": {"categories": ["x\u2028y"]}}},
    {"organization": "x", "roles": {}, "internal_networks": ["10.0.0.0/8\n"]},
    {"organization": "x", "roles": {}, "business_hours": {"timezone": "Asia/\nTokyo"}},
])
def test_line_breaks_from_the_file_are_escaped(doc):
    with pytest.raises(PolicyError) as info:
        parse_policy(doc, "multi\nline.yaml")
    msg = str(info.value)
    assert len(msg.splitlines()) == 1
    assert msg.startswith("multi\\x0aline.yaml: ")
