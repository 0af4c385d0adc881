"""Load and validate providers.yaml into frozen records.

Three steps, each with one job:

- load: bytes to a YAML document within bounds (size, nesting, integer length), so a
  broken or hostile file gives a located error line, never a traceback;
- validate: the pydantic models of `exporter.config_file` check each field on its own
  (types, closed sets, patterns, bounds, unknown keys);
- compile: turn the validated file into the frozen records below, applying the
  `defaults` -> provider -> endpoint inheritance and checking what involves several
  fields (timeout against interval, what an auth type needs, duplicate names).

Every mistake is collected with its location (`providers[etherscan].endpoints[gas].interval`)
and reported at once, in file order. Secrets are read from the env vars the file names,
never from it.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import jmespath.visitor
import yaml
import yaml.composer
import yaml.constructor
import yaml.reader
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from . import limits
from .chains import ChainProtocol, ChainSpec, default_max_lag_blocks, default_max_lag_seconds, default_max_stillness
from .config_file import (
    CONTROL_CHARS,
    ENV_PATTERN,
    HEADER_NAME_PATTERN,
    MAX_BODY_BYTES,
    MAX_DURATION,
    MAX_INTERVAL,
    MAX_JSON_DEPTH,
    MAX_JSON_NODES,
    NAME_PATTERN,
    SHIPPED,
    AuthType,
    BodyFormat,
    CircuitBreakerFile,
    EndpointFile,
    ErrorRuleFile,
    Jitter,
    Method,
    ProviderFile,
    ResetFormat,
    RootFile,
    StatusFormat,
    TimeUnit,
    TimingFile,
    kind,
    parse_duration,
    parse_jmespath,
    show,
)
from .model import Category, DisabledReason, Outcome, ProbeKind
from .shard import UNSHARDED, Shard

__all__ = [
    "DEFAULT_FILE",
    "MAX_BODY_BYTES",
    "MAX_DURATION",
    "MAX_ERRORS",
    "MAX_FILE_BYTES",
    "MAX_INTERVAL",
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_NODES",
    "MAX_NESTING",
    "ApiKey",
    "Auth",
    "AuthType",
    "BodyFormat",
    "Budget",
    "CircuitBreakerSpec",
    "Config",
    "ConfigError",
    "Disabled",
    "Endpoint",
    "ErrorRule",
    "Expression",
    "ExtractedValue",
    "Freshness",
    "Method",
    "Provider",
    "QuotaHeaders",
    "ResetFormat",
    "Selection",
    "StatusFormat",
    "StatusSource",
    "TimeUnit",
    "compile_jmespath",
    "load_config",
    "parse_config",
    "parse_duration",
    "unknown_name",
]

# Loading bounds: a file past one of them is refused with one located line. The value
# bounds (MAX_INTERVAL, MAX_DURATION, MAX_BODY_BYTES, MAX_JSON_*) live with the fields
# they bound in config_file.py, which feeds them to the JSON Schema too.
# Bounds on reading the file (exporter/limits.py states them all).
MAX_FILE_BYTES = limits.CONFIG_FILE_BYTES
MAX_NESTING = limits.CONFIG_NESTING
MAX_INT_DIGITS = limits.CONFIG_INT_DIGITS
MAX_ERRORS = limits.CONFIG_ERRORS_SHOWN
MAX_EXTENDS = limits.CONFIG_EXTENDS_DEPTH


def _shipped_registry() -> Path:
    """Inside the installed package (wheels, the Docker image: setup.py copies it there),
    else at the top of the source tree (checkouts and editable installs)."""
    packaged = Path(__file__).with_name("providers.yaml")
    return packaged if packaged.exists() else Path(__file__).resolve().parent.parent / "providers.yaml"


DEFAULT_FILE = _shipped_registry()
_INTERPRETER = jmespath.visitor.TreeInterpreter()
_HEADER_NAME = re.compile(HEADER_NAME_PATTERN)
_PATTERN_MESSAGES = {
    NAME_PATTERN: "invalid name {value}: use lower case letters, digits and _",
    ENV_PATTERN: "invalid env var name {value}",
}


class ConfigError(Exception):
    """Every mistake found in one file, one line each (at most MAX_ERRORS of them, then
    a line counting the rest; `total` is the full count)."""

    def __init__(self, errors: list[str], total: int | None = None) -> None:
        self.errors = errors
        self.total = len(errors) if total is None else total
        super().__init__("\n".join(errors))


# ---------------------------------------------------------------- records


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
    retest_after: float = 900.0  # seconds a rejected key rests before one probe tries it again

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
    max_unchanged: float | None = None  # seconds the value may stay equal to itself (frozen.py)


@dataclass(frozen=True)
class StatusSource:
    """Where a `status` endpoint reads the provider's own system status, and its shape."""

    format: StatusFormat
    base_url: str | None = None  # another host (a status page); None: the provider's base_url


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
    max_body_bytes: int = limits.BODY_BYTES_DEFAULT
    fresh_connection: bool = False
    kind: ProbeKind = ProbeKind.HTTP  # last, so positional construction keeps its meaning
    status: StatusSource | None = None  # kind: status only
    chain: ChainSpec | None = None  # kind chain_head: the chain it serves, defaults applied
    url: str | None = None  # kind chain_head: the node's own URL, when not base_url + path


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
    enabled: bool | None = None  # the file's `enabled:`; None: probed unless it needs a key and has none

    @functools.cached_property
    def _by_name(self) -> dict[str, Endpoint]:
        return {ep.name: ep for ep in self.endpoints}

    def endpoint(self, name: str) -> Endpoint:
        """By name, in O(1): the prober looks its endpoint up on every probe."""
        return self._by_name[name]


