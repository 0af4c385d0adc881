"""`crypto-api-exporter` and `python -m exporter`: run, demo, simulate, check-config.

Flags follow Prometheus's conventions (`--config.file`, `--web.listen-address`,
`--log.level`, `--log.format`, `--web.enable-lifecycle`); the env vars of earlier
releases (PROVIDERS_FILE, PORT, LOG_LEVEL, LOG_FORMAT) keep working as defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from . import sharding
from .config import ConfigError, load_config
from .incidents.flags import DEFAULT_PORT as INCIDENTS_PORT
from .incidents.flags import add_flags as incident_flags
from .incidents.flags import settings_from as incident_settings
from .incidents.store import MEMORY
from .logs import configure_logging
from .model import Category
from .redact import Redactor
from .selection import Choice, select, why
from .shard import UNSHARDED, Shard

if TYPE_CHECKING:
    from .feeds.process import ChildOptions

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


def parse_listen_address(text: str) -> tuple[str | None, int]:
    """`host:port`, `:port` (every interface) or `[::1]:port` to (host, port); host None
    means every interface. ValueError naming what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid listen address {text!r}: use host:port, e.g. 127.0.0.1:{DEFAULT_PORT} or :{DEFAULT_PORT}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return (host or None), int(port)


def _listen_address(arg: argparse.ArgumentParser, value: str) -> tuple[str | None, int]:
    try:
        return parse_listen_address(value)
    except ValueError as e:
        arg.error(str(e))


def _default_address(default_port: int) -> str:
    """WEB_LISTEN_ADDRESS, else loopback on PORT: nothing is exposed beyond this machine
    unless asked (the Docker image and the manifests ask for every interface)."""
    if os.environ.get("WEB_LISTEN_ADDRESS"):
        return os.environ["WEB_LISTEN_ADDRESS"]
    port = os.environ.get("PORT") or str(default_port)
    return f"127.0.0.1:{port}"


