"""The compiled policy: sets and lookups the rules consult on every event.

Built once from the validated document (see ``loader``); everything a rule asks per event is a
set membership or a small cached computation.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from watchdog.events import Destination

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_UNCACHED = object()  # not in a lookup cache (None is a cached answer)


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    categories: frozenset[str] = frozenset()
    purposes: frozenset[str] = frozenset()
    after_hours: bool = False
    bulk_export: bool = False


@dataclass(frozen=True, slots=True)
class Grants:
    """What a combination of roles allows, precomputed once per distinct combination."""

    roles: tuple[Role, ...]
    categories: frozenset[str]
    purposes: frozenset[str]  # every purpose of any role
    by_category: dict[str, frozenset[str]]  # category -> purposes allowed for it
    after_hours: bool
    bulk_export: bool
    # purpose -> categories allowed for it (the inverse of by_category): one subset test
    # answers the common question "is every touched category allowed for this purpose?"
    by_purpose: dict[str, frozenset[str]]

    @classmethod
    def of(cls, roles: tuple[Role, ...]) -> Grants:
        by_category: dict[str, frozenset[str]] = {}
        for r in roles:
            for c in r.categories:
                by_category[c] = by_category.get(c, frozenset()) | r.purposes
        purposes = frozenset().union(*(r.purposes for r in roles))
        by_purpose = {p: frozenset(c for c, ps in by_category.items() if p in ps)
                      for p in purposes}
        return cls(roles, frozenset(by_category), purposes, by_category,
                   any(r.after_hours for r in roles), any(r.bulk_export for r in roles),
                   by_purpose)

    @property
    def names(self) -> str:
        return ", ".join(r.name for r in self.roles) or "no role"


@dataclass(frozen=True, slots=True)
class Processor:
    name: str
    domains: tuple[str, ...] = ()
    purposes: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    country: str | None = None
    safeguards: str | None = None

    def matches(self, dest: Destination) -> bool:
        """By organisation name (case-insensitive) or by domain (exact or a subdomain)."""
        org = dest.organization
        if org and org.casefold() == self.name.casefold():
            return True
        return bool(dest.domain) and domain_in(str(dest.domain), self.domains)

    def approved_for(self, purpose: str | None, categories: tuple[str, ...]) -> bool:
        return purpose in self.purposes and self.categories.issuperset(categories)


@dataclass(frozen=True, slots=True)
class Thresholds:
    bulk_export_subjects: int = 500
    bulk_export_subjects_per_hour: int = 2000
    restriction_grace_hours: float = 0.0
    reidentification_window_minutes: int = 60
    failed_logins: int = 10
    source_silence_minutes: int = 30
    # 1.1: obligations with a deadline; exact durations (N x 60 s, N x 86,400 s)
    revocation_minutes: float = 60
    erasure_days: float = 30
    password_max_age_days: float = 90


@dataclass(frozen=True, slots=True)
class Commitment:
    """One promise of the policy text (1.1) and the rules that enforce it."""

    id: str
    clause: str
    rules: tuple[str, ...]
    quote: str | None = None

    @property
    def citation(self) -> str:
        """What an alert's ``clauses`` lists: ``clause: quote``, or the clause alone."""
        return f"{self.clause}: {self.quote}" if self.quote else self.clause


@dataclass(frozen=True, slots=True)
class PolicyException:
    """Alerts of ``rule`` matching every given matcher are not raised before ``until`` (1.1)."""

    rule: str
    until: float  # event time, epoch seconds, exclusive
    reason: str
    user_id: str | None = None
    resource: str | None = None
    destination_domain: str | None = None


