"""Hostile answers for the simulator's faults: a gzip bomb, JSON nested far past any
parser's bound, and bodies too big to hold (streamed in pieces, so the simulator never
holds them either).

What the exporter must survive (issue 9, docs/limits.md) can be caused on demand, in
the demo and in tests.
"""

from __future__ import annotations

import functools
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

MIB = 1024 * 1024
# Decoded size of the gzip bomb: 1,000 MiB of zeros is ~1.04 MB on the wire, just under
# the exporter's default body cap (1 MiB), so a cap that trusts Content-Length lets it in.
GZIP_BOMB_BYTES = 1000 * MIB
DEEP_JSON_LEVELS = 100_000  # the default of the deep_json fault: 200 KB of brackets
STREAM_CHUNK = 64 * 1024  # bytes per write of a streamed body

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # magic, deflate, no flags, no mtime, best compression, unknown OS


@functools.lru_cache(maxsize=2)
def gzip_bomb(decoded: int = GZIP_BOMB_BYTES) -> bytes:
    """`decoded` bytes of zeros (a whole number of MiB), gzip-encoded: built once, then
    kept (the simulator serves it on every matching request).

    Deflating 1,000 MiB takes seconds; this takes a fraction of one. One MiB of zeros
    is deflated with a full flush, which resets the compressor and aligns its output to
    a byte, so every further MiB deflates to the very same bytes: those are repeated.
    The trailer's CRC-32 is computed for real (zlib releases the GIL while it runs), so
    a client that reads to the end gets a valid gzip member."""
    blocks, rest = divmod(decoded, MIB)
    if blocks < 1 or rest:
        raise ValueError("decoded: a whole number of MiB, at least one")
    zeros = bytes(MIB)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate: the gzip framing is ours
    first = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    repeated = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    last = deflate.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(zeros, crc)
    trailer = struct.pack("<II", crc, decoded & 0xFFFFFFFF)
    return b"".join((_GZIP_HEADER, first, repeated * (blocks - 1), last, trailer))


def deep_json(levels: int = DEEP_JSON_LEVELS) -> bytes:
    """An array nested `levels` deep: valid JSON that recursive parsers cannot read."""
    return b"[" * levels + b"]" * levels


def oversized(payload: Any, size: int) -> Iterator[bytes]:
    """The payload as a JSON object padded to exactly `size` bytes (or its own size, if
    larger), in pieces of STREAM_CHUNK: a 64 MiB answer never sits in memory whole."""
    base = dict(payload) if isinstance(payload, dict) else {"data": payload}
    base["_padding"] = ""
    text = json.dumps(base, separators=(",", ":")).encode()
    head, tail = text[:-2], text[-2:]  # tail: the padding's closing quote and the object's brace
    yield head
    pad = max(0, size - len(text))
    piece = b"x" * min(pad, STREAM_CHUNK)
    while pad > 0:
        yield piece[:pad]
        pad -= len(piece)
    yield tail
