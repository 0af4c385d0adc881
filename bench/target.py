"""Fallback benchmark target when nginx with the echo module is not installed: answers
`{"ok": true}` on /delay/<n> after 50 ms. Less exact than nginx (its own event loop adds
jitter), which is why run.py prefers nginx and says which target it used."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

DELAY = 0.050


async def delay(request: web.Request) -> web.Response:
    await asyncio.sleep(DELAY)
    return web.json_response({"ok": True})


def main() -> None:
    port = int(sys.argv[1])
    app = web.Application()
    app.router.add_get("/delay/{n}", delay)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
