"""Log output: JSON lines, batched writes, secrets redacted."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest
import structlog
import structlog.testing

from exporter import logs
from exporter.app import _log_result
from exporter.logs import BatchedWriter, configure_logging
from exporter.model import Outcome, ProbeResult
from exporter.redact import Redactor
from tests.clock import virtual_loop, virtual_time


class TimedSink(io.BytesIO):
    """A stream that notes the loop time of each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[float, bytes]] = []

    def write(self, data: Any) -> int:
        self.writes.append((asyncio.get_running_loop().time(), bytes(data)))
        return super().write(data)


@virtual_time
async def test_batched_writer_holds_lines_briefly_then_writes_them_whole() -> None:
    loop = virtual_loop()
    raw = TimedSink()
    writer = BatchedWriter(raw)
    writer.write(b'{"a":1}\n')  # t=0
    writer.flush()
    await asyncio.sleep(logs.FLUSH_AFTER / 2)
    writer.write(b'{"b":2}\n')
    assert raw.getvalue() == b""  # not one syscall per line
    await asyncio.sleep(logs.FLUSH_AFTER)
    # Both in one write, FLUSH_AFTER after the first line, not after the last.
    assert raw.writes == [(0.0 + logs.FLUSH_AFTER, b'{"a":1}\n{"b":2}\n')]
    t1 = loop.time()
    writer.write(b'{"c":3}\n')  # an empty buffer starts a new wait
    await asyncio.sleep(logs.FLUSH_AFTER * 2)
    assert raw.writes[1:] == [(t1 + logs.FLUSH_AFTER, b'{"c":3}\n')]


def test_batched_writer_without_a_loop_writes_at_once() -> None:
    raw = io.BytesIO()
    BatchedWriter(raw).write(b"line\n")
    assert raw.getvalue() == b"line\n"


async def test_large_bursts_are_written_when_the_buffer_fills() -> None:
    raw = io.BytesIO()
    writer = BatchedWriter(raw)
    line = b"x" * 1023 + b"\n"
    for _ in range(logs.FLUSH_AT // len(line)):
        writer.write(line)
    # Within the loop, before any timer ran: only the full buffer forced the write.
    assert len(raw.getvalue()) == logs.FLUSH_AT


def test_json_lines_with_secrets_redacted(capfd) -> None:  # type: ignore[no-untyped-def]
    # Restored after, not reset: structlog's defaults render tracebacks with `rich`, slow
    # enough (over a second each here) to stretch every later test that logs one
    # (tests/conftest.py).
    saved = structlog.get_config()
    configure_logging("INFO", "json", Redactor(["sekrit-key-123"]))
    try:
        structlog.get_logger().info("probe", provider="etherscan", detail="failed for ?apikey=sekrit-key-123")
        structlog.get_logger().debug("hidden")
    finally:
        structlog.configure(**saved)
    out = capfd.readouterr().err.strip().splitlines()
    assert len(out) == 1
    line = json.loads(out[0])
    assert line["event"] == "probe" and line["level"] == "info"
    assert line["detail"] == "failed for ?apikey=***"


def test_redactor_groups_are_replaced_separately() -> None:
    redactor = Redactor(["provider-key-0001"])
    redactor.update(["api-token-0001"], group="api_tokens")
    redactor.update(["provider-key-0002"])  # a reload: the config's group only
    assert redactor.redact("provider-key-0001 provider-key-0002 api-token-0001") == "provider-key-0001 *** ***"


def test_stdlib_records_are_redacted_json_lines(capfd) -> None:  # type: ignore[no-untyped-def]
    """aiohttp and asyncio log through the standard library: their records go through
    structlog's processors (the redactor too) and come out as one JSON line each, a
    traceback in its `exception` field."""
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.handlers[:] = []  # as in a real process (pytest adds its own capture handlers)
    configure_logging("INFO", "json", Redactor(["sekrit-token-123"]))
    try:
        try:
            raise ValueError("bad header: Authorization: Bearer sekrit-token-123\nsecond line")
        except ValueError:
            logging.getLogger("aiohttp.server").exception("Error handling request from %s", "10.0.0.1")
        logging.getLogger("aiohttp.server").info("below the stdlib threshold")
        logs.flush()
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)
    out = capfd.readouterr().err
    assert "sekrit-token-123" not in out
    [line] = [json.loads(x) for x in out.splitlines()]
    assert line["event"] == "Error handling request from 10.0.0.1" and line["logger"] == "aiohttp.server" and line["level"] == "error"
    assert "ValueError: bad header: Authorization: Bearer ***" in line["exception"]


def _result(outcome: Outcome) -> ProbeResult:
    return ProbeResult(provider="binance", category="exchanges", endpoint="ping", outcome=outcome, started_at=0.0, finished_at=0.0)


@pytest.mark.parametrize(
    ("previous", "outcome", "level"),
    [
        (Outcome.SUCCESS, Outcome.SUCCESS, "debug"),
        (Outcome.SERVER_ERROR, Outcome.SUCCESS, "info"),
        (Outcome.SUCCESS, Outcome.SERVER_ERROR, "warning"),
        (Outcome.SERVER_ERROR, Outcome.SERVER_ERROR, "warning"),
        (Outcome.SERVER_ERROR, Outcome.CIRCUIT_OPEN, "warning"),
        (Outcome.CIRCUIT_OPEN, Outcome.CIRCUIT_OPEN, "debug"),
        (Outcome.SUCCESS, Outcome.BUDGET_EXHAUSTED, "warning"),
        (Outcome.BUDGET_EXHAUSTED, Outcome.BUDGET_EXHAUSTED, "debug"),
    ],
)
def test_probe_log_levels(previous: Outcome, outcome: Outcome, level: str) -> None:
    with structlog.testing.capture_logs() as logs:
        _log_result(_result(outcome), previous)
    assert [(x["event"], x["log_level"]) for x in logs] == [("probe", level)]
