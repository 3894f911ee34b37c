"""The group's assignment follows the saved anomaly state (watchdog.daemon.sources.kafka_assignor):
balanced as round robin, each partition to the claimant with the longest history that is not
stale, the same answer whatever the order the leader hears the members in."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.daemon.test_model_state import SeenStage, _keeper, _pipeline, _save
from watchdog.daemon.model_state import MAGIC, Header
from watchdog.daemon.sources import kafka_assignor
from watchdog.daemon.sources.kafka_assignor import (
    Claim,
    StateAssignor,
    decode_claims,
    encode_claims,
    plan,
)

T = "access-logs"


def _sizes(out: dict[str, dict[str, list[int]]]) -> dict[str, int]:
    return {m: len(t.get(T, [])) for m, t in out.items()}


def _owner(out: dict[str, dict[str, list[int]]]) -> dict[int, str]:
    return {p: m for m, t in out.items() for p in t.get(T, [])}


@st.composite
def _groups(draw: st.DrawFn) -> tuple[int, list[str], dict[str, dict[str, dict[int, Claim]]]]:
    n_parts = draw(st.integers(1, 24))
    members = [f"m{i}-{draw(st.uuids()).hex[:6]}" for i in range(draw(st.integers(1, 6)))]
    claims: dict[str, dict[str, dict[int, Claim]]] = {}
    for m in members:
        ps = draw(st.lists(st.integers(0, n_parts + 2), max_size=n_parts, unique=True))
        claims[m] = {T: {p: Claim(draw(st.integers(0, 10_000)), draw(st.integers(0, 20_000)))
                         for p in ps}}
    return n_parts, members, claims


@settings(max_examples=300, deadline=None)
@given(_groups(), st.randoms(use_true_random=False))
def test_every_partition_once_balanced_and_order_free(
        group: tuple[int, list[str], dict[str, dict[str, dict[int, Claim]]]],
        rnd: random.Random) -> None:
    n_parts, members, claims = group
    out = plan({T: range(n_parts)}, {m: [T] for m in members}, claims, max_behind=5_000)
    owner = _owner(out)
    assert sorted(owner) == list(range(n_parts))  # each once (a claim past the end: none)
    assert sum(_sizes(out).values()) == n_parts
    base = n_parts // len(members)
    assert set(_sizes(out).values()) <= {base, base + 1}
    shuffled = members[:]
    rnd.shuffle(shuffled)
    again = plan({T: range(n_parts)}, {m: [T] for m in shuffled},
                 {m: claims[m] for m in shuffled}, max_behind=5_000)
    assert again == out


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 24), st.integers(1, 6), st.randoms(use_true_random=False))
def test_a_balanced_assignment_claimed_back_is_kept_whole(
        n_parts: int, n_members: int, rnd: random.Random) -> None:
    """Every member claims what it held (any balanced split): nothing moves."""
    members = [f"member-{i}" for i in range(n_members)]
    parts = list(range(n_parts))
    rnd.shuffle(parts)
    held = {m: parts[i::n_members] for i, m in enumerate(members)}
    claims = {m: {T: {p: Claim(0, 1000 + p) for p in ps}} for m, ps in held.items()}
    out = plan({T: range(n_parts)}, {m: [T] for m in members}, claims, max_behind=10)
    assert {m: sorted(t.get(T, [])) for m, t in out.items()} == {
        m: sorted(ps) for m, ps in held.items()}


def test_a_restarted_instance_gets_its_partitions_back() -> None:
    """A rolling restart: a left, b took its partitions over from their committed offsets (its
    history of them starts there); a comes back with its saved state, which holds them from
    the start: a gets them back, b keeps its own."""
    claims = {
        "a-2": {T: {0: Claim(0, 5000), 2: Claim(0, 4800)}},  # a's file, saved at shutdown
        "b-1": {T: {1: Claim(0, 7000), 3: Claim(0, 6900),
                    0: Claim(5000, 5400), 2: Claim(4800, 5100)}},  # b, live
    }
    out = plan({T: range(4)}, {"a-2": [T], "b-1": [T]}, claims, max_behind=10_000)
    assert out == {"a-2": {T: [0, 2]}, "b-1": {T: [1, 3]}}


def test_a_state_too_far_behind_loses_to_the_live_owner() -> None:
    """a's state is more than max_behind records behind b's knowledge: its restore would be
    stale, so the partition stays where it is being learnt."""
    claims = {"a": {T: {0: Claim(0, 100)}}, "b": {T: {0: Claim(5000, 9000), 1: Claim(0, 9000)}}}
    out = plan({T: range(2)}, {"a": [T], "b": [T]}, claims, max_behind=1000)
    assert _owner(out) == {0: "b", 1: "a"}  # b keeps 0; balance moves 1 to a
    out = plan({T: range(2)}, {"a": [T], "b": [T]}, claims, max_behind=10_000)
    assert _owner(out) == {0: "a", 1: "b"}


def test_a_new_instance_takes_its_share_from_the_others() -> None:
    """Scale out 2 -> 3: the newcomer claims nothing and gets two of six; each of the others
    keeps two of its three."""
    claims = {"a": {T: {p: Claim(0, 100) for p in (0, 1, 2)}},
              "b": {T: {p: Claim(0, 100) for p in (3, 4, 5)}}}
    out = plan({T: range(6)}, {"a": [T], "b": [T], "c": [T]}, claims, max_behind=1000)
    assert _sizes(out) == {"a": 2, "b": 2, "c": 2}
    assert set(out["a"][T]) < {0, 1, 2}
    assert set(out["b"][T]) < {3, 4, 5}


def test_members_of_another_topic_get_none_of_this_one() -> None:
    out = plan({T: range(3), "other": range(2)}, {"a": [T], "b": ["other"]},
               {"b": {T: {0: Claim(0, 1)}}}, max_behind=10)
    assert out == {"a": {T: [0, 1, 2]}, "b": {"other": [0, 1]}}


def test_user_data_round_trip_and_garbage() -> None:
    claims = {T: {0: Claim(3, 9), 7: Claim(0, 12)}}
    assert decode_claims(encode_claims(claims)) == claims
    for junk in (b"", b"\x00\x01", b"roundrobin", encode_claims({})[:-1]):
        assert decode_claims(junk) == {}


# -- the keeper's claims ------------------------------------------------------------------------
def test_the_keeper_claims_its_saved_state_then_what_it_reads(tmp_path: Path) -> None:
    """Before the first assignment the claims are the saved file's (history from its
    ``since``); after it, the partitions read: restored ones keep the saved history, new ones
    are learnt from their committed offset; the next save carries that history on."""
    stage = SeenStage()
    pipeline = _pipeline(stage)
    k = _keeper(tmp_path, stage, pipeline)
    _save(k, Header(T, "g", 1.0, {0: 40, 2: 30}, since={0: 0, 2: 12}),
          b"HEAD" + msgspec.msgpack.encode([["e1"], 1.0, ["e1"]]))
    k.load()
    assert k.claims() == {0: Claim(0, 40), 2: Claim(12, 30)}
    assert k.on_assigned({0: 50, 1: 70}) == {0: 40}  # 2 went elsewhere; 1 is new here
    assert k.since == {0: 0, 1: 70}
    for p, (committed, start) in {0: (50, 40), 1: (70, 70)}.items():
        pipeline.open_partition(p, committed, start=start, resume=committed)
    assert k.claims() == {0: Claim(0, 40), 1: Claim(70, 70)}


def test_an_old_file_without_history_claims_it_from_the_start(tmp_path: Path) -> None:
    """A file written before ``since`` existed decodes (the field defaults to none)."""
    stage = SeenStage()
    k = _keeper(tmp_path, stage, _pipeline(stage))

    class OldHeader(msgspec.Struct):
        topic: str
        group: str
        written_at: float
        resume: dict[int, int]

    head = msgspec.msgpack.encode(OldHeader(T, "g", 1.0, {3: 9}))
    size = len(head).to_bytes(8, "big")
    k.path.write_bytes(MAGIC + hashlib.sha256(size + head).digest() + size + head + b"HEAD")
    k.load()
    assert k.claims() == {3: Claim(0, 9)}


def test_a_state_of_another_group_claims_nothing(tmp_path: Path) -> None:
    stage = SeenStage()
    k = _keeper(tmp_path, stage, _pipeline(stage))
    _save(k, Header(T, "other", 1.0, {0: 5}), b"HEAD")
    k.load()
    assert k.claims() == {}


def test_a_fault_in_the_assignor_never_keeps_the_group_from_forming(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Claims that raise: none made; a plan that raises: round robin (logged)."""

    def broken() -> dict[str, dict[int, Claim]]:
        raise RuntimeError("a bug")

    a = StateAssignor(broken, max_behind=10)
    meta = a.metadata([T])
    assert meta.user_data == b""
    assert list(meta.subscription) == [T]

    class Cluster:
        def partitions_for_topic(self, topic: str) -> set[int] | None:
            return {0, 1, 2} if topic == T else None

    def no_plan(*_a: object, **_k: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(kafka_assignor, "plan", no_plan)
    members = {"a": meta, "b": meta}
    got = a.assign(Cluster(), members)  # type: ignore[arg-type]
    assert sorted(p for m in got.values() for _t, ps in m.assignment for p in ps) == [0, 1, 2]
