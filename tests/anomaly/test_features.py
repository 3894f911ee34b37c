"""Sliding-window features on event time: values, expiry, novelty, memory, eviction."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from tests.anomaly.conftest import T0, baseline, decode, event, make_engine
from watchdog.anomaly.batch import FeatureBatch, model_inputs
from watchdog.anomaly.featurizer import SEGMENT, Featurizer
from watchdog.anomaly.layout import ROW_BYTES
from watchdog.anomaly.vocabulary import BUCKET, FEATURE_NAMES, WINDOW_FEATURES

USB = {"kind": "external_media"}
MAIL_OUT = {"kind": "email", "domain": "gmail.example"}
MAIL_IN = {"kind": "email", "domain": "example.co.jp"}


def run(docs: list[dict], fz: Featurizer | None = None) -> tuple[Featurizer, list[FeatureBatch]]:
    """Feed ``docs`` (in time order); returns the featurizer and every committed bucket's
    batch (the featurizer commits an hour at a time)."""
    fz = fz or Featurizer(make_engine().policy, lambda _u, _t: "customer support",
                          warmup=0.0)
    out: list[FeatureBatch] = []
    for doc in docs:
        ev = decode(doc)
        b = fz.observe(ev, ev.timestamp.timestamp())
        if b is not None:
            out.extend(b.by_bucket())
    b = fz.flush()
    if b is not None:
        out.extend(b.by_bucket())
    return fz, out


def last_values(batches: list[FeatureBatch], uid: str) -> dict[str, float]:
    for b in reversed(batches):
        if uid in b.users:
            return b.values(b.index(uid))
    raise AssertionError(f"{uid} never committed")


def test_every_window_feature_and_its_relative_views() -> None:
    assert len(WINDOW_FEATURES) == 47
    assert WINDOW_FEATURES[-2:] == ("events_20m", "exports_20m")
    for base in ("events", "subjects", "resources", "records", "bytes", "exports", "external",
                 "offhours_share", "failed_logins", "new_resources", "new_categories",
                 "categories", "sources", "new_sources", "rare_categories"):
        assert f"{base}_1h" in WINDOW_FEATURES
        assert f"{base}_24h" in WINDOW_FEATURES
        assert f"{base}_7d" in WINDOW_FEATURES
    # the model's inputs are relative views of window features, named after them
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 19
    for name in FEATURE_NAMES:
        window, kind = name.rsplit("_vs_", 1)
        assert window in WINDOW_FEATURES
        assert kind in ("self", "peers")


def test_hand_built_sequence() -> None:
    t = T0 + 3600  # Monday 10:00 JST: business hours in the default policy
    docs = [
        event(t, "u1", "a1", "login", ip="10.0.0.1", outcome="failure"),
        event(t + 10, "u1", "a2", "login", ip="10.0.0.1", outcome="failure"),
        event(t + 20, "u1", "a3", "login", ip="10.0.0.2"),
        event(t + 60, "u1", "a4", "read", resource="crm.customers",
              categories=("identity", "contact"), ids=("c1", "c2"), records=2, nbytes=1000),
        event(t + 90, "u1", "a5", "read", resource="crm.customers", categories=("identity",),
              ids=("c2", "c3"), records=2, nbytes=500),
        event(t + 120, "u1", "a6", "export", resource="crm.orders", categories=("purchase",),
              ids=("c4",), records=1, dest=USB),
        event(t + 150, "u1", "a7", "email", resource="crm.orders", categories=("contact",),
              ids=("c5",), records=1, dest=MAIL_OUT),
        event(t + 160, "u1", "a8", "email", resource="crm.orders", categories=("contact",),
              ids=("c5",), records=1, dest=MAIL_IN),
        event(t + 200, "u1", "a9", "download", resource="crm.bulk", categories=("contact",),
              count=40, records=40),
    ]
    _, batches = run(docs)
    v = last_values(batches, "u1")
    assert v["events_1h"] == pytest.approx(9)
    assert v["failed_logins_1h"] == pytest.approx(2)
    assert v["exports_1h"] == pytest.approx(2)  # export + download
    assert v["external_1h"] == pytest.approx(2)  # USB + mail to an outside domain
    assert v["records_1h"] == pytest.approx(2 + 2 + 1 + 1 + 1 + 40)
    assert v["bytes_1h"] == pytest.approx(1500)
    assert v["categories_1h"] == pytest.approx(3)  # identity, contact, purchase
    # c1..c5 by id plus 40 without ids: a sketch estimate, within a few
    assert 38 <= v["subjects_1h"] <= 50
    assert v["resources_1h"] == pytest.approx(3, abs=0.6)
    assert v["sources_1h"] == pytest.approx(3, abs=0.5)  # 10.0.0.1, 10.0.0.2, 10.1.1.1
    assert v["new_resources_1h"] == pytest.approx(3)
    assert v["new_categories_1h"] == pytest.approx(3)
    assert v["new_sources_1h"] == pytest.approx(3)
    assert v["offhours_share_1h"] == pytest.approx(0.0)
    assert v["events_24h"] == pytest.approx(9)


def test_offhours_share_and_novelty_fade() -> None:
    t = T0 + 14 * 3600  # Monday 23:00 JST: outside business hours
    docs = [event(t + i * 60, "u1", f"n{i}", "read", resource="crm.customers",
                  categories=("identity",), ids=(f"c{i}",), records=1) for i in range(4)]
    # next day, business hours, same resource and category: nothing is new any more
    t2 = T0 + 86400 + 3600
    docs += [event(t2 + i * 60, "u1", f"d{i}", "read", resource="crm.customers",
                   categories=("identity",), ids=(f"d{i}",), records=1) for i in range(4)]
    _, batches = run(docs)
    first = batches[0].values(0)
    assert first["offhours_share_1h"] == pytest.approx(1.0)
    v = last_values(batches, "u1")
    assert v["offhours_share_1h"] == pytest.approx(0.0)
    assert v["offhours_share_24h"] == pytest.approx(0.5)
    assert v["new_resources_1h"] == 0
    assert v["new_categories_1h"] == 0
    assert v["new_resources_24h"] == 1  # the night before is within 24 hours


def test_windows_expire_on_event_time() -> None:
    docs = [event(T0 + i, "u1", f"a{i}", "read", resource="r", categories=("identity",),
                  ids=(f"c{i}",), records=1) for i in range(10)]
    docs += [event(T0 + 3700, "u1", "b1", "read", resource="r", categories=("identity",),
                   ids=("x",), records=1)]
    docs += [event(T0 + 25 * 3600, "u1", "c1", "read", resource="r",
                   categories=("identity",), ids=("y",), records=1)]
    # another account keeps event time moving between them
    docs += [event(T0 + 26 * 3600, "u2", "z", "read", resource="r")]
    docs.sort(key=lambda d: d["@timestamp"])
    _, batches = run(docs)
    by_bucket = {b.bucket: b for b in batches if "u1" in b.users}
    at_b = by_bucket[int((T0 + 3700) // BUCKET)]
    v = at_b.values(at_b.index("u1"))
    assert v["events_1h"] == pytest.approx(1)  # the first ten are 61+ minutes old
    assert v["events_24h"] == pytest.approx(11)
    at_c = by_bucket[int((T0 + 25 * 3600) // BUCKET)]
    v = at_c.values(at_c.index("u1"))
    assert v["events_1h"] == pytest.approx(1)
    assert v["events_24h"] == pytest.approx(1)  # 25 hours on: only itself
    assert v["subjects_24h"] == pytest.approx(1, abs=0.1)


def test_last_20_minutes_are_the_last_two_buckets() -> None:
    """events_20m / exports_20m count the row's own 10-minute bucket and the one before it
    (on event time), nothing older; the hour still counts them all."""
    b0 = (T0 // BUCKET + 1) * BUCKET  # the start of a bucket
    docs = [event(b0 + 5 + i, "u1", f"a{i}", "read", resource="r") for i in range(7)]
    docs += [event(b0 + BUCKET + 5, "u1", "x1", "export", resource="r", dest=USB)]
    docs += [event(b0 + 2 * BUCKET + 5 + i, "u1", f"b{i}", "read", resource="r")
             for i in range(3)]
    docs += [event(b0 + 2 * BUCKET + 30, "u1", "x2", "export", resource="r", dest=USB)]
    docs += [event(b0 + 5 * BUCKET + 5, "u1", "c1", "read", resource="r")]
    _, batches = run(docs)
    by_bucket = {b.bucket: {n: round(v) for n, v in b.values(b.index("u1")).items()}
                 for b in batches if "u1" in b.users}
    first, second, third, later = (by_bucket[int(b0 // BUCKET) + i] for i in (0, 1, 2, 5))
    assert (first["events_20m"], first["exports_20m"]) == (7, 0)
    assert (second["events_20m"], second["exports_20m"]) == (8, 1)
    # the first bucket is 20 minutes old: out of the last 20 minutes, still in the hour
    assert (third["events_20m"], third["exports_20m"]) == (5, 2)
    assert (third["events_1h"], third["exports_1h"]) == (12, 2)
    assert (later["events_20m"], later["exports_20m"]) == (1, 0)
    assert later["events_1h"] == 13


def test_one_vector_per_active_account_and_bucket() -> None:
    docs = []
    for i in range(3):
        for k in range(4):
            docs.append(event(T0 + 60 * k + i, f"u{i}", f"e{i}-{k}", "read", resource="r"))
    docs.sort(key=lambda d: d["@timestamp"])
    _, batches = run(docs)
    assert len(batches) == 1
    b = batches[0]
    assert sorted(b.users) == ["u0", "u1", "u2"]
    assert b.x.shape == (3, len(FEATURE_NAMES))
    assert b.rel_self.shape == b.rel_peer.shape == b.raw.shape == (3, len(WINDOW_FEATURES))
    assert b.event_ids(b.index("u1")) == ("e1-0", "e1-1", "e1-2", "e1-3")
    assert np.all(b.x >= 0)  # upward deviations only
    assert np.all(b.rel_self >= 0)
    assert np.all(b.rel_peer >= 0)


def test_late_event_joins_the_open_bucket() -> None:
    docs = [event(T0 + 600, "u1", "a", "read", resource="r"),
            event(T0 + 10, "u1", "late", "read", resource="r")]  # behind: no error
    _, batches = run(docs)
    assert sum(len(b) for b in batches) == 1
    assert batches[0].values(0)["events_1h"] == pytest.approx(2)


def test_warm_up_marks_new_accounts() -> None:
    fz = Featurizer(make_engine().policy, lambda _u, _t: "g", warmup=3600.0)
    docs = [event(T0 + 60, "u1", "a", "read", resource="r"),
            event(T0 + 7200, "u1", "b", "read", resource="r"),
            event(T0 + 7800, "u2", "c", "read", resource="r")]
    _, batches = run(docs, fz)
    assert [bool(b.warm[0]) for b in batches] == [False, True, False]


def test_idle_accounts_are_evicted_and_rows_reused() -> None:
    fz = Featurizer(make_engine().policy, lambda _u, _t: "g", idle_ttl=2 * 86400.0,
                    capacity=4)
    docs = [event(T0 + i, f"old{i}", f"o{i}", "read", resource="r") for i in range(3)]
    docs += [event(T0 + 3 * 86400 + i, f"new{i}", f"n{i}", "read", resource="r")
             for i in range(3)]
    docs += [event(T0 + 3 * 86400 + 7200, "new0", "later", "read", resource="r")]
    run(docs, fz)
    assert fz.tracked() == 3
    assert set(fz.rows) == {"new0", "new1", "new2"}
    assert fz.evicted == 3
    assert fz._cap == 4  # evicted rows were reused, nothing grew


def test_categories_the_peers_never_touch() -> None:
    policy = make_engine().policy
    fz = Featurizer(policy, lambda u, _t: "engineering", warmup=0.0)
    docs = []
    for d in range(3):  # engineers read device data, day after day
        for i in range(20):
            for k in range(5):
                docs.append(event(T0 + d * 86400 + k * 900 + i, f"u{i}", f"e{d}-{i}-{k}",
                                  "read", resource="crm.devices", categories=("device",),
                                  ids=("c1",)))
    docs.sort(key=lambda d: d["@timestamp"])
    docs.append(event(T0 + 3 * 86400, "u1", "pay", "read", resource="billing.payment_methods",
                      categories=("payment", "device"), ids=("c2",)))
    _, batches = run(docs, fz)
    v = last_values(batches, "u1")
    assert v["rare_categories_1h"] == pytest.approx(1)  # payment; device is common
    assert v["new_categories_1h"] == pytest.approx(1)
    b = batches[-1]
    j = FEATURE_NAMES.index("rare_categories_1h_vs_peers")
    assert b.x[b.index("u1"), j] > 1.0


def test_row_bytes_bound() -> None:
    assert ROW_BYTES <= 1800


def test_memory_per_account_measured() -> None:
    """tracemalloc over 5,000 accounts: everything a tracked account costs, steady state."""
    n = 5000
    events = [decode(event(T0 + i * 0.05, f"e{1_000_000 + i}", f"m{i}", "read",
                           resource="crm.customers", categories=("identity",),
                           ids=(f"c-{i:07d}",), records=1, ip=f"10.{i % 250}.{i // 250}.7"))
              for i in range(n)]
    policy = make_engine().policy
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fz = Featurizer(policy, lambda _u, _t: "customer support", capacity=n)
    for ev in events:
        fz.observe(ev, ev.timestamp.timestamp())
    fz.flush()
    per_account = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    assert fz.tracked() == n
    assert per_account <= 2048, per_account  # 1,000,000 accounts in 2 GB


def test_model_inputs_of_some_rows_are_those_rows_of_the_batch() -> None:
    """The stage computes the model's inputs for the rows it scores only: the same numbers as
    the whole batch's (row by row arithmetic)."""
    from tests.anomaly.conftest import baseline

    fz = Featurizer(make_engine().policy, lambda u, _t: "billing", warmup=0.0)
    _, batches = run(baseline(n_accounts=12, days=2, seed=4), fz)
    b = max(batches, key=len)
    assert len(b) >= 4
    idx = np.array([len(b) - 1, 0, 2])
    x, rel_self, rel_peer = model_inputs(*b.inputs(idx))
    assert np.array_equal(x, b.x[idx])
    assert np.array_equal(rel_self.astype(np.float32), b.rel_self[idx])
    assert np.array_equal(rel_peer.astype(np.float32), b.rel_peer[idx])
    assert np.array_equal(b.peer_q[idx], b.quantiles[b.gids[idx]])
    sub = b.select(np.isin(np.arange(len(b)), idx))
    assert np.array_equal(sub.x, b.x[np.sort(idx)])
    assert sub.users == [b.users[i] for i in np.sort(idx)]


