"""Test-wide set-up.

structlog's default console renderer formats exceptions with `rich` when it is installed
(schemathesis, a dev dependency, brings it), with every local variable: ~100 ms per
traceback of a probe with its config, enough to starve timing-sensitive tests. Tests get
structlog's defaults with plain tracebacks instead.

Test files marked `wallclock` go first (docs/testing.md)."""

from __future__ import annotations

import pytest
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `wallclock` (real Prometheus, Alertmanager or exporter processes
    waited on in real time) first, the rest in their order: under `-n 2 --dist
    loadfile --no-loadscope-reorder` each worker starts one of them while the other
    runs the CPU-bound files, instead of one starting last and running alone."""
    items.sort(key=lambda item: item.get_closest_marker("wallclock") is None)
