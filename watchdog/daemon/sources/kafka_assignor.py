"""Partitions go back to the instance whose saved state has learnt them (the anomaly model's).

Partitions of ``access-logs`` are keyed by account, so an anomaly instance holds whole accounts
and its saved state (:mod:`watchdog.daemon.model_state`) is worth something only where those
partitions are read again. aiokafka's default assignor (round robin over member ids, which are
new at every start) gives no such promise: a rolling restart of three instances hands almost
every partition to an instance that has not learnt it, and the model starts afresh there.

This is Kafka's own extension point for that (an assignor with user data in its subscription,
as Kafka Streams makes tasks follow their local state): each member says which partitions its
state holds, from which offset (``since``: how much history) up to which (``upto``); the
group's leader gives each partition to the claimant with the longest history among those whose
state is not far behind the most recent claim (``max_behind`` records: a state that far back
would be stale at the restore), and then balances: every member gets the same number of
partitions, give or take one, as with round robin. Claims beyond a member's share, and
partitions nobody claims, go to the members with room, a claimant first.

The group uses it only when every member offers it (each also offers ``roundrobin``): during
an upgrade, or beside another client, the group falls back to round robin. A member's user
data that cannot be read counts as no claim. :func:`plan` is pure; :class:`StateAssignor` is
the adapter aiokafka calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import msgspec
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

log = logging.getLogger(__name__)

NAME = "watchdog-state"
VERSION = 0


@dataclass(frozen=True, slots=True)
class Claim:
    """A member's state holds a partition's events from offset ``since`` up to ``upto``."""

    since: int
    upto: int


class _UserData(msgspec.Struct):
    v: int
    claims: dict[str, dict[int, tuple[int, int]]]  # topic -> partition -> (since, upto)


def encode_claims(claims: Mapping[str, Mapping[int, Claim]]) -> bytes:
    return msgspec.msgpack.encode(_UserData(1, {
        t: {p: (c.since, c.upto) for p, c in cs.items()} for t, cs in claims.items()}))


def decode_claims(data: bytes) -> dict[str, dict[int, Claim]]:
    """A member's claims; none if its user data is not ours or cannot be read."""
    try:
        doc = msgspec.msgpack.decode(data, type=_UserData)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return {}
    if doc.v != 1:
        return {}
    return {t: {p: Claim(*c) for p, c in cs.items()} for t, cs in doc.claims.items()}


def _preferred(claims: dict[str, Claim], max_behind: int) -> list[str]:
    """The claimants of one partition, best first: those not ``max_behind`` records behind the
    most recent claim, by longest history (then most recent, then member id)."""
    latest = max(c.upto for c in claims.values())
    fresh = [m for m, c in claims.items() if latest - c.upto <= max_behind]
    return sorted(fresh, key=lambda m: (claims[m].since, -claims[m].upto, m))


def plan(partitions: Mapping[str, Iterable[int]], members: Mapping[str, Iterable[str]],
         claims: Mapping[str, Mapping[str, Mapping[int, Claim]]], *,
         max_behind: int) -> dict[str, dict[str, list[int]]]:
    """Member id -> topic -> partitions. ``partitions``: each topic's partitions; ``members``:
    each member's subscribed topics; ``claims``: member -> topic -> partition -> claim."""
    out: dict[str, dict[str, list[int]]] = {m: {} for m in members}
    for topic in sorted(partitions):
        subs = sorted(m for m, topics in members.items() if topic in set(topics))
        if not subs:
            continue
        known = set(partitions[topic])
        parts = sorted(known)
        by_part: dict[int, dict[str, Claim]] = {}
        for m in subs:
            for p, c in claims.get(m, {}).get(topic, {}).items():
                if p in known:  # (a partition of a topic since recreated smaller: none)
                    by_part.setdefault(p, {})[m] = c
        ranked = {p: _preferred(cs, max_behind) for p, cs in by_part.items()}
        # shares as round robin's: len(parts) // n each, one more for the first n_big; the
        # members that want most (first choices) get the larger shares
        n = len(subs)
        base, n_big = divmod(len(parts), n)
        wants = {m: sum(1 for r in ranked.values() if r and r[0] == m) for m in subs}
        order = sorted(subs, key=lambda m: (-wants[m], m))
        room = {m: base + (1 if i < n_big else 0) for i, m in enumerate(order)}
        got: dict[str, list[int]] = {m: [] for m in subs}
        left: list[int] = []
        for p in parts:  # first choices, within each member's share
            r = ranked.get(p)
            if r and room[r[0]] > 0:
                got[r[0]].append(p)
                room[r[0]] -= 1
            else:
                left.append(p)
        for p in left:  # then another claimant with room, else the member with most room
            for m in ranked.get(p, ()):
                if room[m] > 0:
                    break
            else:
                m = max(order, key=lambda x: room[x])
            got[m].append(p)
            room[m] -= 1
        for m, ps in got.items():
            if ps:
                out[m][topic] = sorted(ps)
    return out


class StateAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """The adapter aiokafka calls (an instance: its claims are this instance's). ``claims()``
    is read at every join: topic -> partition -> claim."""

    name = NAME
    version = VERSION

    def __init__(self, claims: Callable[[], Mapping[str, Mapping[int, Claim]]], *,
                 max_behind: int) -> None:
        self.claims = claims
        self.max_behind = max_behind

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        try:
            data = encode_claims(self.claims())
        except Exception:  # a bug here must not keep this instance out of the group
            log.exception("watchdog-state assignor: claims not computed; none made")
            data = b""
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), data)

    def assign(self, cluster: ClusterMetadata,
               members: Mapping[str, ConsumerProtocolMemberMetadata],
               ) -> dict[str, ConsumerProtocolMemberAssignment]:
        topics = {t for meta in members.values() for t in meta.subscription}
        partitions = {t: ps for t in topics
                      if (ps := cluster.partitions_for_topic(t)) is not None}
        try:
            got = plan(partitions, {m: meta.subscription for m, meta in members.items()},
                       {m: decode_claims(meta.user_data) for m, meta in members.items()},
                       max_behind=self.max_behind)
        except Exception:  # a bug here must not leave the group without an assignment
            log.exception("watchdog-state assignor failed; round robin instead")
            fallback: dict[str, ConsumerProtocolMemberAssignment] = (
                RoundRobinPartitionAssignor.assign(cluster, members))
            return fallback
        return {m: ConsumerProtocolMemberAssignment(self.version, sorted(got[m].items()), b"")
                for m in members}

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        pass  # the claims are read from the source and the keeper at every join
