"""Alert quality, measured end to end: by hand (`make alert-quality`), never in CI.

The real Prometheus and Alertmanager binaries run on loopback with the repository's
rules, routes, inhibitions and templates unchanged (only the receivers become
webhooks to a local receiver), scraping the exporter's demo without chaos at its 5 s
probe interval. Faults go in through the simulator's control API
(`POST /control/faults`, exporter/simulator/faults.py). The recipe:

1. warm-up, then a quiet baseline: no fault at all;
2. a noisy period that goes on to the end: single-endpoint blips, latency jitter and
   provider quotas ramped to about 70 %, on providers no scenario uses;
3. each scenario of issue 10 on its own provider(s), one after the other: the fault
   held for a few minutes, then cleared;
4. a tail, so that what happens after the last recoveries is seen too.

It prints, per scenario: time to first page (and to the first notification, with the
alert that named the cause), time to resolve after recovery, the alerts sent,
inhibited, and any after-recovery leaks, "resolved" messages for alerts never sent as
firing, and alerts never resolved; then the quiet and noisy periods' false alerts.
Raw notifications and Alertmanager snapshots go to a JSON file for a closer look.

    .venv/bin/python -m bench.alert_quality                  # the full recipe, ~65 min
    .venv/bin/python -m bench.alert_quality --quick --scenarios 503   # a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from exporter.config import load_config, parse_duration
from exporter.demo import DEMO_INTERVAL, scale_quotas, tight_budget_provider
from exporter.simulator.server import DEFAULT_QUOTA_LIMIT
from tests.stack.conftest import RULES_FILE
from tests.stack.helpers import (
    WebhookReceiver,
    alertmanager_args,
    alertmanager_config_for_test,
    free_port,
    http_json,
    prometheus_config,
    running,
    wait_until,
)

# The goals of issue 10 (docs/alerts.md).
PAGE_GOAL = 150.0  # a hard outage pages within 2.5 minutes at the demo's intervals
RESOLVE_GOAL = 90.0  # and is resolved within 90 s of recovery
NOTIFYING = ("pagerduty-critical", "slack-warnings")  # `default` (info) notifies nobody


@dataclass(frozen=True)
class Scenario:
    key: str  # for --scenarios
    title: str
    faults: tuple[dict[str, Any], ...]  # control API bodies
    expect: str  # the alert that must name the cause
    severity: str
    hold: float = 210.0  # seconds the fault stays
    outage: bool = False  # a hard outage: the page and resolve goals apply
    category: str | None = None  # a whole category: its category-wide alerts are this scenario's

    @property
    def providers(self) -> set[str]:
        return {f["provider"] for f in self.faults}


# Providers are picked so that no two scenarios, and no scenario and the noise, share
# one: whatever fires for a provider after its recovery is that scenario's leak.
SCENARIOS = (
    Scenario("503", "503 on one provider", ({"provider": "kraken", "status": 503},), "ProviderDown", "critical", outage=True),
    Scenario("hang", "hang", ({"provider": "mempool_space", "hang": True},), "ProviderDown", "critical", outage=True),
    Scenario("refused", "connection refused/reset", ({"provider": "llamarpc", "disconnect": True},), "ProviderDown", "critical", outage=True),
    Scenario("stale", "every endpoint stale", ({"provider": "okx", "stale_seconds": 3600},), "DataStale", "warning"),
    Scenario("ratelimit", "HTTP-200 rate-limit body", ({"provider": "etherscan", "body_error": "rate_limit"},), "ProviderRateLimited", "critical"),
    Scenario("keys", "every key rejected", ({"provider": "infura", "invalid_keys": "all"},), "ApiKeysRejected", "critical"),
    Scenario(
        "onekey", "one of two keys rejected", ({"provider": "alchemy", "invalid_keys": ["demo-alchemy-api-key"]},), "ApiKeyInvalid", "warning", hold=390.0
    ),
    Scenario(
        "category",
        "whole category down (news)",
        # Every provider of the category: main() checks it against the registry.
        tuple({"provider": name, "status": 503} for name in ("cryptopanic", "newsapi", "cryptocompare_news", "coindesk_news", "coinmarketcal")),
        "CategoryOutage",
        "critical",
        outage=True,
        category="news",
    ),
)
# The demo puts the first provider with a budget on a tight one (exporter/demo.py), so
# that budget_exhausted shows within seconds: a standing "our own budget" case.
STANDING = (tight_budget_provider(load_config(str(REPO / "providers.yaml"), {})) or "", "ProbeBudgetExhausted", "warning")
# Providers with quota headers in the simulator: their quotas ramp up in the noise, to
# a share of the size the demo gives them (exporter/demo.py scales configured sizes).
QUOTAS = {
    p.name: next((q.limit_value for q in p.quota_headers if q.limit_value), DEFAULT_QUOTA_LIMIT)
    for p in scale_quotas(load_config(str(REPO / "providers.yaml"), {}), parse_duration(DEMO_INTERVAL)).providers
    if p.name in ("binance", "bybit")
}


@dataclass
class Timeline:
    start: float = 0.0
    quiet: tuple[float, float] = (0.0, 0.0)
    noise_start: float = 0.0
    end: float = 0.0
    scenarios: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (injected, cleared)


def log(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, flush=True)


def binary(*names: str) -> str:
    for name in names:
        if path := shutil.which(name) or next((p for d in ("/usr/bin", "/usr/sbin") if Path(p := f"{d}/{name}").exists()), None):
            return path
    sys.exit(f"{names[0]} not found (Debian: apt-get install prometheus prometheus-alertmanager)")


# ------------------------------------------------------------------ faults and noise


class Simulator:
    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()

    def fault(self, body: dict[str, Any]) -> None:
        with self.lock:
            http_json(f"{self.url}/control/faults", body, method="POST")

    def clear(self, provider: str, endpoint: str | None = None) -> None:
        query = {"provider": provider} | ({"endpoint": endpoint} if endpoint else {})
        with self.lock:
            http_json(f"{self.url}/control/faults?" + urllib.parse.urlencode(query), method="DELETE")


class Noise(threading.Thread):
    """Single-endpoint blips (one probe or two failing), latency jitter (150-900 ms for
    30-120 s) and quotas ramping to about 70 %, on providers no scenario uses."""

    def __init__(self, sim: Simulator, endpoints: list[tuple[str, str]], seed: int, ramp: float) -> None:
        super().__init__(daemon=True)
        self.sim, self.endpoints, self.rng, self.ramp = sim, endpoints, random.Random(seed), ramp
        self.stopping = threading.Event()
        self.counts = {"blips": 0, "jitters": 0, "quota_steps": 0}
        self.jittering: dict[tuple[str, str], float] = {}  # target -> until

    def run(self) -> None:
        started = time.monotonic()
        next_blip = next_jitter = next_quota = started
        while not self.stopping.wait(1.0):
            now = time.monotonic()
            for target, until in list(self.jittering.items()):
                if now >= until:
                    self._quietly(self.sim.clear, *target)
                    del self.jittering[target]
            if now >= next_blip:
                provider, endpoint = self.rng.choice([t for t in self.endpoints if t not in self.jittering])
                kind = self.rng.choice([{"status": 503}, {"disconnect": True}, {"status": 502}])
                # Three requests fail one probe (it retries twice); up to six, two.
                self._quietly(self.sim.fault, {"provider": provider, "endpoint": endpoint, "count": self.rng.randint(3, 6), **kind})
                self.counts["blips"] += 1
                next_blip = now + self.rng.uniform(30, 70)
            if now >= next_jitter:
                target = self.rng.choice(self.endpoints)
                self._quietly(self.sim.fault, {"provider": target[0], "endpoint": target[1], "latency_ms": self.rng.uniform(150, 900)})
                self.jittering[target] = now + self.rng.uniform(30, 120)
                self.counts["jitters"] += 1
                next_jitter = now + self.rng.uniform(30, 70)
            if now >= next_quota:
                share = min(0.1 + 0.6 * (now - started) / self.ramp, 0.7) + self.rng.uniform(-0.03, 0.03)
                for provider, limit in QUOTAS.items():
                    self._quietly(self.sim.fault, {"provider": provider, "quota_remaining": round(limit * (1 - share))})
                self.counts["quota_steps"] += 1
                next_quota = now + 60
        for target in self.jittering:
            self._quietly(self.sim.clear, *target)

    @staticmethod
    def _quietly(call: Any, *args: Any) -> None:
        with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
            call(*args)


class Watcher(threading.Thread):
    """Snapshots of Alertmanager's alerts (every 5 s: which were inhibited) and
    Prometheus's (every 15 s: pending and firing), for the report and the JSON."""

    def __init__(self, prometheus: str, alertmanager: str) -> None:
        super().__init__(daemon=True)
        self.prometheus, self.alertmanager = prometheus, alertmanager
        self.stopping = threading.Event()
        self.inhibited: dict[str, dict[str, Any]] = {}  # fingerprint -> labels, first and last seen inhibited
        self.prom_alerts: dict[tuple[str, ...], dict[str, Any]] = {}  # labels -> first pending, first firing

    def run(self) -> None:
        tick = 0
        while not self.stopping.wait(5.0):
            now = time.time()
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                for a in http_json(f"{self.alertmanager}/api/v2/alerts"):
                    if a["status"]["inhibitedBy"]:
                        seen = self.inhibited.setdefault(a["fingerprint"], {"labels": a["labels"], "first": now, "by": a["status"]["inhibitedBy"]})
                        seen["last"] = now
            if tick % 3 == 0:
                with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                    for a in http_json(f"{self.prometheus}/api/v1/alerts")["data"]["alerts"]:
                        key = tuple(sorted(f"{k}={v}" for k, v in a["labels"].items()))
                        seen = self.prom_alerts.setdefault(key, {"labels": a["labels"]})
                        seen.setdefault(a["state"], now)
                        seen["last"] = now
            tick += 1


