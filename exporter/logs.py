"""structlog set-up: JSON lines by default, a console renderer on request."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

from .redact import Redactor


def configure_logging(level: str = "INFO", fmt: str = "json", redactor: Redactor | None = None) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"invalid log level {level!r} (DEBUG, INFO, WARNING, ERROR)")
    if fmt not in ("json", "console"):
        raise ValueError(f"invalid log format {fmt!r} (json or console)")
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    processors.append(structlog.processors.format_exc_info)
    # After format_exc_info, so a traceback's text is redacted too.
    if redactor is not None:
        processors.append(redactor.processor)
    if fmt == "console":
        renderer: structlog.typing.Processor = structlog.dev.ConsoleRenderer()
        factory: Any = structlog.PrintLoggerFactory(sys.stderr)
    else:
        # orjson renders to bytes about ten times faster than json: a log line per probe
        # otherwise costs as much CPU as the probe's HTTP exchange.
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory = structlog.BytesLoggerFactory(sys.stderr.buffer)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    # aiohttp and APScheduler log through the standard library: route them to stderr too.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
