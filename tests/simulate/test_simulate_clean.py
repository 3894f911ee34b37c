"""Clean traffic stays within the policy: every event not planned by a scenario is one
that none of the contract's rules may alert on. These checks read the policy, directory
and register the simulator wrote, not its internals."""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections import defaultdict, deque
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from watchdog.simulate import SimConfig, World, build_world
from watchdog.simulate.behaviour import BATCH, HANDOVERS, ROLE_TASKS
from watchdog.simulate.catalog import ROLES, SERVICES

EXPORTS = {"export", "download", "copy", "print", "transfer"}


def _t(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


class Facts:
    """The written documents, queried the way the contract reads them."""

    def __init__(self, world: World) -> None:
        p = world.policy
        self.policy = p
        self.roles = p["roles"]
        self.th = p["thresholds"]
        self.nets = [ipaddress.ip_network(n) for n in p["internal_networks"]]
        bh = p["business_hours"]
        self.tz = ZoneInfo(bh["timezone"])
        self.open = int(bh["start"][:2]) * 60 + int(bh["start"][3:])
        self.close = int(bh["end"][:2]) * 60 + int(bh["end"][3:])
        self.weekdays = set(bh["weekdays"])
        self.dir: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
        for d in world.directory:
            self.dir[d["user_id"]].append((_t(d["effective"]), d))
        for recs in self.dir.values():
            recs.sort(key=lambda r: r[0])
        self.registered = {s["subject_id"] for s in world.subjects}

    def state(self, uid: str, t: float) -> dict[str, Any] | None:
        recs = self.dir.get(uid, [])
        i = bisect_right([r[0] for r in recs], t)
        return recs[i - 1][1] if i else None

    def business(self, t: float) -> bool:
        local = datetime.fromtimestamp(t, self.tz)
        m = local.hour * 60 + local.minute
        return local.isoweekday() in self.weekdays and self.open <= m < self.close

    def internal_ip(self, ip: str) -> bool:
        a = ipaddress.ip_address(ip)
        return any(a in n for n in self.nets)

    def internal_domain(self, domain: str) -> bool:
        return any(domain == d or domain.endswith("." + d) for d in self.policy["internal_domains"])

    def processor(self, dest: dict[str, Any]) -> dict[str, Any] | None:
        for p in self.policy["processors"]:
            if dest.get("organization") == p["name"] or dest.get("domain") in p["domains"]:
                return p
        return None


def check_clean(world: World, events: list[dict[str, Any]]) -> None:
    f = Facts(world)
    planned = world.planned_event_ids
    hourly: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
    fails: dict[str, deque[float]] = defaultdict(deque)
    families: dict[tuple[str, str, bool], float] = {}
    retention = f.policy["retention_days"]
    for e in events:
        if e["event"]["id"] in planned:
            continue
        t = _t(e["@timestamp"])
        uid = e["user"]["id"]
        st = f.state(uid, t)
        assert st is not None, e
        assert st["status"] in ("active", "transferred"), e
        roles = [f.roles[r] for r in st["roles"]]
        action = e["event"]["action"]
        if action == "login" and e["event"]["outcome"] == "failure":
            q = fails[uid]
            q.append(t)
            while q[0] <= t - 600:
                q.popleft()
            assert len(q) < f.th["failed_logins"], e
        d = e.get("data", {})
        if not (d.get("categories") or d.get("subject_ids") or d.get("subject_count")):
            continue
        cats = set(d.get("categories", ()))
        purpose = d.get("purpose")
        assert purpose, e
        assert any(cats <= set(r["categories"]) and purpose in r["purposes"]
                   for r in roles), e
        if not any(r.get("after_hours") for r in roles):
            assert f.business(t), e
        assert f.internal_ip(e["source"]["ip"]), e
        assert not set(d.get("subject_ids", ())) & f.registered, e
        if "collected_at" in d:
            age = (t - _t(d["collected_at"])) / 86400
            assert all(age <= retention[c] for c in cats if c in retention), e
        dest = e.get("destination")
        if dest:
            kind = dest.get("kind")
            assert kind != "external_media", e
            proc = f.processor(dest)
            approved = proc is not None and purpose in proc["purposes"] and \
                cats <= set(proc["categories"])
            if kind == "email" or action == "email":
                assert f.internal_domain(dest["domain"]) or approved, e
            if kind in ("third_party", "cloud_storage"):
                assert approved, e
            if "country" in dest and dest["country"] not in f.policy["adequate_countries"]:
                assert proc is not None, e
                assert proc.get("safeguards"), e
        bulk = any(r.get("bulk_export") for r in roles)
        if action in EXPORTS:
            n = d.get("subject_count", len(d.get("subject_ids", ())))
            if not bulk:
                assert n <= f.th["bulk_export_subjects"], e
            q2 = hourly[uid]
            q2.append((t, n))
            while q2[0][0] <= t - 3600:
                q2.popleft()
            limit = f.th["bulk_export_subjects_per_hour"] * (10 if bulk else 1)
            assert sum(x for _, x in q2) <= limit, e
        family = d.get("resource", "").split(".", 1)[0]
        anon = bool(d.get("anonymized"))
        other = families.get((uid, family, not anon))
        assert other is None or t - other > 60 * f.th["reidentification_window_minutes"], e
        families[(uid, family, anon)] = t


def check_sources_never_silent(world: World, events: list[dict[str, Any]]) -> None:
    limit = 60 * world.policy["thresholds"]["source_silence_minutes"]
    shown = defaultdict(list)
    for t in world.ground_truth:
        if t["rule"] == "log_gap" and t["scenario"] == "silent_source":
            shown[t["user_id"]].append(_t(t["ts"]))
    last: dict[str, float] = {}
    for e in events:
        t = _t(e["@timestamp"])
        ds = e["event"]["dataset"]
        if ds in last and t - last[ds] > limit:
            assert any(last[ds] + limit < s <= t for s in shown[ds]), (ds, e)
        last[ds] = t


def test_behaviour_only_uses_what_roles_allow() -> None:
    svc_role = {d: r for _, r, d in SERVICES}
    for role, tasks in ROLE_TASKS.items():
        spec = ROLES[role]
        for task in tasks:
            for step in task.steps:
                assert set(step.categories) <= set(spec.categories), (role, task.name)
                if step.categories:
                    assert step.purpose in spec.purposes, (role, task.name)
    for dataset, steps in BATCH.items():
        for _, step in steps:
            spec = ROLES[svc_role[dataset]]
            assert set(step.categories) <= set(spec.categories)
            assert step.purpose in spec.purposes
    for dataset, _, _, step in HANDOVERS:
        spec = ROLES[svc_role[dataset]]
        assert set(step.categories) <= set(spec.categories)
        assert step.purpose in spec.purposes


def test_clean_traffic_keeps_the_policy(small_world: World,
                                        small_events: list[dict[str, Any]]) -> None:
    check_clean(small_world, small_events)
    check_sources_never_silent(small_world, small_events)


def test_clean_traffic_has_realistic_shape(small_world: World,
                                           small_events: list[dict[str, Any]]) -> None:
    planned = small_world.planned_event_ids
    clean = [e for e in small_events if e["event"]["id"] not in planned]
    tz = ZoneInfo("Asia/Tokyo")
    by_day: dict[int, int] = defaultdict(int)
    for e in clean:
        if not e["user"]["id"].startswith("svc-"):
            by_day[datetime.fromisoformat(e["@timestamp"]).astimezone(tz).isoweekday()] += 1
    assert by_day[1] > 10 * by_day[7]  # people: quiet Sunday, busy Monday
    actions = {e["event"]["action"] for e in clean}
    assert {"login", "logout", "read", "search", "update", "email", "transfer"} <= actions
    datasets = {e["event"]["dataset"] for e in clean}
    assert len(datasets) == 6


@pytest.mark.slow
def test_clean_traffic_keeps_the_policy_longer() -> None:
    """Two weeks with churn (departures, transfers, suspensions, hires) and weekends."""
    world = build_world(SimConfig(accounts=150, days=14, seed=3))
    events = list(world.events())
    check_clean(world, events)
    check_sources_never_silent(world, events)
