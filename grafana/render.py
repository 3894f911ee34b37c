"""Render the dashboards' panels to PNG without Grafana: each panel's queries run against a
real Prometheus (its HTTP API) and are drawn with matplotlib at the panel's grid position.

    .venv/bin/python grafana/render.py --prometheus http://127.0.0.1:9090 --out docs/dashboards \\
        [--job watchdog] [--range 900] [--time UNIX]

A reader of docs/ sees what the dashboards show; tests/grafana renders them from a
Prometheus scraping a running daemon (tests/grafana/test_dashboards.py, which also refreshes
docs/dashboards/ when WATCHDOG_RENDER_DOCS=1). Grafana's variables are filled in as Grafana
would: $__range and $__rate_interval from --range, $job from --job. A stat shows the number,
a table its rows, a bar gauge its bars, a time series and a heatmap their lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
BOARDS = HERE / "provisioning" / "dashboards" / "watchdog"

Query = Callable[[str, bool], list[dict[str, Any]]]


def expand(expr: str, job: str, range_s: int, rate_s: int) -> str:
    for var, value in (("$__rate_interval", f"{rate_s}s"), ("$__interval", f"{rate_s}s"),
                       ("$__range", f"{range_s}s"), ("${job}", job), ("$job", job)):
        expr = expr.replace(var, value)
    return expr


def prometheus_query(url: str, at: float, range_s: int, step: float) -> Query:
    """``query(expr, instant)``: the API's result list (a range over ``range_s`` up to ``at``
    for a time series)."""
    client = httpx.Client(base_url=url.rstrip("/"), timeout=10)

    def query(expr: str, instant: bool) -> list[dict[str, Any]]:
        if instant:
            resp = client.get("/api/v1/query", params={"query": expr, "time": at})
        else:
            resp = client.get("/api/v1/query_range", params={
                "query": expr, "start": at - range_s, "end": at, "step": step})
        body = resp.json()
        if body.get("status") != "success":
            raise ValueError(f"{expr}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    return query


def legend(fmt: str, metric: dict[str, str]) -> str:
    out = fmt or ", ".join(f"{k}={v}" for k, v in metric.items() if k not in ("job", "instance"))
    for k, v in metric.items():
        out = out.replace("{{" + k + "}}", v)
    return out or "value"


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p.get("type") != "row"]


def draw_panel(ax: Any, panel: dict[str, Any], query: Query, expand_: Callable[[str], str]
               ) -> int:
    """Draw one panel; returns the number of series it got."""
    ax.set_title(panel["title"], fontsize=8, loc="left")
    kind = panel["type"]
    got = 0
    texts: list[str] = []
    for target in panel.get("targets") or []:
        expr = expand_(target["expr"])
        instant = bool(target.get("instant")) or kind in ("stat", "table", "bargauge")
        result = query(expr, instant)
        got += len(result)
        fmt = target.get("legendFormat", "")
        if kind == "stat":
            texts += [(f"{legend(fmt, r['metric'])}  " if fmt and "{{" in fmt else "")
                      + _num(r["value"][1]) for r in result]
        elif kind == "table":
            for r in result:
                labels = [v for k, v in r["metric"].items() if k not in ("job", "instance")]
                texts.append(f"{_num(r['value'][1]):>6}  " + "  ".join(labels))
        elif kind == "bargauge":
            rows = sorted(((legend(fmt, r["metric"]), float(r["value"][1])) for r in result),
                          key=lambda x: x[1])
            if rows:
                ys = range(len(rows))
                ax.barh(list(ys), [v for _, v in rows], color="tab:orange")
                ax.set_yticks([])
                ax.tick_params(labelsize=6)
                for y, (name, v) in zip(ys, rows, strict=True):
                    ax.text(0, y, f" {name[:48]}  {_num(str(v))}", va="center", fontsize=6)
        else:  # timeseries, heatmap: lines over the range
            for r in result:
                xs = [float(t) for t, _ in r["values"]]
                ys = [float(v) for _, v in r["values"]]
                ax.plot([x - xs[-1] for x in xs], ys, linewidth=0.8,
                        label=legend(fmt, r["metric"])[:30])
            if result:
                ax.tick_params(labelsize=6)
                ax.set_xlabel("seconds before the evaluation time", fontsize=6)
                if len(result) <= 8:
                    ax.legend(fontsize=5, loc="upper left")
    if kind in ("stat", "table"):
        ax.axis("off")
        body = "\n".join(texts[:12]) if texts else "no data"
        size = 22 if kind == "stat" and len(texts) == 1 else 6
        ax.text(0.02 if kind == "table" else 0.5, 0.5, body, fontsize=size,
                ha="left" if kind == "table" else "center", va="center",
                family="monospace" if kind == "table" else None, transform=ax.transAxes)
    elif not got:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    return got


def _num(v: str) -> str:
    f = float(v)
    return f"{f:.0f}" if f == int(f) else f"{f:.3g}"


def render(board: dict[str, Any], query: Query, expand_: Callable[[str], str], out: Path
           ) -> dict[str, int]:
    """One PNG of ``board``; returns the number of series each panel got."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(board)
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    fig = plt.figure(figsize=(16, rows * 0.42))
    fig.suptitle(board["title"], fontsize=12, x=0.01, ha="left")
    got = {}
    for p in panels:
        g = p["gridPos"]
        ax = fig.add_axes((g["x"] / 24 + 0.005, 1 - (g["y"] + g["h"]) / rows + 0.012,
                           g["w"] / 24 - 0.012, g["h"] / rows - 0.03))
        got[p["title"]] = draw_panel(ax, p, query, expand_)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return got


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--job", default="watchdog")
    parser.add_argument("--range", type=int, default=900, help="seconds ($__range)")
    parser.add_argument("--time", type=float, default=None, help="evaluation time (default now)")
    args = parser.parse_args(argv)
    at = args.time or time.time()
    rate = max(15, args.range // 60)
    query = prometheus_query(args.prometheus, at, args.range, max(1.0, args.range / 200))
    for path in sorted(BOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        got = render(board, query, lambda e: expand(e, args.job, args.range, rate),
                     args.out / f"{path.stem}.png")
        empty = [t for t, n in got.items() if not n]
        print(f"{args.out / (path.stem + '.png')}: {len(got)} panels"
              + (f", no data: {', '.join(empty)}" if empty else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
