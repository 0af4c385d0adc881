"""The narrow interface the web layer has to the running exporter.

The composition root (app.py) implements it; the server and the JSON API depend on this
`Protocol` and on the store (state.py), never on the root or a probe kind. Everything
that acts (reload, trigger, key tests) happens behind it, in the root."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..chains import Chains
from ..config import Config
from ..model import JobInfo, KeyTest, ProbeResult

Listener = Callable[[ProbeResult], None]


class NotRunning(Exception):
    """The exporter has not started (or has stopped): nothing can be probed now."""


class ExporterControl(Protocol):
    @property
    def config(self) -> Config:
        """The running config (the last good one)."""
        ...

    def reload(self) -> list[str]:
        """Reload the file; on errors keep the running config. Returns the errors."""
        ...

    def trigger(self, provider: str | None = None, endpoint: str | None = None) -> list[str]:
        """Run the matching scheduled jobs now; the ids of the jobs triggered."""
        ...

    def jobs(self) -> list[JobInfo]: ...

    @property
    def chains(self) -> Chains:
        """The chain heads' one owner (chain_head probes record into it); read only here."""
        ...

    async def test_keys(self, provider: str, endpoint: str) -> list[KeyTest]:
        """Probe `endpoint` once per configured key of `provider` (known names) and record
        what it learnt about each key. Raises NotRunning before start."""
        ...

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every published ProbeResult; returns the unsubscribe."""
        ...
