"""Event time: integer milliseconds since the epoch, the policy's calendar, and fast
RFC 3339 formatting (a cached prefix per hour, so formatting an event costs one f-string).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# Japanese public holidays and the company's year-end closure (quiet days; the policy's
# business hours still apply to them, so nothing on them is off-hours by itself).
HOLIDAYS = frozenset(date.fromisoformat(d) for d in (
    "2026-01-01", "2026-01-02", "2026-01-12", "2026-02-11", "2026-02-23", "2026-03-20",
    "2026-04-29", "2026-05-04", "2026-05-05", "2026-05-06", "2026-07-20", "2026-08-11",
    "2026-09-21", "2026-09-22", "2026-09-23", "2026-10-12", "2026-11-03", "2026-11-23",
    "2026-12-29", "2026-12-30", "2026-12-31", "2027-01-01", "2027-01-11", "2027-02-11",
    "2027-02-23", "2027-03-22", "2027-04-29", "2027-05-03", "2027-05-04", "2027-05-05",
))


def to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def iso(ms: int, *, utc: bool = False, millis: bool = False) -> str:
    """RFC 3339 for one-off timestamps (directory, register, truth)."""
    tz = UTC if utc else timezone(timedelta(hours=9))
    dt = datetime.fromtimestamp(ms / 1000, tz)
    s = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if millis:
        s += f".{ms % 1000:03d}"
    return s + ("Z" if utc else dt.strftime("%z")[:3] + ":" + dt.strftime("%z")[3:])


class Stamp:
    """Formats event times for one dataset's style: ``Z`` or ``+09:00``, ms or seconds
    (the text up to the hour is cached)."""

    __slots__ = ("_cache", "_millis", "_offset", "_suffix")

    def __init__(self, *, utc: bool, millis: bool) -> None:
        self._offset = 0 if utc else 9 * HOUR
        self._suffix = "Z" if utc else "+09:00"
        self._millis = millis
        self._cache: dict[int, str] = {}

    def __call__(self, ms: int) -> str:
        hour, rem = divmod(ms, HOUR)
        prefix = self._cache.get(hour)
        if prefix is None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            dt = datetime.fromtimestamp((hour * HOUR + self._offset) / 1000, UTC)
            prefix = self._cache[hour] = dt.strftime("%Y-%m-%dT%H:")
        minute, rem = divmod(rem, MINUTE)
        if self._millis:
            return f"{prefix}{minute:02d}:{rem // 1000:02d}.{rem % 1000:03d}{self._suffix}"
        return f"{prefix}{minute:02d}:{rem // 1000:02d}{self._suffix}"


@dataclass(frozen=True, slots=True)
class Day:
    """One calendar day in the policy's time zone."""

    index: int
    date: date
    start: int  # local midnight, ms
    end: int  # next local midnight, ms
    weekday: int  # ISO, 1 = Monday
    business: bool  # a policy weekday
    holiday: bool
    open: int  # business hours [open, close) in ms
    close: int

    @property
    def workday(self) -> bool:
        return self.business and not self.holiday


class Calendar:
    """The simulated period cut into the policy time zone's days."""

    def __init__(self, start_ms: int, days: int, tz_name: str, open_hm: str, close_hm: str,
                 weekdays: tuple[int, ...]) -> None:
        self.tz = ZoneInfo(tz_name)
        self.start = start_ms
        self.end = start_ms + days * DAY
        oh, om = (int(x) for x in open_hm.split(":"))
        ch, cm = (int(x) for x in close_hm.split(":"))
        first = datetime.fromtimestamp(start_ms / 1000, self.tz).date()
        self.days: list[Day] = []
        d = first
        while True:
            midnight = to_ms(datetime.combine(d, time(0), self.tz))
            if midnight >= self.end:
                break
            nxt = to_ms(datetime.combine(d + timedelta(days=1), time(0), self.tz))
            self.days.append(Day(
                index=len(self.days), date=d, start=midnight, end=nxt,
                weekday=d.isoweekday(), business=d.isoweekday() in weekdays,
                holiday=d in HOLIDAYS,
                open=to_ms(datetime.combine(d, time(oh, om), self.tz)),
                close=to_ms(datetime.combine(d, time(ch, cm), self.tz)) if ch < 24 else nxt))
            d += timedelta(days=1)

    def day_of(self, ms: int) -> Day:
        for day in self.days:
            if day.start <= ms < day.end:
                return day
        raise ValueError(f"{ms} is outside the simulated period")

    def in_business_hours(self, ms: int) -> bool:
        day = self.day_of(ms)
        return day.business and day.open <= ms < day.close


def local_base(tz: ZoneInfo, d: date) -> int:
    """Epoch ms of 00:00 on ``d`` in ``tz`` (via local noon, so DST nights do not matter)."""
    noon = datetime.combine(d, time(12), tz)
    return to_ms(noon) - 12 * HOUR
