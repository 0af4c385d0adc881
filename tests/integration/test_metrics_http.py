"""/metrics over HTTP as scrapers ask for it: gzip when accepted, plain otherwise."""

from __future__ import annotations

import gzip

import aiohttp
import pytest

from exporter.web.server import accepts_gzip

from .conftest import Harness


def series(exposition: bytes) -> list[bytes]:
    return [line.rsplit(b" ", 1)[0] for line in exposition.splitlines() if line.startswith(b"crypto_api_") and b"exporter_" not in line]


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),  # what Prometheus and curl --compressed send
        ("deflate, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accepts_gzip(header: str, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok


async def test_metrics_gzip_when_asked_plain_otherwise(harness: Harness) -> None:
    await harness.probe("binance", "btc_ticker")
    async with aiohttp.ClientSession(auto_decompress=False) as raw:
        async with raw.get(f"{harness.base}/metrics", headers={"Accept-Encoding": "gzip"}) as resp:
            assert resp.headers["Content-Encoding"] == "gzip"
            assert "Accept-Encoding" in resp.headers["Vary"]
            packed = await resp.read()
        async with raw.get(f"{harness.base}/metrics", headers={"Accept-Encoding": "identity"}) as resp:
            assert "Content-Encoding" not in resp.headers
            plain = await resp.read()
    text = gzip.decompress(packed)
    # The same series (values that move with the clock, data ages, may differ).
    assert series(text) == series(plain) and len(series(text)) > 1000
    assert b'crypto_api_up{provider="binance",category="exchanges",endpoint="btc_ticker"} 1.0' in text
    assert len(packed) * 4 < len(plain)  # the exposition is repetitive: gzip pays