@dataclass(frozen=True)
class Selection:
    """Which providers an exporter runs: those named and those of the categories listed
    (either way in); both empty: every provider."""

    providers: tuple[str, ...] = ()
    categories: tuple[Category, ...] = ()

    @property
    def everything(self) -> bool:
        return not self.providers and not self.categories

    def picks(self, provider: Provider) -> bool:
        return self.everything or provider.name in self.providers or provider.category in self.categories


@dataclass(frozen=True)
class Disabled:
    """A configured provider that is not probed, and why."""

    provider: Provider
    reason: DisabledReason

    @property
    def name(self) -> str:
        return self.provider.name


@dataclass(frozen=True)
class Config:
    """A loaded file (`load_config`): `providers` holds every provider of it. After
    `exporter.selection.select`, the plan an exporter runs: `providers` holds those that
    are probed, `disabled` those that are configured but not probed, and `not_selected`
    names those the selection left out."""

    providers: tuple[Provider, ...]
    source: str = "<memory>"
    warnings: tuple[str, ...] = ()
    select: Selection = Selection()  # the file's `select:`
    disabled: tuple[Disabled, ...] = ()
    not_selected: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # every file read, the extended ones first
    shard: Shard = UNSHARDED  # which share of the providers this process owns (exporter/sharding.py)

    @functools.cached_property
    def _by_name(self) -> dict[str, Provider]:
        return {p.name: p for p in self.providers}

    @functools.cached_property
    def _disabled_by_name(self) -> dict[str, Disabled]:
        return {d.name: d for d in self.disabled}

    def provider(self, name: str) -> Provider:
        return self._by_name[name]

    def disabled_provider(self, name: str) -> Disabled | None:
        return self._disabled_by_name.get(name)

    def secrets(self) -> tuple[str, ...]:
        """Every key value read, for redaction: a disabled provider's too (never sent, but
        it is a secret all the same)."""
        every = (*self.providers, *(d.provider for d in self.disabled))
        return tuple(k.value for p in every for k in p.auth.keys if k.value)

    def with_providers(self, providers: tuple[Provider, ...]) -> Config:
        return replace(self, providers=providers)


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> Expression:
    return Expression(source, parse_jmespath(source))


def compile_jmespath(source: Any) -> Expression:
    """Compiled once per distinct source: a thousand endpoints with the same assertion share it."""
    if not isinstance(source, str):
        parse_jmespath(source)  # raises the "must be a non-empty string" error
    return _compiled(source)


# ---------------------------------------------------------------- compile

Loc = tuple[str | int, ...]
_TEN_PERCENT = Jitter(0.1, of_interval=True)
_TIMING_KEYS = frozenset(TimingFile.model_fields)


@dataclass(frozen=True)
class _Timing:
    """Timing keys as inherited so far. `unknown` names the keys whose value was invalid
    somewhere on the way: checks that compare them are skipped rather than reported
    against a fallback value the user never wrote."""

    interval: float = 60.0
    timeout: float = 10.0
    jitter: Jitter = _TEN_PERCENT
    slow_threshold: float | None = None
    max_body_bytes: int = limits.BODY_BYTES_DEFAULT
    fresh_connection: bool = False
    expect_status: frozenset[int] = frozenset({200})
    unknown: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Shared:
    """Body rules and status maps a provider gives all its endpoints (endpoint's first)."""

    error_rules: tuple[ErrorRule, ...] = ()
    status_outcomes: Mapping[int, Outcome] = field(default_factory=dict)


