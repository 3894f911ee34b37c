"""The lifecycle every test server shares; each service module gives only its own parts."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from .procs import (
    HOST,
    ManagedProcess,
    ServiceError,
    free_port,
    port_bound,
    wait_for_http,
    wait_for_port,
    wait_ready,
)


class Server:
    """A service on 127.0.0.1 and a free port, stopped by PID by whoever started it.

    ``with Sub() as srv: ...`` or ``srv.start()`` ... ``srv.__exit__(None, None, None)``.

    A subclass sets ``name`` (of its process and log), ``ready_timeout``, ``scheme``
    (of ``url``) and ``ready_path`` (readiness: GET ``url + ready_path`` answers 200; None:
    the port accepts TCP connections), and gives :meth:`command`, which calls
    ``require_binary`` or the like so that a missing service skips locally and fails with
    CI=true, and may write its config into :meth:`workdir`. :meth:`environment` is optional.

    A server not ready by the deadline is stopped and ServiceError (with its log tail)
    raised. On exit it is stopped (SIGTERM, SIGKILL after a timeout) and the work dir
    removed; if the block raised, the log tail goes to stderr.
    """

    name: ClassVar[str]
    ready_timeout: ClassVar[float] = 10.0
    ready_path: ClassVar[str | None] = None
    scheme: ClassVar[str] = "http"

    def __init__(self, *, port: int | None = None) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.address = f"{self.host}:{self.port}"
        self.url = f"{self.scheme}://{self.address}"
        self.proc: ManagedProcess | None = None
        self.startup_seconds = 0.0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # -- what a subclass gives -------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The process's environment (None: this one's), asked for after :meth:`command`."""
        return None

    def workdir(self) -> Path:
        """A temp dir for config and data, the process's cwd, removed on exit."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"{self.name}-")
        return Path(self._tmp.name)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Self:
        argv = self.command()
        self.proc = ManagedProcess(
            self.name,
            argv,
            env=self.environment(),
            cwd=None if self._tmp is None else self._tmp.name,
        )
        self.startup_seconds = self._launch(self.proc)
        return self

    def _launch(self, proc: ManagedProcess) -> float:
        """Start ``proc`` and wait until it is ready; the seconds that took."""
        t0 = time.monotonic()
        proc.start()
        try:
            if self.ready_path is None:
                wait_for_port(self.port, self.host, timeout=self.ready_timeout, proc=proc)
            else:
                url = f"{self.url}{self.ready_path}"
                wait_for_http(url, timeout=self.ready_timeout, proc=proc)
        except BaseException:
            if proc.running:  # not ready in time: no stray left behind
                proc.stop()
            raise
        return time.monotonic() - t0

    def stop(self, *, kill: bool = False) -> int | None:
        """SIGTERM (SIGKILL if ``kill``) by PID; the exit code (None if never started)."""
        return None if self.proc is None else self.proc.stop(kill=kill)

    def restart(self, *, kill: bool = False) -> float:
        """Stop and start again on the same port (same log); the seconds until ready."""
        if self.proc is None:
            raise ServiceError(f"{self.name} was never started")
        self.proc.stop(kill=kill)
        # The old socket must be gone before the new process binds.
        wait_ready(lambda: not port_bound(self.host, self.port), timeout=5.0, what="port free")
        return self._launch(self.proc)

    def write_log_tail(self, write: Callable[[str], None]) -> None:
        """Stop (a graceful exit flushes buffered output) and ``write`` the log tail."""
        proc = self.proc
        if proc is None:
            return
        proc.stop()
        write(f"\n[{proc.name} pid {proc.pid}, a test using it failed]\n{proc.log_tail()}\n")

    def __enter__(self) -> Self:
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
                self._tmp = None
