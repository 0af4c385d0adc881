"""providers.yaml as pydantic models: what the file may say, field by field.

The models use the file's own spelling and reject unknown keys. Each field is checked on
its own here (type, closed set, pattern, bound); whatever needs several fields or the
inherited defaults (timeout against interval, what an auth type needs, duplicate names)
is the compile step's job in `exporter.config`, which turns a validated file into the
frozen records the rest of the program uses. Keeping the two apart keeps these models a
plain description of the file, which is also what the JSON Schema for editors is
generated from: `python -m exporter.config_file > providers.schema.json`.

Messages raised here are already in the exporter's words; `exporter.config` turns
pydantic's own error types (missing, extra_forbidden, enum, ...) into the same style.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, ClassVar, NamedTuple

import jmespath
import jmespath.exceptions
import jmespath.parser
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from . import limits
from .chains import ChainProtocol
from .model import Category, Outcome, ProbeKind

# ---------------------------------------------------------------- bounds

# Durations are bounded so that no value can overflow a timer or a date computation at
# run time, and because nothing sane monitors less often than weekly.
# Bounds on values (exporter/limits.py states them all).
MAX_INTERVAL = limits.CONFIG_INTERVAL_MAX
MAX_DURATION = limits.CONFIG_DURATION_MAX
MAX_BODY_BYTES = limits.BODY_BYTES_MAX
MAX_JSON_NODES = limits.CONFIG_JSON_NODES
MAX_JSON_DEPTH = limits.CONFIG_JSON_DEPTH

# ---------------------------------------------------------------- the file's closed sets


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


# Outcomes a body rule or a status map may assign: the others are decided by transport.
ASSIGNABLE_OUTCOMES = frozenset({Outcome.RATE_LIMITED, Outcome.AUTH_ERROR, Outcome.CLIENT_ERROR, Outcome.SERVER_ERROR, Outcome.BAD_PAYLOAD, Outcome.SUCCESS})

# ---------------------------------------------------------------- value grammar

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
ENV_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
# RFC 9110 field names ("tokens"): anything else makes the HTTP client refuse the request.
HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
DURATION_PATTERN = r"^\s*([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+\s*$"
PERCENT_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*%\s*$"
# What an editor can check of a base URL; the validator also checks the port.
BASE_URL_PATTERN = r"^https?://[^/?#@\s]+(/[^?#\s]*)?$"
PATH_PATTERN = r"^(/[^\s]*)?$"
# Control characters but tab: a CR or LF would end the header line (or split the URL).
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
HEADER_VALUE_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"
STATUS_KEY_PATTERN = r"^[1-5][0-9][0-9]$"

# The parser accepts exactly what the schema's patterns say, so editor and loader agree.
_DURATION = re.compile(DURATION_PATTERN)
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_PERCENT = re.compile(PERCENT_PATTERN)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_HEADER_NAME = re.compile(HEADER_NAME_PATTERN)
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_USERINFO = re.compile(r"//[^/?#]*@")
_SHOW_CHARS = 60


def show(value: Any) -> str:
    """A value for a message: short, in YAML's spelling, never a dump of a whole subtree
    (and never a repr that could recurse or exceed the int-to-str limit)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= _SHOW_CHARS else value[: _SHOW_CHARS - 3] + "...")
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 200 else "a very long integer"
    if isinstance(value, float):
        return repr(value)
    return kind(value)