def loopback_listen(p: argparse.ArgumentParser, port: int) -> None:
    p.add_argument(
        "--web.listen-address",
        dest="listen",
        default=f"127.0.0.1:{port}",
        metavar="HOST:PORT",
        help=f"address to listen on (default 127.0.0.1:{port})",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crypto-api-exporter",
        description="Probe third-party crypto APIs on a schedule and expose the results to Prometheus.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config.file",
            "-c",
            dest="config_file",
            default=os.environ.get("PROVIDERS_FILE"),
            metavar="FILE",
            help="providers.yaml to load (env PROVIDERS_FILE; default: the shipped registry)",
        )
        p.add_argument(
            "--log.level",
            "--log-level",
            dest="log_level",
            default=os.environ.get("LOG_LEVEL", "info"),
            help="debug, info, warning, error (env LOG_LEVEL; default info)",
        )
        p.add_argument(
            "--log.format",
            "--log-format",
            dest="log_format",
            default=os.environ.get("LOG_FORMAT", "json"),
            choices=["json", "console"],
            help="JSON lines, or human-readable console lines (env LOG_FORMAT; default json)",
        )

    def selection(p: argparse.ArgumentParser) -> None:
        group = p.add_argument_group(
            "which providers run",
            "NAMES: comma-separated, the flag may be repeated. Without --providers and --categories, the file's "
            "select: decides (default: every provider). A provider that needs a key and has none set is disabled "
            "(listed, never probed) unless enabled: true or --enable says otherwise.",
        )
        group.add_argument(
            "--providers", dest="providers", action="append", default=[], metavar="NAMES", help="run only these providers (and those of --categories)"
        )
        group.add_argument(
            "--categories",
            dest="categories",
            action="append",
            default=[],
            metavar="NAMES",
            help=f"run only these categories' providers ({', '.join(Category)})",
        )
        group.add_argument("--enable", dest="enable", action="append", default=[], metavar="NAMES", help="probe these providers even without a key")
        group.add_argument("--disable", dest="disable", action="append", default=[], metavar="NAMES", help="never probe these providers (status disabled)")

    run = sub.add_parser(
        "run",
        help="probe the configured providers and serve /metrics",
        description="Probe every endpoint of providers.yaml on its schedule and serve /metrics and the JSON API. "
        "SIGHUP reloads the file (POST /-/reload too, with --web.enable-lifecycle).",
    )
    common(run)
    selection(run)
    sharding.add_flags(run)
    run.add_argument(
        "--web.listen-address",
        dest="listen",
        default=_default_address(DEFAULT_PORT),
        metavar="HOST:PORT",
        help=f"address to listen on; ':{DEFAULT_PORT}' for every interface (env WEB_LISTEN_ADDRESS, "
        f"else 127.0.0.1 on env PORT; default 127.0.0.1:{DEFAULT_PORT})",
    )
    run.add_argument(
        "--feeds",
        dest="feeds_file",
        default=None,
        metavar="FILE",
        help="hold the WebSocket market-data feeds of FILE open ('shipped' for the shipped feeds.yaml; env FEEDS_FILE; default: no feeds)",
    )
    feeds_in_process(run)
    run.add_argument(
        "--web.enable-lifecycle", dest="enable_lifecycle", action="store_true", help="allow reloads over HTTP (POST /-/reload); SIGHUP always works"
    )
    run.add_argument(
        "--web.enable-actions",
        dest="enable_actions",
        action="store_true",
        help="allow POST /api/schedule/trigger and /api/config/keys/test (they spend providers' quota) "
        "without API_TOKENS; with API_TOKENS set they are allowed to authenticated callers",
    )
    run.add_argument(
        "--web.public-status",
        dest="public_status",
        action="store_true",
        help="serve the status page (/status) and badges (/badge/*) to anyone, outside API_TOKENS and ALLOWED_IPS "
        "(as env PUBLIC_STATUS=true; default: guarded as /api/*)",
    )

    incident_flags(run, MEMORY)

    incidents = sub.add_parser(
        "incidents",
        help="the incident service alone: Alertmanager webhook in, explained incidents out",
        description="Receive Alertmanager notifications (POST /api/incidents/webhook), group them into incidents in SQLite, "
        "explain each from the exporter's facts (--exporter-url, --prometheus-url) and serve /api/incidents. docs/incidents.md.",
    )
    common(incidents)
    loopback_listen(incidents, INCIDENTS_PORT)
    incidents.add_argument(
        "--exporter-url", dest="exporter_url", default=os.environ.get("EXPORTER_URL"), help="the exporter's base URL, for the facts (env EXPORTER_URL)"
    )
    incidents.add_argument(
        "--exporter.token-file", dest="exporter_token_file", default=None, metavar="FILE", help="a token of the exporter's API_TOKENS, when it has them"
    )
    incidents.add_argument(
        "--prometheus-url", dest="prometheus_url", default=os.environ.get("PROMETHEUS_URL"), help="Prometheus's base URL, for the facts (env PROMETHEUS_URL)"
    )
    incident_flags(incidents, "incidents.db")

    demo = sub.add_parser(
        "demo",
        help="simulator and exporter in one process, offline, no keys needed",
        description="Start the provider simulator and an exporter pointed at it, with short intervals "
        "and injected faults, so every outcome and metric moves within a minute.",
    )
    common(demo)
    selection(demo)
    demo.add_argument(
        "--web.listen-address",
        dest="listen",
        default=_default_address(DEFAULT_PORT),
        metavar="HOST:PORT",
        help=f"the exporter's address (default 127.0.0.1:{DEFAULT_PORT})",
    )
    demo.add_argument(
        "--simulator.listen-address",
        dest="sim_listen",
        default=None,
        metavar="HOST:PORT",
        help=f"the simulator's address (default: the exporter's host, port {DEFAULT_SIM_PORT})",
    )
    incident_flags(demo, MEMORY)
    demo.add_argument("--interval", default="5s", help="probe interval for every endpoint (default 5s)")
    demo.add_argument("--chaos", action=argparse.BooleanOptionalAction, default=True, help="inject rotating faults so every outcome shows up (default on)")
    feeds_in_process(demo)

    sim = sub.add_parser(
        "simulate",
        help="serve plausible provider payloads with injectable faults",
        description="Serve every endpoint of providers.yaml under /sim/<provider>/... with plausible payloads; POST /control/faults injects faults.",
    )
    common(sim)
    loopback_listen(sim, DEFAULT_SIM_PORT)

    check = sub.add_parser(
        "check-config",
        help="validate a providers.yaml and exit non-zero on errors",
        description="Validate providers.yaml: one line per mistake, naming provider, endpoint and field.",
    )
    check.add_argument("file", nargs="?", default=os.environ.get("PROVIDERS_FILE"), help="file to check (default: the shipped registry)")
    selection(check)
    sharding.add_flags(check)
    return parser