class _Compiler:
    """Validated file to records, collecting the errors that involve several fields.

    `damaged` holds the locations the validator refused (and `_salvage` replaced with a
    default or a placeholder so the rest could still be compiled): a check that reads
    one of them is not reported, so every line points at a mistake in the file, not at
    an echo of one."""

    def __init__(self, env: Mapping[str, str], damaged: frozenset[Loc] = frozenset()) -> None:
        self.env = env
        self.errors: list[tuple[Loc, str]] = []
        self.warnings: list[str] = []
        self._damaged = damaged
        self._provider = ""
        self._chains: dict[str, tuple[ChainSpec, Loc, str]] = {}  # chain name -> its first declaration, and where
        self._around = {d[:i] for d in damaged for i in range(1, len(d) + 1)}

    def _refused(self, loc: Loc) -> bool:
        """True if `loc` or a mapping or list around it was refused."""
        return any(loc[:i] in self._damaged for i in range(1, len(loc) + 1))

    def _bad(self, loc: Loc) -> bool:
        """True if `loc`, something around it or something inside it was refused."""
        return bool(self._damaged) and (loc in self._around or self._refused(loc))

    def error(self, loc: Loc, message: str, *reads: Loc) -> None:
        """Report a mistake at `loc`, found by reading the values at `loc` and `reads`."""
        if self._damaged and (self._refused(loc) or any(map(self._bad, reads))):
            return
        self.errors.append((loc, message))

    def timing(self, file: TimingFile, loc: Loc, parent: _Timing) -> _Timing:
        # Only keys given in the file count (null ones were dropped as absent).
        given = {key: getattr(file, key) for key in _TIMING_KEYS.intersection(file.model_fields_set)}
        unknown = parent.unknown
        if self._damaged:
            refused = {key for key in _TIMING_KEYS if self._bad((*loc, key))}
            unknown = frozenset((unknown - given.keys()) | refused)
        if not given and unknown == parent.unknown:
            return parent  # most endpoints set nothing of their own: share the parent's
        get = given.get
        status = get("expect_status")
        return _Timing(
            get("interval", parent.interval),
            get("timeout", parent.timeout),
            get("jitter", parent.jitter),
            get("slow_threshold", parent.slow_threshold),
            get("max_body_bytes", parent.max_body_bytes),
            get("fresh_connection", parent.fresh_connection),
            frozenset(status) if status is not None else parent.expect_status,
            unknown,
        )

    def config(self, file: RootFile, source: str) -> Config:
        defaults, breaker = _Timing(), CircuitBreakerSpec()
        if file.defaults is not None:
            defaults = self.timing(file.defaults, ("defaults",), defaults)
            breaker = _breaker(file.defaults.circuit_breaker, breaker)
        providers = []
        first: dict[str, int] = {}
        for i, p in enumerate(file.providers):
            loc: Loc = ("providers", i)
            if p.name in first:
                self.error((*loc, "name"), f"duplicate provider name {p.name!r} (providers[{i}] repeats providers[{first[p.name]}])")
            elif not self._bad((*loc, "name")):
                first[p.name] = i
            providers.append(self.provider(p, loc, defaults, breaker))
        select = Selection()
        if file.select is not None:
            select = Selection(tuple(file.select.providers), tuple(file.select.categories))
            known = [p.name for p in file.providers]
            for i, name in enumerate(select.providers):
                if name not in first:
                    self.error(("select", "providers", i), unknown_name("provider", name, known), *(("providers", j, "name") for j in range(len(known))))
        return Config(tuple(providers), source, tuple(self.warnings), select)

    def provider(self, p: ProviderFile, loc: Loc, defaults: _Timing, breaker: CircuitBreakerSpec) -> Provider:
        timing = self.timing(p, loc, defaults)
        auth = self.auth(p, loc)
        quota: tuple[QuotaHeaders, ...] = ()
        budget = None
        if p.rate_limit is not None:
            quota = self.quota_headers(p.rate_limit.headers, (*loc, "rate_limit", "headers"))
            if (b := p.rate_limit.budget) is not None:
                budget = Budget(b.requests, b.per)
        shared = _Shared(self.rules(p.error_rules), dict(p.status_outcomes))
        self._provider = p.name  # chain(): names the endpoint a chain was first declared by
        endpoints = []
        first: dict[str, int] = {}
        for i, e in enumerate(p.endpoints):
            eloc: Loc = (*loc, "endpoints", i)
            if e.name in first:
                self.error((*eloc, "name"), f"duplicate endpoint name {e.name!r} (endpoints[{i}] repeats endpoints[{first[e.name]}])")
            elif not self._bad((*eloc, "name")):
                first[e.name] = i
            endpoints.append(self.endpoint(e, eloc, timing, shared))
        sources = [i for i, e in enumerate(p.endpoints) if e.kind is ProbeKind.STATUS]
        if len(sources) > 1:  # two sources would overwrite each other's maintenance report
            self.error((*loc, "endpoints", sources[1], "kind"), f"a provider has at most one kind: status endpoint (endpoints[{sources[0]}] is one)")
        if budget is not None:
            self.warn_budget(p.name, budget, endpoints)
        return Provider(
            name=p.name,
            category=p.category,
            base_url=p.base_url.rstrip("/"),
            endpoints=tuple(endpoints),
            auth=auth,
            quota_headers=quota,
            budget=budget,
            circuit_breaker=_breaker(p.circuit_breaker, breaker),
            description=p.description,
            docs_url=p.docs_url,
            enabled=p.enabled,
        )

    def auth(self, p: ProviderFile, loc: Loc) -> Auth:
        a = p.auth
        if a is None:
            return Auth()
        at: Loc = (*loc, "auth")
        typ = (*at, "type")
        if a.type in (AuthType.QUERY, AuthType.HEADER) and not a.name:
            self.error((*at, "name"), f"required for auth type '{a.type}'", typ)
        elif a.type is AuthType.HEADER and not _HEADER_NAME.match(a.name):
            self.error((*at, "name"), f"invalid header name {show(a.name)} (letters, digits and !#$%&'*+-.^_`|~)", typ)
        if a.type is not AuthType.NONE and not a.env:
            self.error((*at, "env"), f"required for auth type '{a.type}'", typ)
        if a.type is AuthType.PATH and "{key}" not in p.base_url and not any("{key}" in e.path for e in p.endpoints):
            paths = ((*loc, "endpoints", i, "path") for i in range(len(p.endpoints)))
            self.error(typ, "auth type 'path' needs a {key} placeholder in base_url or path", (*loc, "base_url"), *paths)
        keys = []
        for i, name in enumerate(a.env):
            key = _read_key(name, self.env)
            if key is None:
                continue
            if CONTROL_CHARS.search(key.value):
                # The value goes into a header or a URL; say which variable, never what it holds.
                self.error((*at, "env", i), f"the value of {name} holds a line break or another control character")
            else:
                keys.append(key)
        # No key set is no mistake: exporter.selection decides what it means (disabled,
        # probed keyless, or forced on).
        retest = a.retest_after if a.retest_after is not None else Auth.retest_after
        return Auth(a.type, a.name, a.prefix, tuple(a.env), tuple(keys), a.optional, retest)

    def quota_headers(self, items: Iterable[Any], loc: Loc) -> tuple[QuotaHeaders, ...]:
        out: list[QuotaHeaders] = []
        for i, q in enumerate(items):
            at: Loc = (*loc, i)
            spec = QuotaHeaders(q.scope, q.limit, q.remaining, q.reset, q.used, q.limit_value, q.window, q.reset_format)
            if spec.used and spec.limit_value is None and spec.limit is None:
                self.error((*at, "limit_value"), "required with 'used' (the quota that header counts against)", (*at, "limit"))
            if not (spec.used or spec.remaining):
                self.error(at, "needs a 'remaining' or a 'used' header", (*at, "used"), (*at, "remaining"))
            if any(o.scope == spec.scope for o in out):
                self.error((*at, "scope"), f"duplicate scope {spec.scope!r}: each quota needs its own")
            out.append(spec)
        return tuple(out)

    def rules(self, rules: Iterable[ErrorRuleFile]) -> tuple[ErrorRule, ...]:
        return tuple(ErrorRule(compile_jmespath(r.when), r.outcome, compile_jmespath(r.message) if r.message else None) for r in rules)

    def endpoint(self, e: EndpointFile, loc: Loc, parent: _Timing, shared: _Shared) -> Endpoint:
        t = self.timing(e, loc, parent)
        if e.json_body is not None and e.method is not Method.POST:
            self.error((*loc, "json"), "a JSON body needs method: POST", (*loc, "method"))
        if t.timeout > t.interval and not {"timeout", "interval"} & t.unknown:
            self.error((*loc, "timeout"), f"timeout ({t.timeout:g}s) is longer than the interval ({t.interval:g}s)")
        jitter = t.jitter.seconds(t.interval)
        if jitter >= t.interval and not {"jitter", "interval"} & t.unknown:
            self.error((*loc, "jitter"), f"jitter ({jitter:g}s) must be shorter than the interval ({t.interval:g}s)")
        own_rules = self.rules(e.error_rules)
        if e.format is BodyFormat.TEXT and (e.assertions or own_rules or e.freshness):
            self.error((*loc, "format"), "assertions, error_rules and freshness need format: json")
        values: list[ExtractedValue] = []
        for i, v in enumerate(e.values):
            if any(o.name == v.name for o in values):
                self.error((*loc, "values", i, "name"), f"duplicate value name {v.name!r}")
            values.append(ExtractedValue(v.name, compile_jmespath(v.path), v.scale, v.max_unchanged))
        # The status kind reads its source's own shape: a side channel, with no values
        # or rules of its own (a failing source must never count against the provider).
        if e.kind is ProbeKind.STATUS and e.status is None:
            self.error((*loc, "status"), "kind: status needs a status mapping with its format, e.g. {format: statuspage}", (*loc, "kind"))
        if e.status is not None and e.kind is not ProbeKind.STATUS:
            self.error((*loc, "status"), "a status source needs kind: status", (*loc, "kind"))
        if e.kind is ProbeKind.STATUS and (e.values or e.assertions or e.freshness):
            self.error((*loc, "kind"), "kind: status reads the source's own format: no values, assertions or freshness")
        f = e.freshness
        chain = self.chain(e, loc)
        return Endpoint(
            name=e.name,
            path=e.path,
            method=e.method,
            params=e.params,
            headers=e.headers,
            json=e.json_body,
            format=e.format,
            expect_status=t.expect_status,
            status_outcomes={**shared.status_outcomes, **e.status_outcomes},
            assertions=tuple(compile_jmespath(a) for a in e.assertions),
            # A text body has no fields for the provider's JSON rules to look at.
            error_rules=own_rules + (shared.error_rules if e.format is BodyFormat.JSON else ()),
            freshness=Freshness(compile_jmespath(f.path), f.max_age, f.unit) if f is not None else None,
            values=tuple(values),
            interval=t.interval,
            timeout=t.timeout,
            jitter=jitter,
            slow_threshold=t.slow_threshold or t.timeout / 2,
            max_body_bytes=t.max_body_bytes,
            fresh_connection=t.fresh_connection,
            kind=e.kind,
            status=StatusSource(e.status.format, e.status.base_url) if e.status is not None else None,
            chain=chain,
            url=e.url.rstrip("/") if e.url else None,
        )

    # ---- chain heads (issue 11)
    def chain(self, e: EndpointFile, loc: Loc) -> ChainSpec | None:
        """The `chain:` block with its defaults; what it needs of the kind, and what
        endpoints of the same chain must agree on."""
        c, at = e.chain, (*loc, "chain")
        if e.kind is not ProbeKind.CHAIN_HEAD:
            if c is not None:
                self.error(at, f"only an endpoint of kind chain_head has a chain (this one is {e.kind.value})", (*loc, "kind"))
            if e.url is not None:
                self.error((*loc, "url"), f"only an endpoint of kind chain_head has its own url (this one is {e.kind.value})", (*loc, "kind"))
            return None
        if c is None:
            self.error(at, "required for kind chain_head: name, protocol, id and block_time", (*loc, "kind"))
            return None
        if c.protocol is ChainProtocol.EVM and not c.id.isdigit():
            self.error((*at, "id"), f"an EVM chain id is a decimal number (1 for Ethereum), got {show(c.id)}")
        chain_id = c.id
        if c.protocol is ChainProtocol.EVM and c.id.isdigit():
            chain_id = str(int(c.id))  # "01" is chain 1: compared with the node's number
        elif c.protocol is ChainProtocol.ESPLORA:
            chain_id = c.id.lower()  # block hashes are hex, any case
        spec = ChainSpec(
            c.name,
            c.protocol,
            chain_id,
            c.block_time,
            c.max_lag_blocks if c.max_lag_blocks is not None else default_max_lag_blocks(c.block_time),
            c.max_lag if c.max_lag is not None else default_max_lag_seconds(c.block_time),
            c.max_stillness if c.max_stillness is not None else default_max_stillness(c.block_time),
        )
        first = self._chains.setdefault(c.name, (spec, at, f"{self._provider}/{e.name}"))
        if first[1] != at:
            where = first[2]
            for name in ("protocol", "id", "block_time"):
                if getattr(first[0], name) != getattr(spec, name):
                    self.error((*at, name), f"chain {c.name!r} has {name} {show(getattr(first[0], name))} at {where}: endpoints of one chain must agree")
        return spec

    def warn_budget(self, provider: str, budget: Budget, endpoints: list[Endpoint]) -> None:
        planned = sum(budget.per / ep.interval for ep in endpoints)
        if planned > budget.requests:
            self.warnings.append(
                f"providers[{provider}].rate_limit.budget: the schedule plans {planned:.0f} requests per "
                f"{budget.per:g}s but the budget allows {budget.requests}; some probes will be budget_exhausted"
            )