def kind(value: Any) -> str:
    """What a value is, for "must be a mapping, got a list"."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return f"a {type(value).__name__}"


def format_duration(seconds: float) -> str:
    """The shortest of `7d`, `2h`, `90s`, `250ms` that says `seconds` exactly."""
    for unit in ("d", "h", "m", "s"):
        count = seconds / _UNIT_SECONDS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{seconds * 1000:g}ms"


def parse_duration(text: Any) -> float:
    """`30s`, `5m`, `1h30m`, `250ms`, `1d` to seconds. Bare numbers are refused: a
    unit-less `60` is too easily read as minutes."""
    seconds = None
    if isinstance(text, str):
        # Cached: a large file repeats the same few (short) durations thousands of times.
        seconds = _cached_seconds(text) if len(text) <= _CACHED_CHARS else _seconds(text)
    if seconds is None:
        raise ValueError(f"invalid duration {show(text)} (use e.g. 30s, 5m, 1h)")
    return seconds


def _seconds(text: str) -> float | None:
    if not _DURATION.match(text):
        return None
    return sum(float(m.group(1)) * _UNIT_SECONDS[m.group(2)] for m in _DURATION_PART.finditer(text))


_CACHED_CHARS = 32
_cached_seconds = functools.lru_cache(maxsize=1024)(_seconds)


@functools.lru_cache(maxsize=4096)
def _parsed(source: str) -> jmespath.parser.ParsedResult:
    return jmespath.compile(source)


def parse_jmespath(source: Any) -> jmespath.parser.ParsedResult:
    """Compiled once per distinct source: a thousand endpoints with the same assertion share it."""
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"invalid JMESPath {show(source)}: must be a non-empty string")
    try:
        return _parsed(source)
    except jmespath.exceptions.ParseError as e:
        raise ValueError(f"invalid JMESPath {show(source)}: {e.msg} at column {e.lex_position}") from None
    except jmespath.exceptions.JMESPathError as e:
        raise ValueError(f"invalid JMESPath {show(source)}: {str(e).splitlines()[0]}") from None


class Jitter(NamedTuple):
    """A jitter as written: a fraction of the interval (`10%`) or seconds (`5s`)."""

    amount: float
    of_interval: bool

    def seconds(self, interval: float) -> float:
        return interval * self.amount if self.of_interval else self.amount


def _bounded_duration(limit: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        seconds = parse_duration(value)
        if seconds <= 0:
            raise ValueError(f"must be longer than 0, got {show(value)}")
        if seconds > limit:
            raise ValueError(f"must be at most {format_duration(limit)}, got {show(value)}")
        return seconds

    return check


def _jitter(value: Any) -> Jitter:
    if isinstance(value, str) and len(value) <= _CACHED_CHARS:
        return _cached_jitter(value)
    return _jitter_of(value)


def _jitter_of(value: Any) -> Jitter:
    bad = f"invalid jitter {show(value)} (a duration like 5s, or a percentage like 10%)"
    if isinstance(value, str) and value.strip().endswith("%"):
        if not _PERCENT.match(value):
            raise ValueError(bad)
        pct = float(value.strip()[:-1])
        if not 0 <= pct <= 100:
            raise ValueError(f"invalid jitter {show(value)}: percentage must be 0 to 100")
        return Jitter(pct / 100, of_interval=True)
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(bad) from None
    if seconds > MAX_INTERVAL:
        raise ValueError(f"must be at most {format_duration(MAX_INTERVAL)}, got {show(value)}")
    return Jitter(seconds, of_interval=False)


_cached_jitter = functools.lru_cache(maxsize=1024)(_jitter_of)


def _status_code(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValueError(f"invalid HTTP status {show(value)} (100 to 599)")
    return value


def _status_key(value: Any) -> int:
    # Status map keys are ints in YAML (`418: rate_limited`) and strings in JSON.
    return _status_code(int(value) if isinstance(value, str) and value.isdigit() and len(value) <= 3 else value)


def _assignable_outcome(value: Any) -> Outcome:
    if isinstance(value, str) and value in Outcome._value2member_map_ and Outcome(value) in ASSIGNABLE_OUTCOMES:
        return Outcome(value)
    choices = ", ".join(sorted(o.value for o in ASSIGNABLE_OUTCOMES))
    raise ValueError(f"invalid outcome {show(value)} (one of: {choices})")


def _jmespath(value: Any) -> str:
    parse_jmespath(value)
    return str(value)


def _scale(value: Any) -> float:
    """A finite positive factor; YAML 1.1 reads `1e-9` (no dot) as a string, so accept that too."""
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) or number <= 0:
        raise ValueError(f"must be a finite positive number, got {show(value)}")
    return float(number)


def _base_url(value: Any) -> str:
    # Messages show the URL without any user:password@ it may carry.
    shown = show(_USERINFO.sub("//", value)) if isinstance(value, str) else show(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be an http(s) URL, got {shown}")
    if _SPACE_OR_CONTROL.search(value):
        raise ValueError(f"must be an http(s) URL without spaces or control characters, got {shown}")
    # `{key}` (auth type path) is replaced at probe time; check the URL it will become.
    parts = urllib.parse.urlsplit(value.replace("{key}", "KEY"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {shown}")
    if "@" in parts.netloc:
        raise ValueError("must not carry user:password@ (base_url is a metric label): put credentials in auth")
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError(f"must not carry a query or fragment (put query parameters in params), got {shown}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid port in {shown} (1 to 65535)") from None
    if not parts.hostname or port == 0:
        raise ValueError(f"must be an http(s) URL with a host and a port of 1 to 65535, got {shown}")
    return value


def _path(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {kind(value)}")
    if value and not value.startswith("/"):
        raise ValueError(f"must be empty or start with / (it is appended to base_url), got {show(value)}")
    if _SPACE_OR_CONTROL.search(value):
        raise ValueError(f"must not contain spaces or control characters, got {show(value)}")
    return value


def _header_name(value: Any) -> str:
    if not isinstance(value, str) or not _HEADER_NAME.match(value):
        raise ValueError(f"invalid header name {show(value)} (letters, digits and !#$%&'*+-.^_`|~)")
    return value


def _header_value(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {show(value)}")
    if CONTROL_CHARS.search(value):
        raise ValueError(f"must not contain line breaks or control characters, got {show(value)}")
    return value


def _json_body(value: Any) -> Any:
    """Only what serialises to JSON, bounded: an alias bomb must not stall the loader,
    and a body orjson refuses must not fail at the first probe instead of at load."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_JSON_NODES:
            raise ValueError(f"must be a JSON body of at most {MAX_JSON_NODES} values")
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"must be a JSON body nested at most {MAX_JSON_DEPTH} levels deep")
        if isinstance(item, Mapping):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise ValueError(f"must be JSON: object keys must be strings, got {show(k)}")
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"must be JSON: numbers must be finite, got {show(item)}")
        elif isinstance(item, int) and item.bit_length() > 64:
            raise ValueError("must be JSON: integers must fit in 64 bits (write larger ones as strings)")
        elif item is not None and not isinstance(item, (str, int, float, bool)):
            raise ValueError(f"must be JSON, got {kind(item)}")
    return value


