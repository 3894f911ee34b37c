"""Load a policy file: schema check, typo check, then compile into :class:`Policy`.

Errors name the file, the path inside it and what is wrong, in one line, because the person
reading them is editing that file. Unknown keys inside the objects the contract defines are
errors with a suggestion: a misspelt ``bulk_export_subjcts`` would otherwise silently fall back
to the default and weaken enforcement.

Every check appends to a list rather than raising, so that ``watchdog check-policy`` can report
all the mistakes of a file at once; :func:`parse_policy` raises the first.
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

from watchdog import schemas
from watchdog.policy.document import DocumentError, parse_document
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


_SCHEMA = schemas.load("policy")
_validate = fastjsonschema.compile(_SCHEMA)
# one validator per top-level key: fastjsonschema stops at the first error, and a file with a
# broken `thresholds` and a broken `roles` should hear about both
_validate_part = {key: fastjsonschema.compile(spec)
                  for key, spec in _SCHEMA["properties"].items()}
# and one per item of the lists and maps of objects (roles, processors, commitments, ...):
# two broken roles are two problems
_validate_item = {key: fastjsonschema.compile(spec.get("items") or spec["additionalProperties"])
                  for key, spec in _SCHEMA["properties"].items()
                  if isinstance(spec.get("items") or spec.get("additionalProperties"), dict)}


def _keys(spec: dict[str, Any]) -> set[str]:
    return set(spec.get("properties", {}))


def _hint(word: str, known: Any) -> str:
    near = difflib.get_close_matches(str(word), sorted(known), n=1)
    return f" (did you mean '{near[0]}'?)" if near else ""


def _check_keys(obj: Any, allowed: set[str], path: str, out: list[str]) -> None:
    if not isinstance(obj, dict):
        return
    for key in obj:
        if key not in allowed:
            out.append(f"{path}{key}: unknown key{_hint(key, allowed)}")


def _items(obj: Any) -> list[tuple[str, Any]]:
    return list(obj.items()) if isinstance(obj, dict) else []


def _typo_check(doc: dict[str, Any], out: list[str]) -> None:
    props = _SCHEMA["properties"]
    categories = set(schemas.load("access-event")["properties"]["data"]["properties"]
                     ["categories"]["items"]["enum"])

    _check_keys(doc, _keys(_SCHEMA) | _EXTRA_TOP, "", out)
    _check_keys(doc.get("thresholds"), _keys(props["thresholds"]), "thresholds.", out)
    _check_keys(doc.get("business_hours"), _keys(props["business_hours"]), "business_hours.",
                out)

    def check_categories(cats: Any, path: str) -> None:
        # a misspelt category grants, approves or retains nothing: say so rather than ignore it
        for cat in cats if isinstance(cats, (list, dict)) else ():
            if isinstance(cat, str) and cat not in categories:
                out.append(f"{path}: unknown category '{cat}'{_hint(cat, categories)}")

    role_keys = _keys(props["roles"]["additionalProperties"])
    for name, role in _items(doc.get("roles")):
        _check_keys(role, role_keys, f"roles.{name}.", out)
        if isinstance(role, dict):
            check_categories(role.get("categories"), f"roles.{name}.categories")
    processors = doc.get("processors")
    for i, proc in enumerate(processors if isinstance(processors, list) else ()):
        _check_keys(proc, _keys(props["processors"]["items"]), f"processors[{i}].", out)
        if isinstance(proc, dict):
            check_categories(proc.get("categories"), f"processors[{i}].categories")
    check_categories(doc.get("retention_days"), "retention_days")
    check_categories(doc.get("category_purposes"), "category_purposes")
    severities = doc.get("severities") or {}
    if not isinstance(severities, dict):
        out.append("severities must be a mapping of rule id to severity")
        severities = {}
    for rule, sev in severities.items():
        if sev not in SEVERITIES:
            out.append(f"severities.{rule}: '{sev}' is not one of {', '.join(SEVERITIES)}")
    for key, value in _items(doc.get("thresholds")):
        # no count, window or period is negative (check-policy also flags the zeros that
        # switch a rule off or make it fire on everything)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            out.append(f"thresholds.{key}: {value} must not be negative")


def _minutes(hhmm: str) -> int | None:
    """Minutes after midnight, or None when ``hhmm`` is not a time of day."""
    h, _, m = hhmm.partition(":")
    if not (h.isdigit() and m.isdigit()) or int(m) > 59:
        return None
    if int(h) > 24 or (int(h) == 24 and int(m) != 0):
        return None
    return int(h) * 60 + int(m)


def _check_rule_name(rule: Any, where: str, out: list[str]) -> None:
    if isinstance(rule, str) and rule not in CONTRACT_RULE_IDS:
        out.append(f"{where}: unknown rule '{rule}'{_hint(rule, CONTRACT_RULE_IDS)}")


def _check_promises(doc: dict[str, Any], out: list[str]) -> None:
    """Contract 1.1's rules about commitments and exceptions, before the schema: the schema
    says the same with ``not`` clauses whose messages name no key."""
    if "clauses" in doc and "commitments" in doc:
        out.append("clauses, commitments: a policy has either 'clauses' (version 1) or "
                   "'commitments' (1.1), not both")
    props = _SCHEMA["properties"]
    seen: dict[str, int] = {}
    commitments = doc.get("commitments")
    for i, com in enumerate(commitments if isinstance(commitments, list) else ()):
        if not isinstance(com, dict):
            continue
        _check_keys(com, _keys(props["commitments"]["items"]), f"commitments[{i}].", out)
        cid = com.get("id")
        if isinstance(cid, str):
            if cid in seen:
                out.append(f"commitments[{i}].id: '{cid}' is already the id of "
                           f"commitments[{seen[cid]}]")
            seen.setdefault(cid, i)
        rules = com.get("rules")
        for j, rule in enumerate(rules if isinstance(rules, list) else ()):
            _check_rule_name(rule, f"commitments[{i}].rules[{j}]", out)
    exceptions = doc.get("exceptions")
    for i, exc in enumerate(exceptions if isinstance(exceptions, list) else ()):
        if not isinstance(exc, dict):
            continue
        _check_keys(exc, _keys(props["exceptions"]["items"]), f"exceptions[{i}].", out)
        rule = exc.get("rule")
        if rule in NEVER_EXCUSED:
            out.append(f"exceptions[{i}].rule: '{rule}' cannot be excused "
                       "(a leaver's access never is)")
        _check_rule_name(rule, f"exceptions[{i}].rule", out)


def _schema_message(msg: str, part: str | None) -> str:
    """fastjsonschema says ``data.x.y must ...``; name the key instead of ``data``."""
    if part is not None:
        msg = part + msg[4:] if msg.startswith("data") else msg
    else:
        msg = msg[5:] if msg.startswith("data.") else msg.replace("data", "the policy", 1)
    if msg.endswith("must be string") and ("business_hours" in msg or "until" in msg):
        msg += ' (quote times: "08:00", "2026-12-31T00:00:00Z")'
    return msg


def _schema_error(validate: Any, value: Any, path: str) -> str | None:
    try:
        validate(value)
    except fastjsonschema.JsonSchemaValueException as err:
        return _schema_message(err.message, path)
    return None


def _check_schema(doc: dict[str, Any], out: list[str]) -> None:
    """Schema errors: the first of the whole document, then the first of each broken key, or
    of each broken item when the key is a list or map of objects."""
    try:
        _validate(doc)
    except fastjsonschema.JsonSchemaValueException as err:
        out.append(_schema_message(err.message, None))
        for key, part in _validate_part.items():
            if key not in doc or (whole := _schema_error(part, doc[key], key)) is None:
                continue
            value, item = doc[key], _validate_item.get(key)
            items = (enumerate(value) if isinstance(value, list) else
                     value.items() if isinstance(value, dict) else ())
            found = [msg for name, v in items if item is not None and (msg := _schema_error(
                item, v, f"{key}[{name}]" if isinstance(value, list) else f"{key}.{name}"))]
            out.extend(found or [whole])


def _instant(value: str) -> float:
    """Epoch seconds of an RFC 3339 time that :func:`_check_values` accepted."""
    return datetime.fromisoformat(value).timestamp()


def _check_values(doc: dict[str, Any], out: list[str]) -> None:
    """What the schema cannot say: networks, time zones, times of day, instants."""
    networks = doc.get("internal_networks")
    for i, cidr in enumerate(networks if isinstance(networks, list) else ()):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except (ValueError, TypeError):
            out.append(f"internal_networks[{i}]: '{cidr}' is not a CIDR block")
    bh = doc.get("business_hours")
    if isinstance(bh, dict):
        tz_name = bh.get("timezone", "UTC")
        try:
            ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
            # "America" is a directory (OSError)
            out.append(f"business_hours.timezone: unknown time zone '{tz_name}'")
        for key in ("start", "end"):
            hhmm = bh.get(key)
            if isinstance(hhmm, str) and _minutes(hhmm) is None:
                out.append(f"business_hours.{key}: '{hhmm}' is not a time of day")
    exceptions = doc.get("exceptions")
    for i, exc in enumerate(exceptions if isinstance(exceptions, list) else ()):
        until = exc.get("until") if isinstance(exc, dict) else None
        if isinstance(until, str):
            try:
                t = datetime.fromisoformat(until)
            except ValueError:
                out.append(f"exceptions[{i}].until: '{until}' is not an RFC 3339 time")
                continue
            if t.tzinfo is None:
                out.append(f"exceptions[{i}].until: '{until}' has no UTC offset")


def policy_problems(doc: Any) -> list[str]:
    """Every reason ``doc`` (a parsed policy document) cannot be used, each ``path: what``,
    in the order a reader fixes them; empty when it compiles. Fills schema defaults in."""
    if not isinstance(doc, dict):
        return [f"the policy must be a mapping, got {type(doc).__name__}"]
    out: list[str] = []
    _check_promises(doc, out)
    _check_schema(doc, out)
    _typo_check(doc, out)
    _check_values(doc, out)
    return list(dict.fromkeys(out))  # one report per mistake


def _exceptions(doc: dict[str, Any]) -> tuple[PolicyException, ...]:
    return tuple(
        PolicyException(rule=e["rule"], until=_instant(e["until"]),
                        reason=e["reason"], user_id=e.get("user_id"),
                        resource=e.get("resource"),
                        destination_domain=(e["destination_domain"].lower().rstrip(".")
                                            if e.get("destination_domain") else None))
        for e in doc.get("exceptions") or ()
    )


def parse_policy(doc: Any, source: str = "<policy>") -> Policy:
    """Validate a policy document (already parsed) and compile it; raises the first problem."""
    problems = policy_problems(doc)
    if problems:
        raise PolicyError(f"{source}: {problems[0]}")
    return compile_policy(doc, source)


def compile_policy(doc: dict[str, Any], source: str) -> Policy:
    """Compile a document that :func:`policy_problems` found nothing wrong with."""
    networks = [ipaddress.ip_network(cidr, strict=False)
                for cidr in doc.get("internal_networks", [])]
    hours = None
    if bh := doc.get("business_hours"):
        hours = BusinessHours(
            timezone=ZoneInfo(bh.get("timezone", "UTC")),
            start_minute=_minutes(bh.get("start", "00:00")) or 0,
            end_minute=_minutes(bh.get("end", "24:00")) or 0,
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
        exceptions=_exceptions(doc),
        consent_purposes=frozenset(doc.get("consent_purposes", ())),
        consent_opt_in=bool(doc.get("consent_opt_in", False)),
        category_purposes={c: frozenset(ps)
                           for c, ps in (doc.get("category_purposes") or {}).items()},
        allow_anonymized_provision=bool(doc.get("allow_anonymized_provision", False)),
        source=source,
        raw=doc,
    )


def read_policy_file(path: str | Path | None) -> tuple[str, Any, list[str]]:
    """``(source, document, problems of the text itself)`` (duplicate keys); raises
    :class:`PolicyError` when the file cannot be read or parsed at all. ``None``: the embedded
    default policy."""
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
        doc, problems = parse_document(text, as_json=source.endswith(".json"))
    except DocumentError as err:
        raise PolicyError(f"{source}: {err}") from None
    return source, doc, problems


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a YAML or JSON policy file; ``None`` loads the embedded default policy."""
    source, doc, problems = read_policy_file(path)
    if problems:  # a duplicate key: which of the two values was meant is anyone's guess
        raise PolicyError(f"{source}: {problems[0]}")
    return parse_policy(doc, source)
