"""The contract's rules, one module each, and the tables the engine interprets."""

from __future__ import annotations

from watchdog.rules.base import Finding, Rule, Severity
from watchdog.rules.brute_force import BruteForce
from watchdog.rules.bulk_export import BulkExport
from watchdog.rules.category_not_permitted import CategoryNotPermitted
from watchdog.rules.cross_border_transfer import CrossBorderTransfer
from watchdog.rules.external_email import ExternalEmail
from watchdog.rules.external_media import ExternalMedia
from watchdog.rules.external_network import ExternalNetwork
from watchdog.rules.log_gap import LogGap
from watchdog.rules.marketing_opt_out import MarketingOptOut
from watchdog.rules.minor_data import MinorData
from watchdog.rules.off_hours_access import OffHoursAccess
from watchdog.rules.purpose_violation import PurposeViolation
from watchdog.rules.reidentification import Reidentification
from watchdog.rules.retention_expired import RetentionExpired
from watchdog.rules.revoked_account import RevokedAccount, UnknownAccount
from watchdog.rules.subject_restricted import SubjectRestricted
from watchdog.rules.unapproved_third_party import UnapprovedThirdParty

RULE_CLASSES: tuple[type[Rule], ...] = (
    RevokedAccount, UnknownAccount, BulkExport, ExternalMedia, ExternalEmail,
    UnapprovedThirdParty, CrossBorderTransfer, PurposeViolation, CategoryNotPermitted,
    SubjectRestricted, MarketingOptOut, MinorData, Reidentification, RetentionExpired,
    OffHoursAccess, ExternalNetwork, BruteForce, LogGap,
)

# An account that should not act at all gets one alert saying so, not also the alerts that
# judge its (meaningless) roles on the same event.
_ROLE_BASED = ("category_not_permitted", "purpose_violation", "off_hours_access")
SUPERSEDES: dict[str, tuple[str, ...]] = {
    "revoked_account": _ROLE_BASED,
    "unknown_account": _ROLE_BASED,
}

# Rules whose verdict depends on other events (windows, sequences, silences): they must see
# events in event-time order, so they run as the reorder buffer releases them. Every other
# rule judges an event alone (with the directory and register at its time), so the daemon may
# run it as soon as the event arrives instead of after the allowed lateness.
ORDERED: frozenset[str] = frozenset({"bulk_export", "brute_force", "reidentification",
                                     "log_gap"})

RULE_IDS: tuple[str, ...] = (*(c.id for c in RULE_CLASSES), "anomaly")


def default_rules() -> list[Rule]:
    """Fresh instances of every rule (windowed rules hold state: one set per engine)."""
    return [cls() for cls in RULE_CLASSES]


__all__ = ["ORDERED", "RULE_CLASSES", "RULE_IDS", "SUPERSEDES", "Finding", "Rule", "Severity",
           "default_rules"]
