"""exporter.traffic, by hand (not in CI): the middleware's CPU per request against
prometheus-fastapi-instrumentator and starlette-exporter on the same FastAPI app;
request latency p99 with and without stalled /dashboard and /raw_logs readers while
10,000 distinct clients call; bytes per tracked client and the cap.

    .venv/bin/pip install prometheus-fastapi-instrumentator starlette-exporter   # the peers, bench only
    .venv/bin/python bench/traffic.py [--requests 20000] [--rounds 5]

CPU: each variant's app is called in-process as ASGI (no sockets, no client library in
the measured loop), the same mix of routes and clients, `time.process_time()` around N
requests plus one scrape (our records are folded there), median of rounds interleaved
across variants; overhead = variant minus the bare app.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import socket
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry, generate_latest

from examples.fastapi_app import make_app  # the same app for every variant

KEY = "bench-key-0123456789abcdef0123"
ROUTES = [("GET", "/items"), ("GET", "/items/7"), ("POST", "/orders"), ("GET", "/boom"), ("GET", "/no/such/path")]


def variant(name: str) -> tuple[Any, Any]:
    """(asgi app, scrape function)"""
    app = make_app()
    registry = CollectorRegistry()
    if name == "bare":
        return app, lambda: b""
    if name == "exporter.traffic":
        from exporter.traffic import instrument

        instrument(app, registry=registry, api_key=KEY, metrics_path=None)
        return app, lambda: generate_latest(registry)
    if name == "prometheus-fastapi-instrumentator":
        from prometheus_fastapi_instrumentator import Instrumentator, metrics

        inst = Instrumentator(registry=registry)
        # comparable metrics: requests by handler/method/status, latency histogram, sizes
        inst.add(metrics.default(registry=registry))
        inst.instrument(app)
        return app, lambda: generate_latest(registry)
    if name == "starlette-exporter":
        from starlette_exporter import PrometheusMiddleware

        # starlette-exporter registers in the global registry; a fresh prefix per run keeps
        # the families apart.
        prefix = f"se{os.getpid()}_{id(app)}"
        app.add_middleware(PrometheusMiddleware, app_name="bench", prefix=prefix, group_paths=True, filter_unhandled_paths=True)
        from prometheus_client import REGISTRY

        return app, lambda: generate_latest(REGISTRY)
    raise ValueError(name)


async def call(app: Any, method: str, path: str, client: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"content-length", b"0")],
        "client": (client, 1234),
        "server": ("bench", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def cpu_per_request(app: Any, scrape: Any, n: int) -> float:
    clients = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(1000)]
    for i in range(200):  # warm-up: build the middleware stack, first series
        await call(app, *ROUTES[i % len(ROUTES)], clients[i % 1000])
    scrape()
    gc.collect()
    start = time.process_time()
    for i in range(n):
        method, path = ROUTES[i % len(ROUTES)]
        await call(app, method, path, clients[i % 1000])
    scrape()
    return (time.process_time() - start) / n


def bench_cpu(n: int, rounds: int) -> None:
    names = ["bare", "exporter.traffic", "prometheus-fastapi-instrumentator", "starlette-exporter"]
    results: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            app, scrape = variant(name)
            results[name].append(asyncio.run(cpu_per_request(app, scrape, n)))
    med = {name: statistics.median(v) for name, v in results.items()}
    bare = med["bare"]
    ours = med["exporter.traffic"] - bare
    print(f"\nCPU per request, FastAPI app in-process, {n} requests x {rounds} rounds (median)")
    print(f"{'variant':36} {'µs/request':>11} {'overhead µs':>12} {'ours / theirs':>14}")
    for name in names:
        over = med[name] - bare
        ratio = "" if name in ("bare", "exporter.traffic") else f"{ours / over:.2f}"
        print(f"{name:36} {med[name] * 1e6:11.1f} {over * 1e6:12.1f} {ratio:>14}")


# ------------------------------------------------------------------ latency with stalled readers


def serve(port: int, ready: Any) -> None:
    from aiohttp import web

    from exporter.traffic import instrument

    async def items(request: web.Request) -> web.Response:
        return web.json_response([1, 2, 3])

    app = web.Application()
    app.router.add_get("/items", items)
    instrument(app, registry=CollectorRegistry(), api_key=KEY, client_header="X-Real-IP", raw_logs=10_000, top_k=1_000)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def stalled_readers(port: int, count: int, pipelined: int = 1) -> list[socket.socket]:
    """Connections that ask for /raw_logs (1,000 rows) or /dashboard and never read the
    answer: a write to them waits on that socket only. `pipelined` > 1 asks again and
    again on each: the loopback's buffers take megabytes, so that is a heavy reader
    (each answer built on the loop), not a stalled one."""
    socks = []
    for i in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        path = "/raw_logs?page_size=1000" if i % 2 else "/dashboard"
        for _ in range(pipelined):
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n\r\n".encode())
        socks.append(s)
    return socks


async def latencies(port: int, n: int, offset: int) -> list[float]:
    import aiohttp

    out = []
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            client = f"172.{16 + (i + offset) // 65536 % 16}.{(i + offset) // 256 % 256}.{(i + offset) % 256}"
            start = time.perf_counter()
            async with session.get(f"http://127.0.0.1:{port}/items", headers={"X-Real-IP": client}) as r:
                await r.read()
            out.append(time.perf_counter() - start)
    return out


def p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def bench_latency(n: int, rounds: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready = multiprocessing.Event()
    proc = multiprocessing.Process(target=serve, args=(port, ready), daemon=True)
    proc.start()
    ready.wait(10)
    time.sleep(1)
    blocks: dict[str, list[list[float]]] = {"quiet": [], "stalled": [], "heavy": []}
    try:
        asyncio.run(latencies(port, 10_000, 0))  # 10,000 distinct clients tracked, raw_logs full
        # Alternating blocks, so the machine's drift (shared, 2 cores) falls on both alike.
        offset = 10_000
        for _ in range(rounds):
            blocks["quiet"].append(asyncio.run(latencies(port, n, offset)))
            socks = stalled_readers(port, 20)
            time.sleep(0.5)
            blocks["stalled"].append(asyncio.run(latencies(port, n, offset + n)))
            for sock in socks:
                sock.close()
            socks = stalled_readers(port, 20, pipelined=50)
            time.sleep(0.5)
            blocks["heavy"].append(asyncio.run(latencies(port, n, offset + 2 * n)))
            for sock in socks:
                sock.close()
            time.sleep(0.5)
            offset += 3 * n
    finally:
        proc.terminate()
    print(f"\nLatency of GET /items, aiohttp app on loopback, {rounds} alternating blocks of {n} sequential requests, {offset:,} distinct clients")
    print(f"{'condition':44} {'p50 ms':>8} {'p99 ms (median of blocks)':>26} {'p99 per block':>30}")
    for name, label in [
        ("quiet", "quiet"),
        ("stalled", "20 stalled /dashboard + /raw_logs readers"),
        ("heavy", "20 readers pipelining 50 each, unread"),
    ]:
        p99s = [p(b, 0.99) for b in blocks[name]]
        p50 = statistics.median(p(b, 0.5) for b in blocks[name])
        print(f"{label:44} {p50:8.3f} {statistics.median(p99s):26.3f}   {' '.join(f'{v:.2f}' for v in p99s):>28}")


# ------------------------------------------------------------------ memory


def bench_memory() -> None:
    from exporter.traffic import Traffic

    print("\nMemory of the analytics (tracemalloc, after folding)")
    print(f"{'clients':>9} {'top_k':>7} {'tracked':>8} {'KiB':>9} {'bytes/tracked client':>21}")
    for top_k, clients in [(10_000, 10_000), (10_000, 100_000), (1_000, 100_000)]:
        gc.collect()
        tracemalloc.start()
        traffic = Traffic(top_k=top_k, raw_logs=1)
        base = tracemalloc.get_traced_memory()[0]
        for i in range(clients):
            traffic.record("GET", "/items", 200, 0.001, 0, 7, f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", "/items")
            if i % 4096 == 0:
                traffic.flush()
        traffic.flush()
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        print(f"{clients:9} {top_k:7} {traffic.tracked_clients:8} {used / 1024:9.0f} {used / traffic.tracked_clients:21.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="cpu,latency,memory")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if "cpu" in only:
        bench_cpu(args.requests, args.rounds)
    if "latency" in only:
        bench_latency(args.requests // 10, args.rounds)
    if "memory" in only:
        bench_memory()


if __name__ == "__main__":
    main()