def _one_or_list(value: Any) -> Any:
    return [value] if isinstance(value, (str, int)) and not isinstance(value, bool) else value


def _schema(**schema: Any) -> WithJsonSchema:
    return WithJsonSchema(schema)


_DURATION_SCHEMA: dict[str, Any] = {"type": "string", "pattern": DURATION_PATTERN}
_JMESPATH_SCHEMA: dict[str, Any] = {"type": "string", "minLength": 1}
_STATUS_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 100, "maximum": 599}

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
EnvName = Annotated[str, Field(pattern=ENV_PATTERN)]
Interval = Annotated[float, PlainValidator(_bounded_duration(MAX_INTERVAL)), _schema(**_DURATION_SCHEMA)]
Duration = Annotated[float, PlainValidator(_bounded_duration(MAX_DURATION)), _schema(**_DURATION_SCHEMA)]
JitterValue = Annotated[Jitter, PlainValidator(_jitter), _schema(anyOf=[_DURATION_SCHEMA, {"type": "string", "pattern": PERCENT_PATTERN}])]
PositiveInt = Annotated[int, Strict(), Field(gt=0)]
PositiveNumber = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
Scale = Annotated[
    float,
    PlainValidator(_scale),
    _schema(anyOf=[{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": r"^[0-9.]+([eE][-+]?[0-9]+)?$"}]),
]
StatusCode = Annotated[int, PlainValidator(_status_code), _schema(**_STATUS_SCHEMA)]
StatusKey = Annotated[int, PlainValidator(_status_key), _schema(**_STATUS_SCHEMA)]
StatusSet = Annotated[
    list[StatusCode],
    BeforeValidator(_one_or_list),
    Field(min_length=1),
    _schema(anyOf=[_STATUS_SCHEMA, {"type": "array", "items": _STATUS_SCHEMA, "minItems": 1}]),
]
AssignableOutcome = Annotated[Outcome, PlainValidator(_assignable_outcome), _schema(enum=sorted(o.value for o in ASSIGNABLE_OUTCOMES))]
StatusOutcomes = Annotated[
    dict[StatusKey, AssignableOutcome],
    _schema(
        type="object",
        propertyNames={"pattern": STATUS_KEY_PATTERN},
        additionalProperties={"enum": sorted(o.value for o in ASSIGNABLE_OUTCOMES)},
    ),
]
JMESPath = Annotated[str, PlainValidator(_jmespath), _schema(**_JMESPATH_SCHEMA)]
BaseUrl = Annotated[str, PlainValidator(_base_url), _schema(type="string", pattern=BASE_URL_PATTERN)]
UrlPath = Annotated[str, PlainValidator(_path), _schema(type="string", pattern=PATH_PATTERN)]
HeaderName = Annotated[str, PlainValidator(_header_name), _schema(type="string", pattern=HEADER_NAME_PATTERN)]
HeaderValue = Annotated[str, PlainValidator(_header_value), _schema(type="string", pattern=HEADER_VALUE_PATTERN)]
Headers = Annotated[
    dict[HeaderName, HeaderValue],
    _schema(
        type="object",
        propertyNames={"pattern": HEADER_NAME_PATTERN},
        additionalProperties={"type": "string", "pattern": HEADER_VALUE_PATTERN},
    ),
]
EnvNames = Annotated[
    tuple[EnvName, ...],
    BeforeValidator(_one_or_list),
    _schema(
        anyOf=[
            {"type": "string", "pattern": ENV_PATTERN},
            {"type": "array", "items": {"type": "string", "pattern": ENV_PATTERN}},
        ]
    ),
]
JsonBody = Annotated[Any, PlainValidator(_json_body), WithJsonSchema({})]


# ---------------------------------------------------------------- models


class FileModel(BaseModel):
    """A mapping of the file: unknown keys refused, numbers accepted where text is
    expected (`limit: 50` in params), and `key: null` (or `key:` with nothing after it)
    read as an absent optional key. A required key set to null stays an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    _required_aliases: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        cls._required_aliases = frozenset(f.alias or name for name, f in cls.model_fields.items() if f.is_required())

    @model_validator(mode="before")
    @classmethod
    def _absent_when_null(cls, data: Any) -> Any:
        if isinstance(data, dict) and None in data.values():
            return {k: v for k, v in data.items() if v is not None or k in cls._required_aliases}
        return data


def _inherited(what: str) -> str:
    return f"{what} Set under defaults:, on a provider or on an endpoint; the most specific wins."


class TimingFile(FileModel):
    """The keys `defaults:`, a provider and an endpoint share (the most specific wins)."""

    interval: Interval | None = Field(
        None, description=_inherited(f"Time between probes of the endpoint, at most {format_duration(MAX_INTERVAL)}. Default 60s.")
    )
    timeout: Interval | None = Field(None, description=_inherited("Per-attempt HTTP timeout; not longer than the interval. Default 10s."))
    jitter: JitterValue | None = Field(
        None,
        description=_inherited("Random delay before each probe, a duration or a percentage of the interval; shorter than the interval. Default 10%."),
    )
    slow_threshold: Interval | None = Field(None, description=_inherited("Answers slower than this count as slow. Default: half the timeout."))
    max_body_bytes: Annotated[PositiveInt, Field(le=MAX_BODY_BYTES)] | None = Field(
        None, description=_inherited(f"A larger body is bad_payload. Default {limits.BODY_BYTES_DEFAULT}, at most {MAX_BODY_BYTES}.")
    )
    fresh_connection: Annotated[bool, Strict()] | None = Field(
        None, description=_inherited("A new TCP/TLS connection for each probe, so setup is part of the latency. Default false.")
    )
    expect_status: StatusSet | None = Field(None, description=_inherited("Status codes that mean the API answered: one code or a list. Default [200]."))


class CircuitBreakerFile(FileModel):
    """Consecutive failures open the breaker; an open breaker skips probes (circuit_open)."""

    failure_threshold: PositiveInt | None = Field(
        None, description="Consecutive failures that open the breaker (probes are then skipped as circuit_open). Default 5."
    )
    reset_timeout: Duration | None = Field(
        None, description=f"How long the breaker stays open before a trial probe. Default 60s, at most {format_duration(MAX_DURATION)}."
    )


class DefaultsFile(TimingFile):
    """Timing for every endpoint; providers and endpoints override it."""

    circuit_breaker: CircuitBreakerFile | None = Field(None, description="Circuit breaker of every provider.")


class AuthFile(FileModel):
    """How the key is sent; keys come from env vars, never from this file."""

    type: AuthType = Field(
        examples=["none"],
        description="none, query (?<name>=<key>), header (<name>: <prefix><key>), or path ({key} in base_url or path).",
    )
    name: str = Field("", description="Query parameter or header name (query and header types).")
    prefix: HeaderValue = Field("", description='Put before the key, e.g. "Bearer " or "Apikey ".')
    env: EnvNames = Field(
        (),
        description="Env var(s) holding the key, tried in order (key rotation); NAME_FILE names a file instead. Never put a key in this file.",
    )
    optional: Annotated[bool, Strict()] = Field(False, description="Probe without a key when none is set.")
    retest_after: Duration | None = Field(
        None,
        examples=["15m"],
        description="A key the provider rejected is tried again by one probe after this long (default 15m), so a key "
        "fixed upstream comes back without a restart.",
    )


class QuotaHeaderFile(FileModel):
    """A quota the provider reports in its response headers."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"scope": "minute", "remaining": "X-RateLimit-Remaining"}]})

    scope: Name = Field(examples=["minute"], description="Name of this quota (the `scope` label).")
    limit: HeaderName | None = Field(None, description="Response header with the quota size.")
    remaining: HeaderName | None = Field(None, description="Response header with what is left.")
    reset: HeaderName | None = Field(None, description="Response header with the reset time.")
    used: HeaderName | None = Field(None, description="Response header with what is used (remaining = limit - used).")
    limit_value: PositiveNumber | None = Field(None, description="The quota size when no limit header exists.")
    window: Duration | None = Field(None, description="The window a `used` header counts in; gives the reset time.")
    reset_format: ResetFormat = Field(ResetFormat.AUTO, description="How to read the reset header.")


class BudgetFile(FileModel):
    """The exporter's own cap: at most `requests` per fixed window `per`."""

    requests: PositiveInt = Field(examples=[100], description="At most this many requests per window, across the provider's endpoints.")
    per: Duration = Field(examples=["1d"], description=f"The fixed window, at most {format_duration(MAX_DURATION)}.")


class RateLimitFile(FileModel):
    """The provider's quota headers and the exporter's own budget."""

    headers: tuple[QuotaHeaderFile, ...] = Field((), description="Where the provider reports its own quota.")
    budget: BudgetFile | None = Field(None, description="The exporter's own client-side cap (probes over it are budget_exhausted).")


class ErrorRuleFile(FileModel):
    """An error reported in the body of a 200 answer; the first match decides."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"when": "status == '0'", "outcome": "bad_payload"}]})

    when: JMESPath = Field(examples=["status == '0'"], description="JMESPath; the rule matches when it is truthy.")
    outcome: AssignableOutcome = Field(examples=["bad_payload"], description="The outcome the rule assigns.")
    message: JMESPath | None = Field(None, description="JMESPath to the provider's error text.")


class FreshnessFile(FileModel):
    """How old the payload's data may be before the probe is stale."""

    path: JMESPath = Field(examples=["timestamp"], description="JMESPath to the payload's timestamp.")
    max_age: Duration = Field(examples=["10m"], description=f"Older data is stale; at most {format_duration(MAX_DURATION)}.")
    unit: TimeUnit = Field(TimeUnit.AUTO, description="How to read the timestamp.")


class ValueFile(FileModel):
    """A number extracted from the payload, exported as crypto_api_value."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "btc_usd", "path": "bitcoin.usd"}]})

    name: Name = Field(examples=["btc_usd"], description="Unique within the endpoint; the `name` label of crypto_api_value.")
    path: JMESPath = Field(examples=["bitcoin.usd"], description="JMESPath to a number, a numeric string or a hex string.")
    scale: Scale = Field(1.0, description="A finite positive factor the value is multiplied by.")


# ---- chain heads (issue 11): the `chain:` block of a chain_head endpoint
# A number (an EVM chain id, as YAML writes it) or a hash; read as text either way.
ChainId = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[0-9A-Za-z]+$"),
    _schema(anyOf=[{"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[0-9A-Za-z]+$"}]),
]


class ChainFile(FileModel):
    """The chain a `chain_head` endpoint serves, and how far behind it may be (docs/chains.md)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "ethereum", "protocol": "evm", "id": 1, "block_time": "12s"}]})

    name: Name = Field(examples=["ethereum"], description="The `chain` label; endpoints with the same name are compared with each other.")
    protocol: ChainProtocol = Field(examples=["evm"], description="evm (JSON-RPC eth_*), solana (JSON-RPC getSlot...) or esplora (Bitcoin REST).")
    id: ChainId = Field(
        examples=["1"],
        description="What identifies the chain: the EVM chain id (1), Solana's genesis hash, Bitcoin's genesis block hash.",
    )
    block_time: Duration = Field(examples=["12s"], description="The chain's target block (or slot) time; the defaults below follow from it.")
    max_lag_blocks: Annotated[int, Strict(), Field(ge=0)] | None = Field(
        None, description="Blocks behind the reference head before the probe is stale. Default max(2, round(60s / block_time))."
    )
    max_lag: Duration | None = Field(None, description="Seconds behind the reference head's block time before the probe is stale. Default max(60s, 3 blocks).")
    max_stillness: Duration | None = Field(None, description="How long the head may stand still before the probe is stale. Default max(60s, 10 blocks).")


