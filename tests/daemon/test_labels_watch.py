"""The daemon re-reads the labels file when it changes; a file that does not verify is
refused and the previous labels stay in force."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from watchdog.anomaly.labels import Label, Labels
from watchdog.anomaly.labels_file import append_label
from watchdog.daemon.labels_watch import CHECK_SECONDS, LabelsWatch


class Risk:
    def __init__(self) -> None:
        self.labels = Labels.empty()

    def set_labels(self, labels: Labels) -> None:
        self.labels = labels


class Stage:
    def __init__(self) -> None:
        self.risk = Risk()


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.lines.append(("info", event, kw))

    def error(self, event: str, **kw: Any) -> None:
        self.lines.append(("error", event, kw))


def fp(alert_id: str) -> Label:
    return Label(alert_id, "false_positive", "anomaly", "s-acc", ("exports_24h",), 0.0, 14.0, "")


def test_reloads_on_change_and_keeps_the_last_good_labels(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    stage, log = Stage(), Log()
    watch = LabelsWatch(str(path), [stage, object()], log)
    now = 100.0
    watch.check(now)  # no file yet: no labels
    assert len(stage.risk.labels) == 0
    append_label(path, fp("anomaly:1"))
    watch.check(now + 1)  # too soon: not looked at
    assert len(stage.risk.labels) == 0
    now += CHECK_SECONDS
    watch.check(now)
    assert set(stage.risk.labels.by_alert) == {"anomaly:1"}
    assert log.lines[-1][:2] == ("info", "labels_loaded")
    # an edited line: refused, the previous labels stay
    text = path.read_text().replace("anomaly:1", "anomaly:2")
    path.write_text(text)
    os.utime(path, ns=(1, 1))
    now += CHECK_SECONDS
    watch.check(now)
    assert set(stage.risk.labels.by_alert) == {"anomaly:1"}
    assert log.lines[-1][:2] == ("error", "labels_refused")
    assert "\n" not in log.lines[-1][2]["detail"]
