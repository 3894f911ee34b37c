"""Facts about an event that a rule needs before it can fire, as bits.

The engine computes an event's facts once and calls only the rules whose needs are all met
(plain ints, not IntFlag: this runs for every event and enum arithmetic is slow).
"""

from __future__ import annotations

from watchdog.events import AccessEvent
from watchdog.state.subjects import SubjectRegister

NOTHING = 0
PERSONAL = 1  # personal-data access: categories, subject ids or a subject count
DESTINATION = 2  # the event names a destination
COLLECTED_AT = 4  # data.collected_at is given
KNOWN_SUBJECT = 8  # a touched subject id is in the subject register
SOURCE_IP = 16  # source.ip is given
DATASET = 32  # event.dataset is given
RESOURCE = 64  # data.resource is given
# The account's directory record at the event's time (the engine adds these: it looks the
# record up anyway). Most events come from active, known accounts, so the account rules are
# not called at all for them.
UNKNOWN_ACCOUNT = 128  # no directory record in force at the event's time
INACTIVE_ACCOUNT = 256  # a record in force whose status is not ``active``


def facts_of(ev: AccessEvent, register: SubjectRegister) -> int:
    d = ev.data
    facts = 0
    if d.categories or d.subject_ids or d.subject_count:
        facts = PERSONAL
        if d.collected_at:
            facts |= COLLECTED_AT
        if d.subject_ids and register.knows_any(d.subject_ids):
            facts |= KNOWN_SUBJECT
    if d.resource:  # not only for personal data: an anonymised extract may name none
        facts |= RESOURCE
    if ev.destination:
        facts |= DESTINATION
    if ev.source and ev.source.ip:
        facts |= SOURCE_IP
    if ev.event.dataset:
        facts |= DATASET
    return facts
