"""Load a policy file: schema check, typo check, then compile into :class:`Policy`.

Errors name the file, the path inside it and what is wrong, in one line, because the person
reading them is editing that file. Unknown keys inside the objects the contract defines are
errors with a suggestion: a misspelt ``bulk_export_subjcts`` would otherwise silently fall back
to the default and weaken enforcement.
"""

from __future__ import annotations

import difflib
import ipaddress
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import fastjsonschema
import orjson
import yaml

from watchdog import schemas
from watchdog.policy.model import (
    BusinessHours,
    Commitment,
    Policy,
    PolicyException,
    Processor,
    Role,
    Thresholds,
)
from watchdog.policy.rule_ids import CONTRACT_RULE_IDS, NEVER_EXCUSED

SEVERITIES = ("critical", "high", "medium", "low")
# Optional project additions beside the contract's keys.
_EXTRA_TOP = {"severities", "description", "version"}


# what str.splitlines() breaks on, escaped: keys and values quoted from the file stay on one line
_LINE_BREAKS = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
                for c in (0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)}


class PolicyError(ValueError):
    """A policy that cannot be used; ``str()`` is one line naming file and path."""

    def __init__(self, message: str) -> None:
        super().__init__(message.translate(_LINE_BREAKS))


_validate = fastjsonschema.compile(schemas.load("policy"))


def _keys(spec: dict[str, Any]) -> set[str]:
    return set(spec.get("properties", {}))


def _check_keys(obj: Any, allowed: set[str], path: str, source: str) -> None:
    if not isinstance(obj, dict):
        return
    for key in obj:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise PolicyError(f"{source}: {path}{key}: unknown key{hint}")


def _typo_check(doc: dict[str, Any], source: str) -> None:
    schema = schemas.load("policy")
    props = schema["properties"]
    categories = set(schemas.load("access-event")["properties"]["data"]["properties"]
                     ["categories"]["items"]["enum"])

    def check(obj: Any, allowed: set[str], path: str) -> None:
        _check_keys(obj, allowed, path, source)

    check(doc, _keys(schema) | _EXTRA_TOP, "")
    check(doc.get("thresholds"), _keys(props["thresholds"]), "thresholds.")
    check(doc.get("business_hours"), _keys(props["business_hours"]), "business_hours.")
    def check_categories(cats: Any, path: str) -> None:
        # a misspelt category grants, approves or retains nothing: say so rather than ignore it
        for cat in cats or ():
            if cat not in categories:
                near = difflib.get_close_matches(cat, categories, n=1)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                raise PolicyError(f"{source}: {path}: unknown category '{cat}'{hint}")

    role_keys = _keys(props["roles"]["additionalProperties"])
    for name, role in (doc.get("roles") or {}).items():
        check(role, role_keys, f"roles.{name}.")
        check_categories(role.get("categories"), f"roles.{name}.categories")
    for i, proc in enumerate(doc.get("processors") or []):
        check(proc, _keys(props["processors"]["items"]), f"processors[{i}].")
        check_categories(proc.get("categories"), f"processors[{i}].categories")
    check_categories(doc.get("retention_days"), "retention_days")
    check_categories(doc.get("category_purposes"), "category_purposes")
    severities = doc.get("severities") or {}
    if not isinstance(severities, dict):
        raise PolicyError(f"{source}: severities must be a mapping of rule id to severity")
    for rule, sev in severities.items():
        if sev not in SEVERITIES:
            raise PolicyError(f"{source}: severities.{rule}: '{sev}' is not one of "
                              f"{', '.join(SEVERITIES)}")


def _minutes(hhmm: str, where: str) -> int:
    h, m = hhmm.split(":")
    if int(h) > 24 or (int(h) == 24 and int(m) != 0):
        raise PolicyError(f"{where}: '{hhmm}' is not a time of day")
    return int(h) * 60 + int(m)


