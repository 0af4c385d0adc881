"""Test-wide set-up.

structlog's default console renderer formats exceptions with `rich` when it is installed
(schemathesis, a dev dependency, brings it), with every local variable: ~100 ms per
traceback of a probe with its config, enough to starve timing-sensitive tests. Tests get
structlog's defaults with plain tracebacks instead.

Test files marked `wallclock` go first (docs/testing.md)."""

from __future__ import annotations

from collections import Counter

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


@pytest.hookimpl(trylast=True)  # after the conftests below have renamed their items
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `wallclock` (real Prometheus, Alertmanager or exporter processes
    waited on in real time) first, the rest in their order: under `-n 2 --dist
    loadfile --no-loadscope-reorder` each worker starts one of them while the other
    runs the CPU-bound files, instead of one starting last and running alone.

    Two tests with one node id are an error: pytest-xdist keeps one of them and
    silently drops the other (tests/api/conftest.py, schemathesis under pytest 9)."""
    twice = sorted(nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1)
    if twice:
        raise pytest.UsageError(f"{len(twice)} node ids name more than one test (xdist would run one of each): {twice[:5]}")
    items.sort(key=lambda item: item.get_closest_marker("wallclock") is None)
