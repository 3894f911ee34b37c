"""Which peer group an account belongs to: its department in the directory at event time,
else its roles, else the group of accounts not in the directory (:mod:`.peers` keeps what
each group usually does)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from msgspec import UNSET

from watchdog.events import DirectoryRecord
from watchdog.state.directory import Directory

UNKNOWN = "(not in the directory)"


def group_key(rec: DirectoryRecord | None, event_roles: tuple[str, ...] = ()) -> str:
    """The peer group: ``department``, else ``role a+b``, else unknown."""
    if rec is not None and rec.department:
        return str(rec.department)
    roles = rec.roles if rec is not None and rec.roles is not UNSET else event_roles
    if roles:
        return "role " + "+".join(sorted(roles))
    return UNKNOWN


class _HasDirectory(Protocol):
    @property
    def directory(self) -> Directory: ...


class DirectoryGroups:
    """Each account's peer group (:func:`group_key`) from the directory in force at an event
    time (``source.directory``: an engine's, read at each call, as a second engine over the
    same state replaces it). :meth:`span` also says over which event times the answer holds:
    the featurizer looks an account up again only when its time leaves that span or
    :meth:`changed` (cold in the caches, a lookup per account and hour was ~0.35 us per
    event of the stage's ~6)."""

    def __init__(self, source: _HasDirectory) -> None:
        self._source = source
        self._seen: tuple[Directory | None, int] = (None, -1)

    def __call__(self, user_id: str, t: float) -> str:
        return group_key(self._source.directory.at(user_id, t))

    def span(self, user_id: str, t: float) -> tuple[str, float, float]:
        """The group at ``t`` and the event times [from, until) over which it holds (until
        :meth:`changed`)."""
        rec, lo, hi = self._source.directory.span(user_id, t)
        return group_key(rec), lo, hi

    def regroup(self, meta: np.ndarray, stale: np.ndarray, ur: np.ndarray, users: list[str],
                t_last: np.ndarray, spans: np.ndarray, gid_of: Callable[[str], int]) -> None:
        """The featurizer's rank-0 rows ``stale`` (account rows ``ur``, users ``users``, times
        ``t_last``): the group ids (``meta[:, 1]``) of those whose time is outside the span
        their last lookup holds for (``spans``: [from, until) per account row, NaN: none),
        looked up again; the others keep theirs."""
        if self.changed():
            spans[:] = np.nan
        t = t_last[stale]
        span = spans[ur[stale]]
        look = stale[~((span[:, 0] <= t) & (t < span[:, 1]))]
        if not len(look):
            return
        gids, got = [], []
        for j, tj in zip(look.tolist(), t_last[look].tolist(), strict=True):
            name, lo, hi = self.span(users[j], tj)
            gids.append(gid_of(name))
            got.append((lo, hi))
        meta[look, 1] = gids
        spans[ur[look]] = got

    def changed(self) -> bool:
        """Whether records were applied or dropped (or the directory replaced) since the last
        call: every span said before may be stale."""
        d = self._source.directory
        if self._seen[0] is d and self._seen[1] == d.version:
            return False
        self._seen = (d, d.version)
        return True
