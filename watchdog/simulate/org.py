"""The staff: human accounts in departments and teams, plus the batch service accounts.

Where people sit decides their time zone and office network; a personal workload factor
makes some busier than others. Hire dates come before the simulated period (new hires
during it are planned by ``lifecycle``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from watchdog.simulate import catalog as C
from watchdog.simulate.clock import DAY, HOUR
from watchdog.simulate.ids import employee_id

_SURNAMES = (
    "Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura",
    "Kobayashi", "Kato", "Yoshida", "Yamada", "Sasaki", "Yamaguchi", "Matsumoto", "Inoue",
    "Kimura", "Hayashi", "Shimizu", "Yamazaki", "Mori", "Abe", "Ikeda", "Hashimoto", "Ishikawa",
)
_GIVEN = (
    "Haruto", "Yui", "Sota", "Aoi", "Yuto", "Hina", "Riku", "Mei", "Kaito", "Sakura", "Ren",
    "Yuna", "Hinata", "Rin", "Minato", "Mio", "Asahi", "Koharu", "Takumi", "Akari", "Kenji",
    "Naoko", "Hiroshi", "Emi", "Daisuke",
)
_PH_SURNAMES = ("Santos", "Reyes", "Cruz", "Bautista", "Garcia", "Mendoza", "Torres")
_PH_GIVEN = ("Maria", "Jose", "Angelica", "Mark", "Kristine", "John", "Patricia")
_DE_NAMES = ("Jonas Weber", "Lea Fischer", "Lukas Wagner", "Anna Becker", "Felix Schulz")
_IN_NAMES = ("Arjun Rao", "Priya Nair", "Rahul Iyer", "Ananya Das", "Vikram Shah")

# (time zone, office network second octet) by where someone sits
_TOKYO = ("Asia/Tokyo", None)
_SITES = {
    "Asia/Manila": 64, "Asia/Singapore": 65, "Europe/Berlin": 66, "Asia/Kolkata": 67,
}


@dataclass(slots=True)
class Account:
    idx: int
    user_id: str
    name: str
    roles: tuple[str, ...]
    department: str
    manager: str | None
    tz: str
    ip: str  # office workstation
    vpn_ip: str  # staff VPN (internal too)
    host: str
    volume: float  # relative workload
    hired: int  # ms: first directory record
    service: bool = False
    dataset: str | None = None  # the dataset a service account writes to


def _site(dept: C.Department, rng: random.Random) -> str:
    r = rng.random()
    if dept.name == "customer support" and r < 0.12:
        return "Asia/Manila"
    if dept.name in ("marketing", "data & analytics") and r < 0.05:
        return "Asia/Singapore"
    if dept.name == "site reliability":
        if r < 0.3:
            return "Europe/Berlin"
        if r < 0.5:
            return "Asia/Kolkata"
    return _TOKYO[0]


def _name(tz: str, rng: random.Random) -> str:
    if tz == "Asia/Manila":
        return f"{rng.choice(_PH_GIVEN)} {rng.choice(_PH_SURNAMES)}"
    if tz == "Europe/Berlin":
        return rng.choice(_DE_NAMES)
    if tz == "Asia/Kolkata":
        return rng.choice(_IN_NAMES)
    return f"{rng.choice(_SURNAMES)} {rng.choice(_GIVEN)}"


def department_counts(n: int) -> list[int]:
    counts = [max(5, round(d.share * n)) for d in C.DEPARTMENTS]
    counts[0] += n - sum(counts)  # support agents absorb the rounding
    return counts


def build_staff(n: int, start_ms: int, rng: random.Random) -> list[Account]:
    """``n`` human accounts, hired between 10 years and 2 weeks before ``start_ms``."""
    slots: list[int] = []
    for i, count in enumerate(department_counts(n)):
        slots.extend([i] * count)
    rng.shuffle(slots)
    accounts: list[Account] = []
    team_lead: dict[int, str] = {}  # department index -> current team lead
    team_size: dict[int, int] = {}
    head: dict[int, str] = {}
    for idx, d in enumerate(slots):
        dept = C.DEPARTMENTS[d]
        uid = employee_id(idx)
        if d not in head:
            head[d] = uid
            manager = None
        elif team_size.get(d, 0) % 9 == 0:
            team_lead[d] = uid
            manager = head[d]
            team_size[d] = team_size.get(d, 0) + 1
        else:
            manager = team_lead.get(d, head[d])
            team_size[d] = team_size.get(d, 0) + 1
        tz = _site(dept, rng)
        octet = _SITES.get(tz, dept.ip_octet)
        hired_days = int(rng.uniform(14, 3650))
        hired = start_ms - hired_days * DAY
        hired -= hired % DAY  # 09:00 JST on some day (midnight UTC)
        accounts.append(Account(
            idx=idx, user_id=uid, name=_name(tz, rng), roles=dept.roles,
            department=dept.name, manager=manager, tz=tz,
            ip=f"10.{octet}.{idx // 200 % 250}.{idx % 200 + 20}",
            vpn_ip=f"172.16.{idx // 250 % 250}.{idx % 250 + 2}",
            host=f"ws-{idx + 1:05d}", volume=dept.volume * rng.lognormvariate(0, 0.35),
            hired=hired))
    return accounts


def build_services(first_idx: int, start_ms: int) -> list[Account]:
    out = []
    for i, (uid, role, dataset) in enumerate(C.SERVICES):
        out.append(Account(
            idx=first_idx + i, user_id=uid, name=uid, roles=(role,),
            department="platform", manager=None, tz="Asia/Tokyo",
            ip=f"10.10.0.{11 + i}", vpn_ip=f"10.10.0.{11 + i}", host=f"batch-{i + 1:02d}",
            volume=1.0, hired=start_ms - 3 * 365 * DAY + 9 * HOUR, service=True,
            dataset=dataset))
    return out
