"""systemd integration without libsystemd: sd_notify, the watchdog interval, credentials.

- ``Notifier.from_env()`` talks to ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the
  abstract namespace) with AF_UNIX datagrams, as sd_notify(3) does. It returns None
  when the process was not started by systemd with ``Type=notify``: every call site
  can then skip notifications with one ``if``.
- ``watchdog_interval()`` reads ``WATCHDOG_USEC``/``WATCHDOG_PID`` (``WatchdogSec=``)
  and returns that interval in seconds; send ``WATCHDOG=1`` every half of it.
- ``credential(name)`` reads ``$CREDENTIALS_DIRECTORY/<name>`` (``LoadCredential=``,
  or a Kubernetes Secret volume whose mount path the pod puts in
  ``CREDENTIALS_DIRECTORY``). ``pseudonym_key_from_credentials()`` is the pseudonym
  key from the credential ``pseudonym-key``. ``credentials_as_env(vars)`` turns the
  credentials named after secret environment variables (``WATCHDOG_KAFKA_SASL_PASSWORD``
  -> ``kafka-sasl-password``) into those variables, for the config loader.

Nothing here raises because systemd is absent; a send that fails is logged once
and otherwise ignored (a notification is advice to the service manager, never a
reason for the daemon to stop).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "CREDENTIALS_ENV",
    "PSEUDONYM_KEY_CREDENTIAL",
    "Notifier",
    "credential",
    "credential_name",
    "credentials_as_env",
    "pseudonym_key_from_credentials",
    "watchdog_interval",
]

log = logging.getLogger(__name__)

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
PSEUDONYM_KEY_CREDENTIAL = "pseudonym-key"


def _socket_address(value: str) -> str | bytes:
    """``@name`` is the abstract namespace (a leading NUL byte on the wire)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


class Notifier:
    """Sends sd_notify(3) state strings to the service manager.

    ``ready()`` once the daemon serves (consumers joined, state loaded);
    ``watchdog()`` every ``watchdog_interval() / 2`` seconds while the main loop is
    healthy; ``reloading()`` then ``ready()`` around a SIGHUP reload;
    ``stopping()`` when SIGTERM arrives; ``status(text)`` for ``systemctl status``.
    """

    def __init__(self, address: str) -> None:
        if not address or not (address.startswith("/") or address.startswith("@")):
            raise ValueError(f"NOTIFY_SOCKET must be an absolute path or @abstract: {address!r}")
        self.address = address
        self._target = _socket_address(address)
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier | None:
        """A notifier for ``$NOTIFY_SOCKET``, or None when it is unset or unusable."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if not address:
            return None
        try:
            return cls(address)
        except ValueError as err:
            log.warning("ignoring NOTIFY_SOCKET: %s", err)
            return None

    # -- the messages -----------------------------------------------------------
    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        # systemd >= 253 wants MONOTONIC_USEC with RELOADING=1; older ones ignore it.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; True when it was sent."""
        for line in assignments:
            if "\n" in line or "=" not in line:
                raise ValueError(f"not a single KEY=VALUE line: {line!r}")
        payload = "\n".join(assignments).encode()
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                # Never block the event loop: a full receive queue is a failed send.
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(payload, self._target)
        except OSError as err:
            if not self._warned:
                log.warning("sd_notify to %s failed: %s", self.address, err)
                self._warned = True
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """The ``WatchdogSec=`` interval in seconds, or None. Ping ``WATCHDOG=1`` at least
    every half of it (sd_watchdog_enabled(3)): ``period = watchdog_interval() / 2``.

    None when ``WATCHDOG_USEC`` is unset, not a positive integer, or when
    ``WATCHDOG_PID`` names another process (the variable was inherited).
    """
    env = os.environ if environ is None else environ
    usec_text = env.get("WATCHDOG_USEC", "")
    if not usec_text:
        return None
    try:
        usec = int(usec_text)
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid_text = env.get("WATCHDOG_PID", "")
    if pid_text:
        try:
            if int(pid_text) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 1_000_000


def credential(name: str, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The bytes of credential ``name`` from ``$CREDENTIALS_DIRECTORY``, or None.

    None when the variable is unset or the file does not exist. One trailing
    newline (``\\n`` or ``\\r\\n``) is dropped, so a key written with ``echo`` or
    ``openssl rand -hex 32 >file`` gives the same bytes as the same text in an
    environment variable. Other read errors (permissions) raise OSError: a
    credential that is there but unreadable is a deployment mistake to report.
    """
    if not name or "/" in name or name in {".", ".."}:
        raise ValueError(f"not a credential name: {name!r}")
    env = os.environ if environ is None else environ
    directory = env.get(CREDENTIALS_ENV, "")
    if not directory:
        return None
    path = Path(directory) / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    return data


def credential_name(env_var: str) -> str:
    """``WATCHDOG_KAFKA_SASL_PASSWORD`` -> ``kafka-sasl-password`` (the credential file name)."""
    name = env_var.removeprefix("WATCHDOG_")
    return name.lower().replace("_", "-")


def credentials_as_env(
    env_vars: Iterable[str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``{VAR: value}`` for each secret variable in ``env_vars`` that is *not* set in the
    environment but has a credential file (see ``credential_name``).

    The environment wins over a credential, so a developer's export still works:
    ``load_config(path, env={**credentials_as_env(ENV_SECRETS), **os.environ})``.
    """
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for var in env_vars:
        if env.get(var):
            continue
        value = credential(credential_name(var), env)
        if value:
            out[var] = value.decode()
    return out


def pseudonym_key_from_credentials(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The pseudonym key from ``$CREDENTIALS_DIRECTORY/pseudonym-key``, or None.

    An empty file counts as absent (a Kubernetes Secret left at its empty
    placeholder), so the daemon refuses to start instead of using no key.
    """
    key = credential(PSEUDONYM_KEY_CREDENTIAL, environ)
    return key or None
