"""The PromQL the stack ships: dashboard panel queries (template variables filled in)
and recording rule expressions, plus the metric names they may use."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from exporter import families
from exporter.families import CHAIN_HEADS

from .conftest import FEEDS_RULES_FILE, GRAFANA_DIR, load_chain_rules, load_rules

# DESIGN.md, "Metrics contract": the public API of the exporter.
CONTRACT_METRICS = {
    "crypto_api_up",
    "crypto_api_probe_duration_seconds",
    "crypto_api_probes_total",
    "crypto_api_http_responses_total",
    "crypto_api_retries_total",
    "crypto_api_last_probe_timestamp_seconds",
    "crypto_api_last_success_timestamp_seconds",
    "crypto_api_data_age_seconds",
    "crypto_api_data_max_age_seconds",
    "crypto_api_rate_limit_limit",
    "crypto_api_rate_limit_remaining",
    "crypto_api_rate_limit_reset_timestamp_seconds",
    "crypto_api_circuit_breaker_state",
    "crypto_api_provider_status",
    "crypto_api_latency_anomaly_zscore",
    "crypto_api_schedule_delay_seconds",
    "crypto_api_schedule_runs_total",
    "crypto_api_key_valid",
    "crypto_api_value",
    "crypto_api_provider_info",
    "crypto_api_config_last_reload_successful",
    "crypto_api_config_last_reload_success_timestamp_seconds",
}
HISTOGRAMS = {"crypto_api_probe_duration_seconds", "crypto_api_schedule_delay_seconds"}
# Series that come from Prometheus itself or the client library's default collectors.
OTHER_METRICS = {
    "up",
    "ALERTS",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "python_gc_collections_total",
}


# Feeds (docs/feeds.md): DESIGN.md's contract additions and the feed extensions, and
# the recording rules of prometheus/rules/feeds.rules.yml.
FEED_METRICS = {f.name for f in (*families.FEEDS, *families.FEEDS_EXTRA)}
FEED_HISTOGRAMS = {families.FEED_LAG.name}


def allowed_metric_names() -> set[str]:
    names = set(CONTRACT_METRICS) | OTHER_METRICS | FEED_METRICS
    for histogram in HISTOGRAMS | FEED_HISTOGRAMS:
        names |= {f"{histogram}_bucket", f"{histogram}_sum", f"{histogram}_count"}
    names |= {rule["record"] for rule in load_rules() if "record" in rule}
    names |= {rule["record"] for rule in load_rules(FEEDS_RULES_FILE) if "record" in rule}
    # Chain heads (issue 11): DESIGN.md's "Contract additions", and their recording rules.
    names |= {f.name for f in CHAIN_HEADS} | {rule["record"] for rule in load_chain_rules() if "record" in rule}
    names |= traffic_metric_names()  # issue 15
    return names


# ---- BEGIN api-traffic (issue 15): the user's own API's metrics (exporter.traffic) and rules
def traffic_metric_names() -> set[str]:
    from exporter.traffic import semconv

    from .conftest import PROMETHEUS_DIR

    names = {semconv.ACTIVE, semconv.RATE_LIMITED, semconv.DROPPED}
    for histogram in (semconv.DURATION, semconv.REQUEST_BODY, semconv.RESPONSE_BODY):
        names |= {f"{histogram}_bucket", f"{histogram}_sum", f"{histogram}_count"}
    doc = yaml.safe_load((PROMETHEUS_DIR / "rules" / "traffic.rules.yml").read_text())
    return names | {rule["record"] for group in doc["groups"] for rule in group["rules"] if "record" in rule}


# ---- END api-traffic


# Values a user would pick; `.*` is the "All" value of multi-value variables.
TEMPLATE_VALUES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
}


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    expr: str


def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def dashboard_files() -> list:
    return sorted((GRAFANA_DIR / "dashboards").glob("*.json"))


def fill(expr: str, variables: dict[str, str]) -> str:
    for name, value in {**TEMPLATE_VALUES, **{f"${k}": v for k, v in variables.items()}}.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unfilled template variable in {expr!r}"
    return expr


def dashboard_queries(variables: dict[str, str] | None = None) -> list[PanelQuery]:
    """Every panel target of every dashboard, variables replaced by `variables`
    (name -> value; default: the All value `.*` for every variable)."""
    out = []
    for path in dashboard_files():
        dashboard = json.loads(path.read_text())
        names = [v["name"] for v in dashboard.get("templating", {}).get("list", [])]
        values = dict.fromkeys(names, ".*") | (variables or {})
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                out.append(PanelQuery(dashboard["uid"], panel["title"], fill(target["expr"], values)))
    return out


def recording_rule_queries() -> list[PanelQuery]:
    rules = (*load_rules(), *load_chain_rules(), *load_rules(FEEDS_RULES_FILE))
    return [PanelQuery("recording rules", r["record"], r["expr"]) for r in rules if "record" in r]


_IDENT = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[|\)|\s|$|==|>|<|\*|/|-|\+)")
_KEYWORDS = {
    "sum", "max", "min", "avg", "count", "topk", "quantile", "by", "without", "on", "ignoring",
    "group_left", "group_right", "or", "and", "unless", "rate", "increase", "time", "vector",
    "histogram_quantile", "label_values", "bool", "offset",
    "bottomk", "clamp_min",  # the Chains dashboard's best endpoint (issue 11)
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names in an expression (label matchers and strings stripped first)."""
    stripped = re.sub(r'"[^"]*"', '""', expr)
    stripped = re.sub(r"\{[^}]*\}", " ", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)
    names = set()
    for token in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped):
        if token in _KEYWORDS or token.startswith("$"):
            continue
        names.add(token)
    return names