def unknown_name(what: str, name: str, known: Iterable[str]) -> str:
    """The message for a name that must be one of `known`: "unknown provider 'binanse'
    (did you mean 'binance'?); known: ...", every valid one listed, so the fix is in it."""
    valid = sorted(set(known))
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {show(name)}{hint}; known: {', '.join(valid) or 'none'}"


def _breaker(file: CircuitBreakerFile | None, parent: CircuitBreakerSpec) -> CircuitBreakerSpec:
    if file is None:
        return parent
    return CircuitBreakerSpec(
        failure_threshold=file.failure_threshold or parent.failure_threshold,
        reset_timeout=file.reset_timeout or parent.reset_timeout,
    )


def _read_key(name: str, env: Mapping[str, str]) -> ApiKey | None:
    """A key from `NAME`, or from the file named by `NAME_FILE` (Docker secrets)."""
    value = env.get(name, "").strip()
    if not value and env.get(f"{name}_FILE"):
        try:
            value = Path(env[f"{name}_FILE"]).read_text().strip()
        except (OSError, UnicodeDecodeError):
            value = ""
    return ApiKey(name, value) if value else None


# ---------------------------------------------------------------- salvage after refusal

_MISSING = object()


def _unwrap(annotation: Any) -> Any:
    """`Annotated[X, ...]` and `X | None` to X."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


@functools.cache
def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """The model's fields by their name in the file."""
    return {f.alias or name: f for name, f in model.model_fields.items()}