@dataclass(frozen=True, slots=True)
class BusinessHours:
    timezone: ZoneInfo
    start_minute: int  # minutes after local midnight, inclusive
    end_minute: int  # exclusive
    weekdays: frozenset[int]  # ISO, 1 = Monday
    # minute since the epoch -> inside? Events mostly share recent minutes and zoneinfo is
    # slow-ish; a per-instance dict avoids hashing this object on every lookup.
    _cache: dict[int, bool] = field(default_factory=dict, compare=False, repr=False)

    def contains(self, t: float) -> bool:
        minute = int(t // 60)
        inside = self._cache.get(minute)
        if inside is None:
            if len(self._cache) >= 1 << 16:
                self._cache.clear()
            local = datetime.fromtimestamp(minute * 60, self.timezone)
            m = local.hour * 60 + local.minute
            inside = (local.isoweekday() in self.weekdays
                      and self.start_minute <= m < self.end_minute)
            self._cache[minute] = inside
        return inside


def domain_in(domain: str, domains: tuple[str, ...]) -> bool:
    """Exact match or a subdomain of one of ``domains`` (case-insensitive)."""
    d = domain.lower().rstrip(".")
    return any(d == x or d.endswith("." + x) for x in domains)


@dataclass(frozen=True, slots=True)
class Policy:
    organization: str
    roles: dict[str, Role]
    clauses: dict[str, str] = field(default_factory=dict)
    internal_domains: tuple[str, ...] = ()
    internal_networks: tuple[Network, ...] = ()
    business_hours: BusinessHours | None = None
    processors: tuple[Processor, ...] = ()
    adequate_countries: frozenset[str] = frozenset()
    retention_days: dict[str, int] = field(default_factory=dict)
    minor_allowed_purposes: frozenset[str] = frozenset()
    thresholds: Thresholds = Thresholds()
    severities: dict[str, str] = field(default_factory=dict)
    # 1.1 -----------------------------------------------------------------------------
    commitments: tuple[Commitment, ...] = ()
    exceptions: tuple[PolicyException, ...] = ()
    consent_purposes: frozenset[str] = frozenset()
    consent_opt_in: bool = False
    category_purposes: dict[str, frozenset[str]] = field(default_factory=dict)
    allow_anonymized_provision: bool = False
    source: str = "<policy>"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _grants: dict[tuple[str, ...], Grants] = field(
        default_factory=dict, compare=False, repr=False)
    _ip_cache: dict[str, bool | None] = field(default_factory=dict, compare=False, repr=False)
    # (organization, domain) of a destination -> the processor entries matching it, in order;
    # domain -> internal? Destinations repeat and matching means string folding per entry.
    # Not init fields: a dataclasses.replace() copy (other processors) starts empty.
    _matching: dict[tuple[object, object], tuple[Processor, ...]] = field(
        default_factory=dict, init=False, compare=False, repr=False)
    _domain_cache: dict[str, bool] = field(
        default_factory=dict, init=False, compare=False, repr=False)

    def runs(self, rule_id: str) -> bool:
        """Does the policy turn ``rule_id`` on? With commitments (1.1), exactly the rules they
        name run; without, every rule runs (version 1)."""
        return not self.commitments or any(rule_id in c.rules for c in self.commitments)

    def enabled_rules(self, known: tuple[str, ...]) -> tuple[str, ...]:
        """The rules among ``known`` that this policy runs, in ``known``'s order."""
        return tuple(r for r in known if self.runs(r))

    def clauses_for(self, rule_id: str) -> tuple[str, ...]:
        """An alert's ``clauses``: every commitment naming the rule, in the policy's order
        (``clause: quote``); a version 1 policy's single ``clauses`` entry."""
        if self.commitments:
            return tuple(c.citation for c in self.commitments if rule_id in c.rules)
        cited = self.clauses.get(rule_id)
        return (cited,) if cited else ()

    def roles_of(self, names: tuple[str, ...]) -> tuple[Role, ...]:
        """The policy roles among ``names``; unknown role names grant nothing."""
        return self.grants(names).roles

    def grants(self, names: tuple[str, ...]) -> Grants:
        """What the roles ``names`` allow together (cached: accounts share few combinations)."""
        g = self._grants.get(names)
        if g is None:
            if len(self._grants) >= 4096:  # events may claim arbitrary role lists: stay bounded
                self._grants.clear()
            g = Grants.of(tuple(r for n in names if (r := self.roles.get(n)) is not None))
            self._grants[names] = g
        return g

    def processor_for(self, dest: Destination) -> Processor | None:
        matching = self.processors_for(dest)
        return matching[0] if matching else None

    def processors_for(self, dest: Destination) -> tuple[Processor, ...]:
        """Every entry matching ``dest``: a processor may be listed once per purpose."""
        key = (dest.organization, dest.domain)  # all that Processor.matches looks at
        matching = self._matching.get(key)
        if matching is None:
            if len(self._matching) >= 4096:  # destinations come from events: stay bounded
                self._matching.clear()
            matching = tuple(p for p in self.processors if p.matches(dest))
            self._matching[key] = matching
        return matching

    def approves(self, dest: Destination, purpose: str | None,
                 categories: tuple[str, ...]) -> bool:
        """Some processor entry matching ``dest`` is approved for ``purpose`` and ``categories``."""
        return any(p.approved_for(purpose, categories) for p in self.processors_for(dest))

    def is_internal_ip(self, ip: str) -> bool | None:
        """True/False, or None when ``ip`` is not an address (nothing to judge)."""
        cache = self._ip_cache
        inside = cache.get(ip, _UNCACHED)  # one lookup: most addresses are seen before
        if inside is not _UNCACHED:
            return inside  # type: ignore[return-value]
        if len(cache) >= 1 << 16:
            cache.clear()
        inside = cache[ip] = _ip_internal(self.internal_networks, ip)
        return inside

    def is_internal_domain(self, domain: str) -> bool:
        cache = self._domain_cache
        inside = cache.get(domain)
        if inside is None:
            if len(cache) >= 1 << 16:
                cache.clear()
            inside = cache[domain] = domain_in(domain, self.internal_domains)
        return inside


def _ip_internal(networks: tuple[Network, ...], ip: str) -> bool | None:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return any(addr in n for n in networks)
