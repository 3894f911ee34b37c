"""The daemon's view of the analysts' labels file (``labels:`` in the configuration).

Checked every few seconds: when the file's size or modification time changed, it is read
again (its chain verified) and handed to the anomaly stages (their person-level risk and
per-window alerts damp what a false positive names). A file that does not verify is refused
with one log line and the previous labels stay in force; a missing file is no labels yet.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

CHECK_SECONDS = 5.0


class LabelsWatch:
    def __init__(self, path: str, stages: Sequence[Any], log: Any) -> None:
        self.path = path
        self.stages = [s for s in stages if hasattr(getattr(s, "risk", None), "set_labels")]
        self.log = log
        self._seen: tuple[int, int] | None = None
        self._checked = -CHECK_SECONDS
        self.loaded = 0  # labels in force

    def check(self, now: float) -> None:
        """Re-read the file if it changed (at most every CHECK_SECONDS of ``now``)."""
        if not self.stages or now - self._checked < CHECK_SECONDS:
            return
        self._checked = now
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, -1)
        except OSError as err:
            self.log.error("labels_unreadable", path=self.path, detail=str(err.strerror))
            return
        if stamp == self._seen:
            return
        self._seen = stamp
        from watchdog.anomaly.labels_file import read_labels

        try:
            labels = read_labels(self.path, missing_ok=True)
        except (ValueError, OSError) as err:
            self.log.error("labels_refused", path=self.path, detail=str(err)[:300],
                           consequence="the previous labels stay in force")
            return
        for stage in self.stages:
            stage.risk.set_labels(labels)
        self.loaded = len(labels)
        self.log.info("labels_loaded", path=self.path, labels=len(labels),
                      false_positives=len(labels.ids("false_positive")),
                      true_positives=len(labels.ids("true_positive")))
