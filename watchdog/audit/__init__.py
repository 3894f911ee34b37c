"""A tamper-evident local audit trail of alerts: hash-chained JSONL plus a separate head.

Every alert the watchdog raises can be appended here (and other entries, such as recorded
exceptions: :meth:`AuditTrail.append_entry`), so that later one can prove which alerts were
raised and that none was removed, altered, reordered or slipped in.

- :mod:`.chain`: the layout and the hashes, and the judgement of a sequence of lines (pure).
- :mod:`.trail`: the file, its head and its lock (I/O); :func:`verify` reads a trail back.
- :mod:`.command`: ``watchdog verify-audit``.

Detected: an edited line, a deleted, duplicated or moved line, an inserted or replaced line
even with a recomputed hash, any byte changed outside the fixed layout; truncation of the tail
by the head (required by default). Keep a copy of the head elsewhere: whoever can rewrite both
the file and every copy of its head can rewrite an unkeyed chain; a keyed chain (HMAC, the
credential ``audit-key``) also needs the key.
"""

from watchdog.audit.chain import ZERO, VerifyResult
from watchdog.audit.command import add_arguments, run
from watchdog.audit.trail import AuditError, AuditTrail, head_path, verify

__all__ = ["ZERO", "AuditError", "AuditTrail", "VerifyResult", "add_arguments", "head_path",
           "run", "verify"]
