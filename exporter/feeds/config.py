"""The feeds file (`feeds.yaml`): which venue streams to hold open, validated into frozen
`FeedSpec`s.

Its own file, not a section of providers.yaml: a feed is not a scheduled probe (no
interval, timeout, budget or key), and the shipped registry stays loadable by itself.
Feeds are off unless a feeds file is given (`--feeds`, env `FEEDS_FILE`): the exporter
never opens a dozen exchange connections nobody asked for. Errors name the feed and the
field (`feeds[binance/trades].max_silence: ...`) and are all reported at once; a bad
file at start stops the process, on reload it keeps the running feeds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .. import limits
from ..config import ConfigError, parse_yaml
from ..config_file import NAME_PATTERN, parse_duration
from .venues import KEEPALIVE, Venue

# Inside the installed package (setup.py copies it there, as it does providers.yaml), else
# at the top of the source tree.
_PACKAGED = Path(__file__).resolve().parent.parent / "feeds.yaml"
SHIPPED = _PACKAGED if _PACKAGED.exists() else Path(__file__).resolve().parent.parent.parent / "feeds.yaml"
ENV_VAR = "FEEDS_FILE"


class OnGap(StrEnum):
    COUNT = "count"  # count it and go on (a monitor does not need a perfect book)
    RECONNECT = "reconnect"  # count it, then reconnect with reason `gap` (resubscribe)


def _duration(value: Any) -> float:
    seconds = parse_duration(value)
    if not 0 < seconds <= limits.CONFIG_DURATION_MAX:
        raise ValueError(f"must be more than 0 and at most {limits.CONFIG_DURATION_MAX:.0f}s")
    return seconds


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimingFile(_Model):
    max_silence: str | None = Field(default=None, description="No data message for this long: reconnect with reason `silence`.")
    ping_interval: str | None = Field(default=None, description="How often to send the venue's keepalive and check that anything arrived.")
    backoff_initial: str | None = None
    backoff_max: str | None = None
    stable_after: str | None = Field(default=None, description="A connection up this long resets the backoff.")
    frozen_after: str | None = Field(default=None, description="A price unchanged this long while messages flow is frozen.")

    @field_validator("max_silence", "ping_interval", "backoff_initial", "backoff_max", "stable_after", "frozen_after")
    @classmethod
    def _check_duration(cls, v: Any) -> Any:
        if v is not None:
            _duration(v)
        return v


class FeedFile(TimingFile):
    provider: str = Field(pattern=NAME_PATTERN)
    name: str = Field(pattern=NAME_PATTERN)
    venue: Venue
    url: str = Field(pattern=r"^wss?://[^\s]+$", max_length=2048)
    subscribe: tuple[dict[str, Any] | str, ...] = Field(min_length=1, max_length=limits.FEED_SUBSCRIBE_MESSAGES)
    on_gap: OnGap = OnGap.COUNT

    @field_validator("subscribe")
    @classmethod
    def _check_size(cls, v: tuple[Any, ...]) -> tuple[Any, ...]:
        for i, message in enumerate(v):
            if len(_serialize(message)) > limits.FEED_SUBSCRIBE_BYTES:
                raise ValueError(f"message {i} is over {limits.FEED_SUBSCRIBE_BYTES} bytes")
        return v


class FeedsRoot(_Model):
    defaults: TimingFile = TimingFile()
    feeds: tuple[FeedFile, ...] = Field(max_length=limits.FEEDS_MAX)


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    max: float = 60.0
    stable_after: float = 60.0


@dataclass(frozen=True)
class FeedSpec:
    provider: str
    name: str
    venue: Venue
    url: str
    subscribe: tuple[str, ...]  # serialized, sent in order after each connect
    max_silence: float = 30.0
    ping_interval: float = 20.0
    backoff: Backoff = Backoff()
    frozen_after: float = 300.0
    on_gap: OnGap = OnGap.COUNT

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider, self.name)


@dataclass(frozen=True)
class FeedsConfig:
    feeds: tuple[FeedSpec, ...] = ()
    source: str = "<none>"


def _serialize(message: dict[str, Any] | str) -> str:
    return message if isinstance(message, str) else orjson.dumps(message).decode()


def _pick(name: str, feed: TimingFile, defaults: TimingFile, fallback: float) -> float:
    value = getattr(feed, name) or getattr(defaults, name)
    return _duration(value) if value is not None else fallback


def _compile(root: FeedsRoot, source: str) -> FeedsConfig:
    specs: list[FeedSpec] = []
    errors: list[str] = []
    seen: set[tuple[str, str]] = set()
    d = root.defaults
    for f in root.feeds:
        if (f.provider, f.name) in seen:
            errors.append(f"feeds[{f.provider}/{f.name}]: duplicate feed (provider and name must be unique)")
            continue
        seen.add((f.provider, f.name))
        backoff = Backoff(_pick("backoff_initial", f, d, 1.0), _pick("backoff_max", f, d, 60.0), _pick("stable_after", f, d, 60.0))
        if backoff.initial > backoff.max:
            errors.append(f"feeds[{f.provider}/{f.name}].backoff_initial: must not exceed backoff_max")
        specs.append(
            FeedSpec(
                provider=f.provider,
                name=f.name,
                venue=f.venue,
                url=f.url,
                subscribe=tuple(_serialize(m) for m in f.subscribe),
                max_silence=_pick("max_silence", f, d, 30.0),
                ping_interval=_pick("ping_interval", f, d, KEEPALIVE[f.venue].interval),
                backoff=backoff,
                frozen_after=_pick("frozen_after", f, d, 300.0),
                on_gap=f.on_gap,
            )
        )
    if errors:
        raise ConfigError(errors)
    return FeedsConfig(tuple(specs), source)


def _where(data: Any, loc: tuple[str | int, ...]) -> str:
    """`feeds[binance/trades].max_silence` for a pydantic location."""
    parts: list[str] = []
    node = data
    for step in loc:
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            item = node[step]
            name = f"{item.get('provider')}/{item.get('name')}" if isinstance(item, dict) and "name" in item else str(step)
            if parts:
                parts[-1] += f"[{name}]"
            else:
                parts.append(f"[{name}]")
            node = item
        else:
            parts.append(str(step))
            node = node.get(step) if isinstance(node, dict) else None
    return ".".join(parts)


def parse_feeds(data: Any, source: str = "<memory>") -> FeedsConfig:
    try:
        root = FeedsRoot.model_validate(data)
    except ValidationError as e:
        lines = [f"{source}: {_where(data, tuple(err['loc']))}: {err['msg']}" for err in e.errors()]
        raise ConfigError(lines[: limits.CONFIG_ERRORS_SHOWN]) from None
    return _compile(root, source)


def load_feeds(path: str | Path) -> FeedsConfig:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError([f"{p}: cannot read the feeds file ({e.strerror})"]) from None
    if len(raw) > limits.CONFIG_FILE_BYTES:
        raise ConfigError([f"{p}: over {limits.CONFIG_FILE_BYTES} bytes"])
    try:
        data = parse_yaml(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError([f"{p}: not a YAML document ({type(e).__name__})"]) from None
    return parse_feeds(data, str(p))


def feeds_path(cli_value: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The feeds file to use: the option, else the env var, else none (feeds off)."""
    value = cli_value or env.get(ENV_VAR) or None
    if value == "shipped":
        return str(SHIPPED)
    return value
