"""structlog set-up: JSON lines by default, a console renderer on request."""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
from typing import Any, BinaryIO

import orjson
import structlog

from .redact import Redactor

FLUSH_AFTER = 0.1  # seconds a log line may wait in the buffer
FLUSH_AT = 64 * 1024  # bytes that force a write


class BatchedWriter:
    """Collects log lines and writes them together, at most FLUSH_AFTER seconds late.

    A write syscall per line (structlog flushes after each) costs as much as a third of
    a keep-alive probe; at hundreds of probes a second, batching them is most of the
    cost of logging. Lines stay whole; the buffer is written at exit too."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._buf = bytearray()
        atexit.register(self.flush_now)

    def write(self, data: bytes) -> None:
        was_empty = not self._buf
        self._buf += data
        if len(self._buf) >= FLUSH_AT:
            self.flush_now()
        elif was_empty:
            try:
                asyncio.get_running_loop().call_later(FLUSH_AFTER, self.flush_now)
            except RuntimeError:  # no event loop: nothing would come back to flush
                self.flush_now()

    def flush(self) -> None:
        """Called by structlog after every line: batching means not obeying it."""

    def flush_now(self) -> None:
        if self._buf:
            try:
                self._raw.write(self._buf)
                self._raw.flush()
            except (OSError, ValueError):
                pass  # stderr closed (a pipe gone at shutdown): nowhere left to log
            self._buf.clear()


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


class ToStructlog(logging.Handler):
    """Hands the standard library's records (aiohttp's, asyncio's) to structlog, so they get
    the same processors as the exporter's own events (the redactor among them) and come out
    as the same one-line JSON: a traceback becomes the `exception` field of its line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            structlog.get_logger().log(record.levelno, record.getMessage(), **fields)
        except Exception:  # noqa: BLE001 - logging must not raise into its caller
            self.handleError(record)


_writer: BatchedWriter | None = None


def flush() -> None:
    """Write out the log lines still held in the buffer (tests read the output at once)."""
    if _writer is not None:
        _writer.flush_now()


def configure_logging(level: str = "INFO", fmt: str = "json", redactor: Redactor | None = None) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"invalid log level {level!r} (DEBUG, INFO, WARNING, ERROR)")
    if fmt not in ("json", "console"):
        raise ValueError(f"invalid log format {fmt!r} (json or console)")
    processors: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    processors.append(structlog.processors.format_exc_info)
    # After format_exc_info, so a traceback's text is redacted too.
    if redactor is not None:
        processors.append(redactor.processor)
    if fmt == "console":
        # Colour codes only for a person at a terminal: in a pipe or a file they are noise.
        renderer: structlog.typing.Processor = structlog.dev.ConsoleRenderer(colors=_is_terminal(sys.stderr))
        factory: Any = structlog.PrintLoggerFactory(sys.stderr)
    else:
        # orjson renders to bytes about ten times faster than json: a log line per probe
        # otherwise costs as much CPU as the probe's HTTP exchange.
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        global _writer
        _writer = BatchedWriter(sys.stderr.buffer)
        factory = structlog.BytesLoggerFactory(_writer)  # type: ignore[arg-type]
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    # aiohttp and asyncio log through the standard library: through structlog with them, so
    # their lines are redacted and one JSON line each like ours, never multi-line text.
    # Warnings and above only: their info lines are per-request noise.
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, ToStructlog)]:
        root.removeHandler(handler)  # configured again (tests): one route, not two
    root.addHandler(ToStructlog())
    root.setLevel(max(numeric, logging.WARNING))
