"""The contract's rules, one module each. What a rule is (its actions, needs, order, what it
supersedes, windows, deadlines) is on its class (:class:`~watchdog.rules.base.RuleBase`); the
start-up code hands :func:`default_rules` to the engine."""

from __future__ import annotations

from watchdog.rules.account_not_revoked import AccountNotRevoked
from watchdog.rules.authority_disclosure import AuthorityDisclosure
from watchdog.rules.base import Finding, Obligation, Rule, RuleBase, Severity
from watchdog.rules.brute_force import BruteForce
from watchdog.rules.bulk_export import BulkExport
from watchdog.rules.category_not_permitted import CategoryNotPermitted
from watchdog.rules.consent_missing import ConsentMissing
from watchdog.rules.cross_border_transfer import CrossBorderTransfer
from watchdog.rules.erasure_overdue import ErasureOverdue
from watchdog.rules.external_email import ExternalEmail
from watchdog.rules.external_media import ExternalMedia
from watchdog.rules.external_network import ExternalNetwork
from watchdog.rules.log_gap import LogGap
from watchdog.rules.marketing_opt_out import MarketingOptOut
from watchdog.rules.minor_data import MinorData
from watchdog.rules.off_hours_access import OffHoursAccess
from watchdog.rules.password_expired import PasswordExpired
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
    # 1.1
    AccountNotRevoked, ErasureOverdue, PasswordExpired, ConsentMissing, AuthorityDisclosure,
)

# views of the classes' metadata, for tests and docs (the engine reads the rules themselves)
SUPERSEDES: dict[str, tuple[str, ...]] = {c.id: c.supersedes for c in RULE_CLASSES
                                          if c.supersedes}
ORDERED: frozenset[str] = frozenset(c.id for c in RULE_CLASSES if c.ordered)

RULE_IDS: tuple[str, ...] = (*(c.id for c in RULE_CLASSES), "anomaly")


def default_rules() -> list[Rule]:
    """Fresh instances of every rule (windowed rules hold state: one set per engine)."""
    return [cls() for cls in RULE_CLASSES]


__all__ = ["ORDERED", "RULE_CLASSES", "RULE_IDS", "SUPERSEDES", "Finding", "Obligation", "Rule",
           "RuleBase", "Severity", "default_rules"]