class EndpointFile(TimingFile):
    """One endpoint, probed on its own schedule; timing keys override the provider's."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "ping", "path": "/ping"}]})

    name: Name = Field(examples=["ping"], description="Unique within the provider; the `endpoint` label.")
    kind: ProbeKind = Field(ProbeKind.HTTP, description="How the endpoint is probed.")
    path: UrlPath = Field("", description="Appended to base_url: empty, or starting with /.")
    method: Method = Field(Method.GET, description="GET, or POST with a `json` body.")
    params: dict[str, str] = Field(
        default_factory=dict, json_schema_extra={"default": {}}, description='Query parameters; quote "true" and "1" to keep them strings.'
    )
    headers: Headers = Field(default_factory=dict, json_schema_extra={"default": {}}, description="Extra request headers (never a key: use auth).")
    json_body: JsonBody = Field(None, alias="json", description="A JSON request body; needs method: POST.")
    format: BodyFormat = Field(BodyFormat.JSON, description="json, or text for plain-text bodies.")
    status_outcomes: StatusOutcomes = Field(
        default_factory=dict, json_schema_extra={"default": {}}, description="Status code to outcome, before the provider's map."
    )
    assertions: tuple[JMESPath, ...] = Field((), description="JMESPath expressions that must all be truthy, else bad_payload.")
    error_rules: tuple[ErrorRuleFile, ...] = Field((), description="Errors in the body of a 200 answer, before the provider's rules.")
    freshness: FreshnessFile | None = Field(None, description="How old the payload's data may be.")
    values: tuple[ValueFile, ...] = Field((), description="Numbers extracted from the payload (crypto_api_value).")
    chain: ChainFile | None = Field(None, description="kind chain_head only: the chain this node serves (docs/chains.md).")
    url: BaseUrl | None = Field(
        None, description="kind chain_head only: the node's URL when it is not base_url + path (one provider, a host per chain); may hold {key}."
    )


class ProviderFile(TimingFile):
    """One API; timing keys override `defaults:` for its endpoints."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "example",
                    "category": "market_data",
                    "base_url": "https://api.example.com",
                    "endpoints": [{"name": "ping", "path": "/ping"}],
                }
            ]
        }
    )

    name: Name = Field(examples=["coingecko"], description="Unique; the `provider` label.")
    category: Category = Field(examples=["market_data"], description="The `category` label.")
    base_url: BaseUrl = Field(
        examples=["https://api.coingecko.com/api/v3"],
        description="http(s) URL without user:password@, query or fragment; may hold {key} for auth type path.",
    )
    endpoints: list[EndpointFile] = Field(min_length=1, examples=[[{"name": "ping", "path": "/ping"}]], description="At least one endpoint.")
    auth: AuthFile | None = Field(None, description="How keys are sent. Default: none.")
    rate_limit: RateLimitFile | None = Field(None, description="Quota headers and client-side budget.")
    circuit_breaker: CircuitBreakerFile | None = Field(None, description="Overrides defaults.circuit_breaker.")
    description: str = Field("", description="Free text, shown by the JSON API.")
    docs_url: str = Field("", description="Free text, shown by the JSON API.")
    status_outcomes: StatusOutcomes = Field(default_factory=dict, json_schema_extra={"default": {}}, description="Status code to outcome, for every endpoint.")
    error_rules: tuple[ErrorRuleFile, ...] = Field((), description="Body error rules for every JSON endpoint, after its own.")
    enabled: Annotated[bool, Strict()] | None = Field(
        None,
        description="true: always probed, even without a key (its probes then end in auth_error); false: never probed "
        "(status disabled). Absent: probed unless it needs a key and none of its auth.env vars is set. "
        "--enable and --disable override it.",
    )