def feeds_in_process(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--feeds.in-process",
        dest="feeds_in_process",
        action="store_true",
        help="read the feeds in the exporter's own event loop instead of a child process (debugging; costs the probes' latency, docs/feeds.md)",
    )


def feeds_child(args: argparse.Namespace) -> ChildOptions | None:
    """The feeds process's options, or None with --feeds.in-process."""
    from .feeds.process import ChildOptions

    return None if args.feeds_in_process else ChildOptions(log_level=args.log_level, log_format=args.log_format)


def _names(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.strip() for v in values for n in v.split(",") if n.strip()))


def choice_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Choice:
    """The selection flags; `--providers FILE` (its meaning before it picked providers)
    is refused with the flag to use instead."""
    providers = _names(args.providers)
    for name in providers:
        if "/" in name or name.endswith((".yaml", ".yml")):
            parser.error(f"--providers takes provider names now ({name!r} looks like a file): give the file with --config.file")
    return Choice(providers, _names(args.categories), _names(args.enable), _names(args.disable))


def check_config(path: str | None, choice: Choice | None = None, shard: Shard = UNSHARDED) -> int:
    """Validate the file and the selection; say which providers would run and which not."""
    try:
        config = sharding.restrict(shard, select(load_config(path), choice or Choice()))
    except ConfigError as e:
        for line in e.errors:
            sys.stderr.write(f"error: {line}\n")
        sys.stderr.write(f"{e.total} error(s)\n")
        return 1
    for warning in config.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    for d in config.disabled:
        sys.stderr.write(f"disabled: providers[{d.name}]: {why(d)}\n")
    configured = (*config.providers, *(d.provider for d in config.disabled))
    endpoints = sum(len(p.endpoints) for p in configured)
    extends = f" (over {', '.join(config.files[:-1])})" if len(config.files) > 1 else ""
    left_out = f", {len(config.not_selected)} not selected" if config.not_selected else ""
    if config.shard.sharded:
        left_out += f" (shard {config.shard.index} of {config.shard.total})"
    sys.stdout.write(
        f"{config.source}{extends}: OK, {len(configured)} providers, {endpoints} endpoints; "
        f"{len(config.providers)} probed, {len(config.disabled)} disabled{left_out}\n"
    )
    return 0


def _url(host: str | None, port: int) -> str:
    shown = host or "0.0.0.0"
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


