"""An event (or state record) whose processing raised: a bug, not bad input (it decoded and
validated). Detection must not stop for one: the :class:`~watchdog.engine.detector.Detector`
hands such an event to its ``on_fault`` and goes on with the next; the daemon and replay log
one line and count it as ``processing_error``.

What is said of the error is where it was raised and its type, never its message: a
message may quote the values it failed on (an account, a subject id).
"""

from __future__ import annotations

import os
import traceback

REASON = "processing_error"  # watchdog_events_invalid_total{reason}, replay's summary


def fault_site(err: BaseException) -> str:
    """``TypeError at rules/bulk_export.py:114 in observe``: the innermost frame."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return type(err).__name__
    f = frames[-1]
    where = os.sep.join(f.filename.split(os.sep)[-2:])
    return f"{type(err).__name__} at {where}:{f.lineno} in {f.name}"