# ------------------------------------------------------------------ the stack


@contextlib.contextmanager
def stack(tmp: Path, receiver: WebhookReceiver) -> Iterator[dict[str, str]]:
    ports = {name: free_port() for name in ("exporter", "simulator", "prometheus", "alertmanager")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    with contextlib.ExitStack() as processes:
        processes.enter_context(running(
            [sys.executable, "-m", "exporter", "demo", "--no-chaos", f"--web.listen-address=127.0.0.1:{ports['exporter']}",
             f"--simulator.listen-address=127.0.0.1:{ports['simulator']}"],
            tmp / "exporter.log", f"{urls['exporter']}/healthz", timeout=60,
        ))  # fmt: skip
        am_config = alertmanager_config_for_test(tmp, webhook_base=receiver.url, group_wait=None)
        processes.enter_context(running(
            alertmanager_args(binary("prometheus-alertmanager", "alertmanager"), am_config, tmp, ports["alertmanager"]),
            tmp / "alertmanager.log", f"{urls['alertmanager']}/-/ready",
        ))  # fmt: skip
        hosts = {
            "exporter:7860": f"127.0.0.1:{ports['exporter']}",
            "localhost:9090": f"127.0.0.1:{ports['prometheus']}",
            "alertmanager:9093": f"127.0.0.1:{ports['alertmanager']}",
        }
        prom_config = prometheus_config(tmp, [RULES_FILE], hosts)
        processes.enter_context(running(
            [binary("prometheus"), f"--config.file={prom_config}", f"--storage.tsdb.path={tmp / 'prom-data'}",
             f"--web.listen-address=127.0.0.1:{ports['prometheus']}", "--log.level=info"],
            tmp / "prometheus.log", f"{urls['prometheus']}/-/ready",
        ))  # fmt: skip
        yield urls


# ------------------------------------------------------------------ analysis


@dataclass
class Sent:
    """One alert (fingerprint) at one receiver: when it was first sent firing, and
    when resolved after that."""

    receiver: str
    labels: dict[str, str]
    fired: float | None = None
    resolved: float | None = None
    resolved_unfired: float | None = None  # a "resolved" before any firing
    firing_messages: int = 0


def notifications(receiver: WebhookReceiver) -> dict[tuple[str, str], Sent]:
    out: dict[tuple[str, str], Sent] = {}
    for at, path, payload in receiver.payloads():
        name = path.lstrip("/")
        for alert in payload["alerts"]:
            sent = out.setdefault((name, alert["fingerprint"]), Sent(name, alert["labels"]))
            if alert["status"] == "firing":
                sent.firing_messages += 1
                if sent.fired is None:
                    sent.fired = at
                sent.resolved = None  # fired again after a resolve
            elif sent.fired is None:
                sent.resolved_unfired = sent.resolved_unfired or at
            elif sent.resolved is None:
                sent.resolved = at
    return out


def owner(labels: dict[str, str], noise: set[str]) -> str:
    provider, category = labels.get("provider"), labels.get("category")
    for s in SCENARIOS:
        if provider in s.providers or (provider is None and category is not None and category == s.category):
            return s.key
    if provider == STANDING[0]:
        return "standing"
    if provider in noise:
        return "noise"
    return "other"


def mmss(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    return f"{sign}{int(seconds // 60)}m{int(seconds % 60):02d}"


def report(timeline: Timeline, receiver: WebhookReceiver, watcher: Watcher, noise: Noise, noise_providers: set[str], run: list[Scenario]) -> tuple[str, dict]:
    sent = notifications(receiver)
    inhibited = dict(watcher.inhibited)
    rows = []
    lines = [
        "| scenario | cause alert (severity) | first page | first notification | resolved after recovery | alerts sent | inhibited | after-recovery leaks | resolved, never fired | never resolved | goals |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in run:
        injected, cleared = timeline.scenarios[s.key]
        mine = [x for x in sent.values() if owner(x.labels, noise_providers) == s.key and x.receiver in NOTIFYING]
        fired = sorted((x for x in mine if x.fired is not None), key=lambda x: x.fired or 0)
        page = min((x.fired for x in fired if x.receiver == "pagerduty-critical"), default=None)
        first = fired[0] if fired else None
        before = [x for x in fired if (x.fired or 0) <= cleared]
        resolves = [(x.resolved - cleared) if x.resolved else None for x in before]
        resolved_after = None if not before or None in resolves else max(r for r in resolves if r is not None)
        leaks = [x for x in fired if (x.fired or 0) > cleared]
        unfired = [x for x in mine if x.resolved_unfired is not None]
        never = [x for x in fired if x.resolved is None]
        n_inhibited = sum(1 for i in inhibited.values() if owner(i["labels"], noise_providers) == s.key)
        names = sorted({x.labels["alertname"] for x in fired})
        counts = ", ".join(f"{n}×{sum(1 for x in fired if x.labels['alertname'] == n)}" for n in names) or "none"
        named = first is not None and first.labels["alertname"] == s.expect and first.labels.get("severity") == s.severity
        ok = named and not leaks and not unfired and len(names) == 1
        if s.outage:
            ok = ok and page is not None and page - injected <= PAGE_GOAL and resolved_after is not None and resolved_after <= RESOLVE_GOAL
        else:
            ok = ok and resolved_after is not None
        first_text = f"{first.labels['alertname']} {mmss((first.fired or 0) - injected)}" if first else "none"
        lines.append(
            f"| {s.title} | {s.expect} ({s.severity}) | {mmss(page - injected) if page else '—'} | {first_text} | "
            f"{mmss(resolved_after) if resolved_after is not None else ('never' if before else '—')} | {counts} | {n_inhibited} | "
            f"{', '.join(x.labels['alertname'] + ' +' + mmss((x.fired or 0) - cleared) for x in leaks) or '0'} | "
            f"{', '.join(x.labels['alertname'] for x in unfired) or '0'} | {', '.join(x.labels['alertname'] for x in never) or '0'} | "
            f"{'met' if ok else 'NOT met'} |"
        )
        rows.append({"scenario": s.key, "injected": injected, "cleared": cleared, "page": page, "first": first_text, "resolved_after": resolved_after,
                     "sent": counts, "inhibited": n_inhibited, "leaks": [x.labels for x in leaks], "never_resolved": [x.labels for x in never], "met": ok})  # fmt: skip

    def false_alerts(who: str, since: float, until: float) -> list[Sent]:
        return [x for x in sent.values() if owner(x.labels, noise_providers) == who and x.fired is not None and since <= x.fired <= until]

    quiet = [x for x in sent.values() if x.fired and timeline.quiet[0] <= x.fired <= timeline.quiet[1] and owner(x.labels, noise_providers) != "standing"]
    noisy = false_alerts("noise", timeline.noise_start, timeline.end)
    other = false_alerts("other", timeline.start, timeline.end)
    standing = [x for x in false_alerts("standing", timeline.start, timeline.end) if x.receiver in NOTIFYING]

    def describe(alerts: list[Sent]) -> str:
        by_receiver = {
            r: sorted(x.labels["alertname"] + "/" + x.labels.get("provider", x.labels.get("category", "")) for x in alerts if x.receiver == r)
            for r in (*NOTIFYING, "default")
        }
        return "; ".join(f"{r}: {len(v)}" + (f" ({', '.join(v)})" if v else "") for r, v in by_receiver.items())

    quiet_minutes = (timeline.quiet[1] - timeline.quiet[0]) / 60
    noise_minutes = (timeline.end - timeline.noise_start) / 60
    lines += [
        "",
        f"- quiet baseline ({quiet_minutes:.0f} min): {describe(quiet)}",
        f"- noisy period ({noise_minutes:.0f} min, {noise.counts['blips']} blips, {noise.counts['jitters']} latency jitters, "
        f"quotas of {', '.join(QUOTAS)} ramped to ~70 %): {describe(noisy)}",
        f"- alerts of no scenario or noise provider: {describe(other)}",
        f"- standing: {STANDING[0]}'s tight demo budget: "
        + (
            ", ".join(f"{x.labels['alertname']} ({x.labels['severity']}) {mmss((x.fired or 0) - timeline.start)} after start" for x in standing)
            or "nothing sent"
        ),
    ]
    raw = {
        "timeline": timeline.__dict__,
        "rows": rows,
        "notifications": receiver.payloads(),
        "inhibited": inhibited,
        "prometheus_alerts": list(watcher.prom_alerts.values()),
        "noise": noise.counts,
    }
    return "\n".join(lines), raw


# ------------------------------------------------------------------ the recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(s.key for s in SCENARIOS), help="comma-separated keys: " + ", ".join(s.key for s in SCENARIOS))
    parser.add_argument("--warmup", type=float, default=90, help="seconds before the quiet baseline (default 90)")
    parser.add_argument("--quiet", type=float, default=480, help="seconds of quiet baseline (default 480)")
    parser.add_argument("--noise", type=float, default=480, help="seconds of noise before the first scenario (default 480)")
    parser.add_argument("--settle", type=float, default=90, help="seconds after a recovery before the next scenario (default 90)")
    parser.add_argument("--tail", type=float, default=360, help="seconds after the last scenario (default 360)")
    parser.add_argument("--hold-scale", type=float, default=1.0, help="scale every scenario's fault duration")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 30 s warm-up, 60 s quiet and noise, 60 s tail")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="JSON with the raw notifications (default: in the run's temp dir)")
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.quiet, args.noise, args.tail = 30, 60, 60, 60
    wanted = args.scenarios.split(",")
    run = [s for s in SCENARIOS if s.key in wanted]
    if unknown := set(wanted) - {s.key for s in SCENARIOS}:
        sys.exit(f"unknown scenarios: {', '.join(sorted(unknown))}")

    config = load_config(str(REPO / "providers.yaml"), {})
    for s in SCENARIOS:
        members = {p.name for p in config.providers if p.category == s.category}
        if s.category and members != s.providers:
            sys.exit(
                f"scenario {s.key}: category {s.category} is {', '.join(sorted(members))} in providers.yaml, the scenario faults {', '.join(sorted(s.providers))}"
            )
    used = {p for s in SCENARIOS for p in s.providers} | {STANDING[0]}
    noise_providers = {p.name for p in config.providers} - used
    noise_endpoints = sorted((p.name, e.name) for p in config.providers if p.name in noise_providers for e in p.endpoints)

    tmp = Path(tempfile.mkdtemp(prefix="alert-quality-"))
    log(f"alert quality: {len(run)} scenario(s), logs and raw data in {tmp}")
    receiver = WebhookReceiver()
    receiver.start()
    timeline = Timeline()
    try:
        with stack(tmp, receiver) as urls:
            sim = Simulator(urls["simulator"])
            watcher = Watcher(urls["prometheus"], urls["alertmanager"])
            watcher.start()
            timeline.start = time.time()
            wait_until(lambda: http_json(f"{urls['prometheus']}/api/v1/query?query=up")["data"]["result"], 60, what="Prometheus scraping")
            log(f"stack up: exporter {urls['exporter']}, simulator {urls['simulator']}, Prometheus {urls['prometheus']}, Alertmanager {urls['alertmanager']}")
            time.sleep(args.warmup)
            timeline.quiet = (time.time(), time.time() + args.quiet)
            log(f"quiet baseline for {args.quiet:.0f} s")
            time.sleep(args.quiet)
            noise = Noise(sim, noise_endpoints, args.seed, ramp=max(args.noise, 60))
            timeline.noise_start = time.time()
            noise.start()
            log(f"noise on {len(noise_providers)} providers; {args.noise:.0f} s before the first scenario")
            time.sleep(args.noise)
            for s in run:
                injected = time.time()
                for fault in s.faults:
                    sim.fault(fault)
                log(f"scenario {s.key}: {s.title} on {', '.join(sorted(s.providers))} for {s.hold * args.hold_scale:.0f} s (expect {s.expect})")
                time.sleep(s.hold * args.hold_scale)
                for provider in s.providers:
                    sim.clear(provider)
                timeline.scenarios[s.key] = (injected, time.time())
                log(f"scenario {s.key}: cleared")
                time.sleep(args.settle)
            log(f"tail for {args.tail:.0f} s")
            time.sleep(args.tail)
            timeline.end = time.time()
            noise.stopping.set()
            watcher.stopping.set()
            noise.join(timeout=10)
            watcher.join(timeout=10)
    finally:
        receiver.stop()
    table, raw = report(timeline, receiver, watcher, noise, noise_providers, run)
    out = args.out or tmp / "alert-quality.json"
    out.write_text(json.dumps(raw, indent=1, default=str))
    print()
    print(table)
    print(f"\nraw data: {out}")


if __name__ == "__main__":
    main()