class SelectFile(FileModel):
    """Which providers this exporter runs: those named, and those of the categories listed.
    The command line's --providers and --categories replace it."""

    providers: tuple[Name, ...] = Field((), description="Provider names to run (with those of `categories`).")
    categories: tuple[Category, ...] = Field((), description="Categories whose providers run (with those named in `providers`).")


SHIPPED = "shipped"  # `extends: shipped`: the registry installed with the exporter


class RootFile(FileModel):
    """providers.yaml of Crypto API Exporter (docs/configuration.md)."""

    model_config = ConfigDict(title="providers.yaml")

    extends: str | None = Field(
        None,
        description=f"Load this file first, then this one over it: '{SHIPPED}' (the registry installed with the exporter) or a path, "
        "relative to this file. A provider named as in that file overrides its keys one by one; a new name adds a provider.",
    )
    select: SelectFile | None = Field(None, description="Run only these providers (by name or category); default: all.")
    defaults: DefaultsFile | None = Field(None, description="Timing and circuit breaker for every endpoint.")
    providers: list[ProviderFile] = Field(examples=[[]], description="The APIs to probe.")


# ---------------------------------------------------------------- JSON Schema


class _Schema(GenerateJsonSchema):
    """The file's schema for editors: `key: null` means an absent optional key, so the
    schema shows only the real types; titles of single fields are noise in a tooltip."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        out = super().default_schema(schema)
        if out.get("default", 0) is None:
            del out["default"]
        return out

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        out = super().generate(schema, mode)
        return {"$schema": self.schema_dialect, **out}


def json_schema() -> dict[str, Any]:
    """The models' schema, with one rule they cannot say: a file that `extends:` another
    may name a provider of that file to override some of its keys, so there a provider
    needs only its name (the merged result is checked by the loader), and `providers:`
    itself may be left out."""
    schema = RootFile.model_json_schema(schema_generator=_Schema)
    provider = schema["$defs"]["ProviderFile"]
    complete = provider["required"]
    provider["required"] = ["name"]
    del schema["required"]  # only `providers`, which the `else` below asks for
    schema["if"] = {"required": ["extends"]}
    schema["else"] = {"required": ["providers"], "properties": {"providers": {"items": {"required": complete}}}}
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema_text())