def _types_along(loc: Loc) -> list[Any]:
    """The declared type at each step of `loc`: out[i] is what holds loc[i]."""
    out: list[Any] = [RootFile]
    current: Any = RootFile
    for step in loc:
        current = _unwrap(current)
        if _is_model(current):
            f = _fields(current).get(step) if isinstance(step, str) else None
            current = f.annotation if f is not None else None
        elif get_origin(current) in (list, tuple):
            current = get_args(current)[0] if isinstance(step, int) else None
        elif get_origin(current) is dict:
            current = get_args(current)[0 if step == "[key]" else 1]
        else:
            current = None
        out.append(current)
    return out


def _allowed_keys(loc: Loc) -> list[str]:
    holder = _unwrap(_types_along(loc)[-1])
    return sorted(_fields(holder)) if _is_model(holder) else []


def _example(examples: Any) -> Any:
    return copy.deepcopy(examples[0]) if examples else None


def _fix_for(error: ErrorDetails) -> tuple[Loc, Any] | None:
    """Where to mend the document so the rest of it validates, and with what:
    `_MISSING` drops a key (an optional field falls back to its default), anything
    else replaces the value (a required field or a list item gets its first example).
    The mend is as close to the mistake as a field or a list item allows."""
    loc: Loc = tuple(error["loc"])
    if error["type"] in ("extra_forbidden", "invalid_key"):
        return loc, _MISSING
    along = _types_along(loc)
    for i in range(len(loc) - 1, -1, -1):
        holder, step = _unwrap(along[i]), loc[i]
        if _is_model(holder) and step in _fields(holder):
            f = _fields(holder)[step]
            return loc[: i + 1], _example(f.examples) if f.is_required() else _MISSING
        item = _unwrap(along[i + 1])
        if get_origin(holder) in (list, tuple) and _is_model(item):
            extra = item.model_config.get("json_schema_extra")
            return loc[: i + 1], _example(extra.get("examples") if isinstance(extra, dict) else None)
    return None


def _raw_key(node: Any, step: str | int) -> Any:
    """The key of `node` that pydantic reported as `step` (it spells None as 'None')."""
    if isinstance(node, list):
        return step if isinstance(step, int) and 0 <= step < len(node) else _MISSING
    if isinstance(node, dict):
        if step in node:
            return step
        return next((k for k in node if str(k) == str(step)), _MISSING)
    return _MISSING


