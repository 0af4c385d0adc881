"""Load and validate providers.yaml into frozen records.

Every mistake is collected with its location (`providers[etherscan].endpoints[gas].interval`)
and reported at once; durations, JMESPath expressions and status maps are compiled here,
before any probe runs. Secrets are read from the env vars the file names, never from it.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.visitor
import yaml

from .model import Category, Outcome, ProbeKind



def _shipped_registry() -> Path:
    """Inside the installed package (wheels, the Docker image: setup.py copies it there),
    else at the top of the source tree (checkouts and editable installs)."""
    packaged = Path(__file__).with_name("providers.yaml")
    return packaged if packaged.exists() else Path(__file__).resolve().parent.parent / "providers.yaml"


DEFAULT_FILE = _shipped_registry()
_INTERPRETER = jmespath.visitor.TreeInterpreter()

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Outcomes a body rule or a status map may assign: the others are decided by transport.
_ASSIGNABLE = frozenset(
    {
        Outcome.RATE_LIMITED,
        Outcome.AUTH_ERROR,
        Outcome.CLIENT_ERROR,
        Outcome.SERVER_ERROR,
        Outcome.BAD_PAYLOAD,
        Outcome.SUCCESS,
    }
)


class ConfigError(Exception):
    """Every mistake found in one file, one line each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


class AuthType(StrEnum):
    NONE = "none"
    QUERY = "query"
    HEADER = "header"
    PATH = "path"  # the key replaces `{key}` in base_url or path


class Method(StrEnum):
    GET = "GET"
    POST = "POST"


class BodyFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


class TimeUnit(StrEnum):
    AUTO = "auto"  # seconds, or milliseconds when the number is too large for seconds
    S = "s"
    MS = "ms"
    ISO = "iso"
    HEX_S = "hex_s"  # JSON-RPC quantities such as a block's "timestamp": "0x6543..."


class ResetFormat(StrEnum):
    AUTO = "auto"
    EPOCH_S = "epoch_s"
    EPOCH_MS = "epoch_ms"
    DELTA_S = "delta_s"


@dataclass(frozen=True)
class ApiKey:
    env: str
    value: str = field(repr=False, compare=False)


@dataclass(frozen=True)
class Auth:
    type: AuthType = AuthType.NONE
    name: str = ""  # query parameter or header name
    prefix: str = ""  # e.g. "Bearer " or "Apikey "
    env: tuple[str, ...] = ()
    keys: tuple[ApiKey, ...] = field(default=(), repr=False)  # the env vars that are set
    optional: bool = False  # probe without a key when none is set

    @property
    def requires_key(self) -> bool:
        return self.type is not AuthType.NONE and not self.optional


@dataclass(frozen=True)
class Expression:
    """A compiled JMESPath expression that keeps its source for messages."""

    source: str
    compiled: Any = field(repr=False, compare=False)

    def search(self, data: Any) -> Any:
        # jmespath's own search() builds a TreeInterpreter per call, and each one is a
        # reference cycle: garbage the cyclic collector must find, in pauses that land
        # in probe latencies. One shared interpreter (it keeps no per-call state) avoids it.
        return _INTERPRETER.visit(self.compiled.parsed, data)


@dataclass(frozen=True)
class ErrorRule:
    when: Expression
    outcome: Outcome
    message: Expression | None = None


@dataclass(frozen=True)
class Freshness:
    path: Expression
    max_age: float
    unit: TimeUnit = TimeUnit.AUTO


@dataclass(frozen=True)
class ExtractedValue:
    name: str
    path: Expression
    scale: float = 1.0


@dataclass(frozen=True)
class QuotaHeaders:
    """Where a provider reports its own quota.

    Either limit/remaining/reset headers (`X-RateLimit-*`), or a `used` header with a
    configured `limit` and `window` (Binance `X-MBX-USED-WEIGHT-1M`).
    """

    scope: str
    limit: str | None = None
    remaining: str | None = None
    reset: str | None = None
    used: str | None = None
    limit_value: float | None = None
    window: float | None = None
    reset_format: ResetFormat = ResetFormat.AUTO


