"""aioresponses 0.7.x builds `ClientResponse` without the `stream_writer` argument that
aiohttp 3.14 (a security release) requires (pnuckowski/aioresponses#289). Until a fixed
release exists, the tests hand it a response class that supplies a finished writer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aioresponses.core
from aiohttp import ClientResponse


class CompatClientResponse(ClientResponse):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)
        self._stream_writer = None  # the mocked request is already fully "sent"


def patch() -> None:
    aioresponses.core.ClientResponse = CompatClientResponse  # type: ignore[misc]
