"""``watchdog_metrics_target``: a /metrics endpoint of a watchdog under simulated traffic.

Preferred: the real daemon, ``python -m watchdog run --demo --config CFG``, against a
real Tansu broker, with a background producer sending access events (valid ones,
violations, and invalid documents) for as long as the fixture lives.

Fallback: while ``watchdog run`` is not available (``watchdog.daemon.cli`` cannot be
imported), a tiny prometheus_client script (fake_exporter.py) that exposes the same
metric names. ``WATCHDOG_METRICS_TARGET=fake`` forces the fallback,
``WATCHDOG_METRICS_TARGET=daemon`` forbids it. Once the daemon module exists it is
always used, so a broken daemon cannot hide behind the stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.util
import itertools
import json
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services.fixtures import unique_name
from tests.services.procs import ManagedProcess, free_port, wait_for_http
from tests.services.tansu import TansuBroker, create_topics

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


@dataclass(frozen=True)
class MetricsTarget:
    address: str  # host:port to scrape
    mode: str  # "daemon" or "fake"
    proc: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def daemon_available() -> bool:
    try:
        return importlib.util.find_spec("watchdog.daemon.cli") is not None
    except ImportError:
        return False


def target_mode() -> str:
    wanted = os.environ.get("WATCHDOG_METRICS_TARGET", "").strip().lower()
    if wanted == "fake":
        return "fake"
    if daemon_available():
        return "daemon"
    if wanted == "daemon":
        pytest.fail("WATCHDOG_METRICS_TARGET=daemon but watchdog.daemon.cli is missing",
                    pytrace=False)
    return "fake"


# -- simulated traffic ----------------------------------------------------------------

DIRECTORY = [
    {"user_id": "e10042", "status": "active", "effective": "2025-04-01T00:00:00+09:00",
     "roles": ["support_agent"], "department": "customer support"},
    {"user_id": "e10120", "status": "active", "effective": "2025-04-01T00:00:00+09:00",
     "roles": ["marketing"]},
    {"user_id": "e10300", "status": "active", "effective": "2025-04-01T00:00:00+09:00",
     "roles": ["billing"]},
    {"user_id": "e10977", "status": "departed", "effective": "2025-11-15T18:00:00+09:00",
     "roles": []},
]
SUBJECTS = [
    {"subject_id": "c-000002", "type": "marketing_opt_out", "effective": "2025-01-01T00:00:00Z"},
]


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def traffic(n: int, now: dt.datetime) -> tuple[str, bytes]:
    """The n-th simulated message: (Kafka key, value) with event time ``now``."""
    seq = n + 1
    ts = _iso(now)
    kind = n % 10
    if kind == 7:
        return "e10042", b'{"not json'
    if kind == 8:  # JSON, but not an access event (no @timestamp, no event)
        return "e10042", json.dumps({"user": {"id": "e10042"}}).encode()
    if kind == 3:  # departed account logs in: revoked_account (critical)
        event = {"@timestamp": ts, "event": {"id": f"idp-{seq}", "action": "login",
                                             "outcome": "success", "dataset": "idp.auth"},
                 "user": {"id": "e10977"}, "source": {"ip": "10.1.2.3"}}
    elif kind == 5:  # marketing to an opted-out subject, written to USB (critical)
        event = {"@timestamp": ts, "event": {"id": f"mkt-{seq}", "action": "export",
                                             "dataset": "mkt.audit"},
                 "user": {"id": "e10120"}, "source": {"ip": "10.1.2.4"},
                 "data": {"resource": "mkt.segments", "categories": ["contact"],
                          "subject_ids": ["c-000002"], "purpose": "marketing"},
                 "destination": {"kind": "external_media"}}
    elif kind == 9:  # an account the directory has never seen: unknown_account
        event = {"@timestamp": ts, "event": {"id": f"crm-x{seq}", "action": "read",
                                             "dataset": "crm.audit"},
                 "user": {"id": "e99999"}, "source": {"ip": "10.1.2.5"},
                 "data": {"resource": "crm.customers", "categories": ["identity"],
                          "subject_ids": ["c-000311"], "purpose": "customer_support"}}
    else:  # ordinary support work
        event = {"@timestamp": ts, "event": {"id": f"crm-{seq}", "action": "read",
                                             "outcome": "success", "dataset": "crm.audit"},
                 "user": {"id": "e10042"}, "source": {"ip": "10.4.12.9"},
                 "data": {"resource": "crm.customers", "categories": ["identity", "contact"],
                          "subject_ids": [f"c-{n % 500:06d}"], "records": 1,
                          "purpose": "customer_support"}}
    return str(event["user"]["id"]), json.dumps(event).encode()  # type: ignore[index]


class TrafficProducer:
    """Produces simulated access events to Kafka from a thread, ``rate`` per second."""

    def __init__(self, bootstrap: str, topic: str, *, rate: float = 20.0,
                 max_seconds: float = 300.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.rate = rate
        self.max_seconds = max_seconds
        self.sent = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self) -> TrafficProducer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as exc:  # reported by the fixture
            self.error = exc

    async def _produce(self) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.max_seconds
            for n in itertools.count():
                if self._stop.is_set() or loop.time() > deadline:
                    break
                key, value = traffic(n, dt.datetime.now(dt.UTC))
                await producer.send_and_wait(self.topic, value, key=key.encode())
                self.sent += 1
                await asyncio.sleep(1 / self.rate)
        finally:
            await producer.stop()


async def _seed(bootstrap: str, topics: dict[str, str]) -> None:
    from aiokafka import AIOKafkaProducer

    await create_topics(bootstrap, [topics["access_logs"]], partitions=2)
    await create_topics(bootstrap, [topics[k] for k in ("directory", "subjects", "alerts", "dlq")])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for rec in DIRECTORY:
            await producer.send_and_wait(topics["directory"], json.dumps(rec).encode(),
                                         key=str(rec["user_id"]).encode())
        for rec in SUBJECTS:
            await producer.send_and_wait(topics["subjects"], json.dumps(rec).encode(),
                                         key=f"{rec['subject_id']}/{rec['type']}".encode())
    finally:
        await producer.stop()


def _daemon_config(path: Path, bootstrap: str, port: int, topics: dict[str, str]) -> None:
    cfg = {
        "listen": f"127.0.0.1:{port}",
        "log_level": "info",
        "kafka": {"bootstrap": bootstrap, "group": unique_name("watchdog"),
                  "heartbeat_interval_ms": 300, "idle_after_seconds": 1.0,
                  "commit_interval_seconds": 0.5},
        "topics": topics,
        "detection": {"lateness_seconds": 1.0},
        "sinks": {"kafka": {}, "jsonl": {"path": str(path.parent / "alerts.jsonl")}},
    }
    path.write_text(json.dumps(cfg, indent=2))  # JSON is YAML


@contextlib.contextmanager
def _run_daemon(tmp: Path, broker: TansuBroker) -> Iterator[MetricsTarget]:
    topics = {"access_logs": unique_name("access-logs"), "directory": unique_name("directory"),
              "subjects": unique_name("subjects"), "alerts": unique_name("alerts"),
              "dlq": unique_name("dlq")}
    asyncio.run(_seed(broker.bootstrap_servers, topics))
    port = free_port()
    cfg = tmp / "watchdog.yaml"
    _daemon_config(cfg, broker.bootstrap_servers, port, topics)
    env = dict(os.environ)
    env.setdefault("WATCHDOG_PSEUDONYM_KEY", "test-key-0123456789abcdef")
    proc = ManagedProcess("watchdog", [sys.executable, "-m", "watchdog", "run", "--demo",
                                       "--config", str(cfg)], env=env, cwd=ROOT)
    producer = TrafficProducer(broker.bootstrap_servers, topics["access_logs"])
    with proc:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", timeout=60.0, proc=proc)
        producer.start()
        try:
            yield MetricsTarget(f"127.0.0.1:{port}", "daemon", proc)
        finally:
            producer.stop()
        if producer.error is not None:
            raise RuntimeError(f"traffic producer failed: {producer.error!r}")


@contextlib.contextmanager
def _run_fake() -> Iterator[MetricsTarget]:
    port = free_port()
    proc = ManagedProcess("fake-watchdog", [sys.executable, str(HERE / "fake_exporter.py"),
                                            "--port", str(port), "--max-seconds", "300"])
    with proc:
        wait_for_http(f"http://127.0.0.1:{port}/metrics", timeout=20.0, proc=proc)
        yield MetricsTarget(f"127.0.0.1:{port}", "fake", proc)


@pytest.fixture(scope="module")
def watchdog_metrics_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MetricsTarget]:
    mode = target_mode()
    if mode == "daemon":
        broker = request.getfixturevalue("tansu_broker_module")
        with _run_daemon(tmp_path_factory.mktemp("watchdog"), broker) as target:
            yield target
        return
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            "tests/grafana: `watchdog run` unavailable, scraping fake_exporter.py instead")
    with _run_fake() as target:
        yield target
