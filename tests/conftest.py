"""Test-wide set-up.

structlog's default console renderer formats exceptions with `rich` when it is installed
(schemathesis, a dev dependency, brings it), with every local variable: ~100 ms per
traceback of a probe with its config, enough to starve timing-sensitive tests. Tests get
structlog's defaults with plain tracebacks instead."""

from __future__ import annotations

import structlog

structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.StackInfoRenderer(),
        structlog.dev.set_exc_info,
        structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
    ]
)