def test_event_ids_are_the_last_ones_in_order() -> None:
    docs = [event(T0 + i, "u1", f"e{i}", "read", resource="r") for i in range(8)]
    _, batches = run(docs)
    b = batches[0]
    assert b.event_ids(0) == ("e3", "e4", "e5", "e6", "e7")
    assert b.event_ids(0, keep=2) == ("e6", "e7")
    assert b.event_ids(0, keep=20) == b.event_ids(0)  # the last EIDS_KEPT are kept
    assert b.event_ids(0, keep=0) == ()


def test_subject_ids_of_the_cited_events_newest_first() -> None:
    """A lone id is kept as the string itself (no tuple held per event): it is one id, not
    its characters; several ids stay together, and each is listed once."""
    docs = [event(T0, "u1", "a", "read", resource="r", ids=("c-one",)),
            event(T0 + 1, "u1", "b", "read", resource="r", ids=("c-two", "c-three")),
            event(T0 + 2, "u1", "c", "read", resource="r"),
            event(T0 + 3, "u1", "d", "read", resource="r", ids=("c-one",), count=4)]
    _, batches = run(docs)
    b = batches[0]
    assert b.event_ids(0) == ("a", "b", "c", "d")
    assert b.subject_ids(0) == ("c-one", "c-two", "c-three")
    assert b.subject_ids(0, keep=2) == ("c-one", "c-two")


