"""The identity provider's feed: it follows the directory within the revocation deadline and
keeps every password younger than the maximum age, except where a scenario says otherwise."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from watchdog.simulate import World
from watchdog.simulate import catalog as C


def _t(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def _by_account(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in docs:
        out[d["user_id"]].append(d)
    return out


def _scripted(world: World, rules: tuple[str, ...]) -> set[str]:
    rows = [*world.ground_truth, *world.silent]
    return {t["user_id"] for t in rows if t["rule"] in rules}


def test_every_directory_change_is_followed_in_time(small_world: World) -> None:
    feed = _by_account(small_world.accounts_feed)
    deadline = C.THRESHOLDS["revocation_minutes"] * 60
    scripted = _scripted(small_world, ("account_not_revoked",))
    start = small_world.calendar.start / 1000
    checked = 0
    for rec in small_world.directory:
        uid, at = rec["user_id"], _t(rec["effective"])
        if uid in scripted or at < start:
            continue
        enabled = rec["status"] in ("active", "transferred")
        state = [d for d in feed[uid] if _t(d["effective"]) <= at + deadline]
        assert state, uid
        assert state[-1]["enabled"] is enabled, (uid, rec)
        if enabled:
            assert set(state[-1]["roles"]) <= set(rec["roles"]), (uid, rec)
        checked += 1
    assert checked >= 5  # the churn of 100 accounts in 3 days, and the scenarios


def test_passwords_never_pass_their_maximum_age_unless_injected(small_world: World) -> None:
    max_age = C.THRESHOLDS["password_max_age_days"] * 86400
    scripted = _scripted(small_world, ("password_expired",))
    end = small_world.calendar.end / 1000
    for uid, docs in _by_account(small_world.accounts_feed).items():
        if uid in scripted:
            continue
        for cur, nxt in zip(docs, [*docs[1:], None], strict=True):
            if "password_changed_at" not in cur:
                continue
            until = _t(nxt["effective"]) if nxt else end
            assert until - _t(cur["password_changed_at"]) <= max_age, (uid, cur)


def test_injected_expiries_are_in_the_feed(small_world: World) -> None:
    feed = _by_account(small_world.accounts_feed)
    max_age = C.THRESHOLDS["password_max_age_days"] * 86400
    rows = [t for t in small_world.ground_truth if t["rule"] == "password_expired"]
    assert rows
    for t in rows:
        login = _t(t["ts"])
        state = [d for d in feed[t["user_id"]] if _t(d["effective"]) <= login][-1]
        assert login - _t(state["password_changed_at"]) > max_age
