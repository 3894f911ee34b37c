"""Build the watchdog's Grafana dashboards as code (grafana-foundation-sdk).

    .venv/bin/python grafana/build.py           # write the JSON next to the provisioning files
    .venv/bin/python grafana/build.py --check   # exit 1 if the committed JSON is stale

Two dashboards, provisioned by grafana/provisioning/dashboards/watchdog.yaml:

- overview   (uid watchdog-overview): traffic by source, invalid input, consumer
  lag, alerts by rule and severity, the commitments most often broken, sink
  health, anomaly scores and the model in use.
- operations (uid watchdog-operations): latency histograms, queue depths, state
  sizes, restarts, the process and the whole-stream reader (the SRE's view).
- promises   (uid watchdog-promises): the privacy analyst's view: alerts today and
  this week, by commitment with the policy's clause, by rule, by pseudonymous
  account (top 10).

Totals are increase() over the dashboard's range (the counters exist at 0 from the
start, so the first alert of a series counts), rounded; trends are rate().

Every query uses only the metric names the daemon exposes (see
tests/grafana/fake_exporter.py for the list) and Grafana's standard variables
($__rate_interval, $__range) plus two of ours: $datasource and $job.
tests/grafana/test_dashboards.py runs each one through a real Prometheus.
Panel ids are fixed here: links and alerts that point at a panel stay valid.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, heatmap, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models import prometheus as pm

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "provisioning" / "dashboards" / "watchdog"
DATASOURCE_UID = "watchdog-prometheus"  # grafana/provisioning/datasources/prometheus.yaml
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
JOB = 'job=~"$job"'
RATE = "$__rate_interval"


def read_rate(metric: str) -> str:
    """The rate of an input counter without the anomaly service's instances: they read every
    event again (a consumer group of their own), which would count the input twice."""
    return (f"rate({metric}{{{JOB}}}[{RATE}]) unless on (job, instance) "
            f'watchdog_build_info{{{JOB}, detection="anomaly"}}')
TAGS = ["watchdog", "privacy"]


# -- small helpers ----------------------------------------------------------------------


def q(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False,
      fmt: pm.PromQueryFormat | None = None) -> prom.Dataquery:
    query = prom.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    if legend:
        query = query.legend_format(legend)
    query = query.instant() if instant else query.range()
    if fmt is not None:
        query = query.format(fmt)
    return query


def thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return dash.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in steps])


def legend_table(*calcs: str) -> common_b.VizLegendOptions:
    return (common_b.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.RIGHT).show_legend(True).calcs(list(calcs)))


def ts(pid: int, title: str, desc: str, targets: Sequence[prom.Dataquery], *, unit: str = "short",
       w: int = 12, h: int = 8, stacked: bool = False, bars: bool = False,
       legend_calcs: Sequence[str] = ()) -> timeseries.Panel:
    panel = (timeseries.Panel().id(pid).title(title).description(desc).datasource(DS)
             .targets(list(targets)).unit(unit).span(w).height(h).fill_opacity(10)
             .line_width(1).show_points(common.VisibilityMode.NEVER)
             .tooltip(common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.DESCENDING)))
    if stacked:
        panel = panel.stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL))
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    if legend_calcs:
        panel = panel.legend(legend_table(*legend_calcs))
    return panel


def single(pid: int, title: str, desc: str, target: prom.Dataquery, *, unit: str = "short",
           w: int = 4, h: int = 4, steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
           text_mode: common.BigValueTextMode = common.BigValueTextMode.AUTO,
           calc: str = "lastNotNull", mappings: list[dm.ValueMapping] | None = None) -> stat.Panel:
    panel = (stat.Panel().id(pid).title(title).description(desc).datasource(DS)
             .targets([target]).unit(unit).span(w).height(h).thresholds(thresholds(*steps))
             .color_mode(common.BigValueColorMode.BACKGROUND)
             .graph_mode(common.BigValueGraphMode.NONE).text_mode(text_mode)
             .reduce_options(common_b.ReduceDataOptions().calcs([calc]).values(False)))
    if mappings:
        panel = panel.mappings(mappings)
    return panel


def heat(pid: int, title: str, desc: str, target: prom.Dataquery, *, unit: str,
         w: int = 12, h: int = 8) -> heatmap.Panel:
    return (heatmap.Panel().id(pid).title(title).description(desc).datasource(DS)
            .targets([target]).span(w).height(h).calculate(False)
            .y_axis(heatmap.YAxisConfig().unit(unit))
            .color(heatmap.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME)
                   .scheme("Oranges").scale(hm.HeatmapColorScale.EXPONENTIAL).exponent(0.5)
                   .steps(64))
            .cell_values(heatmap.CellValues().unit("short")))


def bars(pid: int, title: str, desc: str, target: prom.Dataquery, *, w: int, h: int,
         steps: tuple[tuple[float | None, str], ...]) -> bargauge.Panel:
    """Horizontal bars of an instant query (totals over the range, per label)."""
    return (bargauge.Panel().id(pid).title(title).description(desc)
            .datasource(DS).span(w).height(h).targets([target])
            .display_mode(common.BarGaugeDisplayMode.GRADIENT)
            .orientation(common.VizOrientation.HORIZONTAL)
            .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .thresholds(thresholds(*steps)).unit("short").min(0))


def quantiles(metric: str, by: str = "", legend_prefix: str = "") -> list[prom.Dataquery]:
    """p50/p95/p99 of a histogram (``by``: extra grouping labels, e.g. "sink")."""
    group = f"{by}, le" if by else "le"
    out = []
    for ref, quant in zip("ABC", ("0.5", "0.95", "0.99"), strict=True):
        label = f"{legend_prefix}p{round(float(quant) * 100)}"
        out.append(q(f"histogram_quantile({quant}, sum by ({group}) "
                     f"(rate({metric}_bucket{{{JOB}}}[{RATE}])))", label, ref))
    return out


def row(pid: int, title: str) -> dash.Row:
    """A row; ``flatten_rows`` expands it (nothing to click open)."""
    return dash.Row(title).id(pid)


def variables() -> list[Any]:
    datasource = (dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
                  .current(dm.VariableOption(selected=True, text="watchdog-prometheus",
                                             value=DATASOURCE_UID)))
    job = (dash.QueryVariable("job").label("Job").datasource(DS)
           .query({"query": "label_values(watchdog_build_info, job)", "refId": "job"})
           .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
           .include_all(True).all_value(".*").multi(True)
           .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"])))
    return [datasource, job]


def base(uid: str, title: str, desc: str, other_uid: str, other_title: str) -> dash.Dashboard:
    d = (dash.Dashboard(title).uid(uid).description(desc).tags(TAGS).editable()
         .time("now-6h", "now").refresh("30s").timezone("browser")
         .tooltip(dm.DashboardCursorSync.CROSSHAIR)
         .link(dash.DashboardLink(other_title).type(dm.DashboardLinkType.LINK)
               .url(f"/d/{other_uid}").keep_time(True).include_vars(True).icon("dashboard"))
         .annotation(dash.AnnotationQuery().name("Restarts").datasource(DS).enable(True)
                     .icon_color("orange")
                     .expr(f"changes(process_start_time_seconds{{{JOB}}}[2m]) > 0")))
    for v in variables():
        d = d.with_variable(v)
    return d


# -- overview ---------------------------------------------------------------------------


def overview() -> dash.Dashboard:
    d = base("watchdog-overview", "watchdog / overview",
             "What the watchdog sees and which privacy commitments are being broken.",
             "watchdog-operations", "watchdog / operations")

    d = d.with_row(
        row(100, "Status")
        .with_panel(single(1, "Ready", "min(watchdog_ready): 1 when every instance consumes.",
                           q(f"min(watchdog_ready{{{JOB}}})"),
                           steps=((None, "red"), (1, "green")),
                           mappings=[dm.ValueMap(options={
                               "0": dm.ValueMappingResult(text="NOT READY", color="red"),
                               "1": dm.ValueMappingResult(text="READY", color="green")})]))
        .with_panel(single(2, "Events / s",
                           "Valid access events read, all sources (an anomaly service, reading "
                           "them again, is not counted twice).",
                           q(f"sum({read_rate('watchdog_events_total')})"),
                           unit="ops", steps=((None, "blue"),)))
        .with_panel(single(3, "Alerts in range", "Alerts raised over the dashboard's time range.",
                           q(f"round(sum(increase(watchdog_alerts_total{{{JOB}}}[$__range])))",
                             instant=True),
                           steps=((None, "green"), (1, "orange")), calc="last"))
        .with_panel(single(4, "Critical alerts in range",
                           "Critical violations over the dashboard's time range (these page).",
                           q(f'round(sum(increase(watchdog_alerts_total{{{JOB}, '
                             f'severity="critical"}}[$__range])))', instant=True),
                           steps=((None, "green"), (1, "red")), calc="last"))
        .with_panel(single(5, "Model version",
                           "The anomaly model in use (watchdog_model_info); none: no model.",
                           q(f"max by (version) (watchdog_model_info{{{JOB}}}) or "
                             f"label_replace(max(watchdog_model_loaded{{{JOB}}}) == 0, "
                             f'"version", "none", "", "")', "{{version}}", instant=True),
                           text_mode=common.BigValueTextMode.NAME, steps=((None, "purple"),)))
        .with_panel(single(6, "watchdog version", "watchdog_build_info of the running instances.",
                           q(f"count by (version) (watchdog_build_info{{{JOB}}})", "{{version}}",
                             instant=True),
                           text_mode=common.BigValueTextMode.NAME, steps=((None, "text"),)))
    )

    d = d.with_row(
        row(101, "Input")
        .with_panel(ts(7, "Events / s by source",
                       "Valid access events per event.dataset (the system that logged them).",
                       [q(f"sum by (dataset) ({read_rate('watchdog_events_total')})",
                          "{{dataset}}")], unit="ops", stacked=True, legend_calcs=("mean", "max")))
        .with_panel(ts(8, "Invalid, late and duplicate input / s",
                       "Documents rejected to the dead-letter topic (by reason), events behind "
                       "the watermark, redeliveries dropped as duplicates, and events that "
                       "reused a known event.id with other content (processed).",
                       [q(f"sum by (reason) ({read_rate('watchdog_events_invalid_total')})",
                          "invalid: {{reason}}"),
                        q(f"sum({read_rate('watchdog_events_late_total')})", "late", "B"),
                        q(f"sum({read_rate('watchdog_events_duplicate_total')})",
                          "duplicate", "C"),
                        q(f"sum({read_rate('watchdog_events_id_conflicts_total')})",
                          "id conflict", "D")], unit="ops"))
        .with_panel(ts(9, "Consumer lag by topic and partition",
                       "Messages not yet read, per consumer group (the rules and the anomaly "
                       "services read access-logs each in its own group); a state topic, read "
                       "by every instance, shows its slowest. Growing lag: the watchdog falls "
                       "behind.",
                       [q(f"max by (group, topic, partition) "
                          f"(watchdog_consumer_lag{{{JOB}}})",
                          "{{topic}}/{{partition}} {{group}}")], legend_calcs=("last", "max")))
        .with_panel(ts(10, "Source freshness",
                       "Wall time minus the event time of each source's newest event. A source "
                       "that climbs while others stay low has fallen silent.",
                       [q(f"time() - max by (dataset) "
                          f"(watchdog_source_last_event_timestamp_seconds{{{JOB}}})",
                          "{{dataset}}")], unit="s", legend_calcs=("last",)))
    )

    d = d.with_row(
        row(102, "Violations")
        .with_panel(ts(11, "Alert rate by rule",
                       "Trend: alerts per hour per rule id (rate). Totals are in the bar gauge "
                       "and the table below (increase over the whole range).",
                       [q(f"sum by (rule) (rate(watchdog_alerts_total{{{JOB}}}[{RATE}])) * 3600",
                          "{{rule}}")], unit="short", stacked=True,
                       legend_calcs=("mean", "max")))
        .with_panel(ts(12, "Alert rate by severity",
                       "Trend: alerts per hour per severity (critical pages the on-call).",
                       [q(f"sum by (severity) (rate(watchdog_alerts_total{{{JOB}}}[{RATE}]))"
                          " * 3600", "{{severity}}")], unit="short", stacked=True,
                       legend_calcs=("mean", "max"))
                    .override_by_name("critical", [dm.DynamicConfigValue(
                        id_val="color", value={"mode": "fixed", "fixedColor": "red"})]))
        .with_panel(bars(13, "Commitments most often broken",
                         "Top 10 rules by alerts over the time range: the policy commitments "
                         "the organisation breaks most.",
                         q(f"topk(10, round(sum by (rule) (increase(watchdog_alerts_total"
                           f"{{{JOB}}}[$__range])))) > 0", "{{rule}}", instant=True),
                         w=12, h=9, steps=((None, "green"), (1, "orange"), (10, "red"))))
        .with_panel(
            table.Panel().id(14).title("Alerts by rule and severity")
            .description("Alerts over the time range per rule and severity.")
            .datasource(DS).span(12).height(9)
            .targets([q(f"round(sum by (rule, severity) (increase(watchdog_alerts_total"
                        f"{{{JOB}}}[$__range]))) > 0", instant=True,
                        fmt=pm.PromQueryFormat.TABLE)])
            .with_transformation(dm.DataTransformerConfig(id_val="organize", options={
                "excludeByName": {"Time": True},
                "renameByName": {"Value": "alerts"}}))
            .sort_by([common_b.TableSortByFieldState().display_name("alerts").desc(True)])
            .unit("short").decimals(0))
        .with_panel(ts(15, "Alerts deduplicated / s",
                       "Alerts not sent because an identical alert (same alert_id) was already "
                       "sent: replays and redeliveries. Per file sink (jsonl, audit): alerts "
                       "it already held and did not write again (a retry after a slow write, "
                       "the alerts sent again after a restart).",
                       [q(f"sum(rate(watchdog_alerts_deduplicated_total{{{JOB}}}[{RATE}]))",
                          "deduplicated"),
                        q(f"sum by (sink) (rate(watchdog_sink_skipped_total{{{JOB}}}[{RATE}]))",
                          "{{sink}}: already held")], unit="ops", w=8))
        .with_panel(ts(16, "Accounts tracked",
                       "Accounts with state in the windowed rules and the anomaly features.",
                       [q(f"sum(watchdog_accounts_tracked{{{JOB}}})", "accounts")], w=8))
        .with_panel(ts(17, "Policy reloads",
                       "SIGHUP reloads of the policy by result; a failure keeps the old policy.",
                       [q(f"sum by (result) (increase(watchdog_policy_reloads_total{{{JOB}}}"
                          f"[{RATE}]))", "{{result}}")], bars=True, w=8))
    )

    d = d.with_row(
        row(103, "Alert delivery (sinks)")
        .with_panel(ts(18, "Alerts sent / s by sink",
                       "Alerts delivered to Kafka, Alertmanager, webhooks, files.",
                       [q(f"sum by (sink) (rate(watchdog_sink_sent_total{{{JOB}}}[{RATE}]))",
                          "{{sink}}")], unit="ops", w=8))
        .with_panel(ts(19, "Sink errors / s",
                       "Failed sends per sink (retried). Sustained errors: see the runbook of "
                       "WatchdogSinkFailing.",
                       [q(f"sum by (sink) (rate(watchdog_sink_errors_total{{{JOB}}}[{RATE}]))",
                          "{{sink}}")], unit="ops", w=8)
                    .color_scheme(dash.FieldColor().mode(dm.FieldColorModeId.FIXED)
                                  .fixed_color("red")))
        .with_panel(ts(20, "Sink latency p95",
                       "95th percentile of one send, per sink.",
                       [q(f"histogram_quantile(0.95, sum by (sink, le) "
                          f"(rate(watchdog_sink_latency_seconds_bucket{{{JOB}}}[{RATE}])))",
                          "{{sink}}")], unit="s", w=8))
    )

    d = d.with_row(
        row(104, "Anomaly model")
        .with_panel(heat(21, "Anomaly score distribution",
                         "Isolation-forest scores of accounts' recent behaviour; alerts fire past "
                         "the model's threshold.",
                         q(f"sum by (le) (increase(watchdog_anomaly_score_bucket{{{JOB}}}"
                           f"[{RATE}]))", "{{le}}", fmt=pm.PromQueryFormat.HEATMAP),
                         unit="short", w=12))
        .with_panel(single(22, "Model loaded", "1 when an anomaly model is loaded and scoring.",
                           q(f"min(watchdog_model_loaded{{{JOB}}})"),
                           steps=((None, "orange"), (1, "green")), w=4, h=8,
                           mappings=[dm.ValueMap(options={
                               "0": dm.ValueMappingResult(text="no model", color="orange"),
                               "1": dm.ValueMappingResult(text="loaded", color="green")})]))
        .with_panel(ts(23, "Anomaly alerts / h", "Alerts of the anomaly rule per hour, by "
                       "severity.",
                       [q(f'sum by (severity) (rate(watchdog_alerts_total{{{JOB}, '
                          f'rule="anomaly"}}[{RATE}])) * 3600', "{{severity}}")], w=8))
    )
    return d


# -- operations -------------------------------------------------------------------------


def operations() -> dash.Dashboard:
    d = base("watchdog-operations", "watchdog / operations",
             "How the watchdog itself runs: latency, queues, state, restarts, the process.",
             "watchdog-overview", "watchdog / overview")

    d = d.with_row(
        row(200, "Latency")
        .with_panel(ts(1, "Event to alert latency",
                       "Wall time from consuming an event to its alert being sent "
                       "(watchdog_event_to_alert_seconds).",
                       quantiles("watchdog_event_to_alert_seconds"), unit="s"))
        .with_panel(heat(2, "Event to alert latency distribution",
                         "Histogram of watchdog_event_to_alert_seconds over time.",
                         q(f"sum by (le) (increase(watchdog_event_to_alert_seconds_bucket"
                           f"{{{JOB}}}[{RATE}]))", "{{le}}", fmt=pm.PromQueryFormat.HEATMAP),
                         unit="s"))
        .with_panel(ts(3, "Batch processing time",
                       "Time to run one consumed batch through the rules (watchdog_batch_seconds).",
                       quantiles("watchdog_batch_seconds"), unit="s"))
        .with_panel(ts(4, "Sink latency by sink",
                       "p50 and p99 of one send per sink (watchdog_sink_latency_seconds).",
                       [q(f"histogram_quantile(0.5, sum by (sink, le) "
                          f"(rate(watchdog_sink_latency_seconds_bucket{{{JOB}}}[{RATE}])))",
                          "{{sink}} p50"),
                        q(f"histogram_quantile(0.99, sum by (sink, le) "
                          f"(rate(watchdog_sink_latency_seconds_bucket{{{JOB}}}[{RATE}])))",
                          "{{sink}} p99", "B")], unit="s"))
    )

    d = d.with_row(
        row(201, "Queues and state")
        .with_panel(ts(5, "Queue depth",
                       "alerts: waiting for the sinks; reorder: events held until the "
                       "watermark passes them (event-time order across partitions).",
                       [q(f"sum by (queue) (watchdog_queue_depth{{{JOB}}})", "{{queue}}")],
                       w=8, legend_calcs=("last", "max")))
        .with_panel(ts(6, "State entries",
                       "Directory records, subject-register entries, accounts' open windows and "
                       "datasets (log_gap) held in memory; and keys from events forgotten per "
                       "hour: idle past their window (changes nothing) or dropped past a cap "
                       "(windows cut short: alerts may be missed).",
                       [q(f"sum by (state) (watchdog_state_entries{{{JOB}}})", "{{state}}"),
                        q(f"sum by (state, reason) (increase(watchdog_state_dropped_total"
                          f"{{{JOB}}}[1h]))", "forgotten/h: {{state}} ({{reason}})", "B")],
                       w=8, legend_calcs=("last", "max")))
        .with_panel(ts(7, "Accounts tracked", "Accounts with windowed or anomaly state.",
                       [q(f"sum by (instance) (watchdog_accounts_tracked{{{JOB}}})",
                          "{{instance}}")], w=8))
        .with_panel(ts(8, "Consumer lag by topic",
                       "Unread messages per topic and consumer group, all partitions (a state "
                       "topic, read by every instance: its slowest instance's).",
                       [q(f"sum by (group, topic) (max by (group, topic, partition) "
                          f"(watchdog_consumer_lag{{{JOB}}}))", "{{topic}} {{group}}")],
                       legend_calcs=("last", "max")))
        .with_panel(ts(9, "Event-time watermark delay",
                       "Wall time minus the watermark (the event time up to which every "
                       "partition has been read). High during a backlog catch-up.",
                       [q(f"time() - min by (instance) "
                          f"(watchdog_watermark_timestamp_seconds{{{JOB}}})", "{{instance}}")],
                       unit="s"))
    )

    d = d.with_row(
        row(202, "Process")
        .with_panel(single(10, "Up", "Scrape health of each instance.",
                           q(f"sum(up{{{JOB}}})", "up"), w=6,
                           steps=((None, "red"), (1, "green"))))
        .with_panel(single(11, "Restarts in range",
                           "Process starts over the time range (changes of "
                           "process_start_time_seconds).",
                           q(f"sum(changes(process_start_time_seconds{{{JOB}}}[$__range]))",
                             instant=True), w=6, calc="last",
                           steps=((None, "green"), (1, "orange"), (3, "red"))))
        .with_panel(single(12, "Uptime", "Time since the youngest instance started.",
                           q(f"time() - max(process_start_time_seconds{{{JOB}}})"), unit="s",
                           w=6, steps=((None, "orange"), (600, "green"))))
        .with_panel(single(13, "Ready", "Instances reporting ready (watchdog_ready).",
                           q(f"sum(watchdog_ready{{{JOB}}})"), w=6,
                           steps=((None, "red"), (1, "green"))))
        .with_panel(ts(14, "Restarts", "Process starts per instance (the annotation marks them).",
                       [q(f"changes(process_start_time_seconds{{{JOB}}}[{RATE}])",
                          "{{instance}}")], bars=True, w=8))
        .with_panel(ts(15, "CPU", "CPU seconds per second, per instance.",
                       [q(f"rate(process_cpu_seconds_total{{{JOB}}}[{RATE}])", "{{instance}}")],
                       unit="percentunit", w=8))
        .with_panel(ts(16, "Memory (RSS)", "Resident memory per instance.",
                       [q(f"process_resident_memory_bytes{{{JOB}}}", "{{instance}}")],
                       unit="bytes", w=8))
        .with_panel(ts(17, "Open file descriptors", "Open fds against the limit.",
                       [q(f"process_open_fds{{{JOB}}}", "{{instance}} open"),
                        q(f"process_max_fds{{{JOB}}}", "{{instance}} max", "B")], w=8))
        .with_panel(ts(18, "Policy reloads / h", "SIGHUP reloads by result.",
                       [q(f"sum by (result) (increase(watchdog_policy_reloads_total{{{JOB}}}"
                          f"[1h]))", "{{result}}")], w=8))
        .with_panel(ts(19, "Alerts / s", "All alerts raised, for comparing with the load above.",
                       [q(f"sum(rate(watchdog_alerts_total{{{JOB}}}[{RATE}]))", "alerts")],
                       unit="ops", w=8))
    )

    d = d.with_row(
        row(203, "Whole-stream reader (log_gap over every partition)")
        .with_panel(single(20, "Whole-stream readers",
                           "Instances running the whole-stream reader (consumer group "
                           "<group>.whole-stream): exactly 1 is right. 0: no instance checks "
                           "the logs for gaps across partitions (alert WatchdogWholeStreamReader).",
                           q(f"sum(watchdog_whole_stream_reader{{{JOB}}})"), w=6, h=8,
                           steps=((None, "red"), (1, "green"), (2, "orange"))))
        .with_panel(ts(21, "Whole-stream reader lag by topic",
                       "Records the whole-stream reader has not read yet, per topic; growing "
                       "lag delays log_gap alerts.",
                       [q(f"sum by (topic) (watchdog_whole_stream_lag{{{JOB}}}) or "
                          f"sum(watchdog_whole_stream_reader{{{JOB}}}) * 0", "{{topic}}")],
                       w=10, h=8, legend_calcs=("last", "max")))
        .with_panel(bars(22, "Log gaps in range by dataset",
                         "log_gap alerts over the time range per dataset whose log has the "
                         "gap (alert WatchdogLogGap).",
                         q(f"round(sum by (dataset) (increase(watchdog_log_gaps_total{{{JOB}}}"
                           f"[$__range])))", "{{dataset}}", instant=True),
                         w=8, h=8, steps=((None, "green"), (1, "orange"))))
    )
    ready0 = f"sum(watchdog_ready{{{JOB}}}) * 0"  # 0, not "no data", without an archive
    d = d.with_row(
        row(204, "Archive (long-term record of events, records and alerts)")
        .with_panel(ts(23, "Archived documents / s by dataset",
                       "Documents written to archive segments (archive sink).",
                       [q(f"sum by (dataset) (rate(watchdog_archive_rows_total{{{JOB}}}"
                          f"[{RATE}])) or {ready0}", "{{dataset}}")], unit="ops", w=8))
        .with_panel(ts(24, "Archive pending and write errors",
                       "Documents waiting for the next segment, and failed flushes (retried; "
                       "alert WatchdogArchiveWriteFailing).",
                       [q(f"sum(watchdog_archive_pending{{{JOB}}})", "pending"),
                        q(f"sum(increase(watchdog_archive_write_errors_total{{{JOB}}}[{RATE}]))",
                          "write errors", "B")], w=8))
        .with_panel(single(25, "Since last archive flush",
                           "Wall time since the last successful flush (0 flushes yet: no "
                           "archive sink, or nothing written).",
                           q(f"time() - max(watchdog_archive_last_flush_timestamp_seconds"
                             f"{{{JOB}}} > 0) or {ready0}"), unit="s", w=8, h=8,
                           steps=((None, "green"), (900, "orange"), (3600, "red"))))
        .with_panel(
            table.Panel().id(26).title("Archive days and missing days by dataset")
            .description("Days the archive holds and days missing between its first and last "
                         "(alert WatchdogArchiveDayMissing); rows of the latest days; live "
                         "segments, and closed days not compacted (alert "
                         "WatchdogArchiveNotCompacted: watchdog archive compact).")
            .datasource(DS).span(24).height(8)
            .targets([q(f"max by (dataset) (watchdog_archive_days{{{JOB}}}) or {ready0}",
                        "days", "A", instant=True, fmt=pm.PromQueryFormat.TABLE),
                      q(f"max by (dataset) (watchdog_archive_missing_days{{{JOB}}}) or {ready0}",
                        "missing", "B", instant=True, fmt=pm.PromQueryFormat.TABLE),
                      q(f"topk(7, max by (dataset, day) (watchdog_archive_day_rows{{{JOB}}})) "
                        f"or {ready0}", "rows", "C", instant=True,
                        fmt=pm.PromQueryFormat.TABLE),
                      q(f"max by (dataset) (watchdog_archive_segments{{{JOB}}}) or {ready0}",
                        "segments", "D", instant=True, fmt=pm.PromQueryFormat.TABLE),
                      q(f"max by (dataset) (watchdog_archive_uncompacted_days{{{JOB}}}) "
                        f"or {ready0}", "not compacted", "E", instant=True,
                        fmt=pm.PromQueryFormat.TABLE)])
            .unit("short").decimals(0))
    )
    d = d.with_row(
        row(205, "Anomaly model's learnt state (model_state: kept across restarts)")
        .with_panel(ts(27, "Model state saves / h by result",
                       "Saves of the model's baselines, usual days and risk: ok, failed "
                       "(alert WatchdogModelStateFailing) and deferred (records re-read after "
                       "an assignment still buffered, or an alert waiting for a sink).",
                       [q(f"sum by (result) (increase(watchdog_model_state_saves_total{{{JOB}}}"
                          f"[1h])) or {ready0}", "{{result}}")], w=8))
        .with_panel(ts(28, "Model state size",
                       "Bytes of the last save (~2 KB per account; twice that on disk while "
                       "a save is written) and the time the pipeline waits while it is "
                       "captured (p95).",
                       [q(f"max(watchdog_model_state_bytes{{{JOB}}})", "bytes"),
                        q(f"histogram_quantile(0.95, sum by (le) (rate("
                          f"watchdog_model_state_capture_seconds_bucket{{{JOB}}}[{RATE}]))) "
                          f"or {ready0}", "capture p95 (s)", "B")], unit="bytes", w=8))
        .with_panel(bars(29, "Starts by what became of the saved state",
                         "Over the range: restored, none (no file), stale (another topic, "
                         "group or stream, or too far back), unreadable (moved aside). After a "
                         "crash with MQTT: events the model did not learn.",
                         q(f"round(sum by (result) (increase("
                           f"watchdog_model_state_restores_total{{{JOB}}}[$__range]))) "
                           f"or label_replace(max(watchdog_model_state_missed_events"
                           f"{{{JOB}}} >= 0), "
                           f"\"result\", \"events missed (MQTT)\", \"\", \"\")",
                           "{{result}}", instant=True),
                         w=8, h=8, steps=((None, "green"),)))
        .with_panel(ts(30, "Rules' alerts read by the anomaly service / h",
                       "The anomaly service (detection.only: anomaly) reads the rules "
                       "service's alerts back from the Kafka sink's topic for its accumulated "
                       "risk: taken, foreign (an account another instance reads), old (read "
                       "again after a restart) and invalid. Nothing taken while rule alerts "
                       "flow: the risk weighs windows and the leaver period only. Lifts: times "
                       "it stopped waiting for the rules service's offsets (none moved for "
                       "detection.follow_rules_seconds): the rules' alerts then count late.",
                       [q(f"sum by (result) (increase(watchdog_rule_alerts_read_total{{{JOB}}}"
                          f"[1h])) or {ready0}", "{{result}}"),
                        q(f"sum(increase(watchdog_rules_follow_lifted_total{{{JOB}}}[1h]))",
                          "lifts", "B")], w=12))
        .with_panel(ts(31, "Since the last model state save",
                       "Wall time since the model's state was last saved (since the start "
                       "before the first save), the same while saves are deferred, and after "
                       "how long deferred saves alert (WatchdogModelStateSavesDeferred: 6 save "
                       "periods, at least 30 minutes). 0: no model state kept.",
                       [q(f"max(time() - (watchdog_model_state_last_save_timestamp_seconds"
                          f"{{{JOB}}} > 0)) or {ready0}", "since the last save"),
                        q(f"max((time() - (watchdog_model_state_last_save_timestamp_seconds"
                          f"{{{JOB}}} > 0)) and on (job, instance) "
                          f"(watchdog_model_state_deferred{{{JOB}}} == 1)) or {ready0}",
                          "the same, deferred", "B"),
                        q(f"min(clamp_min(6 * (watchdog_model_state_period_seconds{{{JOB}}} "
                          f"> 0), 1800)) or {ready0}", "deferred alert after", "C")],
                       unit="s", w=12))
    )
    return d


# -- promises (the privacy analyst's view) -----------------------------------------------

COMMITMENT_CLAUSE = (f"* on (commitment) group_left (clause) "
                     f"max by (commitment, clause) (watchdog_commitment_info{{{JOB}}})")


def _account_alerts(window: str) -> str:
    """Alerts per pseudonymous account over ``window``: increase() for the series that existed
    before the window; for a series born inside it (an account's first alert of the day) its
    value, which increase() would not count."""
    c = f"watchdog_account_alerts_total{{{JOB}}}"
    return (f"topk(10, round(sum by (account) ((increase({c}[{window}]) and {c} offset {window})"
            f" or ({c} unless {c} offset {window})))) > 0")


def _by_commitment(pid: int, title: str, desc: str, *, week: bool) -> table.Panel:
    expr = (f"(round(sum by (commitment) (increase(watchdog_commitment_alerts_total{{{JOB}}}"
            f"[$__range]))) > 0) {COMMITMENT_CLAUSE}")
    panel = (table.Panel().id(pid).title(title).description(desc).datasource(DS)
             .span(12).height(9)
             .targets([q(expr, instant=True, fmt=pm.PromQueryFormat.TABLE)])
             .with_transformation(dm.DataTransformerConfig(id_val="organize", options={
                 "excludeByName": {"Time": True, "job": True, "instance": True},
                 "indexByName": {"commitment": 0, "clause": 1, "Value": 2},
                 "renameByName": {"Value": "broken", "clause": "promise (policy clause)"}}))
             .sort_by([common_b.TableSortByFieldState().display_name("broken").desc(True)])
             .unit("short").decimals(0))
    if week:
        panel = panel.time_from("now/w")
    return panel


def _accounts(pid: int, title: str, *, week: bool) -> table.Panel:
    panel = (table.Panel().id(pid).title(title)
             .description("The 10 accounts with the most alerts, as keyed-hash pseudonyms "
                          "(a- + 16 hex; the alerts carry the account id for those allowed to "
                          "see it). At most 100 accounts a day are counted by name, the rest "
                          "as 'other'.")
             .datasource(DS).span(6).height(9)
             .targets([q(_account_alerts("$__range"), instant=True,
                         fmt=pm.PromQueryFormat.TABLE)])
             .with_transformation(dm.DataTransformerConfig(id_val="organize", options={
                 "excludeByName": {"Time": True},
                 "renameByName": {"Value": "alerts", "account": "account (pseudonym)"}}))
             .sort_by([common_b.TableSortByFieldState().display_name("alerts").desc(True)])
             .unit("short").decimals(0))
    if week:
        panel = panel.time_from("now/w")
    return panel


def promises() -> dash.Dashboard:
    d = (base("watchdog-promises", "watchdog / promises",
              "Which promises of the privacy policy were broken today and this week, by which "
              "rule and which (pseudonymous) accounts.",
              "watchdog-overview", "watchdog / overview")
         .time("now/d", "now"))
    total = f"round(sum(increase(watchdog_alerts_total{{{JOB}}}[$__range])))"
    crit = f'round(sum(increase(watchdog_alerts_total{{{JOB}, severity="critical"}}[$__range])))'
    d = d.with_row(
        row(300, "Broken promises")
        .with_panel(single(1, "Alerts today", "Every alert since midnight (the dashboard's "
                           "range: Today so far).", q(total, instant=True), w=6,
                           steps=((None, "green"), (1, "orange")), calc="last"))
        .with_panel(single(2, "Critical today", "Critical alerts since midnight (these page).",
                           q(crit, instant=True), w=6,
                           steps=((None, "green"), (1, "red")), calc="last"))
        .with_panel(single(3, "Alerts this week", "Every alert since Monday 00:00.",
                           q(total, instant=True), w=6,
                           steps=((None, "green"), (1, "orange")), calc="last")
                    .time_from("now/w"))
        .with_panel(single(4, "Critical this week", "Critical alerts since Monday 00:00.",
                           q(crit, instant=True), w=6,
                           steps=((None, "green"), (1, "red")), calc="last")
                    .time_from("now/w"))
        .with_panel(_by_commitment(
            5, "Promises broken today",
            "Alerts per commitment of the policy since midnight, with the clause's words "
            "(watchdog_commitment_info). An alert counts for every commitment naming its rule.",
            week=False))
        .with_panel(_by_commitment(
            6, "Promises broken this week", "As on the left, since Monday 00:00.", week=True))
    )
    d = d.with_row(
        row(301, "By rule and by account")
        .with_panel(bars(7, "Rules today",
                         "Alerts per rule since midnight (each rule enforces commitments).",
                         q(f"round(sum by (rule) (increase(watchdog_alerts_total{{{JOB}}}"
                           f"[$__range]))) > 0", "{{rule}}", instant=True),
                         w=12, h=9, steps=((None, "green"), (1, "orange"), (10, "red"))))
        .with_panel(_accounts(8, "Top accounts today", week=False))
        .with_panel(_accounts(9, "Top accounts this week", week=True))
        .with_panel(ts(10, "Broken promises per hour, by commitment",
                       "Trend: alerts per hour per commitment (rate).",
                       [q(f"sum by (commitment) (rate(watchdog_commitment_alerts_total{{{JOB}}}"
                          f"[{RATE}])) * 3600", "{{commitment}}")], w=24,
                       legend_calcs=("mean", "max")))
    )
    d = d.with_row(
        row(302, "Obligations and exceptions")
        .with_panel(ts(11, "Open obligations by rule",
                       "Obligations with a deadline opened and not yet judged (an erasure "
                       "request, a leaver's account to revoke, a password to change). One "
                       "overdue becomes an alert of its rule (erasure_overdue, "
                       "account_not_revoked, password_expired), counted above.",
                       [q(f"sum by (rule) (watchdog_obligations_open{{{JOB}}}) or "
                          f"sum(watchdog_ready{{{JOB}}}) * 0", "{{rule}}")], w=12,
                       legend_calcs=("last", "max")))
        .with_panel(bars(12, "Excused by an exception in range",
                         "Alerts the policy's exceptions (with an expiry) excused, per rule, "
                         "over the range; each is in the audit trail with its reason.",
                         q(f"round(sum by (rule) (increase(watchdog_alerts_suppressed_total"
                           f"{{{JOB}}}[$__range]))) or sum(watchdog_ready{{{JOB}}}) * 0",
                           "{{rule}}", instant=True),
                         w=12, h=8, steps=((None, "green"), (1, "blue"))))
    )
    return d


DASHBOARDS = {"overview.json": overview, "operations.json": operations,
              "promises.json": promises}


def flatten_rows(model: dict[str, Any]) -> dict[str, Any]:
    """Grafana's own layout: an expanded row has ``panels: []`` and its panels follow it.

    The SDK nests a row's panels inside the row and marks it collapsed, which
    is how Grafana stores a *collapsed* row; we want every row expanded so the
    dashboard shows everything with no clicking.
    """
    flat: list[Any] = []
    for panel in model.get("panels", []):
        flat.append(panel)
        if panel.get("type") == "row":
            flat.extend(panel.get("panels") or [])
            panel["panels"] = []
            panel["collapsed"] = False
    model["panels"] = flat
    return model


def render(builder: dash.Dashboard) -> str:
    model = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return json.dumps(flatten_rows(model), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed JSON instead of writing it")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for name, make in DASHBOARDS.items():
        text = render(make())
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print("stale (run grafana/build.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