@dataclass(frozen=True)
class Budget:
    """Client-side budget: at most `requests` per fixed window of `per` seconds."""

    requests: int
    per: float


@dataclass(frozen=True)
class CircuitBreakerSpec:
    failure_threshold: int = 5
    reset_timeout: float = 60.0


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str = ""
    kind: ProbeKind = ProbeKind.HTTP
    method: Method = Method.GET
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    format: BodyFormat = BodyFormat.JSON
    expect_status: frozenset[int] = frozenset({200})
    status_outcomes: Mapping[int, Outcome] = field(default_factory=dict)
    assertions: tuple[Expression, ...] = ()
    error_rules: tuple[ErrorRule, ...] = ()
    freshness: Freshness | None = None
    values: tuple[ExtractedValue, ...] = ()
    interval: float = 60.0
    timeout: float = 10.0
    jitter: float = 6.0
    slow_threshold: float = 5.0
    max_body_bytes: int = 1_048_576
    fresh_connection: bool = False


@dataclass(frozen=True)
class Provider:
    name: str
    category: Category
    base_url: str
    endpoints: tuple[Endpoint, ...]
    auth: Auth = Auth()
    quota_headers: tuple[QuotaHeaders, ...] = ()
    budget: Budget | None = None
    circuit_breaker: CircuitBreakerSpec = CircuitBreakerSpec()
    description: str = ""
    docs_url: str = ""

    @functools.cached_property
    def _by_name(self) -> dict[str, Endpoint]:
        return {ep.name: ep for ep in self.endpoints}

    def endpoint(self, name: str) -> Endpoint:
        """By name, in O(1): the prober looks its endpoint up on every probe."""
        return self._by_name[name]


@dataclass(frozen=True)
class Config:
    providers: tuple[Provider, ...]
    source: str = "<memory>"
    warnings: tuple[str, ...] = ()

    @functools.cached_property
    def _by_name(self) -> dict[str, Provider]:
        return {p.name: p for p in self.providers}

    def provider(self, name: str) -> Provider:
        return self._by_name[name]

    def secrets(self) -> tuple[str, ...]:
        """Every key value in use, for redaction."""
        return tuple(k.value for p in self.providers for k in p.auth.keys if k.value)

    def with_providers(self, providers: tuple[Provider, ...]) -> Config:
        return replace(self, providers=providers)


# ---------------------------------------------------------------- parsing helpers


def parse_duration(text: Any) -> float:
    """`30s`, `5m`, `1h30m`, `250ms`, `1d` to seconds. Bare numbers are refused: a
    unit-less `60` is too easily read as minutes."""
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r} (use e.g. 30s, 5m, 1h)")
    s = text.strip()
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"invalid duration {text!r} (use e.g. 30s, 5m, 1h)")
    return total


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> Expression:
    return Expression(source, jmespath.compile(source))


def compile_jmespath(source: Any) -> Expression:
    """Compiled once per distinct source: a thousand endpoints with the same assertion share it."""
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"invalid JMESPath {source!r}: must be a non-empty string")
    try:
        return _compiled(source)
    except jmespath.exceptions.ParseError as e:
        raise ValueError(f"invalid JMESPath {source!r}: {e.msg} at column {e.lex_position}") from None
    except jmespath.exceptions.JMESPathError as e:
        raise ValueError(f"invalid JMESPath {source!r}: {str(e).splitlines()[0]}") from None


