"""The rule ids of the contract (version 1.1): what a policy's commitments, exceptions and
``clauses`` may name. Data, not an import of ``watchdog.rules``: the policy is validated
before any rule exists, and the ids are part of the contract, not of the implementation."""

from __future__ import annotations

CONTRACT_RULE_IDS: tuple[str, ...] = (
    "revoked_account", "unknown_account", "bulk_export", "external_media", "external_email",
    "unapproved_third_party", "cross_border_transfer", "purpose_violation",
    "category_not_permitted", "subject_restricted", "marketing_opt_out", "minor_data",
    "reidentification", "retention_expired", "off_hours_access", "external_network",
    "brute_force", "log_gap", "anomaly",
    # 1.1
    "account_not_revoked", "erasure_overdue", "password_expired", "consent_missing",
    "authority_disclosure",
)

# A leaver's access is never excused (contract 1.1): no exception may name these.
NEVER_EXCUSED: frozenset[str] = frozenset({"revoked_account", "account_not_revoked"})
