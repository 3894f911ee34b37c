"""Smoke tests: each real service starts, answers, and is stopped by PID."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import aiomqtt
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import TopicAlreadyExistsError

from .procs import (
    ManagedProcess,
    ServiceError,
    free_port,
    port_open,
    require_binary,
    wait_for_port,
)
from .server import Server
from .tansu import FAST_GROUP, TansuBroker, create_topics, wait_for_assignment

# Registers the service fixtures (same module name pytest gives this package).
pytest_plugins = [f"{__package__}.fixtures"]

# -- helpers -----------------------------------------------------------------------


def _consumer(broker: TansuBroker, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **FAST_GROUP,
    )


async def _produce(broker: TansuBroker, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _consume(consumer: AIOKafkaConsumer, n: int) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(10):
        while len(got) < n:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                got.extend(r.value for r in records if r.value is not None)
    return got


# -- procs helpers (no service needed) -------------------------------------------------


def test_require_binary_skips_locally_and_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = "no-such-binary-watchdog-test"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_binary(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require_binary(missing)


def test_managed_process_stops_by_pid() -> None:
    import sys

    port = free_port()
    code = (
        "import socket,time;s=socket.socket();"
        f"s.bind(('127.0.0.1',{port}));s.listen();time.sleep(60)"
    )
    with ManagedProcess("sleeper", [sys.executable, "-c", code]) as proc:
        wait_for_port(port, proc=proc, timeout=10)
        assert proc.running
    assert not proc.running
    assert not port_open("127.0.0.1", port)


class _Listener(Server):
    """A Python process that listens on the port after ``delay`` seconds."""

    name = "listener"

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay

    def command(self) -> list[str]:
        import sys

        code = (
            f"import socket,time;time.sleep({self.delay});s=socket.socket();"
            "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
            f"s.bind(('127.0.0.1',{self.port}));s.listen();time.sleep(60)"
        )
        return [sys.executable, "-c", code]


class _TooSlow(_Listener):
    ready_timeout = 0.5


def test_server_starts_restarts_and_stops_by_pid() -> None:
    with _Listener() as srv:
        assert srv.proc is not None
        assert port_open(srv.host, srv.port)
        pid = srv.proc.pid
        assert srv.restart(kill=True) >= 0
        assert srv.proc.pid != pid
        assert port_open(srv.host, srv.port)
    assert not srv.proc.running
    assert not port_open(srv.host, srv.port)


def test_server_not_ready_by_the_deadline_is_stopped() -> None:
    srv = _TooSlow(delay=60)
    with pytest.raises(ServiceError, match="not ready after"):
        srv.start()
    assert srv.proc is not None
    assert not srv.proc.running
    srv.__exit__(None, None, None)


# -- Kafka protocol (Tansu) ------------------------------------------------------------


@pytest.mark.integration
async def test_tansu_topic_group_and_committed_offset(tansu_broker: TansuBroker) -> None:
    topic, group = "smoke-orders", "smoke-group"
    await create_topics(tansu_broker.bootstrap_servers, [topic], partitions=2)
    with pytest.raises(TopicAlreadyExistsError):
        await create_topics(tansu_broker.bootstrap_servers, [topic], exist_ok=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=tansu_broker.bootstrap_servers)
    await admin.start()
    try:
        assert topic in await admin.list_topics()
    finally:
        await admin.close()

    await _produce(tansu_broker, topic, [b"m0", b"m1", b"m2", b"m3"])

    t0 = time.monotonic()
    consumer = _consumer(tansu_broker, topic, group)
    await consumer.start()  # with topics given, start() waits for the assignment
    try:
        assigned = await wait_for_assignment(consumer, partitions=2)
        join = time.monotonic() - t0
        assert {tp.topic for tp in assigned} == {topic}
        assert sorted(await _consume(consumer, 4)) == [b"m0", b"m1", b"m2", b"m3"]
        await consumer.commit()
    finally:
        await consumer.stop()

    await _produce(tansu_broker, topic, [b"m4", b"m5"])

    # Same group again: resumes at the committed offsets, not at "earliest".
    t0 = time.monotonic()
    consumer = _consumer(tansu_broker, topic, group)
    await consumer.start()
    try:
        await wait_for_assignment(consumer, partitions=2)
        rejoin = time.monotonic() - t0
        assert sorted(await _consume(consumer, 2)) == [b"m4", b"m5"]
        assert await consumer.getmany(timeout_ms=300) == {}
    finally:
        await consumer.stop()
    print(
        f"tansu: start {tansu_broker.startup_seconds:.3f}s, "
        f"first join {join:.2f}s, rejoin {rejoin:.2f}s"
    )


@pytest.mark.integration
@pytest.mark.slow
async def test_tansu_s3_restart_keeps_messages(tansu_s3_broker: TansuBroker) -> None:
    broker = tansu_s3_broker
    topic = "smoke-durable"
    await create_topics(broker.bootstrap_servers, [topic], partitions=1)
    await _produce(broker, topic, [b"a", b"b", b"c"])

    restart = broker.restart(kill=True)  # SIGKILL: no graceful flush

    # subscribe() after start(): the join happens in the background.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers,
        group_id="smoke-after-restart",
        auto_offset_reset="earliest",
        **FAST_GROUP,
    )
    await consumer.start()
    try:
        consumer.subscribe([topic])
        await wait_for_assignment(consumer, partitions=1)
        assert await _consume(consumer, 3) == [b"a", b"b", b"c"]
    finally:
        await consumer.stop()
    print(f"tansu s3: start {broker.startup_seconds:.3f}s, restart {restart:.3f}s")


# -- MQTT --------------------------------------------------------------------------------


@pytest.mark.integration
async def test_mosquitto_qos1_publish_subscribe(mosquitto_broker) -> None:
    mq = mosquitto_broker
    topic = "watchdog/smoke"
    async with (
        aiomqtt.Client(mq.host, mq.port, identifier="smoke-sub") as sub,
        aiomqtt.Client(mq.host, mq.port, identifier="smoke-pub") as pub,
    ):
        await sub.subscribe(topic, qos=1)
        await pub.publish(topic, b"hello", qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(sub.messages))
    assert message.topic.matches(topic)
    assert message.payload == b"hello"
    assert message.qos == 1


# -- Prometheus / Alertmanager ---------------------------------------------------------------


@pytest.mark.integration
def test_prometheus_ready_and_query(prometheus_server) -> None:
    prom = prometheus_server
    assert httpx.get(f"{prom.url}/-/ready", timeout=5).status_code == 200
    assert prom.query("vector(42)")[0]["value"][1] == "42"
    # (The first scrape comes ~5 s after start: target updates are throttled
    # to 5 s. Not waited for here; see Prometheus.wait_for_result.)
    with pytest.raises(ValueError, match="failed"):
        prom.query("sum(")


@pytest.mark.integration
async def test_alertmanager_post_and_get(alertmanager_server) -> None:
    am = alertmanager_server
    now = dt.datetime.now(dt.UTC)
    alert = {
        "labels": {"alertname": "WatchdogSmoke", "severity": "warning"},
        "annotations": {"summary": "smoke test"},
        "startsAt": now.isoformat(),
        "endsAt": (now + dt.timedelta(minutes=5)).isoformat(),
    }
    async with httpx.AsyncClient(base_url=am.url, timeout=5) as client:
        resp = await client.post("/api/v2/alerts", json=[alert])
        assert resp.status_code == 200, resp.text
        # Empty labels: 400; no "labels" key at all fails schema validation: 422.
        bad = await client.post("/api/v2/alerts", json=[{"labels": {}}])
        assert bad.status_code == 400, bad.text
        resp = await client.get("/api/v2/alerts", params={"filter": 'alertname="WatchdogSmoke"'})
        assert resp.status_code == 200
        alerts = resp.json()
    assert [a["labels"]["severity"] for a in alerts] == ["warning"]
    assert alerts[0]["annotations"]["summary"] == "smoke test"
