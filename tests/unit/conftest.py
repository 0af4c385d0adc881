"""Fixtures shared by the simulator and registry tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from exporter.config import Config, load_config
from exporter.simulator import Simulator

StartSim = Callable[..., Awaitable[Simulator]]


@pytest.fixture(scope="module")
def config() -> Config:
    """The shipped registry, with no key env vars set."""
    return load_config(env={})


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as c:
        yield c


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    """Start simulators on free loopback ports; all are stopped after the test."""
    started: list[Simulator] = []

    async def start(config: Config, **kwargs: Any) -> Simulator:
        sim = Simulator(config, **kwargs)
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()
