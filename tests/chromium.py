"""Headless Chromium driven over the Chrome DevTools Protocol, for browser tests.

Debian's `chromium` (installed by .ci/run) runs with --remote-debugging-port=0 in a
throw-away profile; the test talks to one page target over aiohttp's WebSocket client.
What a page does is recorded as it happens: every request it sends
(Network.requestWillBeSent), every console error, uncaught exception and browser log
error (a failed load, a Content-Security-Policy refusal), so a test can fail on any of
them. Nothing here waits on wall-clock sleeps: it waits for the browser's own events,
under a guard timeout."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from tests.binaries import require_binary

GUARD = 30.0  # seconds: only so that a stuck browser fails the test instead of hanging it
# Quiet: no update checks, sync, field trials or other calls home while the test runs.
FLAGS = (
    "--headless=new",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
    "--metrics-recording-only",
    "--disable-gpu",
    "--mute-audio",
    "--hide-scrollbars",
)


@dataclass
class PageRecord:
    """What the page did since the last `navigate`."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def off_loopback(self) -> list[str]:
        """Requests to anywhere but 127.0.0.1 (`data:` URLs send nothing)."""
        return [url for url in self.requests if not url.startswith("data:") and urlsplit(url).hostname != "127.0.0.1"]


class Page:
    """One page target: `call` a CDP method, `wait_for` an event."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.record = PageRecord()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._any = asyncio.Event()  # set at every event: `until` rechecks then
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data:
                fut = self._pending.pop(data["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
                continue
            self._on_event(data.get("method", ""), data.get("params", {}))
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("the browser closed the DevTools connection"))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Network.requestWillBeSent":
            self.record.requests.append(params["request"]["url"])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.record.errors.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            self.record.errors.append("exception: " + str(params.get("exceptionDetails", {}).get("text", "")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.record.errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
        if method in self._events:
            self._events[method].set()
        self._any.set()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        async with asyncio.timeout(GUARD):
            answer = await fut
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return dict(answer.get("result", {}))

    def expect(self, event: str) -> asyncio.Event:
        """An event to wait for: ask before the action that causes it."""
        self._events[event] = asyncio.Event()
        return self._events[event]

    async def navigate(self, url: str, until: str = "Page.loadEventFired") -> None:
        self.record = PageRecord()
        done = self.expect(until)
        await self.call("Page.navigate", url=url)
        async with asyncio.timeout(GUARD):
            await done.wait()

    async def until(self, check: Callable[[PageRecord], bool]) -> None:
        """Wait for the page's events to make `check(record)` true."""
        async with asyncio.timeout(GUARD):
            while not check(self.record):
                self._any.clear()
                await self._any.wait()

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def viewport(self, width: int, height: int, scale: float = 1, mobile: bool = False) -> None:
        await self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=scale, mobile=mobile)

    async def screenshot(self) -> bytes:
        return base64.b64decode((await self.call("Page.captureScreenshot", format="png"))["data"])

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.ws.close()


_LISTENING = re.compile(rb"DevTools listening on (ws://127\.0\.0\.1:\d+/\S+)")


async def _devtools_url(stderr: asyncio.StreamReader, seen: deque[bytes]) -> str:
    """Chromium says where it listens on stderr once it does."""
    while line := await stderr.readline():
        seen.append(line)
        if m := _LISTENING.search(line):
            return m.group(1).decode()
    raise RuntimeError("chromium exited before listening: " + b"".join(seen).decode(errors="replace")[-2000:])


async def _drain(stderr: asyncio.StreamReader, seen: deque[bytes]) -> None:
    """Keep reading its stderr (a full pipe would stall the browser); the tail is kept."""
    while line := await stderr.readline():
        seen.append(line)


@contextlib.asynccontextmanager
async def chromium_page(http: aiohttp.ClientSession) -> AsyncIterator[Page]:
    """A fresh headless Chromium and one page with Network, Runtime, Log and Page events on."""
    binary = require_binary("chromium", hint="Debian: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        # The sandbox needs user namespaces, which root in a container does not get.
        args = [*FLAGS, f"--user-data-dir={profile}", *(["--no-sandbox"] if os.geteuid() == 0 else []), "about:blank"]
        proc = await asyncio.create_subprocess_exec(
            binary, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        assert proc.stderr is not None
        seen: deque[bytes] = deque(maxlen=50)
        drain: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(GUARD):
                browser = await _devtools_url(proc.stderr, seen)
            drain = asyncio.create_task(_drain(proc.stderr, seen))
            port = urlsplit(browser).port
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            target = next(t for t in targets if t.get("type") == "page")
            ws = await http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
            page = Page(ws)
            for domain in ("Network", "Runtime", "Log", "Page"):
                await page.call(f"{domain}.enable")
            try:
                yield page
            finally:
                await page.close()
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    async with asyncio.timeout(10):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            if drain is not None:
                drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drain
