"""docs/alerts.md's table of worst-case times to page and to resolve a hard outage,
computed from what ships: the probe intervals, jitters, timeouts and breakers of
providers.yaml (and the demo's), the scrape and evaluation intervals of
prometheus.yml, ProviderDown's `for` and `keep_firing_for`, and the page route's
timings in alertmanager.yml. A change to any of them that leaves the table behind
fails here; the failure prints the table to paste.

Worst case to page: every endpoint of the provider must fail its last probe, so the
slowest endpoint counts: its next run comes up to one interval plus its jitter after
the outage began, and a hanging probe lasts its timeouts (x1.5 each) while they fit
in the interval. Then a scrape, an evaluation, `for`, and the page route's
group_wait. Worst case to resolve: the breaker (open after a hard outage) lets a
trial through `reset_timeout` after its last failed one, at the provider's first
run after that (its fastest endpoint: one interval plus jitter); then a scrape, an
evaluation, `keep_firing_for`, and one group_interval (resolves go out at the
group's next flush).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import yaml

from exporter import demo
from exporter.config import Endpoint, Provider, load_config, parse_duration
from exporter.demo import demo_config
from exporter.probes.http import MAX_ATTEMPTS, TIMEOUT_GROWTH, retry_fits

from .conftest import ALERTMANAGER_DIR, PROMETHEUS_DIR, REPO, load_rules

DOC = REPO / "docs" / "alerts.md"
DEMO_INTERVAL = parse_duration(demo.DEMO_INTERVAL)
HEADER = "| slowest endpoint interval | providers | ProviderDown `for` | worst case to page | worst case to resolve |"


def seconds(duration: str) -> float:
    return sum(float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in re.findall(r"(\d+)(ms|s|m|h)", duration))


@dataclass(frozen=True)
class Pipeline:
    scrape: float
    evaluation: float
    for_: float
    keep_firing_for: float
    group_wait: float
    group_interval: float


def pipeline() -> Pipeline:
    prometheus = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["global"]
    (rule,) = [r for r in load_rules() if r.get("alert") == "ProviderDown"]
    am = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text())["route"]
    page = next(r for r in am["routes"] if r["receiver"] == "pagerduty-critical")
    return Pipeline(
        scrape=seconds(prometheus["scrape_interval"]),
        evaluation=seconds(prometheus["evaluation_interval"]),
        for_=seconds(rule["for"]),
        keep_firing_for=seconds(rule.get("keep_firing_for", "0s")),
        group_wait=seconds(page.get("group_wait", am["group_wait"])),
        group_interval=seconds(page.get("group_interval", am["group_interval"])),
    )


def hang(ep: Endpoint) -> float:
    """How long a probe of a hanging endpoint lasts: its timeouts while they fit."""
    elapsed, timeout = ep.timeout, ep.timeout
    for _ in range(MAX_ATTEMPTS - 1):
        timeout *= TIMEOUT_GROWTH
        if not retry_fits(elapsed, 0.0, timeout, ep.interval):
            break
        elapsed += timeout
    return elapsed


def to_page(p: Provider, pl: Pipeline) -> float:
    return max(ep.interval + ep.jitter + hang(ep) for ep in p.endpoints) + pl.scrape + pl.evaluation + pl.for_ + pl.group_wait


def to_resolve(p: Provider, pl: Pipeline) -> float:
    fastest = min(ep.interval + ep.jitter for ep in p.endpoints)
    return p.circuit_breaker.reset_timeout + fastest + pl.scrape + pl.evaluation + pl.keep_firing_for + pl.group_interval


def mmss(s: float) -> str:
    s = round(s)
    return f"{s // 60}m{s % 60:02d}"


def interval(s: float) -> str:
    return f"{s / 60:g}m" if s >= 60 else f"{s:g}s"


def rows(providers: Iterable[Provider], pl: Pipeline) -> list[tuple[float, list[str], float, float]]:
    by_slowest: dict[float, list[Provider]] = {}
    for p in providers:
        by_slowest.setdefault(max(ep.interval for ep in p.endpoints), []).append(p)
    return [(slowest, [p.name for p in ps], max(to_page(p, pl) for p in ps), max(to_resolve(p, pl) for p in ps)) for slowest, ps in sorted(by_slowest.items())]


def expected_table() -> str:
    pl = pipeline()
    shipped = load_config(str(REPO / "providers.yaml"), {}).providers
    demo = demo_config(load_config(str(REPO / "providers.yaml"), {}), "http://127.0.0.1:1", DEMO_INTERVAL).providers
    lines = [HEADER, "|---|---|---|---|---|"]
    for slowest, _, page, resolve in rows(demo, pl):
        lines.append(f"| {interval(slowest)} (the demo) | all {len(demo)} | {interval(pl.for_)} | {mmss(page)} | {mmss(resolve)} |")
    for slowest, names, page, resolve in rows(shipped, pl):
        lines.append(f"| {interval(slowest)} | {', '.join(names)} | {interval(pl.for_)} | {mmss(page)} | {mmss(resolve)} |")
    return "\n".join(lines)


def test_the_demo_meets_the_goals_in_the_worst_case() -> None:
    """Issue 10: a hard outage pages within 2.5 minutes at the demo's intervals and
    resolves within 90 s of the recovery (the e2e test and the harness measure it)."""
    pl = pipeline()
    demo = demo_config(load_config(str(REPO / "providers.yaml"), {}), "http://127.0.0.1:1", DEMO_INTERVAL).providers
    assert max(to_page(p, pl) for p in demo) <= 150
    assert max(to_resolve(p, pl) for p in demo) <= 90


def test_docs_table_is_up_to_date() -> None:
    text = DOC.read_text()
    start = text.index(HEADER)
    end = text.find("\n\n", start)
    table = text[start : end if end != -1 else len(text)].strip()
    assert table == expected_table(), f"docs/alerts.md's timing table is out of date; it should read:\n\n{expected_table()}\n"
