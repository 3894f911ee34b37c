"""pytest fixtures that start real services on 127.0.0.1 and free ports.

Use from a conftest (``pytest_plugins = ["services.fixtures"]``, the module name
pytest gives it with tests/ on sys.path) or import the fixtures into a test
module. Every fixture stops what it started, by PID, at teardown; if a test
using it failed, the service's log tail is written to the terminal.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import pytest

from .alertmanager import Alertmanager
from .mosquitto import Mosquitto
from .procs import ManagedProcess, require_binary
from .prometheus import Prometheus
from .tansu import MotoS3, TansuBroker, create_topics, wait_for_assignment

__all__ = [
    "alertmanager_factory",
    "alertmanager_server",
    "create_topics",
    "mosquitto_broker",
    "moto_s3",
    "prometheus_factory",
    "prometheus_server",
    "require_binary",
    "tansu_broker",
    "tansu_broker_module",
    "tansu_s3_broker",
    "unique_name",
    "wait_for_assignment",
]


class _Service(Protocol):
    proc: ManagedProcess | None

    def start(self) -> Any: ...

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None: ...


S = TypeVar("S", bound=_Service)


def unique_name(prefix: str = "t") -> str:
    """A topic / group / client id that no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _show_log(request: pytest.FixtureRequest, svc: _Service) -> None:
    proc = svc.proc
    if proc is None:
        return
    proc.stop()  # a graceful exit flushes buffered log output first
    text = f"\n[{proc.name} pid {proc.pid}, a test using it failed]\n{proc.log_tail()}\n"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(text)
    else:  # pragma: no cover - no terminal (e.g. -p no:terminal)
        print(text)


def _serve(request: pytest.FixtureRequest, svc: S) -> Iterator[S]:
    failed_before = request.session.testsfailed
    try:
        svc.start()
        yield svc
    finally:
        if request.session.testsfailed > failed_before:
            _show_log(request, svc)
        svc.__exit__(None, None, None)


# -- Kafka protocol (Tansu) ------------------------------------------------------


@pytest.fixture
def tansu_broker(request: pytest.FixtureRequest) -> Iterator[TansuBroker]:
    """A fresh memory:// broker per test (starts in well under 100 ms)."""
    yield from _serve(request, TansuBroker())


@pytest.fixture(scope="module")
def tansu_broker_module(request: pytest.FixtureRequest) -> Iterator[TansuBroker]:
    """One memory:// broker shared by a module; use unique_name() topics/groups."""
    yield from _serve(request, TansuBroker())


@pytest.fixture(scope="module")
def moto_s3(request: pytest.FixtureRequest) -> Iterator[MotoS3]:
    """A local moto S3 server (start ~1-2 s, hence module scope)."""
    yield from _serve(request, MotoS3())


@pytest.fixture
def tansu_s3_broker(request: pytest.FixtureRequest, moto_s3: MotoS3) -> Iterator[TansuBroker]:
    """A broker on s3://<fresh bucket>/: topics, messages and offsets survive restart()."""
    yield from _serve(request, TansuBroker(s3=moto_s3))


# -- MQTT ------------------------------------------------------------------------


@pytest.fixture
def mosquitto_broker(request: pytest.FixtureRequest) -> Iterator[Mosquitto]:
    yield from _serve(request, Mosquitto())


# -- Prometheus / Alertmanager -------------------------------------------------------


@pytest.fixture
def prometheus_server(request: pytest.FixtureRequest) -> Iterator[Prometheus]:
    """Prometheus scraping only itself every 1 s."""
    yield from _serve(request, Prometheus())


@pytest.fixture
def prometheus_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Prometheus]]:
    """``prom = prometheus_factory(scrape_targets=[...], rules=..., alertmanager=...)``."""
    yield from _factory(request, Prometheus)


@pytest.fixture
def alertmanager_server(request: pytest.FixtureRequest) -> Iterator[Alertmanager]:
    """Alertmanager with a receiver that sends nowhere."""
    yield from _serve(request, Alertmanager())


@pytest.fixture
def alertmanager_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Alertmanager]]:
    """``am = alertmanager_factory(webhook_url="http://127.0.0.1:PORT/hook")``."""
    yield from _factory(request, Alertmanager)


def _factory(request: pytest.FixtureRequest, cls: Callable[..., S]) -> Iterator[Callable[..., S]]:
    started: list[S] = []
    failed_before = request.session.testsfailed

    def make(**kwargs: Any) -> S:
        svc = cls(**kwargs)
        started.append(svc)
        svc.start()
        return svc

    try:
        yield make
    finally:
        failed = request.session.testsfailed > failed_before
        for svc in reversed(started):
            if failed:
                _show_log(request, svc)
            svc.__exit__(None, None, None)
