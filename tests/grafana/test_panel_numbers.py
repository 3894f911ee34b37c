"""Every alert panel of the dashboards gives the exact number for a known stream of alerts.

The daemon's own ``Metrics`` (with the smedio policy's commitments and the pseudonymizer) is
served over HTTP and scraped every second by a real Prometheus: first at rest (every counter
at 0), then after a known list of alerts is counted through ``count_alert``, as the pipeline
does. Each panel's query is then evaluated at the timestamp of the last scrape with
``$__range`` (and ``$__rate_interval``) covering the whole stream: totals must equal the
alerts counted, rates the count over the range. This is what the dashboards got wrong when
counters were born at their first alert ("Critical alerts in range" showed 0 for one).
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import start_http_server

from tests.services.procs import free_port
from tests.services.prometheus import Prometheus
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.promise_metrics import clause_label
from watchdog.policy import load_policy

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "grafana" / "provisioning" / "dashboards" / "watchdog"
POLICY = load_policy(str(ROOT / "watchdog" / "policies" / "smedio.yaml"))
PSEUDO = Pseudonymizer(b"test-key-0123456789abcdef")
JOB = "watchdog"

# (rule, severity, account): 3 critical, accounts with distinct counts, a log gap, an anomaly
STREAM: list[tuple[str, str, str]] = (
    [("revoked_account", "critical", "u01")] * 3
    + [("unknown_account", "high", f"u{i:02d}") for i in range(2, 14) for _ in range(i % 4 + 1)]
    + [("brute_force", "medium", "u02")] * 2
    + [("log_gap", "high", "crm.audit")]
    + [("anomaly", "medium", "u05")] * 4
)


def account(user: str) -> str:
    return "a-" + PSEUDO(user)[2:]


def _load_render() -> Any:
    spec = importlib.util.spec_from_file_location("render", ROOT / "grafana" / "render.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def scraped() -> Iterator[tuple[Prometheus, float, int]]:
    """(Prometheus, evaluation time, range in seconds) once the stream is scraped."""
    m = Metrics()
    m.promises.set_policy(POLICY, PSEUDO)
    m.name_datasets(["crm.audit"])  # as metrics.datasets in the configuration
    m.last_event_times({"crm.audit": time.time()})  # the dataset is known before its gap
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=m.registry)
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
              "scrape_configs": [{"job_name": JOB, "static_configs": [
                  {"targets": [f"127.0.0.1:{port}"]}]}]}
    try:
        with Prometheus(config=config) as prom:
            prom.wait_for_result(f'count_over_time(up{{job="{JOB}"}}[1m]) >= 3', timeout=30)
            first = float(prom.query(f'min_over_time(timestamp(up{{job="{JOB}"}})[1m:1s])')
                          [0]["value"][1])
            for rule, severity, user in STREAM:
                m.count_alert(rule, severity, user)
            prom.wait_for_result(f'sum(watchdog_alerts_total{{job="{JOB}"}}) == {len(STREAM)}',
                                 timeout=30)
            # the last scrape's own timestamp: no extrapolation past it
            at = float(prom.query(f'timestamp(watchdog_build_info{{job="{JOB}"}})')
                       [0]["value"][1])
            yield prom, at, int(at - first) + 2
    finally:
        server.shutdown()
        thread.join(5)


def expected_values() -> dict[tuple[str, int], Any]:
    """(board, panel id) -> the expected result: a number, or {labels: number}."""
    n = len(STREAM)
    crit = sum(1 for _r, s, _u in STREAM if s == "critical")
    by_rule = Counter(r for r, _s, _u in STREAM)
    by_rule_sev = Counter((r, s) for r, s, _u in STREAM)
    by_commitment = {c.id: sum(by_rule[r] for r in c.rules) for c in POLICY.commitments}
    by_account = Counter(account(u) for r, _s, u in STREAM if r != "log_gap")
    top = dict(sorted(by_account.items(), key=lambda kv: -kv[1])[:10])
    broken = {(cid, clause_label(c.citation)): v for c in POLICY.commitments
              for cid, v in [(c.id, by_commitment[c.id])] if v}
    return {
        ("overview", 3): n, ("overview", 4): crit,
        ("overview", 13): {(r,): v for r, v in by_rule.items()},
        ("overview", 14): {k: v for k, v in by_rule_sev.items()},
        ("promises", 1): n, ("promises", 2): crit, ("promises", 3): n, ("promises", 4): crit,
        ("promises", 5): broken, ("promises", 6): broken,
        ("promises", 7): {(r,): v for r, v in by_rule.items()},
        ("promises", 8): {(a,): v for a, v in top.items()},
        ("promises", 9): {(a,): v for a, v in top.items()},
        ("operations", 22): {("crm.audit",): 1},
        # rates: the count over the range (per hour where the panel says so)
        ("overview", 11): {(r,): v * 3600 for r, v in by_rule.items()},
        ("overview", 12): {(s,): v * 3600 for s, v in
                           Counter(s for _r, s, _u in STREAM).items()},
        ("overview", 23): {("medium",): by_rule["anomaly"] * 3600},
        ("operations", 19): n,
        ("promises", 10): {(c,): v * 3600 for c, v in by_commitment.items() if v},
    }


KEYS = {"overview": {13: ("rule",), 14: ("rule", "severity"), 11: ("rule",),
                     12: ("severity",), 23: ("severity",)},
        "promises": {5: ("commitment", "clause"), 6: ("commitment", "clause"), 7: ("rule",),
                     8: ("account",), 9: ("account",), 10: ("commitment",)},
        "operations": {22: ("dataset",)}}
RATES = {("overview", 11), ("overview", 12), ("overview", 23), ("operations", 19),
         ("promises", 10)}


def test_every_alert_panel_gives_the_known_numbers(scraped: tuple[Prometheus, float, int]
                                                   ) -> None:
    prom, at, range_s = scraped
    render = _load_render()
    query = render.prometheus_query(prom.url, at, range_s, 1.0)
    expected = expected_values()
    checked = set()
    for path in sorted(BOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            key = (path.stem, panel.get("id"))
            if key not in expected:
                continue
            (target,) = panel["targets"]
            expr = render.expand(target["expr"], JOB, range_s, range_s)
            result = query(expr, True)
            want = expected[key]
            scale = 1 / range_s if key in RATES else 1
            if isinstance(want, dict):
                labels = KEYS[path.stem][panel["id"]]
                got = {tuple(r["metric"].get(k, "") for k in labels): float(r["value"][1])
                       for r in result if float(r["value"][1])}  # trends list rules at 0
                assert set(got) == set(want), (key, expr)
                for k, v in want.items():
                    assert got[k] == pytest.approx(v * scale, rel=1e-9), (key, k, expr)
            else:
                (r,) = result
                assert float(r["value"][1]) == pytest.approx(want * scale, rel=1e-9), (key, expr)
            checked.add(key)
    assert checked == set(expected)


def test_renders_every_panel_with_data(scraped: tuple[Prometheus, float, int],
                                       tmp_path: Path) -> None:
    prom, at, range_s = scraped
    render = _load_render()
    query = render.prometheus_query(prom.url, at, range_s, 1.0)
    board = json.loads((BOARDS / "promises.json").read_text())
    got = render.render(board, query, lambda e: render.expand(e, JOB, range_s, range_s),
                        tmp_path / "promises.png")
    assert all(got.values()), {t: n for t, n in got.items() if not n}
    assert (tmp_path / "promises.png").stat().st_size > 10_000
