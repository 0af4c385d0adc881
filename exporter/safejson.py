"""JSON from outside (provider payloads, API request bodies, WebSocket messages), parsed
within a nesting bound and never raising anything but `JsonError`.

orjson first (several times faster; it refuses documents nested deeper than 1,024
levels). What it refuses but APIs send (NaN, Infinity, integers beyond 64 bits) goes to
the standard parser, whose recursion would otherwise end in a RecursionError, and whose
integer conversion refuses more than 4,300 digits with a ValueError: both become a
JsonError here, as does anything nested deeper than the caller's bound.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from . import limits


class JsonError(ValueError):
    """Not acceptable JSON; the message is short and safe to show (no input echoed)."""


def depth(value: Any, bound: int) -> int:
    """The nesting depth of a parsed value, counting no further than `bound` + 1
    (iterative: a deep value cannot exhaust the stack here)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if deepest > bound:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def loads(raw: bytes | str, max_depth: int = limits.PAYLOAD_JSON_DEPTH) -> Any:
    """The parsed document, or JsonError saying why not."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        if "depth" in str(e) or "recursion" in str(e):
            raise JsonError(f"nested deeper than {max_depth} levels") from None
        value = _fallback(raw)
    if max_depth < limits.PAYLOAD_JSON_DEPTH and depth(value, max_depth) > max_depth:
        raise JsonError(f"nested deeper than {max_depth} levels")
    return value


def _fallback(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise JsonError(f"nested deeper than {limits.PAYLOAD_JSON_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise JsonError("not UTF-8") from None
    except json.JSONDecodeError as e:
        raise JsonError(f"not JSON ({e.msg} at byte {e.pos})") from None
    except ValueError as e:  # integers beyond Python's digit limit
        raise JsonError(f"not usable JSON ({str(e).split(':')[0]})") from None
