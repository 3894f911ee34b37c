"""erasure_overdue: a subject's data not deleted within the erasure deadline (an obligation,
contract 1.1).

An ``erasure_requested`` record effective at T opens an obligation due at T +
``thresholds.erasure_days`` (exact days). Each resource it names must delete the subject: a
successful (``event.outcome`` success) ``delete`` event naming the subject in
``data.subject_ids`` with that ``data.resource``, at or after T and at or before the deadline;
without ``resources``, one such delete in any resource fulfils it. At the deadline, a request no
longer in force (a ``cleared`` record, or a later ``erasure_requested`` replacing it, effective
at or before the deadline) is not judged. One alert per resource that did not delete (its
``user_id``), or one with ``user_id`` ``subject-register`` when the request named none; ``ts``
is the deadline, ``event_ids`` ``subjects/<pseudonym>/<effective>``: no raw subject id.

Memory: per open request, the resources still owing a delete; dropped once judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from msgspec import UNSET

from watchdog.alerts.model import rfc3339
from watchdog.engine.context import Context
from watchdog.engine.facts import Facts
from watchdog.events import AccountRecord, DirectoryRecord, SubjectRecord, epoch
from watchdog.rules.base import Finding, Obligation, Severity
from watchdog.rules.needs import PERSONAL

DAY = 86400.0
REGISTER = "subject-register"  # user_id of the alert when the request named no resource


@dataclass(slots=True)
class _Request:
    subject: str
    t: float
    deadline: float
    written: str
    owing: set[str] = field(default_factory=set)  # resources yet to delete; empty: any one
    named: bool = False
    done: bool = False


class ErasureOverdue(Obligation):
    id: ClassVar[str] = "erasure_overdue"
    severity: ClassVar[Severity] = "high"
    commitment: ClassVar[str] = "personal data is erased without delay when the person asks"
    actions: ClassVar[frozenset[str] | None] = frozenset({"delete"})
    needs: ClassVar[int] = PERSONAL

    def __init__(self) -> None:
        self._requests: dict[str, _Request] = {}
        self._by_subject: dict[str, list[str]] = {}  # subject -> keys of its open requests

    def start(self, rec: DirectoryRecord | SubjectRecord | AccountRecord, written: str,
              facts: Facts) -> list[tuple[float, str]]:
        if not isinstance(rec, SubjectRecord) or rec.type != "erasure_requested":
            return []
        key = f"{rec.subject_id}\x1f{written}"
        if key in self._requests:
            return []
        t = epoch(rec.effective)
        deadline = t + facts.policy.thresholds.erasure_days * DAY
        resources = () if rec.resources is UNSET else rec.resources
        self._requests[key] = _Request(rec.subject_id, t, deadline, written, set(resources),
                                       bool(resources))
        self._by_subject.setdefault(rec.subject_id, []).append(key)
        return [(deadline, key)]

    def check(self, ctx: Context) -> list[Finding] | None:
        by_subject = self._by_subject
        if not by_subject:
            return None
        ev = ctx.ev
        if ev.event.outcome != "success":
            return None
        resource = ev.data.resource
        t = ctx.t
        for s in ev.data.subject_ids:
            keys = by_subject.get(s)
            if keys is None:
                continue
            for key in keys:
                req = self._requests[key]
                if not req.t <= t <= req.deadline:
                    continue
                if req.named:
                    if resource:
                        req.owing.discard(resource)
                else:
                    req.done = True
        return None

    def judge(self, key: str, deadline: float, facts: Facts) -> list[Finding]:
        req = self._requests.pop(key, None)
        if req is None:
            return []
        keys = self._by_subject[req.subject]
        keys.remove(key)
        if not keys:
            del self._by_subject[req.subject]
        entry = facts.register.at(req.subject, deadline).states.get("erasure_requested")
        if entry is None or entry.t != req.t:
            return []  # cleared, or replaced by a later request, in time
        ref = (f"subjects/{facts.pseudonymize(req.subject)}/{req.written}",)
        days = facts.policy.thresholds.erasure_days
        due = rfc3339(deadline)
        if not req.named:
            if req.done:
                return []
            return [Finding(self.id, f"Erasure requested {req.written}: no resource deleted the "
                            f"subject's data by {due} ({days:g} days)", ref, (req.subject,),
                            user_id=REGISTER)]
        return [Finding(self.id, f"Erasure requested {req.written}: {r} did not delete the "
                        f"subject's data by {due} ({days:g} days)", ref, (req.subject,),
                        user_id=r, labels={"resource": r}) for r in sorted(req.owing)]

    def open(self) -> int:
        return len(self._requests)

    def snapshot(self) -> Any:
        return self._requests

    def restore(self, snap: Any) -> None:
        self._requests, self._by_subject = {}, {}
        for key, r in snap.items():
            self._requests[key] = _Request(**{**r, "owing": set(r["owing"])})
            self._by_subject.setdefault(r["subject"], []).append(key)

    def tracked(self) -> int:
        return len(self._requests)