def test_events_after_a_flush_join_the_open_bucket_again() -> None:
    fz = Featurizer(make_engine().policy, lambda _u, _t: "g", warmup=0.0)
    for i, eid in enumerate(("a", "b")):
        ev = decode(event(T0 + i, "u1", eid, "read", resource="r", ids=(f"c{i}",)))
        fz.observe(ev, ev.timestamp.timestamp())
    first = fz.flush()
    ev = decode(event(T0 + 5, "u1", "c", "read", resource="r2", ids=("c9",)))
    fz.observe(ev, ev.timestamp.timestamp())
    again = fz.flush()
    assert first is not None
    assert again is not None
    assert first.bucket == again.bucket
    v = again.values(0)
    assert v["events_1h"] == pytest.approx(3)  # the same slot, added to
    assert v["new_resources_1h"] == pytest.approx(2)  # r, then r2 (r was not new again)
    assert v["subjects_1h"] == pytest.approx(3, abs=0.1)
    assert again.event_ids(0) == ("c",)


def test_subjects_beyond_the_hashed_ids_count_as_distinct() -> None:
    ids = tuple(f"c{i:05d}" for i in range(300))  # more than MAX_IDS_PER_EVENT
    docs = [event(T0, "u1", "big", "export", resource="r", ids=ids, records=300),
            event(T0 + 1, "u2", "few", "export", resource="r", ids=ids[:3], count=50)]
    _, batches = run(docs)
    b = batches[0]
    # 300 and 50 subjects: a 64-slot sketch saturates at the first, not at the second
    assert b.values(b.index("u1"))["subjects_1h"] == pytest.approx(300)
    assert 30 <= b.values(b.index("u2"))["subjects_1h"] <= 50


