"""Fault specs for the simulator: the one place a fault is defined and validated."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any

import yarl

from .hostile import DEEP_JSON_LEVELS

BODY_ERRORS = ("rate_limit", "auth", "generic")
MAX_HANG_SECONDS = 300.0
MAX_LATENCY_MS = 300_000
MAX_OVERSIZED_BYTES = 64 * 1024 * 1024
MAX_DEEP_JSON_LEVELS = 1_000_000  # 2 MB of brackets
REDIRECT_CODES = (301, 302, 303, 307, 308)
MAINTENANCE_MODES = ("scheduled", "ongoing", "over")  # what a status source announces
MAX_REDIRECT_URL = 2000


@dataclass(frozen=True)
class RateLimitFault:
    retry_after: float = 30.0


@dataclass(frozen=True)
class RedirectFault:
    """Answer with a redirect to `to` followed by the request's path and query, as a
    provider that moved its API to another host does."""

    to: str
    status: int = 302


@dataclass(frozen=True)
class FaultSpec:
    """What to do to the requests of one target.

    `provider` is a provider name or "*"; `endpoint` narrows it to one endpoint (None:
    all endpoints). `count` applies the fault to the next N matching requests only.
    """

    provider: str
    endpoint: str | None = None
    latency_ms: float = 0.0
    status: int | None = None
    hang: bool = False
    disconnect: bool = False
    rate_limit: RateLimitFault | None = None
    body_error: str | None = None
    garbage: bool = False
    truncated: bool = False
    oversized_bytes: int | None = None
    gzip_bomb: bool = False
    deep_json: int | None = None
    slow_body: bool = False
    redirect: RedirectFault | None = None
    stale_seconds: float = 0.0
    invalid_keys: tuple[str, ...] | str = field(default=(), repr=False)
    quota_remaining: int | None = None
    count: int | None = None
    maintenance: str | None = None  # status sources: a window scheduled, ongoing or over
    frozen: bool = False  # prices stop moving while timestamps advance (a stuck cache)

    @property
    def target(self) -> tuple[str, str | None]:
        return (self.provider, self.endpoint)

    @property
    def specificity(self) -> int:
        """Endpoint fault > provider-wide fault > "*" endpoint > "*"."""
        return (0 if self.provider == "*" else 2) + (1 if self.endpoint else 0)

    def matches(self, provider: str, endpoint: str) -> bool:
        return self.provider in ("*", provider) and self.endpoint in (None, endpoint)

    def key_is_invalid(self, key: str) -> bool:
        if self.invalid_keys == "all":
            return True
        return key in self.invalid_keys

    @classmethod
    def from_json(cls, data: Any) -> FaultSpec:
        """Validate a control-API body; ValueError names the offending field."""
        if not isinstance(data, dict):
            raise ValueError("body: must be a JSON object")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ValueError(f"{key}: unknown field")
        if "provider" not in data:
            raise ValueError("provider: required field is missing")
        kw: dict[str, Any] = {"provider": _name("provider", data["provider"], allow_star=True)}
        if data.get("endpoint") is not None:
            kw["endpoint"] = _name("endpoint", data["endpoint"])
        if "latency_ms" in data:
            kw["latency_ms"] = _number("latency_ms", data["latency_ms"], 0, MAX_LATENCY_MS)
        if data.get("status") is not None:
            status = data["status"]
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise ValueError("status: must be an HTTP status code (100 to 599)")
            kw["status"] = status
        for flag in ("hang", "disconnect", "garbage", "truncated", "gzip_bomb", "slow_body", "frozen"):
            if flag in data:
                if not isinstance(data[flag], bool):
                    raise ValueError(f"{flag}: must be true or false")
                kw[flag] = data[flag]
        if data.get("rate_limit") is not None:
            rl = data["rate_limit"]
            if rl is True:
                rl = {}
            if not isinstance(rl, dict):
                raise ValueError('rate_limit: must be an object like {"retry_after": 30}')
            for key in rl:
                if key != "retry_after":
                    raise ValueError(f"rate_limit.{key}: unknown field")
            kw["rate_limit"] = RateLimitFault(_number("rate_limit.retry_after", rl.get("retry_after", 30), 0, 86400))
        if data.get("body_error") is not None:
            if data["body_error"] not in BODY_ERRORS:
                raise ValueError(f"body_error: must be one of {', '.join(BODY_ERRORS)}")
            kw["body_error"] = data["body_error"]
        if data.get("oversized_bytes") is not None:
            kw["oversized_bytes"] = _int("oversized_bytes", data["oversized_bytes"], 1, MAX_OVERSIZED_BYTES)
        levels = data.get("deep_json")
        if levels is not None and levels is not False:  # `true` asks for the default depth
            kw["deep_json"] = _int("deep_json", DEEP_JSON_LEVELS if levels is True else levels, 1, MAX_DEEP_JSON_LEVELS)
        if data.get("redirect") is not None:
            kw["redirect"] = _redirect(data["redirect"])
        if "stale_seconds" in data:
            kw["stale_seconds"] = _number("stale_seconds", data["stale_seconds"], 0, 10 * 365 * 86400)
        if data.get("invalid_keys") is not None:
            keys = data["invalid_keys"]
            if keys == "all":
                kw["invalid_keys"] = "all"
            elif isinstance(keys, list) and all(isinstance(k, str) and k for k in keys):
                kw["invalid_keys"] = tuple(keys)
            else:
                raise ValueError('invalid_keys: must be "all" or a list of non-empty strings')
        if data.get("quota_remaining") is not None:
            kw["quota_remaining"] = _int("quota_remaining", data["quota_remaining"], 0, 10**12)
        if data.get("count") is not None:
            kw["count"] = _int("count", data["count"], 1, 10**9)
        if data.get("maintenance") is not None:
            if data["maintenance"] not in MAINTENANCE_MODES:
                raise ValueError(f"maintenance: must be one of {', '.join(MAINTENANCE_MODES)}")
            kw["maintenance"] = data["maintenance"]
        return cls(**kw)

    def to_json(self) -> dict[str, Any]:
        """A JSON view for the control API; key values are masked, never echoed."""
        out: dict[str, Any] = {"provider": self.provider}
        if self.endpoint:
            out["endpoint"] = self.endpoint
        for f in fields(self):
            if f.name in ("provider", "endpoint"):
                continue
            value = getattr(self, f.name)
            if value == f.default:
                continue
            if f.name == "rate_limit":
                value = {"retry_after": value.retry_after}
            elif f.name == "redirect":
                value = {"to": value.to, "status": value.status}
            elif f.name == "invalid_keys":
                value = "all" if value == "all" else ["***"] * len(value)
            out[f.name] = value
        return out


def _redirect(value: Any) -> RedirectFault:
    if isinstance(value, str):
        value = {"to": value}
    if not isinstance(value, dict):
        raise ValueError('redirect: must be a URL or an object like {"to": "http://127.0.0.1:9999", "status": 301}')
    for key in value:
        if key not in ("to", "status"):
            raise ValueError(f"redirect.{key}: unknown field")
    to = value.get("to")
    if not isinstance(to, str) or len(to) > MAX_REDIRECT_URL:
        raise ValueError(f"redirect.to: must be an http(s) URL of at most {MAX_REDIRECT_URL} characters")
    try:
        url = yarl.URL(to)
    except ValueError:
        raise ValueError("redirect.to: must be an http(s) URL") from None
    if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
        raise ValueError("redirect.to: must be an http(s) URL with a host, and no query or fragment (the request's path and query are appended)")
    status = value.get("status", 302)
    if isinstance(status, bool) or not isinstance(status, int) or status not in REDIRECT_CODES:
        raise ValueError(f"redirect.status: must be one of {', '.join(map(str, REDIRECT_CODES))}")
    return RedirectFault(to.rstrip("/"), status)


def _name(where: str, value: Any, allow_star: bool = False) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: must be a non-empty string")
    if allow_star and value == "*":
        return value
    if not all(c.isalnum() or c == "_" for c in value):
        raise ValueError(f"{where}: invalid name {value!r}")
    return value


def _number(where: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{where}: must be a number from {low:g} to {high:g}")
    return float(value)


def _int(where: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{where}: must be an integer from {low} to {high}")
    return value


@dataclass(slots=True)
class _Active:
    spec: FaultSpec
    remaining: int | None  # requests left for a count-limited fault


class FaultStore:
    """Active faults, one per target; picks the most specific one for a request."""

    def __init__(self) -> None:
        self._faults: dict[tuple[str, str | None], _Active] = {}
        self._lock = threading.Lock()

    def set(self, spec: FaultSpec) -> None:
        with self._lock:
            self._faults[spec.target] = _Active(spec, spec.count)

    def clear(self, provider: str | None = None, endpoint: str | None = None) -> int:
        with self._lock:
            doomed = [t for t in self._faults if (provider is None or t[0] == provider) and (endpoint is None or t[1] == endpoint)]
            for t in doomed:
                del self._faults[t]
            return len(doomed)

    def active(self) -> list[FaultSpec]:
        with self._lock:
            return [a.spec for a in self._faults.values()]

    def take(self, provider: str, endpoint: str) -> FaultSpec | None:
        """The fault for this request, counting it against `count`."""
        with self._lock:
            best: _Active | None = None
            for active in self._faults.values():
                if active.spec.matches(provider, endpoint) and (best is None or active.spec.specificity > best.spec.specificity):
                    best = active
            if best is None:
                return None
            if best.remaining is not None:
                best.remaining -= 1
                if best.remaining <= 0:
                    del self._faults[best.spec.target]
            return best.spec
