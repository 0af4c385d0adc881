"""Dashboards as code: builds grafana/dashboards/*.json with grafana-foundation-sdk.

    .venv/bin/python grafana/generate.py          # (re)write the JSON files
    .venv/bin/python grafana/generate.py --check  # exit 1 if a file is out of date

The JSON is committed (Grafana provisions it from grafana/dashboards/) and
tests/stack/test_grafana.py fails when it differs from what this script builds.
Every query names the provisioned datasource by its fixed uid, and reads the
recording rules of prometheus/rules/ where one exists.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, heatmap, piechart, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, StackingConfig, VizLegendOptions
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DashboardLink,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    BigValueTextMode,
    DataSourceRef,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE_UID = "crypto-api-prometheus"  # grafana/provisioning/datasources/prometheus.yml
DS = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
TAGS = ["crypto-api", "generated"]
EXPORTER = 'job="crypto-api-exporter"'

# Provider status as one number per provider (the exporter exposes a state set).
STATUS_CODE = """sum by (provider) (
  crypto_api_provider_status{status="online"%s} * 1
  or crypto_api_provider_status{status="degraded"%s} * 2
  or crypto_api_provider_status{status="offline"%s} * 3
  or crypto_api_provider_status{status="unknown"%s} * 0
  or crypto_api_provider_status{status="disabled"%s} * 4
)"""
STATUS_MAPPINGS = [
    ValueMap(
        options={
            "0": ValueMappingResult(text="unknown", color="text", index=0),
            "1": ValueMappingResult(text="online", color="green", index=1),
            "2": ValueMappingResult(text="degraded", color="orange", index=2),
            "3": ValueMappingResult(text="offline", color="red", index=3),
            "4": ValueMappingResult(text="disabled", color="text", index=4),
        }
    )
]


def status_code(extra: str = "") -> str:
    return STATUS_CODE % ((extra,) * 5)


def q(expr: str, legend: str = "", *, ref: str = "A", instant: bool = False, fmt: PromQueryFormat | None = None) -> Dataquery:
    query = Dataquery().expr(expr).ref_id(ref).datasource(DS)
    if legend:
        query = query.legend_format(legend)
    if instant:
        query = query.instant()
    if fmt is not None:
        query = query.format(fmt)
    return query


def thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([Threshold(value=v, color=c) for v, c in steps])


GREEN_RED = thresholds((None, "green"), (1, "red"))
RATIO_GOOD_HIGH = thresholds((None, "red"), (0.8, "orange"), (0.95, "green"))
RATIO_BAD_HIGH = thresholds((None, "green"), (0.8, "orange"), (0.95, "red"))


def ts(
    title: str,
    *queries: Dataquery,
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    stacked: bool = False,
    description: str = "",
    minimum: float | None = None,
    maximum: float | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(DS)
        .unit(unit)
        .span(w)
        .height(h)
        .fill_opacity(10)
        .legend(VizLegendOptions().display_mode(LegendDisplayMode.TABLE).placement(LegendPlacement.RIGHT).show_legend(True).calcs(["lastNotNull", "max"]))
    )
    if stacked:
        panel = panel.stacking(StackingConfig().mode(StackingMode.NORMAL)).fill_opacity(60)
    if description:
        panel = panel.description(description)
    if minimum is not None:
        panel = panel.min(minimum)
    if maximum is not None:
        panel = panel.max(maximum)
    for query in queries:
        panel = panel.with_target(query)
    return panel


def stat_panel(
    title: str,
    *queries: Dataquery,
    unit: str = "short",
    w: int = 6,
    h: int = 4,
    th: ThresholdsConfig | None = None,
    mappings: list | None = None,
    description: str = "",
    color_mode: BigValueColorMode = BigValueColorMode.VALUE,
    text_mode: BigValueTextMode = BigValueTextMode.AUTO,
    fixed_color: str | None = None,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .datasource(DS)
        .unit(unit)
        .span(w)
        .height(h)
        .graph_mode(BigValueGraphMode.NONE)
        .color_mode(color_mode)
        .text_mode(text_mode)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if th is not None:
        panel = panel.thresholds(th)
    if fixed_color is not None:
        panel = panel.thresholds(thresholds((None, fixed_color)))
    if mappings:
        panel = panel.mappings(mappings)
    if description:
        panel = panel.description(description)
    for query in queries:
        panel = panel.with_target(query)
    return panel


def bar(
    title: str,
    *queries: Dataquery,
    unit: str = "percentunit",
    w: int = 12,
    h: int = 8,
    th: ThresholdsConfig | None = None,
    minimum: float = 0,
    maximum: float | None = 1,
    description: str = "",
) -> bargauge.Panel:
    panel = (
        bargauge.Panel()
        .title(title)
        .datasource(DS)
        .unit(unit)
        .span(w)
        .height(h)
        .min(minimum)
        .orientation(VizOrientation.HORIZONTAL)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if maximum is not None:
        panel = panel.max(maximum)
    if th is not None:
        panel = panel.thresholds(th)
    if description:
        panel = panel.description(description)
    for query in queries:
        panel = panel.with_target(query)
    return panel


def table_panel(title: str, *queries: Dataquery, w: int = 12, h: int = 8, unit: str = "short", description: str = "") -> table.Panel:
    panel = table.Panel().title(title).datasource(DS).span(w).height(h).unit(unit)
    if description:
        panel = panel.description(description)
    for query in queries:
        panel = panel.with_target(query)
    return panel


def timeline(title: str, *queries: Dataquery, w: int = 24, h: int = 8, mappings: list | None = None, th: ThresholdsConfig | None = None) -> statetimeline.Panel:
    panel = statetimeline.Panel().title(title).datasource(DS).span(w).height(h)
    if mappings:
        panel = panel.mappings(mappings)
    if th is not None:
        panel = panel.thresholds(th)
    for query in queries:
        panel = panel.with_target(query)
    return panel


def heat(title: str, expr: str, w: int = 12, h: int = 8, description: str = "") -> heatmap.Panel:
    panel = heatmap.Panel().title(title).datasource(DS).span(w).height(h).calculate(False).with_target(q(expr, "{{le}}", fmt=PromQueryFormat.HEATMAP))
    if description:
        panel = panel.description(description)
    return panel


def pie(title: str, *queries: Dataquery, w: int = 8, h: int = 8) -> piechart.Panel:
    panel = piechart.Panel().title(title).datasource(DS).span(w).height(h).reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    for query in queries:
        panel = panel.with_target(query)
    return panel


def base(uid: str, title: str, description: str) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .link(
            DashboardLink("Crypto API dashboards").type(DashboardLinkType.DASHBOARDS).tags(["crypto-api"]).as_dropdown(True).include_vars(False).keep_time(True)
        )
    )


def provider_variable(query_metric: str = "crypto_api_up") -> QueryVariable:
    return (
        QueryVariable("provider")
        .label("Provider")
        .datasource(DS)
        .query({"query": f"label_values({query_metric}, provider)", "refId": "PrometheusVariableQueryEditor-VariableQuery"})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


def multi_variable(name: str, label: str, query: str) -> QueryVariable:
    """A multi-value variable whose "All" is the regex `.*`."""
    return (
        QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query({"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


# ------------------------------------------------------------------ dashboards


def overview() -> Dashboard:
    counts = [
        ("Online", "online", "green"),
        ("Degraded", "degraded", "orange"),
        ("Offline", "offline", "red"),
        ("Unknown", "unknown", "text"),
    ]
    d = base("crypto-api-overview", "Crypto API / Overview", "Every monitored crypto API at a glance: status, availability, latency and outcomes.")
    d = d.with_row(Row("Status"))
    for title, status, color in counts:
        d = d.with_panel(
            stat_panel(
                f"Providers {title.lower()}",
                q(f'sum(status:crypto_api_provider_status:count{{status="{status}"}})', title, instant=True),
                fixed_color=color,
                color_mode=BigValueColorMode.BACKGROUND,
                w=6,
                h=4,
            )
        )
    d = (
        d.with_panel(
            stat_panel(
                "Provider status",
                q(status_code(), "{{provider}}", instant=True),
                w=24,
                h=6,
                mappings=STATUS_MAPPINGS,
                color_mode=BigValueColorMode.BACKGROUND,
                text_mode=BigValueTextMode.VALUE_AND_NAME,
                description="One card per provider, like the KPI cards of the old UI: the exporter's own status "
                "(online: every endpoint healthy; degraded: some failing, slow, stale or rate-limited; "
                "offline: all failing; unknown: not probed yet).",
            )
        )
        .with_panel(stat_panel("Endpoints up", q("sum(crypto_api_up)", "up", instant=True), w=6, h=4, fixed_color="green"))
        .with_panel(
            stat_panel(
                "Endpoints down", q("count(crypto_api_up == 0) or vector(0)", "down", instant=True), w=6, h=4, th=thresholds((None, "green"), (1, "red"))
            )
        )
        .with_panel(
            stat_panel(
                "Success ratio (5m)",
                q('sum(rate(crypto_api_probes_total{outcome="success"}[5m])) / sum(rate(crypto_api_probes_total[5m]))', "success", instant=True),
                unit="percentunit",
                w=6,
                h=4,
                th=RATIO_GOOD_HIGH,
            )
        )
        .with_panel(
            stat_panel("Probes per second", q("sum(rate(crypto_api_probes_total[5m]))", "probes/s", instant=True), unit="reqps", w=6, h=4, fixed_color="blue")
        )
        .with_row(Row("Availability and latency"))
        .with_panel(
            bar("Success ratio by provider (5m)", q("provider:crypto_api_probe_success:ratio_rate5m", "{{provider}}", instant=True), th=RATIO_GOOD_HIGH)
        )
        .with_panel(ts("p95 latency by provider", q("provider:crypto_api_probe_duration_seconds:p95_rate5m", "{{provider}}"), unit="s"))
        .with_panel(
            heat(
                "Probe latency heatmap",
                "sum by (le) (rate(crypto_api_probe_duration_seconds_bucket[$__rate_interval]))",
                description="Latency of every probe that got a response, all providers.",
            )
        )
        .with_panel(ts("Probe outcomes", q("sum by (outcome) (rate(crypto_api_probes_total[$__rate_interval]))", "{{outcome}}"), unit="reqps", stacked=True))
        .with_panel(
            bar(
                "Success ratio by category (5m)",
                q("category:crypto_api_probe_success:ratio_rate5m", "{{category}}", instant=True),
                th=RATIO_GOOD_HIGH,
                w=24,
                h=6,
            )
        )
        .with_row(Row("Data"))
        .with_panel(
            stat_panel(
                "BTC price spread across providers",
                q("name:crypto_api_value:spread_ratio", "{{name}}", instant=True),
                unit="percentunit",
                w=24,
                h=4,
                th=thresholds((None, "green"), (0.005, "orange"), (0.01, "red")),
            )
        )
        .with_panel(ts("BTC price by provider", q('crypto_api_value{name="btc_usd"}', "{{provider}}/{{endpoint}}"), unit="currencyUSD"))
        .with_panel(
            ts(
                "BTC price deviation from the median",
                q("provider_endpoint:crypto_api_value:deviation_ratio", "{{provider}}/{{endpoint}}"),
                unit="percentunit",
                description="Each healthy provider's BTC price against the median of all of them; PriceDivergence fires when the spread exceeds 1 %.",
            )
        )
    )
    return d


def provider_detail() -> Dashboard:
    sel = 'provider="$provider", endpoint=~"$endpoint"'
    d = (
        base(
            "crypto-api-provider",
            "Crypto API / Provider detail",
            "One provider, endpoint by endpoint: status, probes, latency, HTTP codes, retries, breaker, keys and values.",
        )
        .with_variable(provider_variable())
        .with_variable(multi_variable("endpoint", "Endpoint", 'label_values(crypto_api_up{provider="$provider"}, endpoint)'))
        .with_row(Row("Status"))
        .with_panel(
            stat_panel(
                "Status",
                q(status_code(', provider="$provider"'), "{{provider}}", instant=True),
                w=6,
                h=4,
                mappings=STATUS_MAPPINGS,
                color_mode=BigValueColorMode.BACKGROUND,
            )
        )
        .with_panel(
            stat_panel(
                "Success ratio (5m)",
                q('provider:crypto_api_probe_success:ratio_rate5m{provider="$provider"}', "{{provider}}", instant=True),
                unit="percentunit",
                w=6,
                h=4,
                th=RATIO_GOOD_HIGH,
            )
        )
        .with_panel(
            stat_panel(
                "p95 latency (5m)",
                q('provider:crypto_api_probe_duration_seconds:p95_rate5m{provider="$provider"}', "{{provider}}", instant=True),
                unit="s",
                w=6,
                h=4,
                th=thresholds((None, "green"), (1, "orange"), (2, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Circuit breaker",
                q('crypto_api_circuit_breaker_state{provider="$provider"} == 1', "{{state}}", instant=True),
                w=6,
                h=4,
                text_mode=BigValueTextMode.NAME,
                fixed_color="blue",
            )
        )
        .with_panel(
            timeline(
                "Endpoint up",
                q(f"crypto_api_up{{{sel}}}", "{{endpoint}}"),
                mappings=[
                    ValueMap(options={"0": ValueMappingResult(text="down", color="red", index=0), "1": ValueMappingResult(text="up", color="green", index=1)})
                ],
            )
        )
        .with_row(Row("Probes"))
        .with_panel(
            ts(
                "Success ratio by endpoint (5m)",
                q(f"provider_endpoint:crypto_api_probe_success:ratio_rate5m{{{sel}}}", "{{endpoint}}"),
                unit="percentunit",
                minimum=0,
                maximum=1,
            )
        )
        .with_panel(
            ts(
                "Outcomes",
                q(f"sum by (endpoint, outcome) (rate(crypto_api_probes_total{{{sel}}}[$__rate_interval]))", "{{endpoint}} {{outcome}}"),
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            ts(
                "Latency p50 / p95",
                q(f"provider_endpoint:crypto_api_probe_duration_seconds:p50_rate5m{{{sel}}}", "p50 {{endpoint}}"),
                q(f"provider_endpoint:crypto_api_probe_duration_seconds:p95_rate5m{{{sel}}}", "p95 {{endpoint}}", ref="B"),
                unit="s",
            )
        )
        .with_panel(
            ts(
                "Latency anomaly (z-score)",
                q(f"crypto_api_latency_anomaly_zscore{{{sel}}}", "{{endpoint}}"),
                description="LatencyAnomaly fires above 3 for 10 minutes.",
            )
        )
        .with_panel(
            ts(
                "HTTP responses by code",
                q(f"sum by (endpoint, code) (rate(crypto_api_http_responses_total{{{sel}}}[$__rate_interval]))", "{{endpoint}} {{code}}"),
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            ts(
                "Retries by reason",
                q(f"sum by (endpoint, reason) (rate(crypto_api_retries_total{{{sel}}}[$__rate_interval]))", "{{endpoint}} {{reason}}"),
                unit="reqps",
                stacked=True,
            )
        )
        .with_row(Row("Freshness, keys and values"))
        .with_panel(ts("Time since last success", q(f"time() - crypto_api_last_success_timestamp_seconds{{{sel}}}", "{{endpoint}}"), unit="s"))
        .with_panel(
            ts(
                "Data age vs max age",
                q(f"crypto_api_data_age_seconds{{{sel}}}", "age {{endpoint}}"),
                q(f"crypto_api_data_max_age_seconds{{{sel}}}", "max {{endpoint}}", ref="B"),
                unit="s",
            )
        )
        .with_panel(
            table_panel(
                "API keys",
                q('crypto_api_key_valid{provider="$provider"}', "{{key}}", instant=True, fmt=PromQueryFormat.TABLE),
                description="1 = accepted, 0 = rejected (401/403). Keys are named by env var, never by value.",
            )
        )
        .with_panel(ts("Extracted values", q(f"crypto_api_value{{{sel}}}", "{{endpoint}} {{name}}")))
    )
    return d


def rate_limits() -> Dashboard:
    return (
        base(
            "crypto-api-rate-limits",
            "Crypto API / Rate limits",
            "Provider quotas read from response headers, and the exporter's own client-side budget (scope=budget).",
        )
        .with_variable(
            provider_variable("crypto_api_rate_limit_limit")
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(VariableOption(selected=True, text="All", value="$__all"))
        )
        .with_panel(
            bar(
                "Quota used",
                q('provider_scope:crypto_api_rate_limit_usage:ratio{provider=~"$provider"}', "{{provider}} {{scope}}", instant=True),
                th=RATIO_BAD_HIGH,
                w=12,
                h=10,
                description="RateLimitNearExhaustion: warning at 80 %, critical at 95 % (not for the budget).",
            )
        )
        .with_panel(
            ts(
                "Quota used over time",
                q('provider_scope:crypto_api_rate_limit_usage:ratio{provider=~"$provider"}', "{{provider}} {{scope}}"),
                unit="percentunit",
                minimum=0,
                maximum=1,
                h=10,
            )
        )
        .with_panel(ts("Remaining", q('crypto_api_rate_limit_remaining{provider=~"$provider"}', "{{provider}} {{scope}}")))
        .with_panel(ts("Limit", q('crypto_api_rate_limit_limit{provider=~"$provider"}', "{{provider}} {{scope}}")))
        .with_panel(
            ts("Time to quota reset", q('crypto_api_rate_limit_reset_timestamp_seconds{provider=~"$provider"} - time()', "{{provider}} {{scope}}"), unit="s")
        )
        .with_panel(
            ts(
                "Rate-limited and budget-skipped probes",
                q(
                    'sum by (provider, outcome) (rate(crypto_api_probes_total{provider=~"$provider", outcome=~"rate_limited|budget_exhausted"}[$__rate_interval]))',
                    "{{provider}} {{outcome}}",
                ),
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            ts(
                "HTTP 429 responses",
                q(
                    'sum by (provider, endpoint) (rate(crypto_api_http_responses_total{provider=~"$provider", code="429"}[$__rate_interval]))',
                    "{{provider}}/{{endpoint}}",
                ),
                unit="reqps",
                w=24,
            )
        )
    )


def freshness() -> Dashboard:
    return (
        base("crypto-api-freshness", "Crypto API / Freshness and schedule compliance", "Is the data fresh, and do the probes run when they should?")
        .with_row(Row("Freshness"))
        .with_panel(
            bar(
                "Data age / max age",
                q("crypto_api_data_age_seconds / (crypto_api_data_max_age_seconds > 0)", "{{provider}}/{{endpoint}}", instant=True),
                th=thresholds((None, "green"), (0.8, "orange"), (1, "red")),
                maximum=None,
                description="Above 1 the data is older than its configured bound (DataStale after 5 minutes).",
            )
        )
        .with_panel(ts("Data age", q("crypto_api_data_age_seconds", "{{provider}}/{{endpoint}}"), unit="s"))
        .with_panel(ts("Time since last success", q("time() - crypto_api_last_success_timestamp_seconds", "{{provider}}/{{endpoint}}"), unit="s"))
        .with_panel(ts("Time since last probe", q("time() - crypto_api_last_probe_timestamp_seconds", "{{provider}}/{{endpoint}}"), unit="s"))
        .with_row(Row("Schedule compliance"))
        .with_panel(
            bar(
                "Compliance by provider (1h)",
                q("provider:crypto_api_schedule_compliance:ratio_rate1h", "{{provider}}", instant=True),
                th=RATIO_GOOD_HIGH,
                description="Share of scheduled runs that started on time; ScheduleComplianceLow below 90 %.",
            )
        )
        .with_panel(
            bar("Compliance by category (1h)", q("category:crypto_api_schedule_compliance:ratio_rate1h", "{{category}}", instant=True), th=RATIO_GOOD_HIGH)
        )
        .with_panel(
            ts(
                "Scheduled runs by result",
                q("sum by (result) (rate(crypto_api_schedule_runs_total[$__rate_interval]))", "{{result}}"),
                unit="ops",
                stacked=True,
            )
        )
        .with_panel(
            ts(
                "Schedule delay p95 by provider",
                q("histogram_quantile(0.95, sum by (provider, le) (rate(crypto_api_schedule_delay_seconds_bucket[$__rate_interval])))", "{{provider}}"),
                unit="s",
            )
        )
        .with_panel(
            ts(
                "Stale probes",
                q('sum by (provider, endpoint) (rate(crypto_api_probes_total{outcome="stale"}[$__rate_interval]))', "{{provider}}/{{endpoint}}"),
                unit="reqps",
                w=24,
            )
        )
    )


def failures() -> Dashboard:
    failed = 'outcome!="success"'
    return (
        base(
            "crypto-api-failures",
            "Crypto API / Failures",
            "What fails, where, and how: error types, top failing providers, HTTP errors, open breakers, invalid keys.",
        )
        .with_panel(pie("Failures by type", q(f"sum by (outcome) (increase(crypto_api_probes_total{{{failed}}}[$__range]))", "{{outcome}}", instant=True)))
        .with_panel(
            bar(
                "Top failing providers",
                q(f"topk(10, sum by (provider) (increase(crypto_api_probes_total{{{failed}}}[$__range])))", "{{provider}}", instant=True),
                unit="short",
                maximum=None,
                w=8,
                th=thresholds((None, "green"), (1, "orange"), (10, "red")),
            )
        )
        .with_panel(
            bar(
                "Error ratio by provider (5m)",
                q("provider:crypto_api_probe_errors:ratio_rate5m", "{{provider}}", instant=True),
                th=thresholds((None, "green"), (0.05, "orange"), (0.2, "red")),
                w=8,
                description="Failed probes among those that sent a request; HighErrorRate above 20 %.",
            )
        )
        .with_panel(
            ts(
                "Failures over time by type",
                q(f"sum by (outcome) (rate(crypto_api_probes_total{{{failed}}}[$__rate_interval]))", "{{outcome}}"),
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            ts(
                "HTTP errors by provider and code",
                q('sum by (provider, code) (rate(crypto_api_http_responses_total{code=~"[45].."}[$__rate_interval]))', "{{provider}} {{code}}"),
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(table_panel("Endpoints down", q("crypto_api_up == 0", "", instant=True, fmt=PromQueryFormat.TABLE), w=8))
        .with_panel(
            table_panel("Open circuit breakers", q('crypto_api_circuit_breaker_state{state!="closed"} == 1', "", instant=True, fmt=PromQueryFormat.TABLE), w=8)
        )
        .with_panel(table_panel("Invalid API keys", q("crypto_api_key_valid == 0", "", instant=True, fmt=PromQueryFormat.TABLE), w=8))
        .with_panel(table_panel("Firing alerts", q('ALERTS{alertstate="firing"}', "", instant=True, fmt=PromQueryFormat.TABLE), w=24))
    )


def exporter() -> Dashboard:
    sel = EXPORTER
    return (
        base("crypto-api-exporter", "Crypto API / Exporter self-monitoring", "The exporter itself: scrapes, process, scheduler and configuration.")
        .with_panel(
            stat_panel(
                "Exporter up",
                q(f"up{{{sel}}}", "{{instance}}", instant=True),
                w=6,
                mappings=[
                    ValueMap(options={"0": ValueMappingResult(text="down", color="red", index=0), "1": ValueMappingResult(text="up", color="green", index=1)})
                ],
                color_mode=BigValueColorMode.BACKGROUND,
            )
        )
        .with_panel(
            stat_panel(
                "Last config reload",
                q("crypto_api_config_last_reload_successful", "{{instance}}", instant=True),
                w=6,
                mappings=[
                    ValueMap(options={"0": ValueMappingResult(text="failed", color="red", index=0), "1": ValueMappingResult(text="ok", color="green", index=1)})
                ],
                color_mode=BigValueColorMode.BACKGROUND,
            )
        )
        .with_panel(
            stat_panel(
                "Config loaded",
                q("time() - crypto_api_config_last_reload_success_timestamp_seconds", "{{instance}}", instant=True),
                unit="s",
                w=6,
                fixed_color="blue",
                description="Time since the last successful (re)load of providers.yaml.",
            )
        )
        .with_panel(stat_panel("Providers configured", q("count(crypto_api_provider_info)", "providers", instant=True), w=6, fixed_color="blue"))
        .with_panel(ts("Scrape duration", q(f"scrape_duration_seconds{{{sel}}}", "{{instance}}"), unit="s", w=8))
        .with_panel(ts("Samples per scrape", q(f"scrape_samples_scraped{{{sel}}}", "{{instance}}"), w=8))
        .with_panel(
            ts("Probes per second", q("sum by (category) (rate(crypto_api_probes_total[$__rate_interval]))", "{{category}}"), unit="reqps", stacked=True, w=8)
        )
        .with_panel(ts("CPU", q(f"rate(process_cpu_seconds_total{{{sel}}}[$__rate_interval])", "{{instance}}"), unit="percentunit", w=8))
        .with_panel(ts("Resident memory", q(f"process_resident_memory_bytes{{{sel}}}", "{{instance}}"), unit="bytes", w=8))
        .with_panel(ts("Open file descriptors", q(f"process_open_fds{{{sel}}}", "{{instance}}"), w=8))
        .with_panel(
            heat(
                "Schedule delay",
                "sum by (le) (rate(crypto_api_schedule_delay_seconds_bucket[$__rate_interval]))",
                description="How late probes start against their plan: a busy event loop shows here first.",
            )
        )
        .with_panel(
            ts(
                "Python GC collections",
                q(f"sum by (generation) (rate(python_gc_collections_total{{{sel}}}[$__rate_interval]))", "gen {{generation}}"),
                unit="ops",
            )
        )
    )


# ---- chain heads (issue 11, docs/chains.md)

_CHAIN = 'chain=~"$chain"'
# eRPC's BALANCED penalty (docs/chains.md) from what Prometheus has: failed and throttled
# shares and mean latency over 5 minutes, and the lag; lower is better. A node on another
# chain has no lag series, a syncing one is left out: neither can be "best".
_SENT = 'sum by (provider, endpoint) (rate(crypto_api_probes_total{outcome!~"circuit_open|budget_exhausted"}[5m]))'
CHAIN_PENALTY = f"""(
  2 * clamp_min(crypto_api_chain_head_lag_blocks{{{_CHAIN}}}, 0)
  + on (provider, endpoint) group_left () (
    8 * (1 - sum by (provider, endpoint) (rate(crypto_api_probes_total{{outcome="success"}}[5m])) / {_SENT})
    + 3 * ((sum by (provider, endpoint) (rate(crypto_api_probes_total{{outcome="rate_limited"}}[5m])) or 0 * {_SENT}) / {_SENT})
    + 4 * (sum by (provider, endpoint) (rate(crypto_api_probe_duration_seconds_sum[5m])) / sum by (provider, endpoint) (rate(crypto_api_probe_duration_seconds_count[5m])))
  )
) unless on (provider, endpoint) (crypto_api_chain_syncing == 1)"""


def chains() -> Dashboard:
    return (
        base(
            "crypto-api-chains",
            "Crypto API / Chains",
            "RPC chain heads: each chain's reference head (second-highest on the right chain), every node's lag and stillness, wrong chains, the best endpoint now.",
        )
        .with_variable(multi_variable("chain", "Chain", "label_values(crypto_api_chain_reference_head_block, chain)"))
        .with_row(Row("Consensus"))
        .with_panel(
            table_panel(
                "Best endpoint now",
                q(f"bottomk by (chain) (1, {CHAIN_PENALTY})", instant=True, fmt=PromQueryFormat.TABLE),
                w=8,
                description="Lowest penalty per chain: 8 x error share + 3 x throttled share + 4 x mean latency (s) + 2 x blocks behind (eRPC's BALANCED weights).",
            )
        )
        .with_panel(
            bar(
                "Endpoints agreeing",
                q(f"chain:crypto_api_chain_endpoints_agreeing:count{{{_CHAIN}}}", "{{chain}}", instant=True),
                unit="short",
                maximum=None,
                w=8,
                th=thresholds((None, "red"), (2, "orange"), (3, "green")),
                description="Endpoints within their bounds of the reference; below 2 for 5 minutes: ChainHeadsDiverged.",
            )
        )
        .with_panel(
            stat_panel(
                "Chain id mismatches",
                q(f"sum(crypto_api_chain_id_mismatch{{{_CHAIN}}})", instant=True),
                w=4,
                h=8,
                th=GREEN_RED,
                description="Nodes answering for another chain (RpcWrongChain); they take no part in the consensus.",
            )
        )
        .with_panel(stat_panel("Syncing nodes", q(f"sum(crypto_api_chain_syncing{{{_CHAIN}}})", instant=True), w=4, h=8, th=GREEN_RED))
        .with_panel(ts("Reference head", q(f"crypto_api_chain_reference_head_block{{{_CHAIN}}}", "{{chain}}"), w=12))
        .with_panel(ts("Head per endpoint", q(f"crypto_api_chain_head_block{{{_CHAIN}}}", "{{chain}} {{provider}}/{{endpoint}}"), w=12))
        .with_row(Row("Lag and stillness"))
        .with_panel(
            ts(
                "Lag per endpoint (blocks)",
                q(f"crypto_api_chain_head_lag_blocks{{{_CHAIN}}}", "{{chain}} {{provider}}/{{endpoint}}"),
                description="Reference head minus the node's; negative: ahead of it (a rogue node far ahead shows here and moves nothing else).",
            )
        )
        .with_panel(ts("Lag per endpoint (seconds)", q(f"crypto_api_chain_head_lag_seconds{{{_CHAIN}}}", "{{chain}} {{provider}}/{{endpoint}}"), unit="s"))
        .with_panel(
            ts(
                "Head stillness",
                q(f"endpoint:crypto_api_chain_head_still:seconds{{{_CHAIN}}}", "{{chain}} {{provider}}/{{endpoint}}"),
                unit="s",
                description="Time since the node's head last moved; past the endpoint's max_stillness the probe is stale (ChainHeadStuck).",
            )
        )
        .with_panel(
            timeline(
                "Chain id mismatch and syncing",
                q(f"crypto_api_chain_id_mismatch{{{_CHAIN}}} == 1", "wrong chain {{chain}} {{provider}}/{{endpoint}}"),
                q(f"crypto_api_chain_syncing{{{_CHAIN}}} == 1", "syncing {{chain}} {{provider}}/{{endpoint}}", ref="B"),
                w=12,
                th=GREEN_RED,
            )
        )
    )


# ---- end chain heads


# ---- BEGIN api-traffic (issue 15: the user's own API, exporter.traffic; rules in prometheus/rules/traffic.rules.yml)
def api_traffic() -> Dashboard:
    # `job` picks the app: the exporter's own JSON API (job crypto-api-exporter in the
    # stack) exports the same metrics since it uses the middleware too.
    sel = '{job=~"$job"}'
    count = f"http_server_request_duration_seconds_count{sel}"
    return (
        base(
            "api-traffic",
            "API traffic",
            "Your own API, instrumented by exporter.traffic: OpenTelemetry HTTP server metrics by route template, the SLOs of "
            "prometheus/rules/traffic.rules.yml (99.9 % without 5xx, 99 % within 0.5 s). Top and unique clients are not labels: see /dashboard. "
            "The exporter's own JSON API is one more job here.",
        )
        .with_variable(multi_variable("job", "Job", "label_values(http_server_request_duration_seconds_count, job)"))
        .with_panel(stat_panel("Requests per second", q(f"sum(rate({count}[5m]))", "all", instant=True), unit="reqps", fixed_color="blue"))
        .with_panel(
            stat_panel(
                "5xx ratio (1h)",
                q(f"max(job:http_server_request_error_ratio:rate1h{sel})", "max", instant=True),
                unit="percentunit",
                th=thresholds((None, "green"), (0.001, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Over 0.5 s (1h)",
                q(f"max(job:http_server_request_slow_ratio:rate1h{sel})", "max", instant=True),
                unit="percentunit",
                th=thresholds((None, "green"), (0.01, "red")),
            )
        )
        .with_panel(stat_panel("Active requests", q(f"sum(http_server_active_requests{sel})", "active", instant=True), fixed_color="blue"))
        .with_panel(
            ts("Requests by route", q(f"sum by (http_route) (job_route:http_server_requests:rate5m{sel})", "{{http_route}}"), unit="reqps", stacked=True)
        )
        .with_panel(
            ts(
                "Answers by status code",
                q(f"sum by (http_response_status_code) (rate({count}[$__rate_interval]))", "{{http_response_status_code}}"),
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            ts("p95 latency by route", q(f"max by (http_route) (job_route:http_server_request_duration_seconds:p95_5m{sel})", "{{http_route}}"), unit="s")
        )
        .with_panel(heat("Latency heatmap", f"sum by (le) (rate(http_server_request_duration_seconds_bucket{sel}[$__rate_interval]))"))
        .with_panel(
            ts(
                "Error budget burn rate",
                q(f"max(job:http_server_request_error_ratio:rate1h{sel}) / 0.001", "availability, 1h", ref="A"),
                q(f"max(job:http_server_request_slow_ratio:rate1h{sel}) / 0.01", "latency, 1h", ref="B"),
                description="1 spends the 30-day budget in 30 days; the pages fire at 14.4 (1h) and 6 (6h).",
            )
        )
        .with_panel(
            ts(
                "Requests per method",
                q(f"sum by (http_request_method) (rate({count}[$__rate_interval]))", "{{http_request_method}}"),
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            table_panel(
                "Requests per route, last 24 h",
                q(f"sum by (http_route) (job_route:http_server_requests:increase1d{sel})", "{{http_route}}", instant=True, fmt=PromQueryFormat.TABLE),
            )
        )
        .with_panel(
            table_panel(
                "5xx per route, last hour",
                q(
                    f"sum by (http_route) (job_route:http_server_request_errors:increase1h{sel})",
                    "{{http_route}}",
                    instant=True,
                    fmt=PromQueryFormat.TABLE,
                ),
            )
        )
        .with_panel(
            ts(
                "Response bytes per second",
                q(f"sum by (http_route) (rate(http_server_response_body_size_bytes_sum{sel}[$__rate_interval]))", "{{http_route}}"),
                unit="Bps",
            )
        )
        .with_panel(
            ts(
                "Rate-limited (429) per second",
                q(f"sum by (group) (rate(http_server_rate_limited_requests_total{sel}[$__rate_interval]))", "{{group}}"),
                unit="reqps",
            )
        )
    )


# ---- END api-traffic


# ---------------------------------------------------------------- feeds (docs/feeds.md)
def feeds() -> Dashboard:
    """The WebSocket market-data feeds: delivering, silent, gapped, late, frozen."""
    feed = "{{provider}}/{{feed}}"
    return (
        base("crypto-api-feeds", "Crypto API / Feeds", "WebSocket market-data feeds: judged on silence, sequence gaps, event-time lag and reconnects.")
        .with_panel(
            stat_panel(
                "Connected",
                q("crypto_api_feed_connected", feed, instant=True),
                w=24,
                mappings=[
                    ValueMap(options={"0": ValueMappingResult(text="down", color="red", index=0), "1": ValueMappingResult(text="up", color="green", index=1)})
                ],
                color_mode=BigValueColorMode.BACKGROUND,
                description="1 while connected and subscribed; a silent connection is dropped and redialled, so a dip is normal, a flat 0 is not.",
            )
        )
        .with_panel(ts("Messages per second", q("provider_feed:crypto_api_feed_messages:rate5m", feed), unit="ops", w=12))
        .with_panel(
            ts(
                "Time since last data message",
                q("time() - crypto_api_feed_last_message_timestamp_seconds", feed),
                unit="s",
                w=12,
                description="FeedSilent after 10 minutes without data; the exporter redials after max_silence.",
            )
        )
        .with_panel(
            ts(
                "Reconnects by reason",
                q("sum by (provider, feed, reason) (increase(crypto_api_feed_reconnects_total[$__rate_interval]))", "{{provider}}/{{feed}} {{reason}}"),
                stacked=True,
                w=12,
                description="silence, closed, error, ping_timeout, gap; FeedReconnecting above 6 in 15 minutes.",
            )
        )
        .with_panel(
            ts(
                "Sequence gaps",
                q("sum by (provider, feed) (increase(crypto_api_feed_sequence_gaps_total[$__rate_interval]))", feed),
                w=12,
                description="Skipped or out-of-order sequence numbers (Binance U/u, Coinbase sequence_num, Kraken trade_id, OKX prevSeqId, Bybit u).",
            )
        )
        .with_panel(
            ts(
                "Event-time lag p50 / p90",
                q("histogram_quantile(0.5, sum by (provider, feed, le) (rate(crypto_api_feed_message_lag_seconds_bucket[$__rate_interval])))", f"{feed} p50"),
                q("provider_feed:crypto_api_feed_message_lag_seconds:p90_rate5m", f"{feed} p90", ref="B"),
                unit="s",
                w=12,
                description="Arrival minus the venue's own event time; FeedLagging at a p90 of 5 s.",
            )
        )
        .with_panel(
            ts(
                "Malformed frames",
                q("sum by (provider, feed) (increase(crypto_api_feed_malformed_messages_total[$__rate_interval]))", feed),
                w=12,
                description="Frames the venue rule could not read; counted, the connection stays.",
            )
        )
        .with_panel(ts("Prices", q("crypto_api_feed_price", "{{provider}} {{symbol}}"), unit="currencyUSD", w=12))
        .with_panel(
            ts(
                "Time since the price last changed",
                q("time() - crypto_api_feed_price_last_change_timestamp_seconds", "{{provider}} {{symbol}}"),
                unit="s",
                w=12,
                description="FeedPriceFrozen past 15 minutes while messages keep coming.",
            )
        )
    )


# ---------------------------------------------------------------- end of feeds

DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "overview": overview,
    "provider-detail": provider_detail,
    "rate-limits": rate_limits,
    "freshness-schedule": freshness,
    "failures": failures,
    "exporter": exporter,
    "chains": chains,  # issue 11
    "feeds": feeds,
    "api-traffic": api_traffic,  # issue 15
}


def render(build: Callable[[], Dashboard]) -> str:
    dashboard = build().build()
    for panel_id, panel in enumerate(dashboard.panels or [], start=1):
        panel.id_val = panel_id  # stable ids: links to a panel (viewPanel=N) survive regeneration
    return JSONEncoder(sort_keys=True, indent=2).encode(dashboard) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed file is out of date")
    args = parser.parse_args(argv)
    stale = []
    wanted = {f"{name}.json" for name in DASHBOARDS}
    for name, build in DASHBOARDS.items():
        path = OUT_DIR / f"{name}.json"
        text = render(build)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    extra = sorted(p.name for p in OUT_DIR.glob("*.json") if p.name not in wanted)
    if args.check and (stale or extra):
        print(f"out of date: {stale}; not generated: {extra}. Run: python grafana/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
