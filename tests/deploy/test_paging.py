"""Paging through the shipped Alertmanager config, for real: the daemon's Alertmanager sink
posts violations to a real Alertmanager running ``deploy/alertmanager/alertmanager.yml`` and
its templates; PagerDuty and Slack are local receivers (the config's secret files point at
them; only the timings are shortened).

One page per critical violation (the Prometheus backstop is inhibited while the daemon's own
alert of the rule is there), a title that reads as a sentence, PagerDuty's own severities, an
absolute runbook link, one Slack block per alert, and no "resolved" for a violation.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.daemon.helpers import HookReceiver, wait_for
from watchdog.alerts.model import Alert, AlertSubjects
from watchdog.daemon.config import AlertmanagerSink as Settings
from watchdog.daemon.sinks.alertmanager import AlertmanagerSink

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AM_DIR = ROOT / "deploy" / "alertmanager"
CLAUSE = ("§10: we restrict the means of taking personal information out of the company, "
          "such as recording on external media")


def fast_routes(route: dict[str, Any]) -> None:
    """Group waits and intervals of a route tree at 1 s (a test, not a pager's rhythm)."""
    for k in ("group_wait", "group_interval"):
        if k in route:
            route[k] = "1s"
    for sub in route.get("routes", []):
        fast_routes(sub)


def shipped_config(tmp_path: Path, pager_url: str, slack_url: str) -> dict[str, Any]:
    """deploy/alertmanager/alertmanager.yml with its secret files filled in for the local
    receivers, the template path made absolute and every wait shortened to a second."""
    cfg = yaml.safe_load((AM_DIR / "alertmanager.yml").read_text())
    key = tmp_path / "pagerduty-routing-key"
    key.write_text("0123456789abcdef0123456789abcdef")
    slack = tmp_path / "slack-webhook-url"
    slack.write_text(slack_url)
    cfg["templates"] = [str(AM_DIR / t) for t in cfg["templates"]]

    fast_routes(cfg["route"])
    cfg["route"].update(group_wait="1s", group_interval="1s")
    for r in cfg["receivers"]:
        for pd in r.get("pagerduty_configs", []):
            pd["routing_key_file"] = str(key)
            pd["url"] = pager_url
        for sl in r.get("slack_configs", []):
            sl["api_url_file"] = str(slack)
    return cfg


def violation(n: int, rule: str, severity: str, account: str) -> Alert:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return Alert(alert_id=f"{rule}:{n:016x}", rule=rule, severity=severity, ts=now,
                 user_id=account, event_ids=(f"e{n}",),
                 summary=f"Account {account} wrote 3 subjects' data from crm.audit to "
                         "external media (usb_copy)",
                 subjects=AlertSubjects(3, ("p-1a2b", "p-3c4d", "p-5e6f")),
                 clauses=(CLAUSE,), detected_at=now, labels={"dataset": "crm.audit"})


def prometheus_alert(alertname: str, rule: str | None, severity: str, summary: str,
                     ends_in: float = 600) -> dict[str, Any]:
    """What Prometheus posts for one of deploy/prometheus/watchdog-rules.yml's alerts."""
    labels = {"alertname": alertname, "job": "watchdog", "severity": severity,
              "team": "privacy"}
    if rule:
        labels["rule"] = rule
    rules = yaml.safe_load((ROOT / "deploy/prometheus/watchdog-rules.yml").read_text())
    runbook = next(r["annotations"]["runbook_url"] for g in rules["groups"]
                   for r in g["rules"] if r["alert"] == alertname)
    end = datetime.now(UTC) + timedelta(seconds=ends_in)
    return {"labels": labels, "annotations": {"summary": summary, "runbook_url": runbook},
            "endsAt": end.isoformat().replace("+00:00", "Z")}


async def test_one_page_per_violation_readable_absolute_and_never_resolved(
        alertmanager_factory, tmp_path: Path) -> None:
    base = "https://github.com/your-org/watchdog/blob/main/README.md"
    assert base in (AM_DIR / "watchdog.tmpl").read_text()
    async with HookReceiver() as pager, HookReceiver() as slack:
        am = await asyncio.to_thread(
            alertmanager_factory, config=shipped_config(tmp_path, pager.url, slack.url))
        # held 4 s (1 h by default): longer than the backstop fires for one violation (its 5
        # minutes in production, 2 s here), else the backstop would page once they are gone
        sink = AlertmanagerSink(Settings(url=am.url, resolve_after_seconds=4))
        crit = [violation(1, "external_media", "critical", "u0042"),
                violation(2, "external_media", "critical", "u0077")]
        high = violation(3, "external_email", "high", "u0042")
        await sink.send([*crit, high])
        # then Prometheus' backstop for the same rule (inhibited), for a rule whose daemon
        # alerts never arrived (pages), and a health warning that resolves (the canary)
        async with httpx.AsyncClient(base_url=am.url) as client:
            posted = await client.post("/api/v2/alerts", json=[
                prometheus_alert("PrivacyCriticalViolation", "external_media", "critical",
                                 "critical privacy violation: external_media", ends_in=2),
                prometheus_alert("PrivacyCriticalViolation", "revoked_account", "critical",
                                 "critical privacy violation: revoked_account"),
                prometheus_alert("WatchdogNotReady", None, "warning",
                                 "watchdog w1 runs but is not ready", ends_in=7),
            ])
            assert posted.status_code == 200

        def texts() -> list[str]:
            return [a["text"] for b in slack.bodies for a in b["attachments"]]

        def titles() -> list[str]:
            return [a["title"] for b in slack.bodies for a in b["attachments"]]

        # the canary ends after the violations (7 s against 4 s): its "resolved" message
        # shows Alertmanager has flushed their ends too (every group flushes each second)
        await wait_for(lambda: any("[resolved]" in t and "not ready" in t for t in titles()),
                       within=40, what="the health warning resolved in the channel")
        await wait_for(lambda: len(pager.bodies) >= 3, within=20, what="three pages")
        await sink.close()

    pages = pager.bodies
    assert [p["event_action"] for p in pages] == ["trigger"] * 3, "no page resolves itself"
    summaries = sorted(p["payload"]["summary"] for p in pages)
    assert summaries == sorted([
        "Account u0042 on crm.audit broke “we restrict the means of taking personal "
        "information out of the company, such as recording on external media” (external_media)",
        "Account u0077 on crm.audit broke “we restrict the means of taking personal "
        "information out of the company, such as recording on external media” (external_media)",
        "critical privacy violation: revoked_account",
    ])
    assert {p["payload"]["severity"] for p in pages} == {"critical"}
    for p in pages:
        (link,) = p["links"]
        assert link["href"].startswith(base + "#runbook-"), link
    by_id = {p["payload"]["custom_details"].get("alert_id"): p for p in pages}
    assert by_id["external_media:0000000000000001"]["links"][0]["href"] == \
        f"{base}#runbook-violation"
    # the channel: one message per violation (and the backstop that was not inhibited), each
    # one block; the inhibited backstop for external_media appears nowhere
    violations = [t for t in texts() if "broke" in t or "critical privacy" in t]
    assert len(violations) == 4
    assert not any("critical privacy violation: external_media" in t for t in texts())
    for t in violations:
        assert "\n\n" not in t, "one alert, one block"
        assert f"<{base}#runbook-" in t
    high_msg = next(t for t in violations if "external_email" in t)
    assert high_msg.startswith("*Account u0042 on crm.audit broke")
    assert "severity high" in high_msg
    assert not any("[resolved]" in t for t in titles() if "not ready" not in t)


@pytest.mark.parametrize(("severity", "expected"), [
    ("critical", "critical"), ("high", "error"), ("medium", "warning"), ("low", "info")])
async def test_pagerduty_severity_is_mapped(alertmanager_factory, tmp_path: Path,
                                            severity: str, expected: str) -> None:
    cfg_path = AM_DIR / "alertmanager.yml"
    cfg = yaml.safe_load(cfg_path.read_text())
    # every violation severity routed to the pager receiver, to read its mapping
    cfg["route"]["routes"][0]["routes"][0]["matchers"] = ['service="watchdog"']
    async with HookReceiver() as pager, HookReceiver() as slack:
        base = shipped_config(tmp_path, pager.url, slack.url)
        base["route"] = {**base["route"], "routes": cfg["route"]["routes"]}

        fast_routes(base["route"])
        am = await asyncio.to_thread(alertmanager_factory, config=base)
        sink = AlertmanagerSink(Settings(url=am.url))
        await sink.send([violation(9, "external_media", severity, "u0001")])
        await wait_for(lambda: bool(pager.bodies), within=20, what="the page")
        await sink.close()
    assert pager.bodies[0]["payload"]["severity"] == expected