def _mend(data: Any, fixes: Iterable[tuple[Loc, Any]]) -> Any:
    """A copy of `data` with the fixes applied; only the containers on the way to a fix
    are copied, so the rest (and YAML aliases) stay shared and nothing deep is walked."""
    copies: dict[int, Any] = {}

    def own(node: Any) -> Any:
        if id(node) not in copies:
            mine = dict(node) if isinstance(node, Mapping) else list(node)
            copies[id(node)] = copies[id(mine)] = mine
        return copies[id(node)]

    root = own(data)
    for loc, value in fixes:
        node = root
        for step in loc[:-1]:
            key = _raw_key(node, step)
            if key is _MISSING or not isinstance(node[key], (dict, list)):
                break
            node[key] = own(node[key])
            node = node[key]
        else:
            key = _raw_key(node, loc[-1])
            if value is not _MISSING:
                node[loc[-1] if key is _MISSING else key] = value
            elif key is not _MISSING and isinstance(node, dict):
                del node[key]
    return root


def _salvage(data: Any, errors: list[ErrorDetails]) -> tuple[RootFile | None, frozenset[Loc]]:
    """The file with every refused value mended, so the compile step can still check the
    rest of it: one run reports every mistake, not only those pydantic sees."""
    damaged: set[Loc] = set()
    for _ in range(3):  # one round mends every reported error; more only if a mend misfires
        fixes = [fix for e in errors if (fix := _fix_for(e)) is not None]
        if len(fixes) < len(errors):
            return None, frozenset(damaged)
        damaged.update(loc for loc, _ in fixes)
        data = _mend(data, fixes)
        try:
            return RootFile.model_validate(data), frozenset(damaged)
        except ValidationError as e:
            errors = e.errors(include_url=False)
    return None, frozenset(damaged)


# ---------------------------------------------------------------- reporting


class _Locator:
    """Turns a location into text and a place in the file, from the document itself:
    providers and endpoints are named by their `name` (index only without a usable
    one), and errors sort in the order their places appear in the file."""

    _NAMED_LISTS = frozenset({"providers", "endpoints"})
    _LABEL = re.compile(r"[^\s\[\]]{1,64}")

    def __init__(self, data: Any) -> None:
        self.data = data

    def _walk(self, loc: Loc) -> Iterable[tuple[Any, str | int, Any]]:
        """(container, step, raw key or _MISSING) along `loc`."""
        node: Any = self.data
        for step in loc:
            if step == "[key]":
                continue
            key = _raw_key(node, step)
            yield node, step, key
            node = node[key] if key is not _MISSING else None

    def text(self, loc: Loc) -> str:
        parts: list[str] = []
        previous: Any = None
        for node, step, key in self._walk(loc):
            if isinstance(step, int) and not isinstance(node, Mapping):
                label: Any = step
                if previous in self._NAMED_LISTS and key is not _MISSING and isinstance(node[key], Mapping):
                    name = node[key].get("name")
                    if isinstance(name, str) and self._LABEL.fullmatch(name):
                        label = name
                parts.append(f"[{label}]")
            else:
                parts.append(f".{step}" if parts else str(step))
            previous = step
        return "".join(parts)

    def place(self, loc: Loc) -> tuple[int, ...]:
        out = []
        for node, _step, key in self._walk(loc):
            if isinstance(node, list):
                out.append(key if key is not _MISSING else len(node))
            elif isinstance(node, dict):
                out.append(list(node).index(key) if key is not _MISSING else len(node))
            else:
                out.append(0)
        return tuple(out)


def _describe(error: ErrorDetails) -> str:
    """pydantic's error types in the exporter's words."""
    typ, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    loc = tuple(error["loc"])
    if typ == "missing":
        return "required field is missing"
    if typ in ("extra_forbidden", "invalid_key"):
        close = difflib.get_close_matches(str(loc[-1]), _allowed_keys(loc[:-1]), n=1)
        return "unknown field" + (f" (did you mean '{close[0]}'?)" if close else "")
    if typ in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if typ == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return _PATTERN_MESSAGES.get(pattern, "must match {pattern}, got {value}").format(value=show(value), pattern=pattern)
    if typ == "enum":
        choices = ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        return f"invalid value {show(value)} (one of: {choices})"
    if typ == "greater_than" and ctx.get("gt") == 0:
        return f"must be a positive {'integer' if isinstance(value, int) else 'number'}, got {show(value)}"
    if typ == "too_short":
        noun = {"endpoints": "endpoint", "expect_status": "status code"}.get(str(loc[-1]), "entry")
        return f"must list at least one {noun}"
    template = _MESSAGES.get(typ)
    if template is not None:
        return template.format(**{**ctx, "value": show(value), "kind": kind(value)})
    return f"{error['msg']}, got {show(value)}"  # a type this table has not met yet


_MESSAGES = {
    "string_type": "must be a string, got {value}",
    "int_type": "must be an integer, got {value}",
    "int_parsing": "must be an integer, got {value}",
    "int_from_float": "must be an integer, got {value}",
    "float_type": "must be a number, got {value}",
    "float_parsing": "must be a number, got {value}",
    "finite_number": "must be a finite number, got {value}",
    "bool_type": "must be true or false, got {value}",
    "bool_parsing": "must be true or false, got {value}",
    "list_type": "must be a list, got {kind}",
    "tuple_type": "must be a list, got {kind}",
    "dict_type": "must be a mapping, got {kind}",
    "model_type": "must be a mapping, got {kind}",
    "model_attributes_type": "must be a mapping, got {kind}",
    "greater_than": "must be greater than {gt}, got {value}",
    "greater_than_equal": "must be at least {ge}, got {value}",
    "less_than_equal": "must be at most {le}, got {value}",
    "less_than": "must be less than {lt}, got {value}",
    "string_too_short": "must not be empty",
}

