"""Small helpers to run real service binaries for integration tests.

Every service binds 127.0.0.1 on a free port, logs to a temp file, and is
stopped by PID (terminate, then kill) by whoever started it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import NoReturn

import httpx
import pytest

HOST = "127.0.0.1"

# Debian puts daemons (mosquitto) in /usr/sbin, which is not always on PATH.
_EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Resolved in the parent: the child between fork and exec only calls it.
_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class ServiceError(RuntimeError):
    """A service did not start, or died while it was waited for."""


_GIVEN: set[int] = set()  # ports free_port handed out in this process


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (the kernel's pick), and not one this process
    was handed before: the kernel can pick a port again once its probe socket is closed, and
    two servers started at once would then get the same one; the second fails to bind while
    a readiness check of its URL is answered by the first."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def find_binary(name: str) -> str | None:
    """Path of an executable: PATH, the sbin dirs, then the venv's bin dir."""
    search = os.pathsep.join(
        [os.environ.get("PATH", ""), *_EXTRA_BIN_DIRS, str(Path(sys.executable).parent)]
    )
    return shutil.which(name, path=search)


def require_binary(name: str) -> str:
    """Return the path of ``name`` or stop the test.

    Missing locally: ``pytest.skip``. Missing with ``CI=true``: ``pytest.fail``,
    so a CI job that forgot to install a service cannot pass by skipping.
    """
    path = find_binary(name)
    if path is None:
        missing(f"required binary {name!r} not found (run scripts/install-system-deps.sh)")
    return path


def missing(msg: str) -> NoReturn:
    """A service is unavailable: ``pytest.skip`` locally, ``pytest.fail`` with ``CI=true``."""
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_bound(host: str, port: int) -> bool:
    """Does a socket still hold host:port (so a new server could not bind it)?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def wait_ready(
    check: Callable[[], bool],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "service",
    proc: ManagedProcess | None = None,
) -> float:
    """Poll ``check`` until it returns True; return the seconds it took.

    Raises ServiceError at the deadline, or as soon as ``proc`` exits.
    Exceptions from ``check`` count as "not ready yet".
    """
    start = time.monotonic()
    deadline = start + timeout
    last_exc: BaseException | None = None
    while True:
        if proc is not None and not proc.running:
            raise ServiceError(
                f"{what}: process exited with {proc.returncode} before it was ready\n"
                f"{proc.log_tail()}"
            )
        try:
            if check():
                return time.monotonic() - start
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            tail = proc.log_tail() if proc is not None else ""
            raise ServiceError(
                f"{what}: not ready after {timeout:.1f}s (last error: {last_exc!r})\n{tail}"
            )
        time.sleep(interval)


def wait_for_port(
    port: int,
    host: str = HOST,
    *,
    timeout: float = 10.0,
    proc: ManagedProcess | None = None,
) -> float:
    """Wait until a TCP connect to host:port succeeds; return the seconds it took."""
    return wait_ready(
        lambda: port_open(host, port), timeout=timeout, what=f"{host}:{port}", proc=proc
    )


def wait_for_http(
    url: str,
    *,
    timeout: float = 10.0,
    proc: ManagedProcess | None = None,
) -> float:
    """Wait until GET url answers 200; return the seconds it took."""

    def check() -> bool:
        return httpx.get(url, timeout=1.0).status_code == 200

    return wait_ready(check, timeout=timeout, what=url, proc=proc)


class ManagedProcess:
    """Start a command, log its output to a file, stop it by PID on exit.

    ``with ManagedProcess("mosquitto", ["mosquitto", "-c", cfg]) as proc: ...``

    On exit it sends SIGTERM, waits ``stop_timeout`` seconds, then SIGKILL. If
    the block raised, the log tail is written to stderr (pytest shows it with
    the failure). The log file is removed after a clean run, kept otherwise.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        stop_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.stop_timeout = stop_timeout
        self._own_log = log_path is None
        if log_path is None:
            fd, tmp = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
            os.close(fd)
            log_path = tmp
        self.log_path = Path(log_path)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = False  # stop() was called (an exit after it is expected)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> ManagedProcess:
        if self.running:
            raise ServiceError(f"{self.name} is already running (pid {self.pid})")
        self._stopped = False
        with self.log_path.open("ab") as log:
            log.write(f"--- start: {' '.join(self.argv)}\n".encode())
            log.flush()
            # Same process group as the test run (killing the run's group kills
            # the service too) and, when started from the main thread, SIGTERM
            # on the parent's death, so a SIGKILLed pytest leaves no strays.
            # (PDEATHSIG follows the forking *thread*: not used from others.)
            on_main = threading.current_thread() is threading.main_thread()
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                preexec_fn=_die_with_parent if on_main and _PRCTL is not None else None,
            )
        return self

    def stop(self, *, kill: bool = False) -> int | None:
        """Stop the process by PID: SIGTERM (or SIGKILL at once if ``kill``).

        Returns the exit code (None if it was never started).
        """
        proc = self._proc
        if proc is None:
            return None
        self._stopped = True
        if proc.poll() is None:
            if kill:
                proc.kill()
            else:
                proc.terminate()
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=self.stop_timeout)
        return proc.returncode

    def restart(self, *, kill: bool = False) -> ManagedProcess:
        self.stop(kill=kill)
        return self.start()

    # -- state -------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.name} log ({self.log_path}):\n" + "\n".join(
            tail
        )

    # -- context manager ---------------------------------------------------
    def __enter__(self) -> ManagedProcess:
        return self.start() if not self.running else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        died = self._proc is not None and self._proc.poll() is not None and not self._stopped
        self.stop()
        failed = exc_type is not None and not issubclass(exc_type, pytest.skip.Exception)
        if failed or died:
            reason = "failure" if failed else f"exit code {self.returncode} before stop"
            sys.stderr.write(f"\n[{self.name} pid {self.pid}: {reason}]\n{self.log_tail()}\n")
        elif self._own_log:
            with contextlib.suppress(OSError):
                self.log_path.unlink()
