"""The due-time queue: obligations open with their records, are judged at the first event past
their deadline (in deadline order), and are forgotten then: state is bounded by the open
obligations, never by the number of events."""

from __future__ import annotations

from datetime import timedelta

from tests.builders import BASE, account, directory, engine, event, feed, subject
from watchdog.engine.obligations import DueQueue


def test_the_queue_pops_strictly_past_deadlines_in_order():
    q = DueQueue()
    assert q.push(20.0, 0, "b")
    assert q.push(10.0, 1, "a")
    assert not q.push(10.0, 1, "a")  # the same record read twice: one obligation
    assert q.next == 10.0
    assert q.due(10.0) == []
    assert q.due(20.5) == [(10.0, 1, "a"), (20.0, 0, "b")]
    assert len(q) == 0
    assert q.next == float("inf")


def test_state_is_bounded_by_open_obligations_not_events():
    n = 200
    eng = engine(
        dir_records=[*(directory(f"x{i}", "departed", BASE + timedelta(minutes=i))
                       for i in range(n)), directory("e1")],
        subjects=[subject(f"c-{i}", "erasure_requested", BASE, resources=["crm.customers"])
                  for i in range(n)],
        accounts=[account(f"x{i}", False, BASE) for i in range(n)])
    assert eng.open_obligations() == {"account_not_revoked": n, "erasure_overdue": n}
    # a day of deletes and reads: nothing is kept per event
    evs = [event(when=BASE + timedelta(minutes=m), action="delete" if m % 2 else "read",
                 subject_ids=[f"c-{m % n}"], purpose="customer_support") for m in range(1, 1440)]
    feed(eng, evs)
    assert eng.open_obligations()["account_not_revoked"] == 0  # judged (all disabled: silent)
    assert eng.open_obligations()["erasure_overdue"] == n  # due in 30 days
    assert sum(r.tracked() for r in eng.obligations) == n
    feed(eng, [event(when=BASE + timedelta(days=31))])
    assert eng.open_obligations() == {"account_not_revoked": 0, "erasure_overdue": 0}
    assert sum(r.tracked() for r in eng.obligations) == 0
