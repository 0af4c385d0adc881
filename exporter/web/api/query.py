"""Request parameters: parsing, validation, pagination. Every mistake is an `ApiError`
(400, or 404 for an unknown name) that names the parameter.

A query parameter is declared once, as an object that both parses it (for the handler)
and describes it (for the OpenAPI document): the bounds a handler enforces are the ones
the document states."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from ... import limits
from .errors import ApiError
from .models import NAME_MAX, NAME_PATTERN

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)
MAX_PAGE = limits.API_PAGE_MAX
MAX_PER_PAGE = 1000  # the size of the probe history ring
_INT = re.compile(r"-?[0-9]{1,12}")


def int_param(query: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not _INT.fullmatch(raw):
        raise ApiError(400, f"{name}: must be an integer between {lo} and {hi}, got {_show(raw)}", name)
    value = int(raw)
    if not lo <= value <= hi:
        raise ApiError(400, f"{name}: must be between {lo} and {hi}, got {value}", name)
    return value


def enum_param(query: Mapping[str, str], name: str, enum: type[E]) -> E | None:
    """A filter on a closed set; an empty value means no filter (as the old backends had it)."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return enum(raw.strip().lower())
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise ApiError(400, f"{name}: must be one of {allowed}, got {_show(raw)}", name) from None


def str_param(query: Mapping[str, str], name: str, max_len: int = limits.API_STRING_CHARS) -> str | None:
    raw = query.get(name)
    if raw is None or raw.strip() == "":
        return None
    if len(raw) > max_len:
        raise ApiError(400, f"{name}: longer than {max_len} characters", name)
    return raw.strip()


def name_param(query: Mapping[str, str], name: str, known: Collection[str]) -> str | None:
    """A provider (or endpoint) name that must exist: 404 naming it otherwise."""
    value = str_param(query, name)
    if value is not None and value not in known:
        raise ApiError(404, f"{name}: unknown {name} {_show(value)}", name)
    return value


# ---------------------------------------------------------------- declared parameters

Schema = dict[str, Any]


class QueryParam(Protocol):
    """A query parameter as the route table declares it (all of ours are optional): it
    parses itself for the handler and describes itself for the OpenAPI document."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    def parse(self, query: Mapping[str, str]) -> object: ...

    def schema(self) -> Schema: ...


def _filter(schema: Schema) -> Schema:
    """A filter's schema: an empty value means no filter, as the old backends took it."""
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], ""]}
    return {**schema, "pattern": f"^({schema['pattern'][1:-1]})?$"}


@dataclass(frozen=True)
class IntParam:
    name: str
    default: int
    lo: int
    hi: int
    description: str

    def parse(self, query: Mapping[str, str]) -> int:
        return int_param(query, self.name, self.default, self.lo, self.hi)

    def schema(self) -> Schema:
        return {"type": "integer", "minimum": self.lo, "maximum": self.hi, "default": self.default}


@dataclass(frozen=True)
class EnumParam(Generic[E]):
    """A filter on a closed set, case-insensitive; empty: no filter."""

    name: str
    enum: type[E]
    description: str

    def parse(self, query: Mapping[str, str]) -> E | None:
        return enum_param(query, self.name, self.enum)

    def schema(self) -> Schema:
        return _filter({"type": "string", "enum": [e.value for e in self.enum]})


@dataclass(frozen=True)
class StrParam:
    """Free text; empty: no filter."""

    name: str
    description: str
    max_len: int = limits.API_STRING_CHARS

    def parse(self, query: Mapping[str, str]) -> str | None:
        return str_param(query, self.name, self.max_len)

    def schema(self) -> Schema:
        return {"type": "string", "maxLength": self.max_len}


@dataclass(frozen=True)
class NameParam:
    """A configured name; empty: no filter. With `known`, any other name is a 404."""

    name: str
    description: str

    def parse(self, query: Mapping[str, str], known: Collection[str] | None = None) -> str | None:
        if known is None:
            return str_param(query, self.name)
        return name_param(query, self.name, known)

    def schema(self) -> Schema:
        return _filter({"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX})


# ---------------------------------------------------------------- pagination


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(math.ceil(self.total / self.per_page), 1)


def paginate(items: Sequence[T], page: int, per_page: int) -> Page[T]:
    """Page `page` (1-based) of `items`; a page past the end is empty, not an error."""
    if page < 1 or per_page < 1:
        raise ValueError("page and per_page start at 1")
    start = (page - 1) * per_page
    return Page(list(items[start : start + per_page]), len(items), page, per_page)


def _show(raw: str) -> str:
    """A parameter value echoed in an error, quoted and cut short."""
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")
