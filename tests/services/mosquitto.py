"""Debian mosquitto on 127.0.0.1:free-port (anonymous, no persistence)."""

from __future__ import annotations

import getpass
import tempfile
import time
from pathlib import Path
from types import TracebackType

from .procs import HOST, ManagedProcess, free_port, require_binary, wait_for_port


class Mosquitto:
    """``with Mosquitto() as mq: aiomqtt.Client(mq.host, mq.port)``.

    ``extra_config`` lines are appended to the generated mosquitto.conf.
    """

    def __init__(self, *, port: int | None = None, extra_config: str = "") -> None:
        self.host = HOST
        self.port = port or free_port()
        self.url = f"mqtt://{self.host}:{self.port}"
        self.extra_config = extra_config
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.proc: ManagedProcess | None = None
        self.startup_seconds = 0.0

    def start(self) -> Mosquitto:
        binary = require_binary("mosquitto")
        self._tmp = tempfile.TemporaryDirectory(prefix="mosquitto-")
        tmp = Path(self._tmp.name)
        conf = tmp / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    # Without an explicit listener mosquitto 2 binds localhost:1883.
                    f"listener {self.port} {self.host}",
                    "allow_anonymous true",
                    # As root it would switch to user "mosquitto": that clears
                    # the parent-death signal and cannot read our temp dir.
                    f"user {getpass.getuser()}",
                    "persistence false",
                    "log_dest stderr",  # unbuffered, unlike stdout to a file
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    self.extra_config,
                    "",
                ]
            )
        )
        self.proc = ManagedProcess("mosquitto", [binary, "-c", str(conf)], cwd=tmp)
        t0 = time.monotonic()
        self.proc.start()
        wait_for_port(self.port, self.host, timeout=10.0, proc=self.proc)
        self.startup_seconds = time.monotonic() - t0
        return self

    def restart(self, *, kill: bool = False) -> None:
        assert self.proc is not None, "not started"
        self.proc.restart(kill=kill)
        wait_for_port(self.port, self.host, timeout=10.0, proc=self.proc)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.proc is not None:
                self.proc.__exit__(exc_type, exc, tb)
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
