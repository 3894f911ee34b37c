"""The rules and the anomaly services on one host with the same configuration (docs/operations.md
"The anomaly model as a service of its own": `watchdog run --only rules` and `--only anomaly`),
access events over MQTT through a shared subscription, alerts to one JSONL file and one audit
trail: against the real mosquitto (and Tansu for the directory).

Each service must read every event (the anomaly service under identities of its own: the same
MQTT client id would make the broker disconnect one for the other, the same share name would
split the messages between them), and both must write to the one file and the one hash chain
(the audit trail's owner lock is the rules service's; the anomaly service appends beside it).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import orjson
import pytest
import yaml

from tests.daemon.helpers import cancel_all, stop_all, wait_for
from tests.daemon.kafkautil import insider_topics
from watchdog.audit.trail import verify
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.daemon.metrics import Metrics

pytestmark = pytest.mark.integration

SHARED = "$share/watchdog/logs/+/access"


def _service(cfg_path: Path, only: str, model: Path) -> Service:
    """A daemon of the insider world in this process with the sinks its configuration names."""
    from tests.anomaly.conftest import make_engine
    from watchdog.anomaly.stage import load_stage

    cfg = load_config(str(cfg_path), overrides={"detection.only": only})
    engine = make_engine()
    stages = [load_stage(model, engine, warmup=6 * 3600.0)] if only == "anomaly" else []
    return Service(cfg, engine, metrics=Metrics(), stages=stages, listen=False)


async def test_rules_and_anomaly_services_share_a_host(
        tansu_broker, mosquitto_broker, model_dir: Path, tmp_path: Path) -> None:
    mq = mosquitto_broker
    docs = await insider_topics(tansu_broker.bootstrap_servers, 1)
    jsonl, audit = tmp_path / "alerts.jsonl", tmp_path / "audit.jsonl"
    cfg_path = tmp_path / "watchdog.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "kafka": {"bootstrap": tansu_broker.bootstrap_servers, "consume": False},
        "mqtt": {"host": mq.host, "port": mq.port, "subscribe": [SHARED],
                 "idle_after_seconds": 0.5,
                 "checkpoint": {"path": str(tmp_path / "mqtt.checkpoint")}},
        "detection": {"lateness_seconds": 60},
        "delivery": {"retry_initial_seconds": 0.05, "retry_max_seconds": 0.5},
        "model": str(model_dir),
        "model_state": {"path": str(tmp_path / "anomaly.state")},
        "sinks": {"jsonl": {"path": str(jsonl)}, "audit": {"path": str(audit)}},
        "shutdown_timeout_seconds": 8,
    }))
    rules = _service(cfg_path, "rules", model_dir)
    anomaly = _service(cfg_path, "anomaly", model_dir)
    assert rules.cfg.mqtt is not None
    assert anomaly.cfg.mqtt is not None
    assert (rules.cfg.mqtt.client_id, anomaly.cfg.mqtt.client_id) == (
        "watchdog", "watchdog-anomaly")
    assert anomaly.cfg.mqtt.subscribe == ["$share/watchdog-anomaly/logs/+/access"]

    services = [rules, anomaly]
    runs = [asyncio.create_task(s.run()) for s in services]
    try:
        await wait_for(lambda: all(s.started.is_set() for s in services), within=30,
                       what="both services consuming")
        async with aiomqtt.Client(mq.host, mq.port, identifier="test-shipper") as c:
            for raw in docs:
                await c.publish("logs/crm/access", raw, qos=1)
        for s in services:
            p = s.pipeline
            await wait_for(lambda p=p: p.detector.processed + len(p.order) == len(docs)
                           and p.all_idle(), within=90,
                           what="every event read by each service")
        await wait_for(lambda: anomaly.delivery.pending == 0 and rules.delivery.pending == 0
                       and anomaly.metrics.registry.get_sample_value(
                           "watchdog_sink_sent_total", {"sink": "audit"}) is not None,
                       within=30, what="the alerts delivered")
        await stop_all(services, runs, 30)
    finally:
        cancel_all(services, runs)

    sent = {name: {s: svc.metrics.registry.get_sample_value(
        "watchdog_sink_sent_total", {"sink": s}) or 0 for s in ("jsonl", "audit")}
        for name, svc in (("rules", rules), ("anomaly", anomaly))}
    assert sent["anomaly"]["audit"] > 0, sent
    assert sent["rules"]["audit"] > 0, sent

    lines = [orjson.loads(x) for x in jsonl.read_bytes().splitlines()]  # every line whole
    by_rule = {d["rule"] for d in lines}
    assert "anomaly" in by_rule, by_rule
    assert len(by_rule) > 1, by_rule
    ids = [d["alert_id"] for d in lines]
    assert len(ids) == len(set(ids)) == sent["rules"]["jsonl"] + sent["anomaly"]["jsonl"]

    # one chain, both services' alerts in it, each once, the same as the JSONL file's
    result = verify(audit)
    assert result.ok, result.problem
    trail = [orjson.loads(x)["alert"] for x in audit.read_bytes().splitlines()]
    assert sorted(d["alert_id"] for d in trail) == sorted(ids)