class _Errors:
    """Collects located errors so one run reports every mistake."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.warnings: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


@dataclass
class _Node:
    """A mapping from the file, its location, and the keys the schema allows."""

    data: Mapping[str, Any]
    where: str
    errors: _Errors

    def check_keys(self, allowed: set[str], required: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        for key in self.data:
            if key not in allowed:
                hint = _suggest(str(key), allowed)
                self.errors.add(f"{self.where}.{key}", f"unknown field{hint}")
        for key in sorted(required - set(self.data)):
            self.errors.add(f"{self.where}.{key}", "required field is missing")

    def get(self, key: str, conv: Callable[[Any], Any], default: Any = None) -> Any:
        if key not in self.data or self.data[key] is None:
            return default
        try:
            return conv(self.data[key])
        except (ValueError, TypeError) as e:
            self.errors.add(f"{self.where}.{key}", str(e))
            return default

    def child(self, key: str) -> _Node | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.errors.add(f"{self.where}.{key}", f"must be a mapping, got {_kind(value)}")
            return None
        return _Node(value, f"{self.where}.{key}", self.errors)

    def items_of(self, key: str) -> Iterator[tuple[int, Any]]:
        value = self.data.get(key)
        if value is None:
            return
        if not isinstance(value, list):
            self.errors.add(f"{self.where}.{key}", f"must be a list, got {_kind(value)}")
            return
        yield from enumerate(value)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


def _suggest(key: str, allowed: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _string(value: Any) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError(f"must be a string, got {_kind(value)}")
    return str(value)


def _name(value: Any) -> str:
    s = _string(value)
    if not _NAME.match(s):
        raise ValueError(f"invalid name {s!r}: use lower case letters, digits and _")
    return s


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return value


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"must be a positive number, got {value!r}")
    return float(value)


def _scale(value: Any) -> float:
    """A positive factor; YAML 1.1 reads `1e-9` (no dot) as a string, so accept that too."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"must be a positive number, got {value!r}") from None
    return _positive_number(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than 0, got {value!r}")
    return seconds


def _enum(enum: type[StrEnum]) -> Callable[[Any], Any]:
    def conv(value: Any) -> Any:
        try:
            return enum(value)
        except ValueError:
            choices = ", ".join(e.value for e in enum)  # type: ignore[attr-defined]
            raise ValueError(f"invalid value {value!r} (one of: {choices})") from None

    return conv


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping, got {_kind(value)}")
    return {str(k): _string(v) for k, v in value.items()}


def _status_code(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValueError(f"invalid HTTP status {value!r} (100 to 599)")
    return value


def _status_set(value: Any) -> frozenset[int]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("must list at least one status code")
    return frozenset(_status_code(v) for v in items)


def _assignable_outcome(value: Any) -> Outcome:
    try:
        outcome = Outcome(value)
    except ValueError:
        outcome = None
    if outcome not in _ASSIGNABLE:
        choices = ", ".join(sorted(o.value for o in _ASSIGNABLE))
        raise ValueError(f"invalid outcome {value!r} (one of: {choices})")
    return outcome


def _status_outcomes(value: Any) -> dict[int, Outcome]:
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping of status code to outcome, got {_kind(value)}")
    out: dict[int, Outcome] = {}
    for code, outcome in value.items():
        code_int = int(code) if isinstance(code, str) and code.isdigit() else code
        out[_status_code(code_int)] = _assignable_outcome(outcome)
    return out


def _jitter(value: Any) -> tuple[str, float]:
    """`10%` of the interval, or a duration."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            pct = float(value.strip()[:-1])
        except ValueError:
            raise ValueError(f"invalid jitter {value!r} (a duration like 5s, or a percentage like 10%)") from None
        if not 0 <= pct <= 100:
            raise ValueError(f"invalid jitter {value!r}: percentage must be 0 to 100")
        return ("pct", pct / 100)
    try:
        return ("abs", parse_duration(value))
    except ValueError:
        raise ValueError(f"invalid jitter {value!r} (a duration like 5s, or a percentage like 10%)") from None


# ---------------------------------------------------------------- schema

_TIMING_KEYS = {"interval", "timeout", "jitter", "slow_threshold", "max_body_bytes", "fresh_connection"}
_DEFAULT_KEYS = _TIMING_KEYS | {"expect_status", "circuit_breaker"}
_PROVIDER_KEYS = _TIMING_KEYS | {
    "name",
    "category",
    "base_url",
    "auth",
    "endpoints",
    "rate_limit",
    "circuit_breaker",
    "description",
    "docs_url",
    "expect_status",
    "status_outcomes",
    "error_rules",
}
_ENDPOINT_KEYS = _TIMING_KEYS | {
    "name",
    "path",
    "method",
    "params",
    "headers",
    "json",
    "format",
    "expect_status",
    "status_outcomes",
    "assertions",
    "error_rules",
    "freshness",
    "values",
}


@dataclass(frozen=True)
class _Timing:
    interval: float = 60.0
    timeout: float = 10.0
    jitter: tuple[str, float] = ("pct", 0.1)
    slow_threshold: float | None = None
    max_body_bytes: int = 1_048_576
    fresh_connection: bool = False
    expect_status: frozenset[int] = frozenset({200})


def _timing(node: _Node, parent: _Timing) -> _Timing:
    return _Timing(
        interval=node.get("interval", _positive_duration, parent.interval),
        timeout=node.get("timeout", _positive_duration, parent.timeout),
        jitter=node.get("jitter", _jitter, parent.jitter),
        slow_threshold=node.get("slow_threshold", _positive_duration, parent.slow_threshold),
        max_body_bytes=node.get("max_body_bytes", _positive_int, parent.max_body_bytes),
        fresh_connection=node.get("fresh_connection", _bool, parent.fresh_connection),
        expect_status=node.get("expect_status", _status_set, parent.expect_status),
    )


def _circuit_breaker(node: _Node | None, parent: CircuitBreakerSpec) -> CircuitBreakerSpec:
    if node is None:
        return parent
    node.check_keys({"failure_threshold", "reset_timeout"})
    return CircuitBreakerSpec(
        failure_threshold=node.get("failure_threshold", _positive_int, parent.failure_threshold),
        reset_timeout=node.get("reset_timeout", _positive_duration, parent.reset_timeout),
    )


def _auth(node: _Node | None, env: Mapping[str, str], provider: str, errors: _Errors) -> Auth:
    if node is None:
        return Auth()
    node.check_keys({"type", "name", "prefix", "env", "optional"}, {"type"})
    auth_type = node.get("type", _enum(AuthType), AuthType.NONE)
    names = node.data.get("env", [])
    if isinstance(names, str):
        names = [names]
    env_names: list[str] = []
    if not isinstance(names, list):
        errors.add(f"{node.where}.env", f"must be an env var name or a list of them, got {_kind(names)}")
    else:
        for i, n in enumerate(names):
            if not isinstance(n, str) or not _ENV_NAME.match(n):
                errors.add(f"{node.where}.env[{i}]", f"invalid env var name {n!r}")
            else:
                env_names.append(n)
    name = node.get("name", _string, "")
    if auth_type in (AuthType.QUERY, AuthType.HEADER) and not name:
        errors.add(f"{node.where}.name", f"required for auth type '{auth_type}'")
    if auth_type is not AuthType.NONE and not names:
        errors.add(f"{node.where}.env", f"required for auth type '{auth_type}'")
    keys = tuple(k for n in env_names if (k := _read_key(n, env)) is not None)
    optional = node.get("optional", _bool, False)
    if auth_type is not AuthType.NONE and not keys:
        how = "it will be probed without a key" if optional else "its probes will fail with auth_error"
        errors.warnings.append(f"providers[{provider}].auth.env: none of {', '.join(env_names)} is set; {how}")
    return Auth(auth_type, name, node.get("prefix", _string, ""), tuple(env_names), keys, optional)


def _read_key(name: str, env: Mapping[str, str]) -> ApiKey | None:
    """A key from `NAME`, or from the file named by `NAME_FILE` (Docker secrets)."""
    value = env.get(name, "").strip()
    if not value and env.get(f"{name}_FILE"):
        try:
            value = Path(env[f"{name}_FILE"]).read_text().strip()
        except OSError:
            value = ""
    return ApiKey(name, value) if value else None


def _quota_headers(node: _Node, errors: _Errors) -> tuple[QuotaHeaders, ...]:
    out: list[QuotaHeaders] = []
    for i, item in node.items_of("headers"):
        where = f"{node.where}.headers[{i}]"
        if not isinstance(item, Mapping):
            errors.add(where, f"must be a mapping, got {_kind(item)}")
            continue
        n = _Node(item, where, errors)
        n.check_keys({"scope", "limit", "remaining", "reset", "used", "limit_value", "window", "reset_format"}, {"scope"})
        spec = QuotaHeaders(
            scope=n.get("scope", _name, "default"),
            limit=n.get("limit", _string),
            remaining=n.get("remaining", _string),
            reset=n.get("reset", _string),
            used=n.get("used", _string),
            limit_value=n.get("limit_value", _positive_number),
            window=n.get("window", _positive_duration),
            reset_format=n.get("reset_format", _enum(ResetFormat), ResetFormat.AUTO),
        )
        if spec.used and spec.limit_value is None and spec.limit is None:
            errors.add(f"{where}.limit_value", "required with 'used' (the quota that header counts against)")
        if not (spec.used or spec.remaining):
            errors.add(where, "needs a 'remaining' or a 'used' header")
        if any(o.scope == spec.scope for o in out):
            errors.add(f"{where}.scope", f"duplicate scope {spec.scope!r}: each quota needs its own")
        out.append(spec)
    return tuple(out)


def _budget(node: _Node | None) -> Budget | None:
    if node is None:
        return None
    node.check_keys({"requests", "per"}, {"requests", "per"})
    requests = node.get("requests", _positive_int)
    per = node.get("per", _positive_duration)
    return Budget(requests, per) if requests and per else None


def _expressions(node: _Node, key: str) -> tuple[Expression, ...]:
    out = []
    for i, src in node.items_of(key):
        try:
            out.append(compile_jmespath(src))
        except ValueError as e:
            node.errors.add(f"{node.where}.{key}[{i}]", str(e))
    return tuple(out)


def _error_rules(node: _Node) -> tuple[ErrorRule, ...]:
    out = []
    for i, item in node.items_of("error_rules"):
        where = f"{node.where}.error_rules[{i}]"
        if not isinstance(item, Mapping):
            node.errors.add(where, f"must be a mapping, got {_kind(item)}")
            continue
        n = _Node(item, where, node.errors)
        n.check_keys({"when", "outcome", "message"}, {"when", "outcome"})
        when = n.get("when", compile_jmespath)
        outcome = n.get("outcome", _assignable_outcome)
        message = n.get("message", compile_jmespath)
        if when and outcome:
            out.append(ErrorRule(when, outcome, message))
    return tuple(out)


def _freshness(node: _Node | None) -> Freshness | None:
    if node is None:
        return None
    node.check_keys({"path", "max_age", "unit"}, {"path", "max_age"})
    path = node.get("path", compile_jmespath)
    max_age = node.get("max_age", _positive_duration)
    unit = node.get("unit", _enum(TimeUnit), TimeUnit.AUTO)
    return Freshness(path, max_age, unit) if path and max_age else None


def _values(node: _Node) -> tuple[ExtractedValue, ...]:
    out: list[ExtractedValue] = []
    seen: set[str] = set()
    for i, item in node.items_of("values"):
        where = f"{node.where}.values[{i}]"
        if not isinstance(item, Mapping):
            node.errors.add(where, f"must be a mapping, got {_kind(item)}")
            continue
        n = _Node(item, where, node.errors)
        n.check_keys({"name", "path", "scale"}, {"name", "path"})
        name = n.get("name", _name)
        path = n.get("path", compile_jmespath)
        scale = n.get("scale", _scale, 1.0)
        if name in seen:
            node.errors.add(f"{where}.name", f"duplicate value name {name!r}")
        if name and path:
            seen.add(name)
            out.append(ExtractedValue(name, path, scale))
    return tuple(out)


@dataclass(frozen=True)
class _Shared:
    """Body rules and status maps a provider gives all its endpoints (endpoint's first)."""

    error_rules: tuple[ErrorRule, ...] = ()
    status_outcomes: Mapping[int, Outcome] = field(default_factory=dict)


def _endpoint(node: _Node, parent: _Timing, shared: _Shared = _Shared()) -> Endpoint | None:
    node.check_keys(_ENDPOINT_KEYS, {"name"})
    timing = _timing(node, parent)
    name = node.get("name", _name)
    method = node.get("method", _enum(Method), Method.GET)
    body = node.data.get("json")
    if body is not None and method is not Method.POST:
        node.errors.add(f"{node.where}.json", "a JSON body needs method: POST")
    if timing.timeout > timing.interval:
        node.errors.add(f"{node.where}.timeout", f"timeout ({timing.timeout:g}s) is longer than the interval ({timing.interval:g}s)")
    jitter_kind, jitter_value = timing.jitter
    jitter = timing.interval * jitter_value if jitter_kind == "pct" else jitter_value
    if jitter >= timing.interval:
        node.errors.add(f"{node.where}.jitter", f"jitter ({jitter:g}s) must be shorter than the interval ({timing.interval:g}s)")
    ep = Endpoint(
        name=name or "",
        path=node.get("path", _string, ""),
        method=method,
        params=node.get("params", _str_map, {}),
        headers=node.get("headers", _str_map, {}),
        json=body,
        format=node.get("format", _enum(BodyFormat), BodyFormat.JSON),
        expect_status=timing.expect_status,
        status_outcomes={**shared.status_outcomes, **node.get("status_outcomes", _status_outcomes, {})},
        assertions=_expressions(node, "assertions"),
        error_rules=_error_rules(node) + (shared.error_rules if node.data.get("format") != BodyFormat.TEXT.value else ()),
        freshness=_freshness(node.child("freshness")),
        values=_values(node),
        interval=timing.interval,
        timeout=timing.timeout,
        jitter=jitter,
        slow_threshold=timing.slow_threshold or timing.timeout / 2,
        max_body_bytes=timing.max_body_bytes,
        fresh_connection=timing.fresh_connection,
    )
    if ep.format is BodyFormat.TEXT and (ep.assertions or ep.error_rules or ep.freshness):
        node.errors.add(f"{node.where}.format", "assertions, error_rules and freshness need format: json")
    return ep if name else None


def _provider(node: _Node, defaults: _Timing, breaker: CircuitBreakerSpec, env: Mapping[str, str]) -> Provider | None:
    node.check_keys(_PROVIDER_KEYS, {"name", "category", "base_url", "endpoints"})
    timing = _timing(node, defaults)
    name = node.get("name", _name)
    category = node.get("category", _enum(Category))
    base_url = node.get("base_url", _string)
    if base_url and not re.match(r"^https?://[^/\s]+", base_url):
        node.errors.add(f"{node.where}.base_url", f"must be an http(s) URL, got {base_url!r}")
    auth = _auth(node.child("auth"), env, name or node.where, node.errors)
    if auth.type is AuthType.PATH and base_url and "{key}" not in base_url and not any(
        "{key}" in str(e.get("path", "")) for _, e in node.items_of("endpoints") if isinstance(e, Mapping)
    ):
        node.errors.add(f"{node.where}.auth.type", "auth type 'path' needs a {key} placeholder in base_url or path")
    quota: tuple[QuotaHeaders, ...] = ()
    budget = None
    if (rl := node.child("rate_limit")) is not None:
        rl.check_keys({"headers", "budget"})
        quota = _quota_headers(rl, node.errors)
        budget = _budget(rl.child("budget"))
    shared = _Shared(_error_rules(node), node.get("status_outcomes", _status_outcomes, {}))
    endpoints: list[Endpoint] = []
    seen: set[str] = set()
    for i, item in node.items_of("endpoints"):
        label = item.get("name") if isinstance(item, Mapping) else None
        where = f"{node.where}.endpoints[{label or i}]"
        if not isinstance(item, Mapping):
            node.errors.add(where, f"must be a mapping, got {_kind(item)}")
            continue
        ep = _endpoint(_Node(item, where, node.errors), timing, shared)
        if ep is None:
            continue
        if ep.name in seen:
            node.errors.add(f"{where}.name", f"duplicate endpoint name {ep.name!r}")
        seen.add(ep.name)
        endpoints.append(ep)
    if "endpoints" in node.data and not endpoints and not node.errors.items:
        node.errors.add(f"{node.where}.endpoints", "must list at least one endpoint")
    if budget:
        _warn_budget(name or "", budget, endpoints, node.errors)
    if not (name and category and base_url):
        return None
    return Provider(
        name=name,
        category=category,
        base_url=base_url.rstrip("/"),
        endpoints=tuple(endpoints),
        auth=auth,
        quota_headers=quota,
        budget=budget,
        circuit_breaker=_circuit_breaker(node.child("circuit_breaker"), breaker),
        description=node.get("description", _string, ""),
        docs_url=node.get("docs_url", _string, ""),
    )


def _warn_budget(provider: str, budget: Budget, endpoints: list[Endpoint], errors: _Errors) -> None:
    planned = sum(budget.per / ep.interval for ep in endpoints)
    if planned > budget.requests:
        errors.warnings.append(
            f"providers[{provider}].rate_limit.budget: the schedule plans {planned:.0f} requests per "
            f"{budget.per:g}s but the budget allows {budget.requests}; some probes will be budget_exhausted"
        )


def parse_config(data: Any, source: str = "<memory>", env: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed YAML document; raise ConfigError listing every mistake."""
    env = os.environ if env is None else env
    errors = _Errors()
    if not isinstance(data, Mapping):
        raise ConfigError([f"{source}: the file must be a mapping with a 'providers' list, got {_kind(data)}"])
    root = _Node(data, "", errors)
    for key in data:
        if key not in {"defaults", "providers"}:
            errors.add(str(key), f"unknown field{_suggest(str(key), {'defaults', 'providers'})}")
    if "providers" not in data:
        errors.add("providers", "required field is missing")
    defaults = _Timing()
    breaker = CircuitBreakerSpec()
    if (d := root.child("defaults")) is not None:
        d.where = "defaults"
        d.check_keys(_DEFAULT_KEYS)
        defaults = _timing(d, defaults)
        breaker = _circuit_breaker(d.child("circuit_breaker"), breaker)
    providers: list[Provider] = []
    names: set[str] = set()
    for i, item in root.items_of("providers"):
        label = item.get("name") if isinstance(item, Mapping) else None
        where = f"providers[{label or i}]"
        if not isinstance(item, Mapping):
            errors.add(where, f"must be a mapping, got {_kind(item)}")
            continue
        if isinstance(label, str) and label in names:
            errors.add(f"{where}.name", f"duplicate provider name {label!r}")
        names.add(label)
        p = _provider(_Node(item, where, errors), defaults, breaker, env)
        if p is not None:
            providers.append(p)
    if errors.items:
        raise ConfigError([f"{source}: {e.lstrip('.')}" for e in errors.items])
    return Config(tuple(providers), source, tuple(errors.warnings))


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    path = Path(path) if path else DEFAULT_FILE
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError([f"{path}:{at}: {problem}"]) from None
    return parse_config(data, str(path), env)