def test_a_reloaded_policy_applies_at_once() -> None:
    """Given the engine (``policy_source``), the featurizer reads the policy where it matters:
    after a reload, a domain that became internal is no longer an outside destination."""
    import dataclasses

    engine = make_engine()
    fz = Featurizer(engine.policy, lambda _u, _t: "g", warmup=0.0, policy_source=engine)
    mail = {"kind": "email", "domain": "partner.example"}
    ev = decode(event(T0, "u1", "a", "email", resource="r", dest=mail))
    fz.observe(ev, ev.timestamp.timestamp())
    engine.set_policy(dataclasses.replace(
        engine.policy, internal_domains=(*engine.policy.internal_domains, "partner.example")))
    ev = decode(event(T0 + 1, "u1", "b", "email", resource="r", dest=mail))
    fz.observe(ev, ev.timestamp.timestamp())
    b = fz.flush()
    assert b is not None
    assert b.values(0)["external_1h"] == pytest.approx(1)  # the first send only


def _per_bucket(batches: list[FeatureBatch]) -> list[tuple[int, list[str], np.ndarray]]:
    return [(p.bucket, p.users, p.raw) for b in batches for p in b.by_bucket()]


@pytest.mark.parametrize("segment", [3, SEGMENT])
def test_lists_at_once_and_small_segments_change_nothing(
        monkeypatch: pytest.MonkeyPatch, segment: int) -> None:
    """observe_many (the detector's released lists) == observe one by one; reducing the kept
    events a few at a time (rows of one account and bucket in several parts) == all at once;
    commits in between (the daemon's drains) change nothing either."""
    evs = [decode(d) for d in baseline(n_accounts=12, days=2, seed=4)]
    items = [(ev, ev.timestamp.timestamp()) for ev in evs]

    def fresh() -> Featurizer:
        return Featurizer(make_engine().policy, lambda _u, _t: "customer support",
                          warmup=0.0)

    fz = fresh()
    singly = [fz.observe(ev, t) for ev, t in items] + [fz.flush()]
    monkeypatch.setattr("watchdog.anomaly.featurizer.SEGMENT", segment)
    fz = fresh()
    listed: list[FeatureBatch | None] = []
    for i in range(0, len(items), 97):
        listed.extend(fz.observe_many(items[i:i + 97]))
        if i % 3 == 0:
            listed.append(fz.commit())
    listed.append(fz.flush())
    a = _per_bucket([x for x in singly if x is not None])
    b = _per_bucket([x for x in listed if x is not None])
    assert len(a) == len(b) > 20
    for (ba, ua, ra), (bb, ub, rb) in zip(a, b, strict=True):
        assert (ba, ua) == (bb, ub)
        assert np.array_equal(ra, rb)


def test_events_are_taken_apart_not_held() -> None:
    """What the features need is taken from each list as it comes: no event is kept until
    its hour ends (holding them made reading and freeing them an hour later slow)."""
    import sys

    fz = Featurizer(make_engine().policy, lambda _u, _t: "customer support")
    evs = [decode(event(T0 + i, f"u{i % 3}", f"e{i}", "read", resource="r", ids=(f"c{i}",)))
           for i in range(20)]
    before = [sys.getrefcount(e) for e in evs]
    assert fz.observe_many([(e, e.timestamp.timestamp()) for e in evs]) == []
    assert [sys.getrefcount(e) for e in evs] == before
    b = fz.flush()
    assert b is not None
    assert b.values(b.index("u1"))["events_1h"] == pytest.approx(7)
