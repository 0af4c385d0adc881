"""The recorder and the in-memory analytics behind both middlewares.

The request path only appends one tuple to a bounded queue (`record`): no lock, no I/O,
no hashing. Batches are folded into the histograms and the analytics after the response
(`loop.call_soon`), and before every read (`/metrics`, `/dashboard`), so reads are
exact. A full queue drops the record and counts it rather than grow or wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import math
import threading
import time
from bisect import bisect_left
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from itertools import islice
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from . import semconv
from .sketches import HyperLogLog, SpaceSaving, hash64

# (wall time, method label, route, status, duration s, request bytes, response bytes, client, path)
Record = tuple[float, str, str, int, float, int, int, str, str]

BATCH = 256  # records folded at once after a response
MAX_PATH = 256  # characters of a raw path kept in /raw_logs
MAX_PAGE_SIZE = 1000
MAX_SERIES = 10_000  # (method, route, status) triples; beyond, folded into _OTHER/""/0


class ClientAddress(StrEnum):
    """What the analytics keep of a client address (never a label in any case)."""

    FULL = "full"
    TRUNCATE = "truncate"  # IPv4 /24, IPv6 /48
    HASH = "hash"  # salted BLAKE2b, 16 hex digits


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _truncate(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


class _Series:
    __slots__ = ("dur", "dur_sum", "req", "req_sum", "resp", "resp_sum")

    def __init__(self) -> None:
        self.dur = [0] * (len(semconv.DURATION_BUCKETS) + 1)
        self.dur_sum = 0.0
        self.req = [0] * (len(semconv.SIZE_BUCKETS) + 1)
        self.req_sum = 0
        self.resp = [0] * (len(semconv.SIZE_BUCKETS) + 1)
        self.resp_sum = 0


class _Day:
    __slots__ = ("dur_sum", "errors", "requests", "uniques")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.dur_sum = 0.0
        self.uniques = HyperLogLog(12)


class Traffic:
    """One per app: records requests, exports metrics, serves /dashboard and /raw_logs."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        client_address: ClientAddress = ClientAddress.FULL,
        salt: bytes = b"",
        queue_size: int = 65_536,
        top_k: int = 1_000,
        raw_logs: int = 10_000,
        days: int = 30,
        wall: Callable[[], float] = time.time,
        dashboard_path: str = "/dashboard",
        raw_logs_path: str = "/raw_logs",
        client_header: str | None = None,
        analytics: bool = True,
    ) -> None:
        if not analytics and api_key:
            raise ValueError("api_key serves /dashboard and /raw_logs, which need analytics=True")
        if client_address is ClientAddress.HASH and len(salt) < 16:
            raise ValueError("client_address=hash needs a salt of at least 16 bytes (a short one is guessable)")
        self._key = api_key.encode() if api_key else None
        # A header a trusted reverse proxy sets to the client's address (X-Real-IP); only
        # behind such a proxy, as any client could set it otherwise.
        self.client_header = client_header.lower() if client_header else None
        self._anonymize = client_address
        self._salt = salt
        # False: the metrics only, no per-client sketch, raw log or daily series kept.
        self._analytics = analytics
        self._queue: deque[Record] = deque()
        self._queue_size = queue_size
        self._wall = wall
        self._lock = threading.Lock()  # drains may come from a scrape thread
        self._drain_planned = False
        self.paths = {dashboard_path: self.dashboard_reply, raw_logs_path: self.raw_logs_reply} if api_key else {}
        self.dropped = 0
        self.active: dict[str, int] = {}
        self.rate_limited: dict[tuple[str, str], int] = {}  # (group, route) -> count
        self._series: dict[tuple[str, str, int], _Series] = {}
        # analytics
        self._total = 0
        self._errors = 0
        self._dur_sum = 0.0
        self._dur_min = math.inf
        self._dur_max = 0.0
        self._methods: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._endpoints: dict[str, list[float]] = {}  # route -> [requests, duration sum, errors]
        self._uniques = HyperLogLog(14)
        self._top = SpaceSaving(top_k)
        self._days: OrderedDict[str, _Day] = OrderedDict()
        self._keep_days = days
        self._raw: deque[dict[str, Any]] = deque(maxlen=raw_logs)
        self._since = wall()

    # ------------------------------------------------------------ request path
    def record(self, method: str, route: str, status: int, duration: float, request_size: int, response_size: int, client: str, path: str) -> None:
        queue = self._queue
        if len(queue) >= self._queue_size:
            self.dropped += 1
            return
        queue.append((self._wall(), method, route, status, duration, request_size, response_size, client, path))
        if len(queue) >= BATCH and not self._drain_planned:
            self._drain_planned = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (a sync caller): the next read folds it
                self._drain_planned = False

    # ------------------------------------------------------------ folding
    def _client(self, address: str) -> str:
        if self._anonymize is ClientAddress.FULL:
            return address
        if self._anonymize is ClientAddress.TRUNCATE:
            return _truncate(address)
        return hashlib.blake2b(address.encode(), key=self._salt[:64], digest_size=8).hexdigest()

    def flush(self) -> None:
        self._drain_planned = False
        queue = self._queue
        with self._lock:
            while queue:
                self._fold(queue.popleft())

    def _fold(self, rec: Record) -> None:
        wall, method, route, status, duration, req_size, resp_size, address, path = rec
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= MAX_SERIES:
                key = (semconv.OTHER_METHOD, semconv.UNMATCHED_ROUTE, 0)
            series = self._series.setdefault(key, _Series())
        series.dur[bisect_left(semconv.DURATION_BUCKETS, duration)] += 1
        series.dur_sum += duration
        series.req[bisect_left(semconv.SIZE_BUCKETS, req_size)] += 1
        series.req_sum += req_size
        series.resp[bisect_left(semconv.SIZE_BUCKETS, resp_size)] += 1
        series.resp_sum += resp_size
        if not self._analytics:
            return

        error = status >= 400
        client = self._client(address)
        self._total += 1
        self._errors += error
        self._dur_sum += duration
        self._dur_min = min(self._dur_min, duration)
        self._dur_max = max(self._dur_max, duration)
        self._methods[method] += 1
        self._statuses[status] += 1
        endpoint = self._endpoints.get(route)
        if endpoint is None:
            endpoint = self._endpoints[route] = [0, 0.0, 0]
        endpoint[0] += 1
        endpoint[1] += duration
        endpoint[2] += error
        h = hash64(client)
        self._uniques.add_hash(h)
        self._top.add(client)
        date = datetime.fromtimestamp(wall, UTC).date().isoformat()
        day = self._days.get(date)
        if day is None:
            day = self._days[date] = _Day()
            while len(self._days) > self._keep_days:
                self._days.popitem(last=False)
        day.requests += 1
        day.errors += error
        day.dur_sum += duration
        day.uniques.add_hash(h)
        self._raw.append(
            {
                "timestamp": datetime.fromtimestamp(wall, UTC).isoformat(),
                "method": method,
                "path": path[:MAX_PATH],
                "endpoint": route,
                "status_code": status,
                "response_time_ms": round(duration * 1000, 3),
                "ip": client,
            }
        )

    # ------------------------------------------------------------ metrics
    def collect(self) -> Iterator[Metric]:
        self.flush()
        duration = HistogramMetricFamily(semconv.DURATION, "Duration of HTTP server requests.", labels=semconv.LABELS, unit="seconds")
        req = HistogramMetricFamily(semconv.REQUEST_BODY, "Size of HTTP server request bodies (Content-Length).", labels=semconv.LABELS, unit="bytes")
        resp = HistogramMetricFamily(semconv.RESPONSE_BODY, "Size of HTTP server response bodies.", labels=semconv.LABELS, unit="bytes")
        with self._lock:
            items = [(k, list(s.dur), s.dur_sum, list(s.req), s.req_sum, list(s.resp), s.resp_sum) for k, s in self._series.items()]
        for (method, route, status), dur, dur_sum, rq, rq_sum, rs, rs_sum in items:
            labels = [method, route, str(status)]
            duration.add_metric(labels, _cumulative(semconv.DURATION_BUCKETS, dur), dur_sum)
            req.add_metric(labels, _cumulative(semconv.SIZE_BUCKETS, rq), float(rq_sum))
            resp.add_metric(labels, _cumulative(semconv.SIZE_BUCKETS, rs), float(rs_sum))
        active = GaugeMetricFamily(semconv.ACTIVE, "Number of active HTTP server requests.", labels=[semconv.METHOD])
        for method, n in sorted(self.active.items()):
            active.add_metric([method], n)
        limited = CounterMetricFamily(
            semconv.RATE_LIMITED.removesuffix("_total"), "Requests refused with 429 by the token-bucket rate limiter.", labels=["group", semconv.ROUTE]
        )
        for (group, route), n in sorted(self.rate_limited.items()):
            limited.add_metric([group, route], n)
        dropped = CounterMetricFamily(semconv.DROPPED.removesuffix("_total"), "Request records dropped because the recording queue was full.")
        dropped.add_metric([], self.dropped)
        yield from (duration, active, req, resp, limited, dropped)

    # ------------------------------------------------------------ JSON views
    def authorized(self, provided: str | None) -> bool:
        # compare_digest: the time taken does not tell how much of the key matched.
        return self._key is not None and provided is not None and hmac.compare_digest(provided.encode(), self._key)

    def dashboard(self) -> dict[str, Any]:
        self.flush()
        with self._lock:
            total = self._total
            top = self._top.top(10)
            return {
                "summary": {
                    "total_requests": total,
                    "unique_ips": self._uniques.estimate(),
                    "avg_response_time_ms": _ms(self._dur_sum / total) if total else 0.0,
                    "min_response_time_ms": _ms(self._dur_min) if total else 0.0,
                    "max_response_time_ms": _ms(self._dur_max),
                    "error_count": self._errors,
                    "error_rate": round(100 * self._errors / total, 2) if total else 0.0,
                    "since": datetime.fromtimestamp(self._since, UTC).isoformat(),
                },
                "method_usage": dict(self._methods.most_common()),
                "endpoint_stats": [
                    {"endpoint": route, "requests": int(n), "avg_response_time_ms": _ms(dur / n), "errors": int(err)}
                    for route, (n, dur, err) in sorted(self._endpoints.items(), key=lambda kv: (-kv[1][0], kv[0]))
                ],
                "status_codes": {str(code): n for code, n in sorted(self._statuses.items())},
                "top_ips": [{"ip": h.item, "requests": h.count, "max_overcount": h.error} for h in top],
                "time_series": [
                    {
                        "date": date,
                        "requests": day.requests,
                        "errors": day.errors,
                        "avg_response_time_ms": _ms(day.dur_sum / day.requests),
                        "unique_ips": day.uniques.estimate(),
                    }
                    for date, day in self._days.items()
                ],
            }

    def raw_logs(self, page: int, page_size: int) -> dict[str, Any]:
        self.flush()
        start = (page - 1) * page_size
        with self._lock:
            total = len(self._raw)
            # Only the page is copied: a reader of page 1 does not pay for the whole ring.
            items = list(islice(reversed(self._raw), start, start + page_size))
        return {"total": total, "page": page, "page_size": page_size, "pages": max(1, math.ceil(total / page_size)), "items": items}

    def dashboard_reply(self, api_key: str | None, query: dict[str, str]) -> Reply:
        if not self.authorized(api_key):
            return _json(401, {"error": "missing or wrong X-API-Key"})
        return _json(200, self.dashboard())

    def raw_logs_reply(self, api_key: str | None, query: dict[str, str]) -> Reply:
        if not self.authorized(api_key):
            return _json(401, {"error": "missing or wrong X-API-Key"})
        try:
            page = int(query.get("page", "1"))
            page_size = int(query.get("page_size", "100"))
        except ValueError:
            return _json(400, {"error": "page and page_size must be integers"})
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            return _json(400, {"error": f"page must be >= 1 and page_size within 1..{MAX_PAGE_SIZE}"})
        return _json(200, self.raw_logs(page, page_size))

    # ------------------------------------------------------------ sizes, for bench/
    @property
    def tracked_clients(self) -> int:
        return len(self._top)

    @property
    def top_capacity(self) -> int:
        return self._top.capacity


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _cumulative(bounds: Iterable[float], counts: list[int]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip(bounds, counts, strict=False):
        running += n
        out.append((repr(float(bound)), float(running)))
    out.append(("+Inf", float(running + counts[-1])))
    return out


def _json(status: int, payload: object) -> Reply:
    return Reply(status, (("Content-Type", "application/json"),), orjson.dumps(payload))


class TrafficCollector(Collector):
    def __init__(self, traffic: Traffic) -> None:
        self._traffic = traffic

    def collect(self) -> Iterator[Metric]:
        return self._traffic.collect()