def _rule_name(rule: Any, where: str) -> None:
    if isinstance(rule, str) and rule not in CONTRACT_RULE_IDS:
        near = difflib.get_close_matches(rule, CONTRACT_RULE_IDS, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise PolicyError(f"{where}: unknown rule '{rule}'{hint}")


def _check_promises(doc: dict[str, Any], source: str) -> None:
    """Contract 1.1's rules about commitments and exceptions, before the schema: the schema
    says the same with ``not`` clauses whose messages name no key."""
    if "clauses" in doc and "commitments" in doc:
        raise PolicyError(f"{source}: clauses, commitments: a policy has either 'clauses' "
                          "(version 1) or 'commitments' (1.1), not both")
    props = schemas.load("policy")["properties"]
    seen: dict[str, int] = {}
    commitments = doc.get("commitments")
    for i, com in enumerate(commitments if isinstance(commitments, list) else ()):
        if not isinstance(com, dict):
            continue
        _check_keys(com, _keys(props["commitments"]["items"]), f"commitments[{i}].", source)
        cid = com.get("id")
        if isinstance(cid, str):
            if cid in seen:
                raise PolicyError(f"{source}: commitments[{i}].id: '{cid}' is already the id "
                                  f"of commitments[{seen[cid]}]")
            seen[cid] = i
        rules = com.get("rules")
        for j, rule in enumerate(rules if isinstance(rules, list) else ()):
            _rule_name(rule, f"{source}: commitments[{i}].rules[{j}]")
    exceptions = doc.get("exceptions")
    for i, exc in enumerate(exceptions if isinstance(exceptions, list) else ()):
        if not isinstance(exc, dict):
            continue
        _check_keys(exc, _keys(props["exceptions"]["items"]), f"exceptions[{i}].", source)
        rule = exc.get("rule")
        if rule in NEVER_EXCUSED:
            raise PolicyError(f"{source}: exceptions[{i}].rule: '{rule}' cannot be excused "
                              "(a leaver's access never is)")
        _rule_name(rule, f"{source}: exceptions[{i}].rule")


def _instant(value: str, where: str) -> float:
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise PolicyError(f"{where}: '{value}' is not an RFC 3339 time") from None
    if t.tzinfo is None:
        raise PolicyError(f"{where}: '{value}' has no UTC offset")
    return t.timestamp()


def _exceptions(doc: dict[str, Any], source: str) -> tuple[PolicyException, ...]:
    return tuple(
        PolicyException(rule=e["rule"], until=_instant(e["until"], f"{source}: exceptions[{i}]"
                                                                   ".until"),
                        reason=e["reason"], user_id=e.get("user_id"),
                        resource=e.get("resource"),
                        destination_domain=(e["destination_domain"].lower().rstrip(".")
                                            if e.get("destination_domain") else None))
        for i, e in enumerate(doc.get("exceptions") or ())
    )


def parse_policy(doc: Any, source: str = "<policy>") -> Policy:
    """Validate a policy document (already parsed) and compile it."""
    if not isinstance(doc, dict):
        raise PolicyError(f"{source}: the policy must be a mapping, got {type(doc).__name__}")
    _check_promises(doc, source)
    try:
        _validate(doc)
    except fastjsonschema.JsonSchemaValueException as err:
        msg = err.message
        msg = msg[5:] if msg.startswith("data.") else msg.replace("data", "the policy", 1)
        if msg.endswith("must be string") and ("business_hours" in msg or "until" in msg):
            msg += ' (quote times: "08:00", "2026-12-31T00:00:00Z")'
        raise PolicyError(f"{source}: {msg}") from None
    _typo_check(doc, source)

    networks = []
    for i, cidr in enumerate(doc.get("internal_networks", [])):
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise PolicyError(f"{source}: internal_networks[{i}]: '{cidr}' is not a CIDR "
                              "block") from None

    hours = None
    if bh := doc.get("business_hours"):
        tz_name = bh.get("timezone", "UTC")
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a directory
            raise PolicyError(f"{source}: business_hours.timezone: unknown time zone "
                              f"'{tz_name}'") from None
        hours = BusinessHours(
            timezone=tz,
            start_minute=_minutes(bh.get("start", "00:00"), f"{source}: business_hours.start"),
            end_minute=_minutes(bh.get("end", "24:00"), f"{source}: business_hours.end"),
            weekdays=frozenset(bh.get("weekdays", range(1, 8))),
        )

    roles = {
        name: Role(name=name, categories=frozenset(r.get("categories", ())),
                   purposes=frozenset(r.get("purposes", ())),
                   after_hours=bool(r.get("after_hours", False)),
                   bulk_export=bool(r.get("bulk_export", False)))
        for name, r in doc["roles"].items()
    }
    processors = tuple(
        Processor(name=p["name"], domains=tuple(d.lower() for d in p.get("domains", ())),
                  purposes=frozenset(p.get("purposes", ())),
                  categories=frozenset(p.get("categories", ())),
                  country=p.get("country"), safeguards=p.get("safeguards") or None)
        for p in doc.get("processors", [])
    )
    return Policy(
        organization=doc["organization"],
        roles=roles,
        clauses=dict(doc.get("clauses", {})),
        internal_domains=tuple(d.lower() for d in doc.get("internal_domains", ())),
        internal_networks=tuple(networks),
        business_hours=hours,
        processors=processors,
        adequate_countries=frozenset(doc.get("adequate_countries", ())),
        retention_days=dict(doc.get("retention_days", {})),
        minor_allowed_purposes=frozenset(doc.get("minor_allowed_purposes", ())),
        thresholds=Thresholds(**doc.get("thresholds", {})),
        severities=dict(doc.get("severities") or {}),
        commitments=tuple(Commitment(id=c["id"], clause=c["clause"], rules=tuple(c["rules"]),
                                     quote=c.get("quote"))
                          for c in doc.get("commitments") or ()),
        exceptions=_exceptions(doc, source),
        consent_purposes=frozenset(doc.get("consent_purposes", ())),
        consent_opt_in=bool(doc.get("consent_opt_in", False)),
        category_purposes={c: frozenset(ps)
                           for c, ps in (doc.get("category_purposes") or {}).items()},
        allow_anonymized_provision=bool(doc.get("allow_anonymized_provision", False)),
        source=source,
        raw=doc,
    )


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a YAML or JSON policy file; ``None`` loads the embedded default policy."""
    if path is None:
        text = resources.files("watchdog.policies").joinpath("default.yaml").read_bytes()
        source = "embedded default policy"
    else:
        source = str(path)
        try:
            text = Path(path).read_bytes()
        except OSError as err:
            raise PolicyError(f"{source}: cannot read: {err.strerror}") from None
    try:
        doc = orjson.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as err:
        where = ""
        mark = getattr(err, "problem_mark", None)
        if mark is not None:
            where = f" (line {mark.line + 1}, column {mark.column + 1})"
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise PolicyError(f"{source}: not valid YAML/JSON{where}: {problem}") from None
    return parse_policy(doc, source)
