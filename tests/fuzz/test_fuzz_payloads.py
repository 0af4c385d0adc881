"""Provider answers through the classifier: every body ends in exactly one outcome of the
closed set, and nothing raises.

The bodies start from the simulator's real payload shapes (and its error bodies) for
every endpoint of the shipped registry, and are mutated the ways a broken or hostile
provider answers: truncated, bytes flipped, nested deep, numbers no float can hold,
NaN and Infinity, values of the wrong type, text that is not UTF-8, empty; plus random
bytes. Each goes through `classify_response` with a status code drawn from what APIs
send. A fixed seed and budget (see conftest.py): the same cases on every run, in CI too.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import random
import re
from typing import Any

from hypothesis import given

from exporter import limits
from exporter.classify import PayloadVerdict, classify_response
from exporter.config import Config, Endpoint, load_config
from exporter.model import Outcome
from exporter.simulator import payloads

from .conftest import SEEDS, fuzz_settings

NOW = 1_790_000_000.0
# What classification can end in: the other outcomes (timeout, connection_error,
# circuit_open, budget_exhausted) are decided before there is an answer to classify.
CLASSIFIED = frozenset(
    {Outcome.SUCCESS, Outcome.RATE_LIMITED, Outcome.AUTH_ERROR, Outcome.CLIENT_ERROR, Outcome.SERVER_ERROR, Outcome.BAD_PAYLOAD, Outcome.STALE}
)
STATUSES = [200] * 8 + [201, 202, 204, 206, 301, 302, 304, 400, 401, 402, 403, 404, 418, 429, 430, 451, 500, 502, 503, 504, 520, 530, 100, 999]

HUGE = [
    "1" + "0" * 400,  # no float holds it
    "-" + "9" * 400,
    "7" * 5000,  # past Python's integer digit limit
    "1e999",  # orjson: infinity; the standard parser: inf
    "-1e400",
    "1.5e308",
    "4.9e-324",
    '"0x' + "f" * 300 + '"',  # a hex quantity no float holds
    '"' + "9" * 400 + '"',
    "18446744073709551616",  # 2**64
    "-9223372036854775809",
]
SPECIAL = ["NaN", "Infinity", "-Infinity", "null", "true", "false", '""', "[]", "{}", '"NaN"', '"Infinity"', '"\\ud800"', '"\\u0000"']
NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")

WRONG_TYPES: list[Any] = [
    None, True, False, 0, -1, 1.5, 10**30, -(10**30), float("nan"), float("inf"), -float("inf"), 1e308,
    "", " ", "x", "0x", "0xzz", "0x1b4", "97012.5", "1e999", "nan", "2026-13-45T99:99:99Z", "\ud800", "\x00", "é",
    [], [None], [[[]]], {}, {"": None}, {"status": "0"}, {"error": {"code": -32005}},
]  # fmt: skip


@functools.cache
def registry() -> Config:
    return load_config(env={})


@functools.cache
def bases() -> list[tuple[Endpoint, bytes]]:
    """(endpoint, body) for the simulator's payload of every shipped endpoint, and its
    rate-limit, auth and generic error bodies."""
    market = payloads.Market(random.Random(3))
    out: list[tuple[Endpoint, bytes]] = []
    for p in registry().providers:
        for ep in p.endpoints:
            ctx = payloads.Ctx(p.name, ep.name, NOW, market, dict(ep.params), ep.json)
            bodies = [payloads.generator_for(p.name, ep.name, ep.json)(ctx)]
            bodies += [payloads.error_body(p.name, kind, ctx) for kind in ("rate_limit", "auth", "generic")]
            for body in bodies:
                out.append((ep, body.encode() if isinstance(body, str) else json.dumps(body).encode()))
    return out


def check(status: int, body: bytes, endpoint: Endpoint) -> PayloadVerdict:
    """Classify and assert what every verdict must be: one outcome of the closed set, a
    short detail any encoder takes, finite values, a finite timestamp if any."""
    verdict = classify_response(status, body, endpoint, NOW)
    assert isinstance(verdict, PayloadVerdict)
    assert verdict.outcome in CLASSIFIED, verdict
    assert isinstance(verdict.detail, str) and len(verdict.detail) <= limits.DETAIL_CHARS, verdict.detail
    verdict.detail.encode("utf-8")  # the JSON log renderer and the API take it
    names = [v.name for v in endpoint.values]
    for name, value in verdict.values:
        assert name in names and isinstance(value, float) and math.isfinite(value), verdict.values
    assert verdict.data_timestamp is None or math.isfinite(verdict.data_timestamp)
    if verdict.outcome is Outcome.SUCCESS:
        assert len(verdict.values) == len(endpoint.values)
    return verdict


# ---------------------------------------------------------------- byte-level mutations


def nest(body: bytes, rng: random.Random) -> bytes:
    depth = rng.choice([100, 999, 1000, 1023, 1024, 1025, 5000, 100_000])
    if rng.random() < 0.5 or not body.startswith(b"{"):
        return b"[" * depth + body + b"]" * depth
    # Deep inside a field the rules read, not only around the document.
    head, sep, tail = body.partition(b":")
    return head + sep + b"[" * depth + tail[:-1] + b"]" * depth + b"}"


def mutate(body: bytes, rng: random.Random) -> bytes:
    """One to three edits of the kinds a broken or hostile provider makes."""
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["truncate", "flip", "nest", "huge", "special", "not_utf8", "empty", "insert", "bom", "utf16"])
        if op == "truncate" and body:
            body = body[: rng.randrange(len(body))]
        elif op == "flip" and body:
            data = bytearray(body)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            body = bytes(data)
        elif op == "nest":
            body = nest(body, rng)
        elif op in ("huge", "special"):
            numbers = list(NUMBER.finditer(body))
            token = rng.choice(HUGE if op == "huge" else SPECIAL).encode()
            if numbers:
                m = rng.choice(numbers)
                body = body[: m.start()] + token + body[m.end() :]
            else:
                body = b'{"v": ' + token + b', "body": ' + (body or b"null") + b"}"
        elif op == "not_utf8" and body:
            i = rng.randrange(len(body))
            body = body[:i] + rng.choice([b"\xff", b"\xfe\xff", b"\xc3(", b"\xed\xa0\x80", b"\x80", b"\xf4\x90\x80\x80"]) + body[i:]
        elif op == "empty":
            body = rng.choice([b"", b" ", b"\n", b"\r\n\t ", b"\x00"])
        elif op == "insert" and body:
            i = rng.randrange(len(body))
            body = body[:i] + rng.choice([b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\\u", b"null", b"1e", b"-", b"\x00"]) + body[i:]
        elif op == "bom":
            body = b"\xef\xbb\xbf" + body
        elif op == "utf16":
            with contextlib.suppress(UnicodeDecodeError):  # already not UTF-8: leave it so
                body = body.decode("utf-8").encode(rng.choice(["utf-16", "utf-16-le", "utf-32"]))
    return body


@fuzz_settings(max_examples=3000)
@given(seed=SEEDS)
def test_mutated_payloads_end_in_one_outcome(seed: int) -> None:
    rng = random.Random(seed)
    endpoint, body = rng.choice(bases())
    check(rng.choice(STATUSES), mutate(body, rng), endpoint)


# ---------------------------------------------------------------- values of the wrong type


DEEP = "__deep__"  # stands for a value nested deep, spliced in as text (json.dumps would recurse)


def replace_somewhere(doc: Any, rng: random.Random) -> Any:
    """The document with one value somewhere in it (or the whole) replaced."""
    if not isinstance(doc, (dict, list)) or not doc or rng.random() < 0.15:
        return DEEP if rng.random() < 0.1 else rng.choice(WRONG_TYPES)
    if isinstance(doc, dict):
        key = rng.choice(list(doc))
        return {**doc, key: replace_somewhere(doc[key], rng)}
    i = rng.randrange(len(doc))
    return [*doc[:i], replace_somewhere(doc[i], rng), *doc[i + 1 :]]


@fuzz_settings(max_examples=2000)
@given(seed=SEEDS)
def test_values_of_the_wrong_type_end_in_one_outcome(seed: int) -> None:
    rng = random.Random(seed)
    endpoint, body = rng.choice(bases())
    try:
        doc = json.loads(body)
    except ValueError:  # a plain-text payload: a JSON value where a number was expected
        doc = None
    for _ in range(rng.randint(1, 3)):
        doc = replace_somewhere(doc, rng)
    body = json.dumps(doc, allow_nan=True).encode()
    # Around the bound: orjson reads 1,024 levels, and what walks the value recursively
    # (`to_string` in error rules) gives up a little earlier.
    depth = rng.choice([10, 900, 990, 1000, 1020, 1024, 1025])
    body = body.replace(b'"' + DEEP.encode() + b'"', b"[" * depth + b'"rate limit"' + b"]" * depth)
    check(rng.choice(STATUSES), body, endpoint)


# ---------------------------------------------------------------- random bytes


@fuzz_settings(max_examples=1000)
@given(seed=SEEDS)
def test_random_bytes_end_in_one_outcome(seed: int) -> None:
    rng = random.Random(seed)
    endpoint, _ = rng.choice(bases())
    alphabet = bytes(range(256)) if rng.random() < 0.5 else b'{}[]",:0123456789.eE+-truefalsnNIy \\u\n'
    body = bytes(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 2, 16, 256, 4096])))
    check(rng.choice(STATUSES), body, endpoint)


# ---------------------------------------------------------------- the bases are real


def test_the_bases_are_the_simulators_real_answers() -> None:
    """Mutations start from answers the registry accepts: each endpoint's payload is a
    success with HTTP 200 (tests/unit/test_registry.py checks it in depth)."""
    endpoints = {id(ep) for p in registry().providers for ep in p.endpoints}
    seen = {id(ep) for ep, _ in bases()}
    assert seen == endpoints and len(bases()) == 4 * len(endpoints)
    payload_bodies = bases()[::4]  # the first of each endpoint's four is its payload
    outcomes = [check(200, body, ep).outcome for ep, body in payload_bodies]
    assert outcomes.count(Outcome.SUCCESS) >= 0.8 * len(outcomes), outcomes
