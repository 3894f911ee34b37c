"""The policy packs in watchdog/policies: valid, and faithful to the contract's vocabulary."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "watchdog" / "policies"
SCHEMA_DIR = ROOT / "watchdog" / "schemas"

# Rule ids of the contract (README, "The rules"); they are part of the contract.
RULE_IDS = frozenset(
    {
        "revoked_account",
        "unknown_account",
        "bulk_export",
        "external_media",
        "external_email",
        "unapproved_third_party",
        "cross_border_transfer",
        "purpose_violation",
        "category_not_permitted",
        "subject_restricted",
        "marketing_opt_out",
        "minor_data",
        "reidentification",
        "retention_expired",
        "off_hours_access",
        "external_network",
        "brute_force",
        "log_gap",
        "anomaly",
    }
)

# file -> the name every clause of that company's pack must carry
COMPANIES = {
    "livesmart.yaml": "LiveSmart",
    "livex_ai.yaml": "LiveX AI",
    "livlog.yaml": "LivLog",
    "smedio.yaml": "sMedio",
    "luminous.yaml": "Luminous",
}
DEFAULT = "default.yaml"
MIN_CITED_RULES = 8
COUNTRY = re.compile(r"^[A-Z]{2}$")
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

POLICY_FILES = sorted(POLICY_DIR.glob("*.yaml"))


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{path.name}: not a mapping"
    return doc


_DATA = _schema("access-event.schema.json")["properties"]["data"]["properties"]
CATEGORIES = frozenset(_DATA["categories"]["items"]["enum"])


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = _schema("policy.schema.json")
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_every_pack_is_present() -> None:
    names = {p.name for p in POLICY_FILES}
    assert set(COMPANIES) | {DEFAULT} <= names


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_validates_against_policy_schema(
    path: Path, validator: jsonschema.Draft202012Validator
) -> None:
    errors = sorted(validator.iter_errors(_load(path)), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_clause_keys_are_rule_ids(path: Path) -> None:
    clauses = _load(path).get("clauses", {})
    assert clauses, f"{path.name}: no clauses"
    assert set(clauses) <= RULE_IDS, sorted(set(clauses) - RULE_IDS)
    for rule, text in clauses.items():
        assert isinstance(text, str), rule
        assert text.strip(), rule


@pytest.mark.parametrize(("filename", "company"), sorted(COMPANIES.items()))
def test_company_pack_cites_its_own_policy(filename: str, company: str) -> None:
    clauses = _load(POLICY_DIR / filename)["clauses"]
    assert len(clauses) >= MIN_CITED_RULES, f"{filename} cites only {sorted(clauses)}"
    for rule, text in clauses.items():
        assert company in text, f"{filename}: clause {rule} does not name {company}"
        assert ":" in text, f"{filename}: clause {rule} has no section and quote"


def test_default_pack_cites_every_rule_generically() -> None:
    doc = _load(POLICY_DIR / DEFAULT)
    assert doc["organization"] == "Example K.K."
    assert set(doc["clauses"]) == RULE_IDS
    for rule, text in doc["clauses"].items():
        assert text.startswith("Default policy: "), rule
        assert not any(company in text for company in COMPANIES.values()), rule


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_roles_use_schema_categories(path: Path) -> None:
    roles = _load(path)["roles"]
    assert roles
    for name, role in roles.items():
        assert role.get("categories"), f"role {name} has no categories"
        assert role.get("purposes"), f"role {name} has no purposes"
        unknown = set(role["categories"]) - CATEGORIES
        assert not unknown, f"role {name}: unknown categories {sorted(unknown)}"
        for flag in ("after_hours", "bulk_export"):
            assert isinstance(role.get(flag, False), bool), f"role {name}: {flag}"


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_processors(path: Path) -> None:
    processors = _load(path).get("processors", [])
    names = [p["name"] for p in processors]
    assert len(names) == len(set(names)), "duplicate processor names"
    for proc in processors:
        if "country" in proc:
            assert isinstance(proc["country"], str)
            assert COUNTRY.match(proc["country"]), proc
        unknown = set(proc.get("categories", [])) - CATEGORIES
        assert not unknown, f"processor {proc['name']}: unknown categories {sorted(unknown)}"
        for domain in proc.get("domains", []):
            assert domain == domain.lower(), domain
            assert "." in domain, domain
            assert "@" not in domain, domain
            assert "/" not in domain, domain


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_adequate_countries_are_iso_codes(path: Path) -> None:
    countries = _load(path).get("adequate_countries", [])
    assert countries
    for code in countries:
        # an unquoted NO (Norway) would load as False
        assert isinstance(code, str), repr(code)
        assert COUNTRY.match(code), code
    assert len(countries) == len(set(countries)), "duplicate country"


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_internal_networks_parse(path: Path) -> None:
    networks = _load(path).get("internal_networks", [])
    assert networks
    for cidr in networks:
        net = ipaddress.ip_network(cidr)  # strict: host bits must be zero
        assert net.is_private, f"{cidr} is not a private range"


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_internal_domains(path: Path) -> None:
    domains = _load(path).get("internal_domains", [])
    assert domains
    for domain in domains:
        assert isinstance(domain, str)
        assert domain == domain.lower()
        assert "." in domain
        assert "@" not in domain


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_business_hours(path: Path) -> None:
    hours = _load(path)["business_hours"]
    ZoneInfo(hours["timezone"])
    assert HHMM.match(hours["start"]), hours["start"]
    assert HHMM.match(hours["end"]), hours["end"]
    assert hours["start"] < hours["end"]
    assert hours["weekdays"]
    assert set(hours["weekdays"]) <= set(range(1, 8))


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_purposes_and_retention_are_consistent(path: Path) -> None:
    doc = _load(path)
    role_purposes = {p for role in doc["roles"].values() for p in role["purposes"]}
    for proc in doc.get("processors", []):
        # a processor approved for a purpose no role has would never match
        assert set(proc.get("purposes", [])) <= role_purposes, proc["name"]
    assert set(doc.get("minor_allowed_purposes", [])) <= role_purposes
    retention = doc.get("retention_days", {})
    assert set(retention) <= CATEGORIES, sorted(set(retention) - CATEGORIES)


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_thresholds_are_positive(path: Path) -> None:
    thresholds = _load(path).get("thresholds", {})
    for key, value in thresholds.items():
        assert value >= 0 if key == "restriction_grace_hours" else value > 0, key
    if {"bulk_export_subjects", "bulk_export_subjects_per_hour"} <= set(thresholds):
        assert thresholds["bulk_export_subjects"] <= thresholds["bulk_export_subjects_per_hour"]