Problem = tuple[Loc, "ErrorDetails | str"]


def _report(problems: list[Problem], data: Any, origins: _Origins, note: str = "") -> ConfigError:
    where = _Locator(data)
    problems.sort(key=lambda p: where.place(p[0]))
    lines = list(origins.problems[:MAX_ERRORS])
    shown = problems[: MAX_ERRORS - len(lines)]  # only the lines printed are worth describing
    lines += [f"{origins.of(loc)}: {where.text(loc)}: {what if isinstance(what, str) else _describe(what)}" for loc, what in shown]
    total = len(origins.problems) + len(problems)
    if total > MAX_ERRORS:
        lines.append(f"{origins.source}: ... and {total - MAX_ERRORS} more errors{note}")
    return ConfigError(lines, total=total)


# ---------------------------------------------------------------- extends


@dataclass(frozen=True)
class _Origins:
    """Which file each part of a (merged) document came from: the longest location
    prefix in `by_loc`, else `source`, the file that was loaded. Errors name that file."""

    source: str
    by_loc: Mapping[Loc, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # mistakes the merge itself found, as located lines

    def of(self, loc: Loc) -> str:
        for i in range(len(loc), 0, -1):
            if (found := self.by_loc.get(loc[:i])) is not None:
                return found
        return self.source


def _names(entries: list[Any]) -> dict[str, int]:
    """Provider name to its first index, for entries that have a usable name."""
    out: dict[str, int] = {}
    for i, e in enumerate(entries):
        if isinstance(e, Mapping) and isinstance(name := e.get("name"), str):
            out.setdefault(name, i)
    return out


def _merge(base: Mapping[Any, Any], below: _Origins, top: Mapping[Any, Any], source: str) -> tuple[dict[Any, Any], _Origins]:
    """`top` over `base`, one level down: `defaults:` key by key; a provider of `top`
    named as one of `base` key by key over it (a key's value, a list of endpoints for
    one, is replaced whole; `key: null` takes it away), a new name appended; any other
    top-level key replaced. What `top` does not understand (a list that is no list, an
    entry without a name) is kept as it is, for validation to report it in `top`."""
    merged = dict(base)
    by_loc: dict[Loc, str] = dict(below.by_loc)
    for key in base:  # parts of `base` keep the file they came from
        by_loc.setdefault((key,), below.of((key,)))
    entries = base.get("providers")
    if isinstance(entries, list):
        for i in range(len(entries)):
            by_loc.setdefault(("providers", i), below.of(("providers", i)))
    problems = list(below.problems)
    for key, value in top.items():
        if key == "extends":
            continue
        old = merged.get(key)
        if key == "defaults" and isinstance(value, Mapping) and isinstance(old, Mapping):
            merged[key] = {**old, **value}
            by_loc.update({("defaults", k): source for k in value})
        elif key == "providers" and value is None and isinstance(old, list):
            continue  # `providers:` with nothing under it changes nothing
        elif key == "providers" and isinstance(value, list) and isinstance(old, list):
            providers = list(old)
            index = _names(old)
            mine: dict[str, int] = {}  # names given in `top`, at their index there
            for j, entry in enumerate(value):
                name = entry.get("name") if isinstance(entry, Mapping) else None
                if isinstance(name, str) and name in mine:
                    # Said here, in the file's own indices: merged, it would be another entry's.
                    problems.append(f"{source}: providers[{name}].name: duplicate provider name {name!r} (providers[{j}] repeats providers[{mine[name]}])")
                    continue
                if isinstance(name, str):
                    mine[name] = j
                at = index.get(name) if isinstance(name, str) else None
                if at is None or not isinstance(entry, Mapping) or not isinstance(providers[at], Mapping):
                    by_loc[("providers", len(providers))] = source
                    providers.append(entry)  # a new provider
                    continue
                providers[at] = {**providers[at], **entry}
                by_loc.update({("providers", at, k): source for k in entry})
            merged[key] = providers
        else:
            merged[key] = value
            by_loc[(key,)] = source
    return merged, _Origins(source, by_loc, (*below.files, source), tuple(problems))


def _expand(data: Mapping[Any, Any], source: str, directory: Path | None, chain: tuple[Path, ...]) -> tuple[Any, _Origins]:
    """The document with the file it `extends:` (and that one's, and so on) merged under it."""
    target = data.get("extends")
    if target is None:
        return {k: v for k, v in data.items() if k != "extends"}, _Origins(source, files=(source,))
    if not isinstance(target, str) or not target.strip():
        raise ConfigError([f"{source}: extends: must be '{SHIPPED}' or the path of a providers file, got {show(target)}"])
    path = DEFAULT_FILE if target.strip() == SHIPPED else (directory or Path.cwd()) / target.strip()
    resolved = path.resolve()
    if resolved in chain:
        loop = " -> ".join(str(p) for p in (*chain[chain.index(resolved) :], resolved))
        raise ConfigError([f"{source}: extends: {show(target)} goes round in a loop ({loop})"])
    if len(chain) >= MAX_EXTENDS:
        raise ConfigError([f"{source}: extends: more than {MAX_EXTENDS} files extend each other; is this a loop?"])
    if not path.is_file():
        raise ConfigError([f"{source}: extends: {show(target)}: no such file ({path})"])
    base = _document(path)
    if not isinstance(base, Mapping):
        raise ConfigError([f"{path}: the file must be a mapping with a 'providers' list, got {kind(base)} (extended by {source})"])
    merged, below = _expand(base, str(path), path.parent, (*chain, resolved))
    return _merge(merged, below, data, source)


# ---------------------------------------------------------------- parse


def parse_config(data: Any, source: str = "<memory>", env: Mapping[str, str] | None = None, *, directory: Path | None = None) -> Config:
    """Validate a parsed YAML document, with the files it `extends:` (paths relative to
    `directory`, else the working directory); raise ConfigError listing every mistake,
    each in the file it is in."""
    return _parse(data, source, env, directory, ())


def _parse(data: Any, source: str, env: Mapping[str, str] | None, directory: Path | None, chain: tuple[Path, ...]) -> Config:
    env = os.environ if env is None else env
    if not isinstance(data, Mapping):
        raise ConfigError([f"{source}: the file must be a mapping with a 'providers' list, got {kind(data)}"])
    data, origins = _expand(data, source, directory, chain)
    try:
        file: RootFile | None = RootFile.model_validate(data)
        damaged: frozenset[Loc] = frozenset()
        problems: list[Problem] = []
    except ValidationError as e:
        errors = e.errors(include_url=False)
        problems = [(tuple(err["loc"]), err) for err in errors]
        if len(problems) > MAX_ERRORS:
            # Beyond what is printed, mending and compiling would only cost time.
            raise _report(problems, data, origins, " (checks across fields skipped)") from None
        file, damaged = _salvage(data, errors)
    compiler = _Compiler(env, damaged)
    config = compiler.config(file, source) if file is not None else None
    problems += compiler.errors
    if problems or config is None or origins.problems:
        raise _report(problems, data, origins)
    return replace(config, files=origins.files)


# ---------------------------------------------------------------- load


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the loading bounds: the composer recurses once per
    nesting level (RecursionError past a few hundred), and int() refuses more than
    4300 digits; both become located YAML errors instead."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._depth >= MAX_NESTING:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_NESTING} levels", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_bounded_int(self, node: yaml.ScalarNode) -> Any:
        if len(node.value) > MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(None, None, f"integer of {len(node.value)} digits (at most {MAX_INT_DIGITS})", node.start_mark)
        return self.construct_yaml_int(node)

    def construct_checked_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return self.construct_yaml_timestamp(node)
        except ValueError as e:
            raise yaml.constructor.ConstructorError(None, None, f"invalid date {show(node.value)}: {e}", node.start_mark) from None


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_bounded_int)
_BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", _BoundedLoader.construct_checked_timestamp)

