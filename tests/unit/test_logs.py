"""Log output: JSON lines, batched writes, secrets redacted."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import structlog

from exporter import logs
from exporter.logs import BatchedWriter, configure_logging
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
