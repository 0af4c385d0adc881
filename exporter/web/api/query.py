"""Pure helpers for request parameters: parsing, validation, pagination. Every mistake
is an `ApiError` (400) that names the parameter."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from .errors import ApiError

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)
MAX_PAGE = 100_000
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


def str_param(query: Mapping[str, str], name: str, max_len: int = 200) -> str | None:
    raw = query.get(name)
    if raw is None or raw.strip() == "":
        return None
    if len(raw) > max_len:
        raise ApiError(400, f"{name}: longer than {max_len} characters", name)
    return raw.strip()


def name_param(query: Mapping[str, str], name: str, known: Sequence[str]) -> str | None:
    """A provider (or endpoint) name that must exist: 404 naming it otherwise."""
    value = str_param(query, name)
    if value is not None and value not in known:
        raise ApiError(404, f"{name}: unknown {name} {_show(value)}", name)
    return value


@dataclass(frozen=True)
class Page:
    items: list[object]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(math.ceil(self.total / self.per_page), 1)


def paginate(items: Sequence[T], page: int, per_page: int) -> Page:
    """Page `page` (1-based) of `items`; a page past the end is empty, not an error."""
    if page < 1 or per_page < 1:
        raise ValueError("page and per_page start at 1")
    start = (page - 1) * per_page
    return Page(list(items[start : start + per_page]), len(items), page, per_page)


def _show(raw: str) -> str:
    """A parameter value echoed in an error, quoted and cut short."""
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")
