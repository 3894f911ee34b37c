"""SIGHUP: the policy (and the model directory) read again while the daemon runs; windows and
state are kept. Also where an alert the policy excuses is counted, logged and audited."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from watchdog.alerts.model import Alert, rfc3339
from watchdog.daemon.config import Config
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.notify import Notify
from watchdog.daemon.sinks.audit import AuditSink
from watchdog.engine.detector import Stage
from watchdog.engine.engine import Engine
from watchdog.policy.model import PolicyException


class PolicyReload:
    def __init__(self, cfg: Config, engine: Engine, metrics: Metrics, notify: Notify, log: Any,
                 *, stages: Sequence[Stage] = (), audit: AuditSink | None = None) -> None:
        self.cfg = cfg
        self.engine = engine
        self.metrics = metrics
        self.notify = notify
        self.log = log
        self.stages = list(stages)
        self.audit = audit
        self.whole_stream: Any = None  # the whole-stream reader, which has its own engine

    def reload(self) -> None:
        from watchdog.policy import PolicyError, load_policy

        self.notify.reloading()
        try:
            policy = load_policy(self.cfg.policy)
        except PolicyError as err:
            self.notify.ready()
            self.metrics.reloads.labels("error").inc()
            self.log.error("policy_reload_failed", detail=str(err)[:300],
                           consequence="the previous policy stays in force")
            return
        self.engine.set_policy(policy)
        self.metrics.promises.set_policy(policy, self.engine.pseudonymize)
        if self.whole_stream is not None:
            self.whole_stream.set_policy(policy)
        self._swap_model()
        self.notify.ready()
        self.metrics.reloads.labels("ok").inc()
        self.log.info("policy_reloaded", source=str(policy.source),
                      organization=policy.organization)

    def _swap_model(self) -> None:
        """The model directory too (a new ``watchdog train`` output in place); a refused model
        keeps the running one."""
        if not self.cfg.model:
            return
        for stage in self.stages:
            swap = getattr(stage, "swap", None)
            if swap is None:
                continue
            try:
                version = swap(self.cfg.model)
            except (ValueError, OSError) as err:
                self.log.error("model_swap_refused", detail=str(err)[:300],
                               consequence="the previous model stays in force")
            else:
                self.log.info("model_swapped", version=version)

    def excused(self, alert: Alert, exc: PolicyException) -> None:
        """An exception of the policy excused an alert: counted, logged (no personal data:
        the rule, the alert id and the exception's reason) and written to the audit trail."""
        self.metrics.suppressed.labels(alert.rule).inc()
        until = rfc3339(exc.until)
        self.log.info("alert_excused", rule=alert.rule, alert_id=alert.alert_id,
                      reason=exc.reason[:200], until=until)
        if self.audit is not None:
            self.audit.note_excused(alert, exc.reason, until)
