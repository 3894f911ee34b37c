"""A small world in which every contract rule fires at least once (shared by engine tests)."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from tests.builders import BASE, at, default_directory, directory, event, login, subject
from watchdog.events import AccessEvent

# raw subject ids that must never appear in an alert
SECRET_SUBJECTS = [f"SUBJ-{i:04d}-raw" for i in range(6)]
S_ERASED, S_OPTOUT, S_MINOR, S_PLAIN, S_A, S_B = SECRET_SUBJECTS

DIRECTORY = [*default_directory(),
             directory("x-left", effective=BASE - timedelta(days=90)),
             directory("x-left", "departed", effective=BASE - timedelta(days=1), roles=[])]

SUBJECTS = [subject(S_ERASED, "erasure_requested", BASE - timedelta(days=2)),
            subject(S_OPTOUT, "marketing_opt_out", BASE - timedelta(days=2)),
            subject(S_MINOR, "minor", BASE - timedelta(days=2))]


@cache
def _events() -> tuple[AccessEvent, ...]:
    return tuple(_build())


def events() -> list[AccessEvent]:
    """One or more violations of every rule, in event-time order (the same ids every call)."""
    return list(_events())


def _build() -> list[AccessEvent]:
    evs = [
        login(user="x-left", when=at(minutes=1), ip="203.0.113.7"),                 # revoked
        event(user="ghost", when=at(minutes=2), subject_ids=[S_PLAIN]),             # unknown
        event(action="export", when=at(minutes=3),                                  # bulk
              subject_ids=[S_A, S_B], subject_count=800),
        event(action="copy", when=at(minutes=4), dest={"kind": "external_media"},
              subject_ids=[S_PLAIN, S_A]),
        event(action="email", when=at(minutes=5),
              dest={"kind": "email", "domain": "gmail.com"}),
        event(user="e2", action="transfer", purpose="billing", when=at(minutes=6),
              categories=["payment"], subject_ids=[S_A, S_B],
              dest={"kind": "third_party", "organization": "ShadyData"}),
        event(action="transfer", when=at(minutes=7),
              dest={"kind": "third_party", "organization": "CheapHost", "country": "US"}),
        event(purpose=None, when=at(minutes=8)),                                    # purpose
        event(categories=["payment"], when=at(minutes=9)),                          # category
        event(subject_ids=[S_ERASED, S_PLAIN], when=at(minutes=10)),                # restricted
        event(user="m1", purpose="marketing", categories=["preferences"],
              subject_ids=[S_OPTOUT, S_MINOR, S_PLAIN], when=at(minutes=11)),       # opt-out, minor
        event(user="m1", purpose="analytics", categories=["behavior"], anonymized=True,
              resource="dwh.events_anon", subject_ids=None, subject_count=5000,
              when=at(minutes=12)),
        event(user="m1", purpose="analytics", categories=["behavior"],
              resource="dwh.customers", subject_ids=[S_A], when=at(minutes=13)),     # reident
        event(categories=["purchase"], collected_at=BASE - timedelta(days=3000),
              when=at(minutes=14)),                                                 # retention
        event(when="2026-11-21T03:00:00+09:00"),                                    # off hours
        event(ip="198.51.100.9", when=at(minutes=15)),                              # network
        event(dataset="hr.audit", sequence=1, when=at(minutes=16)),
        event(dataset="hr.audit", sequence=5, when=at(minutes=17)),                 # log_gap
    ]
    evs += [login(user="e1", outcome="failure", when=at(minutes=20, seconds=i))     # brute force
            for i in range(10)]
    return sorted(evs, key=lambda e: e.timestamp)
