"""systemd notification, when ``watchdog.systemd`` is there and we run under systemd.

``READY=1`` once state is loaded and consuming, ``WATCHDOG=1`` only while the pipeline makes
progress (a wedged loop gets restarted by systemd), ``STOPPING=1`` on shutdown, ``STATUS=``
a one-line summary. Without systemd (or without the module) every call does nothing.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any


class Notify:
    def __init__(self, log: Any) -> None:
        self._n: Any = None
        self.interval: float | None = None
        self._next = 0.0
        try:
            from watchdog import systemd  # another part of watchdog; optional here
        except ImportError:
            return
        try:
            self._n = systemd.Notifier.from_env()
            if self._n is None:
                return
            get = getattr(self._n, "watchdog_interval", None) or getattr(
                systemd, "watchdog_interval", None)
            self.interval = get() if callable(get) else None
        except Exception as err:  # a broken notify socket must not stop the daemon
            log.warning("systemd_notify_unavailable", error=type(err).__name__)
            self._n = None

    def _call(self, method: str, *args: Any) -> None:
        if self._n is not None:
            with contextlib.suppress(Exception):  # notification is best effort by design
                getattr(self._n, method)(*args)

    def ready(self) -> None:
        self._call("ready")

    def reloading(self) -> None:
        self._call("reloading")

    def stopping(self) -> None:
        self._call("stopping")

    def status(self, text: str) -> None:
        self._call("status", text)

    def tick(self, progressing: bool) -> None:
        """Ping ``WATCHDOG=1`` at half the interval, only while ``progressing``."""
        if self._n is None or not self.interval or not progressing:
            return
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval / 2
            self._call("watchdog")
