"""pytest fixtures that start real services on 127.0.0.1 and free ports.

Use from a conftest (``pytest_plugins = ["services.fixtures"]``, the module name
pytest gives it with tests/ on sys.path) or import the fixtures into a test
module. Every fixture stops what it started, by PID, at teardown; if a test
using it failed, the service's log tail is written to the terminal.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from .alertmanager import Alertmanager
from .mosquitto import Mosquitto
from .procs import require_binary
from .prometheus import Prometheus
from .server import Server
from .tansu import MotoS3, TansuBroker, create_topics, wait_for_assignment

__all__ = [
    "alertmanager_factory",
    "alertmanager_server",
    "create_topics",
    "mosquitto_broker",
    "mosquitto_broker_module",
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


S = TypeVar("S", bound=Server)


def unique_name(prefix: str = "t") -> str:
    """A topic / group / client id that no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def _stopping(request: pytest.FixtureRequest, started: list[S]) -> Iterator[None]:
    """Stop every server in ``started`` at the end; first show their logs if a test failed."""
    failed_before = request.session.testsfailed
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    write = print if reporter is None else reporter.write_line
    try:
        yield
    finally:
        failed = request.session.testsfailed > failed_before
        for svc in reversed(started):
            if failed:
                svc.write_log_tail(write)
            svc.__exit__(None, None, None)


def _serve(request: pytest.FixtureRequest, svc: S) -> Iterator[S]:
    with _stopping(request, [svc]):
        yield svc.start()


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


@pytest.fixture(scope="module")
def mosquitto_broker_module(request: pytest.FixtureRequest) -> Iterator[Mosquitto]:
    """One mosquitto shared by a module; use unique_name() topics and client ids."""
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

    def make(**kwargs: Any) -> S:
        svc = cls(**kwargs)
        started.append(svc)
        return svc.start()

    with _stopping(request, started):
        yield make
