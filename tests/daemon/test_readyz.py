"""``/readyz`` says ready only once the state topics are loaded and the consumer group has
assigned this instance its partitions (real Tansu broker; the first join takes seconds)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.daemon.helpers import World
from tests.daemon.kafkautil import daemon_config, make_topics, produce_state
from tests.services.procs import free_port
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.daemon.metrics import Metrics

pytestmark = pytest.mark.integration


async def test_ready_only_after_the_state_and_the_assignment(
        tansu_broker, world: World, tmp_path: Path) -> None:
    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=2)
    await produce_state(bs, world)
    listen = f"127.0.0.1:{free_port()}"
    cfg = load_config(str(daemon_config(tmp_path / "watchdog.yaml", bs, listen=listen)))
    svc = Service(cfg, world.engine(), metrics=Metrics())
    reasons: set[str] = set()
    run = asyncio.create_task(svc.run())
    try:
        async with httpx.AsyncClient(base_url=f"http://{listen}") as http:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 40
            while True:
                try:
                    r = await http.get("/readyz")
                except httpx.TransportError:  # not listening yet
                    await asyncio.sleep(0.02)
                    continue
                body = r.json()
                if r.status_code == 200:
                    break
                assert r.status_code == 503
                reasons.update(body["reasons"])
                assert loop.time() < deadline, f"never ready: {body}"
                await asyncio.sleep(0.02)
            kafka = svc.sources[0]
            # ready implies: state loaded, partitions assigned (and said in the answer)
            assert svc.state is not None
            assert svc.state.loaded.is_set()
            assert kafka.assigned == {0, 1}  # type: ignore[attr-defined]
            # and which of them are idle (a stop then processes the reorder buffer)
            idle = body.pop("idle")
            assert body == {"status": "ok", "partitions": [0, 1]}
            assert set(idle) <= {0, 1}
        assert "no partitions assigned yet (joining the consumer group)" in reasons
    finally:
        svc.request_stop()
        assert await asyncio.wait_for(run, 20) == 0
