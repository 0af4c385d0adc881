"""Probe kinds: one module per kind, one signature, one table (as blackbox_exporter's
`prober/` does). A kind is `async def probe(ctx, spec) -> ProbeResult`, never raises,
and reports every failure as an outcome; a kind whose endpoints carry API keys also
tests one key on demand (`probe_key`).

Adding a kind: a module here, a `ProbeKind` member, a row in `KINDS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from ..config import ApiKey
from ..model import ProbeKind, ProbeResult
from . import chain_head, http
from .context import ProbeContext, ProbeSpec

ProbeFn = Callable[[ProbeContext, ProbeSpec], Awaitable[ProbeResult]]
KeyProbeFn = Callable[[ProbeContext, ProbeSpec, ApiKey], Awaitable[ProbeResult]]


@dataclass(frozen=True)
class Kind:
    probe: ProbeFn
    probe_key: KeyProbeFn | None = None


KINDS: Mapping[ProbeKind, Kind] = {
    ProbeKind.HTTP: Kind(http.probe, http.probe_key),
    ProbeKind.CHAIN_HEAD: Kind(chain_head.probe),
}

__all__ = ["KINDS", "Kind", "ProbeContext", "ProbeSpec"]