async def _run(args: argparse.Namespace, host: str | None, port: int, redactor: Redactor) -> None:
    from .app import Exporter, build_app, file_loader, wait_for_stop
    from .feeds.config import feeds_path, load_feeds
    from .web.api import ApiOptions
    from .web.server import WebOptions, serve

    feeds = feeds_path(args.feeds_file)
    exporter = Exporter(
        file_loader(args.config_file, choice=args.choice, shard=args.shard),
        redactor=redactor,
        feeds_loader=(lambda: load_feeds(feeds)) if feeds else None,
        feeds_process=feeds_child(args),
    )
    options = WebOptions(
        enable_lifecycle=args.enable_lifecycle,
        api=ApiOptions(enable_actions=args.enable_actions, public_status=args.public_status, incidents=args.incidents),
    )
    runner, bound = await serve(build_app(exporter, options), host or "", port)
    log.info(
        "listening", url=f"{_url(host, bound)}/metrics", lifecycle_api=args.enable_lifecycle, actions_api=args.enable_actions, public_status=args.public_status
    )
    try:
        await wait_for_stop()
    finally:
        await runner.cleanup()


async def _incidents(args: argparse.Namespace, host: str | None, port: int) -> None:
    import aiohttp

    from .app import wait_for_stop
    from .incidents.facts import ExporterApiFacts, FactSource, FirstOf, PrometheusFacts
    from .incidents.llm import read_secret_file
    from .incidents.service import IncidentService
    from .web.api import ApiSettings
    from .web.api.incidents import build_incident_app
    from .web.server import serve

    async with aiohttp.ClientSession() as session:
        sources: list[FactSource] = []
        if args.exporter_url:
            token = read_secret_file(args.exporter_token_file, "--exporter.token-file") if args.exporter_token_file else None
            sources.append(ExporterApiFacts(session, args.exporter_url, token))
        if args.prometheus_url:
            sources.append(PrometheusFacts(session, args.prometheus_url))
        service = IncidentService(args.incidents, FirstOf(sources), session=session)
        runner, bound = await serve(build_incident_app(service, ApiSettings.from_env(os.environ)), host or "", port)
        log.info(
            "incidents_listening",
            webhook=f"{_url(host, bound)}/api/incidents/webhook",
            db=args.incidents.db,
            exporter=args.exporter_url,
            prometheus=args.prometheus_url,
        )
        try:
            await wait_for_stop()
        finally:
            await runner.cleanup()


async def _simulate(args: argparse.Namespace, host: str | None, port: int) -> None:
    from .app import wait_for_stop
    from .simulator import Simulator

    sim = Simulator(load_config(args.config_file))
    bound = await sim.start(host or "", port)
    log.info("simulator_listening", url=_url(host, bound), control=f"{_url(host, bound)}/control/faults")
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
    if args.command in ("run", "demo", "check-config"):
        args.choice = choice_of(parser, args)
    args.shard = sharding.from_args(parser, args) if args.command in ("run", "check-config") else UNSHARDED
    if args.command == "check-config":
        return check_config(args.file, args.choice, args.shard)
    if args.command in ("run", "demo", "incidents"):
        try:
            args.incidents = incident_settings(args)
        except ValueError as e:
            parser.error(str(e))
    host, port = _listen_address(parser, args.listen)
    redactor = Redactor()
    try:
        configure_logging(args.log_level, args.log_format, redactor)
    except ValueError as e:
        parser.error(str(e))
    try:
        if args.command == "run":
            run_async(_run(args, host, port, redactor))
        elif args.command == "demo":
            from .demo import run_demo

            sim_host, sim_port = _listen_address(parser, args.sim_listen) if args.sim_listen else (host, DEFAULT_SIM_PORT)
            run_async(
                run_demo(
                    args.config_file, (host, port), (sim_host, sim_port), args.interval, args.chaos, redactor, args.choice, args.incidents, feeds_child(args)
                )
            )
        elif args.command == "incidents":
            run_async(_incidents(args, host, port))
        elif args.command == "simulate":
            run_async(_simulate(args, host, port))
    except ConfigError as e:
        for line in e.errors:
            sys.stderr.write(f"error: {line}\n")
        return 1
    except OSError as e:
        sys.stderr.write(f"error: {e.strerror or e}\n")
        return 1
    except (ValueError, sqlite3.Error) as e:  # a secret file that cannot be read (--llm.key-file, ...), a newer incident database
        sys.stderr.write(f"error: {e}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
