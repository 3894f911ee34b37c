"""The simulated organisation's privacy policy as the contract's policy document."""

from __future__ import annotations

from typing import Any

from watchdog.simulate import catalog as C


def build_policy() -> dict[str, Any]:
    roles: dict[str, Any] = {}
    for name, spec in C.ROLES.items():
        role: dict[str, Any] = {"categories": list(spec.categories),
                                "purposes": list(spec.purposes)}
        if spec.after_hours:
            role["after_hours"] = True
        if spec.bulk_export:
            role["bulk_export"] = True
        roles[name] = role
    processors = []
    for p in C.PROCESSORS:
        proc: dict[str, Any] = {"name": p.name, "domains": [p.domain],
                                "purposes": list(p.purposes), "categories": list(p.categories),
                                "country": p.country}
        if p.safeguards:
            proc["safeguards"] = p.safeguards
        processors.append(proc)
    # One commitment per clause text of the synthetic policy, naming the rules it enforces;
    # the rules in C.RULES_OFF are named by none, so they raise nothing (contract 1.1).
    commitments: dict[str, dict[str, Any]] = {}
    for rule in C.RULES_ON:
        section, _, quote = C.CLAUSES[rule].partition(": ")
        key = C.CLAUSES[rule]
        if key not in commitments:
            num = section.split("§")[1].split()[0]
            commitments[key] = {"id": f"HK-{num}-{len(commitments) + 1:02d}", "clause": section,
                                **({"quote": quote} if quote else {}), "rules": []}
        commitments[key]["rules"].append(rule)
    return {
        "organization": C.ORGANIZATION,
        "commitments": list(commitments.values()),
        "internal_domains": list(C.INTERNAL_DOMAINS),
        "internal_networks": list(C.INTERNAL_NETWORKS),
        "business_hours": {"timezone": C.POLICY_TZ, "start": C.BUSINESS_START,
                           "end": C.BUSINESS_END, "weekdays": list(C.BUSINESS_WEEKDAYS)},
        "roles": roles,
        "processors": processors,
        "adequate_countries": list(C.ADEQUATE_COUNTRIES),
        "retention_days": dict(C.RETENTION_DAYS),
        "minor_allowed_purposes": list(C.MINOR_ALLOWED_PURPOSES),
        "thresholds": dict(C.THRESHOLDS),
        "consent_purposes": list(C.CONSENT_PURPOSES),
    }


POLICY_HEADER = (
    "# Policy of the simulated organisation written by `watchdog simulate`.\n"
    "# source_silence_minutes: every dataset carries steady batch-job traffic (gaps of at\n"
    "# most 4 minutes), so only the injected log_gap scenarios stay silent for longer.\n"
)
