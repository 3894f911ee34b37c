"""``watchdog run``: parse flags, load config, key and policy (failing in one line), run the
service until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import msgspec

from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="watchdog.yaml (default: built-in defaults)")
    p.add_argument("--kafka-bootstrap", metavar="HOST:PORT",
                   help="Kafka bootstrap servers (default localhost:9092)")
    p.add_argument("--policy", help="policy YAML/JSON (default: the embedded default policy)")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="serve /metrics, /healthz, /readyz here (default 127.0.0.1:9464)")
    p.add_argument("--model", help="anomaly model directory (from `watchdog train`)")
    p.add_argument("--only", choices=("rules", "anomaly"),
                   help="run only the rules, or only the anomaly model (its own consumer group "
                        "<group>.anomaly): two services that share the work over more cores")
    p.add_argument("--demo", action="store_true",
                   help="demo mode: allow the public demo pseudonym key")


def _fail(msg: str) -> int:
    print(f"watchdog: error: {msg}", file=sys.stderr)
    return 2


def resolve_key(configured: str | None, demo: bool) -> bytes:
    """The pseudonym key, or ValueError with the one-line reason to refuse to start."""
    if not configured:
        if demo:
            return DEMO_KEY
        raise ValueError("no pseudonym key: set WATCHDOG_PSEUDONYM_KEY (or pseudonym_key in "
                         "the config); only --demo runs with the public demo key")
    key = configured.encode()
    if key == DEMO_KEY and not demo:
        raise ValueError("WATCHDOG_PSEUDONYM_KEY is the public demo key; set a secret one "
                         "(or run with --demo)")
    if len(key) < 16:
        raise ValueError("the pseudonym key must be at least 16 bytes")
    return key


def load_stages(model: str | None, engine: Any, hooks: Any) -> list[Any]:
    """The anomaly stage for ``--model``, reporting to ``hooks`` (its ``observer``);
    ValueError with a one-line reason if it cannot be loaded."""
    if not model:
        return []
    try:
        from watchdog.anomaly.stage import load_stage
    except ImportError:
        raise ValueError("--model: anomaly detection is not available in this build") from None
    return [load_stage(model, engine, observer=hooks)]


def _log_kernels(log: Any) -> None:
    """How the anomaly stage's kernels were compiled: from numba's cache, or without one
    (slower starts: the cache directory could not be written; see NUMBA_CACHE_DIR)."""
    from watchdog.anomaly.compiled import STATUS

    if STATUS.cached:
        log.info("anomaly_kernels_compiled", kernels=STATUS.kernels,
                 seconds=round(STATUS.seconds, 2), cached=True)
    else:
        log.warning("anomaly_kernels_compiled", kernels=STATUS.kernels,
                    seconds=round(STATUS.seconds, 2), cached=False,
                    detail=STATUS.uncached[0][:300],
                    consequence="compiled at every start: set NUMBA_CACHE_DIR to a "
                                "writable directory")


def _environment() -> dict[str, str]:
    """The environment, plus secrets from systemd credentials (LoadCredential=, or a mounted
    Kubernetes Secret) for the secret variables that are not set."""
    from watchdog.daemon.config import ENV_SECRETS

    try:
        from watchdog.systemd import credentials_as_env
    except ImportError:
        return dict(os.environ)
    return {**credentials_as_env(ENV_SECRETS), **os.environ}


def run(args: argparse.Namespace) -> int:
    from watchdog.daemon.app import Service
    from watchdog.daemon.config import ConfigError, load_config
    from watchdog.daemon.logging import configure, get_logger
    from watchdog.daemon.metrics import Metrics
    from watchdog.engine.engine import Engine
    from watchdog.policy import PolicyError, load_policy
    from watchdog.rules import default_rules

    overrides = {"kafka.bootstrap": args.kafka_bootstrap, "policy": args.policy,
                 "listen": args.listen, "model": args.model,
                 "detection.only": getattr(args, "only", None)}
    try:
        env = _environment()
    except OSError as err:  # there but unreadable: a deployment mistake, said in one line
        return _fail(f"credential {err.filename}: cannot read: {err.strerror}")
    except UnicodeDecodeError:
        return _fail("a credential in $CREDENTIALS_DIRECTORY is not UTF-8 text")
    try:
        cfg = load_config(args.config, overrides=overrides, env=env)
    except ConfigError as err:
        return _fail(str(err))
    demo = bool(getattr(args, "demo", False))
    try:
        key = resolve_key(cfg.pseudonym_key, demo)
        policy = load_policy(cfg.policy)
    except (ValueError, PolicyError) as err:
        return _fail(str(err))
    configure(cfg.log_level)
    engine = Engine(policy, Pseudonymizer(key), default_rules())
    metrics = Metrics()
    log = get_logger("service")
    if cfg.detection.only == "rules" and cfg.model:
        log.info("model_not_loaded", reason="detection.only is rules: the anomaly service "
                 "runs the model")
        cfg = msgspec.structs.replace(cfg, model=None)
    try:
        stages = load_stages(cfg.model, engine, metrics)
    except (ValueError, OSError) as err:
        if not cfg.detection.rules:  # nothing to run without the model
            return _fail(str(err))
        # a refused model must not blind the rules: run without it, and say so
        stages = []
        metrics.on_model("none", False)
        log.error("model_refused", detail=str(err)[:300], consequence="running on rules alone")
    if stages:
        _log_kernels(log)
    if demo and key == DEMO_KEY:
        print("watchdog: demo mode: subject pseudonyms use the public demo key",
              file=sys.stderr)
    service = Service(cfg, engine, metrics=metrics, stages=stages)
    return _run_to_end(service.run())


def _run_to_end(main: Any) -> int:
    """Like asyncio.run, but a client task that ignores cancellation (aiokafka retrying a
    broker that is gone) cannot keep the process from exiting after the service returned."""
    loop = asyncio.new_event_loop()
    try:
        code: int = loop.run_until_complete(main)
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        if leftovers:
            loop.run_until_complete(asyncio.wait(leftovers, timeout=0.5))
        return code
    except KeyboardInterrupt:
        return 130
    finally:
        loop.close()
