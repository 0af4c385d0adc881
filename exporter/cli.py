"""`crypto-api-exporter` and `python -m exporter`: run, demo, simulate, check-config."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import structlog

from .config import ConfigError, load_config
from .logs import configure_logging
from .redact import Redactor

log = structlog.get_logger()
T = TypeVar("T")
DEFAULT_PORT = 7860
DEFAULT_SIM_PORT = 7861


def make_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (about a quarter less CPU per probe), unless
    EXPORTER_EVENT_LOOP=asyncio asks for the standard loop."""
    if os.environ.get("EXPORTER_EVENT_LOOP", "uvloop") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=make_loop_factory()) as runner:
        return runner.run(coro)


def _env_port(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise SystemExit(f"error: env {name}={value!r} is not a port number (0 to 65535)")
    return int(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crypto-api-exporter",
        description="Probe third-party crypto APIs on a schedule and expose the results to Prometheus.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--providers", "-c", default=os.environ.get("PROVIDERS_FILE"), metavar="FILE",
                       help="providers.yaml to load (env PROVIDERS_FILE; default: the shipped registry)")
        p.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"), help="DEBUG, INFO, WARNING, ERROR (env LOG_LEVEL)")
        p.add_argument("--log-format", default=os.environ.get("LOG_FORMAT", "json"), choices=["json", "console"],
                       help="JSON lines or human-readable console output (env LOG_FORMAT)")

    run = sub.add_parser("run", help="probe the configured providers and serve /metrics",
                         description="Probe every endpoint of providers.yaml on its schedule and serve /metrics. "
                                     "SIGHUP or POST /-/reload reloads the file.")
    common(run)
    run.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    run.add_argument("--port", type=int, default=None, help=f"port to listen on (env PORT, default {DEFAULT_PORT})")

    demo = sub.add_parser("demo", help="simulator and exporter in one process, offline, no keys needed",
                          description="Start the provider simulator and an exporter pointed at it, with short "
                                      "intervals and injected faults, so every metric moves within a minute.")
    common(demo)
    demo.add_argument("--host", default="127.0.0.1", help="address for both servers (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=None, help=f"exporter port (env PORT, default {DEFAULT_PORT})")
    demo.add_argument("--sim-port", type=int, default=DEFAULT_SIM_PORT, help=f"simulator port (default {DEFAULT_SIM_PORT})")
    demo.add_argument("--interval", default="5s", help="probe interval for every endpoint (default 5s)")
    demo.add_argument("--chaos", action=argparse.BooleanOptionalAction, default=True,
                      help="inject rotating faults so every outcome shows up (default on)")

    sim = sub.add_parser("simulate", help="serve plausible provider payloads with injectable faults",
                         description="Serve every endpoint of providers.yaml under /sim/<provider>/... with "
                                     "plausible payloads; POST /control/faults injects faults.")
    common(sim)
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=DEFAULT_SIM_PORT, help=f"port (default {DEFAULT_SIM_PORT})")

    check = sub.add_parser("check-config", help="validate a providers.yaml and exit non-zero on errors",
                           description="Validate providers.yaml: one line per mistake, naming provider, endpoint and field.")
    check.add_argument("file", nargs="?", default=os.environ.get("PROVIDERS_FILE"), help="file to check (default: the shipped registry)")
    return parser


def check_config(path: str | None) -> int:
    try:
        config = load_config(path)
    except ConfigError as e:
        for line in e.errors:
            sys.stderr.write(f"error: {line}\n")
        sys.stderr.write(f"{len(e.errors)} error(s)\n")
        return 1
    for warning in config.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    endpoints = sum(len(p.endpoints) for p in config.providers)
    sys.stdout.write(f"{config.source}: OK, {len(config.providers)} providers, {endpoints} endpoints\n")
    return 0


async def _run(args: argparse.Namespace, redactor: Redactor) -> None:
    from .app import Exporter, file_loader
    from .server import build_app, serve, wait_for_stop

    port = args.port if args.port is not None else _env_port("PORT", DEFAULT_PORT)
    exporter = Exporter(file_loader(args.providers), redactor=redactor)
    runner, bound = await serve(build_app(exporter), args.host, port)
    log.info("listening", url=f"http://{args.host}:{bound}/metrics")
    try:
        await wait_for_stop()
    finally:
        await runner.cleanup()


async def _simulate(args: argparse.Namespace) -> None:
    from .server import wait_for_stop
    from .simulator import Simulator

    sim = Simulator(load_config(args.providers))
    port = await sim.start(args.host, args.port)
    log.info("simulator_listening", url=f"http://{args.host}:{port}", control=f"http://{args.host}:{port}/control/faults")
    try:
        await wait_for_stop()
    finally:
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "check-config":
        return check_config(args.file)
    redactor = Redactor()
    try:
        configure_logging(args.log_level, args.log_format, redactor)
    except ValueError as e:
        parser.error(str(e))
    try:
        if args.command == "run":
            run_async(_run(args, redactor))
        elif args.command == "demo":
            from .demo import run_demo

            port = args.port if args.port is not None else _env_port("PORT", DEFAULT_PORT)
            run_async(run_demo(args.providers, args.host, port, args.sim_port, args.interval, args.chaos, redactor))
        elif args.command == "simulate":
            run_async(_simulate(args))
    except ConfigError as e:
        for line in e.errors:
            sys.stderr.write(f"error: {line}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"error: {e.strerror or e}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
