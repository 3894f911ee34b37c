"""The Grafana dashboards against a real Prometheus scraping a watchdog under traffic.

Every panel's PromQL (Grafana's variables filled in as Grafana would) goes through
Prometheus' /api/v1/query and must parse and return series. The same Prometheus
loads deploy/prometheus/watchdog-rules.yml, so the alert rules are evaluated
against the real exposition too, and ``promtool check metrics`` lints it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.grafana.conftest import MetricsTarget
from tests.grafana.fake_exporter import METRICS
from tests.services.procs import require_binary
from tests.services.prometheus import Prometheus

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
PROVISIONING = GRAFANA / "provisioning"
DASHBOARDS = PROVISIONING / "dashboards" / "watchdog"
RULES = ROOT / "deploy" / "prometheus" / "watchdog-rules.yml"
JOB = "watchdog"

# What Grafana puts in for its variables (Prometheus here scrapes every second).
GRAFANA_VARS = {
    "$__rate_interval": "15s",
    "$__interval": "5s",
    "$__range": "5m",
    "${job}": JOB,
    "$job": JOB,
}
PROCESS_METRICS = {
    "process_start_time_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes",
    "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
}


def expand(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unexpanded Grafana variable in {expr!r}"
    return expr


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels") or [])
    return out


def panel_queries() -> list[Any]:
    params = []
    for name, board in load_dashboards().items():
        for panel in panels(board):
            for target in panel.get("targets") or []:
                params.append(pytest.param(
                    name, panel["title"], target["expr"],
                    id=f"{name}-{panel['id']}-{target['refId']}"))
    return params


def known_series() -> set[str]:
    names = {"up", *PROCESS_METRICS}
    for name, (kind, _labels) in METRICS.items():
        if kind == "counter":
            names.add(f"{name}_total")
        elif kind == "histogram":
            names.update(f"{name}_{s}" for s in ("bucket", "sum", "count"))
        else:
            names.add(name)
    return names


def all_exprs() -> list[str]:
    exprs = [p.values[2] for p in panel_queries()]
    for board in load_dashboards().values():
        exprs += [a["expr"] for a in board["annotations"]["list"] if "expr" in a]
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        exprs += [rule["expr"] for rule in group["rules"]]
    return exprs


# -- static checks (no server) ------------------------------------------------------------


def test_generated_json_is_current() -> None:
    if importlib.util.find_spec("grafana_foundation_sdk") is None:
        msg = "grafana-foundation-sdk is not installed (a dev dependency)"
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    proc = subprocess.run([sys.executable, str(GRAFANA / "build.py"), "--check"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


def test_dashboard_structure() -> None:
    boards = load_dashboards()
    assert set(boards) == {"overview", "operations", "promises"}
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for name, board in boards.items():
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        assert all(isinstance(i, int) and i > 0 for i in ids), name
        cells: set[tuple[int, int]] = set()
        for panel in panels(board):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (name, panel["title"])
            mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                    for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & mine, f"{name}: panel {panel['title']!r} overlaps another"
            cells |= mine
            if panel["type"] == "row":
                assert panel["collapsed"] is False, panel["title"]
                assert panel["panels"] == [], panel["title"]
                continue
            assert panel.get("targets"), f"{name}: panel {panel['title']!r} has no query"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel.get("description"), f"{name}: panel {panel['title']!r}: no description"
        names = {v["name"] for v in board["templating"]["list"]}
        assert names == {"datasource", "job"}


def test_provisioning_points_at_the_dashboards() -> None:
    ds = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus"
    prov = yaml.safe_load((PROVISIONING / "dashboards" / "watchdog.yaml").read_text())
    (provider,) = prov["providers"]
    path = provider["options"]["path"].replace("${GF_PATHS_PROVISIONING}", str(PROVISIONING))
    assert Path(path).resolve() == DASHBOARDS.resolve()
    for board in load_dashboards().values():
        var = next(v for v in board["templating"]["list"] if v["name"] == "datasource")
        assert var["current"]["value"] == source["uid"]


def test_queries_use_only_the_daemons_metrics() -> None:
    known = known_series()
    used = set()
    for expr in all_exprs():
        used |= set(re.findall(r"\b((?:watchdog|process)_[a-z_]+)\b", expr))
    unknown = used - known
    assert not unknown, f"not exposed by the daemon: {sorted(unknown)}"
    # and every metric the daemon exposes is shown somewhere
    shown = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in used}
    assert set(METRICS) <= shown, f"never shown: {sorted(set(METRICS) - shown)}"


# -- against the live target ----------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(watchdog_metrics_target: MetricsTarget) -> Iterator[Prometheus]:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": JOB, "static_configs": [
            {"targets": [watchdog_metrics_target.address]}]}],
    }
    with Prometheus(config=config) as prom:
        # rate()/increase() over 15s need a few scrapes, and the traffic some alerts.
        prom.wait_for_result(f'count_over_time(up{{job="{JOB}"}}[1m]) >= 8', timeout=60)
        prom.wait_for_result(f'sum(watchdog_alerts_total{{job="{JOB}"}}) > 0', timeout=60)
        prom.wait_for_result(f'sum(watchdog_events_total{{job="{JOB}"}}) > 0', timeout=30)
        yield prom


@pytest.mark.parametrize(("board", "title", "expr"), panel_queries())
def test_panel_query_returns_data(prometheus: Prometheus, board: str, title: str,
                                  expr: str) -> None:
    query = expand(expr)
    deadline = time.monotonic() + 15
    result = prometheus.query(query)  # raises on a PromQL error
    while not result and time.monotonic() < deadline:
        time.sleep(0.5)
        result = prometheus.query(query)
    assert result, f"{board} / {title}: no data for {query}"


def test_variable_and_annotation_queries(prometheus: Prometheus) -> None:
    for board in load_dashboards().values():
        job = next(v for v in board["templating"]["list"] if v["name"] == "job")
        m = re.fullmatch(r"label_values\((\w+), (\w+)\)", job["query"]["query"])
        assert m, job["query"]
        values = {r["metric"].get(m[2]) for r in prometheus.query(f"group by ({m[2]}) ({m[1]})")}
        assert JOB in values
        for ann in board["annotations"]["list"]:
            if "expr" in ann:
                prometheus.query(expand(ann["expr"]))  # parses; empty until a restart


def test_exposition_passes_promtool(watchdog_metrics_target: MetricsTarget) -> None:
    promtool = require_binary("promtool")
    text = httpx.get(f"{watchdog_metrics_target.url}/metrics", timeout=5).text
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_exposition_has_every_metric(watchdog_metrics_target: MetricsTarget) -> None:
    text = httpx.get(f"{watchdog_metrics_target.url}/metrics", timeout=5).text
    exposed = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
               if line and not line.startswith("#")}
    # watchdog_model_info{version} exists only once a model is loaded (--model), the
    # whole-stream lag while this instance runs that reader, an account's count once it
    # has an alert
    later = {"up", "watchdog_model_info", "watchdog_whole_stream_lag",
             "watchdog_account_alerts_total",
             # per archived dataset/day, once an archive sink has written
             "watchdog_archive_rows_total", "watchdog_archive_days",
             "watchdog_archive_missing_days", "watchdog_archive_day_rows",
             "watchdog_archive_segments", "watchdog_archive_uncompacted_days"}
    missing = sorted(known_series() - later - exposed)
    assert not missing, f"{watchdog_metrics_target.mode}: missing from /metrics: {missing}"
    assert not re.search(r'(user_id|subject_id|user|subject)="', text), "an id in a label"


def test_alert_rules_evaluate_on_the_exposition(prometheus: Prometheus) -> None:
    url = f"{prometheus.url}/api/v1/rules"
    deadline = time.monotonic() + 20
    while True:
        groups = httpx.get(url, timeout=5).json()["data"]["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        evaluated = all(r.get("lastEvaluation", "").startswith("20") for r in rules.values())
        firing = rules.get("PrivacyCriticalViolation", {}).get("state") == "firing"
        if (evaluated and firing) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    bad = {name: r.get("lastError") for name, r in rules.items() if r["health"] != "ok"}
    assert not bad, bad
    assert rules["PrivacyCriticalViolation"]["state"] == "firing"
    assert rules["WatchdogDown"]["state"] == "inactive"


def test_render_every_dashboard_to_png(prometheus: Prometheus, tmp_path: Path) -> None:
    """grafana/render.py draws every panel from this Prometheus; with WATCHDOG_RENDER_DOCS=1
    the PNGs replace docs/dashboards/*.png (how those were made)."""
    spec = importlib.util.spec_from_file_location("render", GRAFANA / "render.py")
    assert spec is not None
    assert spec.loader is not None
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    out = ROOT / "docs" / "dashboards" if os.environ.get("WATCHDOG_RENDER_DOCS") else tmp_path
    at, range_s = time.time(), 120
    query = render.prometheus_query(prometheus.url, at, range_s, 2.0)
    empty = {}
    for name, board in load_dashboards().items():
        got = render.render(board, query, lambda e: render.expand(e, JOB, range_s, 15),
                            out / f"{name}.png")
        assert len(got) == len([p for p in panels(board) if p["type"] != "row"])
        empty[name] = sorted(t for t, n in got.items() if not n)
        assert (out / f"{name}.png").stat().st_size > 10_000
    # a panel may be empty only where the demo has nothing to show (no restart, no model)
    assert not empty["promises"], empty
    assert len(empty["overview"]) + len(empty["operations"]) <= 4, empty
