"""Alerts to the Kafka ``alerts`` topic: key = ``alert_id``, value = the alert document.

The producer is shared with the dead-letter queue and uses acks=all (and idempotence when the
broker supports it, see :func:`~watchdog.daemon.kafka_client.start_producer`). A batch counts
as delivered when every record of it is acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from watchdog.alerts.model import Alert, encode_alert


class KafkaSink:
    name = "kafka"

    def __init__(self, producer: Any, topic: str, timeout: float = 30.0) -> None:
        self.producer = producer
        self.topic = topic
        self.timeout = timeout

    async def start(self) -> None:
        pass  # the service starts the shared producer

    async def send(self, alerts: Sequence[Alert]) -> None:
        send = self.producer.send
        topic = self.topic
        futures = [await send(topic, value=encode_alert(a), key=a.alert_id.encode())
                   for a in alerts]
        await asyncio.gather(*futures)

    async def close(self) -> None:
        pass
