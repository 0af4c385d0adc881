"""A small FastAPI app with exporter.traffic: one line (`instrument`).

pip install fastapi uvicorn
TRAFFIC_API_KEY=change-me uvicorn examples.fastapi_app:app --port 8000
curl localhost:8000/items/7; curl localhost:8000/metrics
curl -H "X-API-Key: change-me" localhost:8000/dashboard
"""

from __future__ import annotations

import os

from fastapi import FastAPI, HTTPException

from exporter.traffic import ClientAddress, instrument


def make_app() -> FastAPI:
    """The app without the middleware (bench/traffic.py instruments it several ways)."""
    app = FastAPI(title="example API")

    @app.get("/items")
    async def items() -> list[dict[str, int]]:
        return [{"id": 1}, {"id": 2}]

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/orders", status_code=201)
    async def orders() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/boom")
    async def boom() -> None:
        raise HTTPException(503, "down for the demo")

    return app


app = make_app()
# The one line. Client addresses truncated to /24 (IPv4) and /48 (IPv6) in the analytics.
traffic = instrument(app, api_key=os.environ.get("TRAFFIC_API_KEY"), client_address=ClientAddress.TRUNCATE)