_NEST = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_UNNEST = (yaml.MappingEndEvent, yaml.SequenceEndEvent)

if yaml.__with_libyaml__:

    class _BoundedCLoader(yaml.CSafeLoader):
        """libyaml's parser and composer (five times faster than PyYAML's Python ones) with
        the same constructors for integers and dates as _BoundedLoader."""

    _BoundedCLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_bounded_int)
    _BoundedCLoader.add_constructor("tag:yaml.org,2002:timestamp", _BoundedLoader.construct_checked_timestamp)


def parse_yaml(text: str) -> Any:
    """The document, within the loading bounds. With libyaml: a first pass over its events
    (iterative, so a deep file cannot exhaust a stack) checks the nesting, then libyaml
    composes what is known to be shallow, five times faster than PyYAML's Python loader.
    A file either refuses goes through the Python loader too, whose errors say more
    ("expected ',' or ']', but got '<stream end>'") and point at the exact place."""
    if yaml.__with_libyaml__:
        try:
            depth = 0
            for event in yaml.parse(text, Loader=yaml.CSafeLoader):
                if isinstance(event, _NEST):
                    depth += 1
                    if depth > MAX_NESTING:
                        raise yaml.YAMLError("too deep")  # located by the Python loader below
                elif isinstance(event, _UNNEST):
                    depth -= 1
            return yaml.load(text, Loader=_BoundedCLoader)  # a CSafeLoader subclass
        except yaml.YAMLError:
            pass
    return yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader subclass


def _line_column(text: str, offset: int) -> str:
    return f"line {text.count(chr(10), 0, offset) + 1}, column {offset - text.rfind(chr(10), 0, offset)}"


def _read(path: Path) -> str:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; is this the providers file?"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        before = raw[: e.start].decode("utf-8")
        raise ConfigError([f"{path}: {_line_column(before, len(before))}: not UTF-8 (byte 0x{raw[e.start]:02x}); save the file as UTF-8"]) from None


def _document(path: Path) -> Any:
    """The YAML document of a file, within the loading bounds; ConfigError located by line."""
    text = _read(path)
    try:
        return parse_yaml(text)
    except yaml.reader.ReaderError as e:
        raise ConfigError([f"{path}: {_line_column(text, e.position)}: {e.reason} (character #x{int(e.character):04x})"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError([f"{path}:{at}: {problem}"]) from None


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The file (default: the shipped registry) and the files it `extends:`, validated;
    keys read from `env` (default: the process's)."""
    path = Path(path) if path else DEFAULT_FILE
    return _parse(_document(path), str(path), env, path.parent, (path.resolve(),))
