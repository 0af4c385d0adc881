"""/openapi.json is generated from the route table and the typed models: it must cover
exactly the routes the server answers, be valid OpenAPI 3.1, and state the parameter
bounds the handlers enforce. (Whether answers match it: test_schemathesis.py.)"""

from __future__ import annotations

import re

import openapi_spec_validator  # a dev dependency (pyproject.toml): never skipped
import pytest
import schemathesis
from schemathesis.core.result import Err, Ok

from exporter.config import load_config
from exporter.web.api import DOCUMENT, ROUTES
from exporter.web.api.errors import ApiError
from exporter.web.api.events import TypesParam
from exporter.web.api.incidents import SinceParam
from exporter.web.api.models import CONTROL_TYPES, EVENT_TYPES, NAME_MAX, NAME_PATTERN
from exporter.web.api.query import EnumParam, IntParam, NameParam, QueryParam, StrParam

from .conftest import ApiHarness

PARAMS: list[tuple[str, QueryParam]] = [(f"{op.method} {op.path} ?{p.name}", p) for op in ROUTES for p in op.params]


def documented() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in DOCUMENT["paths"].items() for method in ops}


async def test_every_served_route_is_documented_and_every_documented_route_is_served(api: ApiHarness) -> None:
    # HEAD is aiohttp's companion of some GETs: not an operation of its own.
    served = {(r.method, r.resource.canonical) for r in api.app.router.routes() if r.method != "HEAD" and r.resource is not None}
    assert not served - documented(), "served but not in /openapi.json (add them to routes.ROUTES)"
    assert not documented() - served, "in /openapi.json but not served"
    assert len(ROUTES) == len(served)  # one table row per route, none twice


def test_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"] == "3.1.0"
    openapi_spec_validator.validate(DOCUMENT)  # the 3.1 meta-schema, and every $ref resolves


def test_schemathesis_loads_every_operation() -> None:
    results = list(schemathesis.openapi.from_dict(DOCUMENT).get_all_operations())
    assert [r.err() for r in results if isinstance(r, Err)] == []
    assert {(r.ok().method.upper(), r.ok().path) for r in results if isinstance(r, Ok)} == documented()


def test_every_answer_has_a_schema() -> None:
    for path, ops in DOCUMENT["paths"].items():
        for method, op in ops.items():
            for code, answer in op["responses"].items():
                if "$ref" not in answer:
                    assert all("schema" in c for c in answer["content"].values()), (method, path, code)


def test_websocket_union_covers_every_message_type() -> None:
    union = DOCUMENT["components"]["schemas"]["WsMessage"]
    assert set(union["discriminator"]["mapping"]) == {*EVENT_TYPES, *CONTROL_TYPES}
    assert DOCUMENT["paths"]["/ws/live"]["get"]["responses"]["101"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/WsMessage"}


def test_nulls_as_json_schema_2020_12() -> None:
    """3.1 has no `nullable`: a null is one of the types."""
    last_fetch = DOCUMENT["components"]["schemas"]["Provider"]["properties"]["last_fetch"]
    assert last_fetch == {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
    assert "nullable" not in str(DOCUMENT)


def test_configured_names_match_the_documented_name_pattern() -> None:
    """Else schemathesis (and clients that validate) could not send a real provider name."""
    config = load_config(env={})
    names = [p.name for p in config.providers] + [ep.name for p in config.providers for ep in p.endpoints]
    assert [n for n in names if not re.fullmatch(NAME_PATTERN, n) or len(n) > NAME_MAX] == []


@pytest.mark.parametrize(("where", "param"), PARAMS, ids=[w for w, _ in PARAMS])
def test_a_parameter_accepts_what_it_documents_and_rejects_the_rest(where: str, param: QueryParam) -> None:
    schema = param.schema()
    good: list[str] = [""] if schema.get("type") == "string" else []
    bad: list[str] = []
    if isinstance(param, IntParam):
        assert schema["default"] == param.parse({})
        good += [str(schema["minimum"]), str(schema["maximum"])]
        bad += [str(schema["minimum"] - 1), str(schema["maximum"] + 1), "x"]
    elif isinstance(param, EnumParam):
        good += schema["enum"]
        bad += ["nope"]
    elif isinstance(param, StrParam):
        good += ["x" * schema["maxLength"]]
        bad += ["x" * (schema["maxLength"] + 1)]
    elif isinstance(param, NameParam):
        good += ["binance"]
        assert re.fullmatch(schema["pattern"], "binance") and re.fullmatch(schema["pattern"], "")
    elif isinstance(param, TypesParam):
        good += [",".join(EVENT_TYPES)]
        bad += ["nonsense"]
    elif isinstance(param, SinceParam):  # incidents: a time or a duration back
        good += ["", "30m", "7d", "2026-05-01T12:00:00Z", "2026-05-01T12:00:00.123456+02:00"]
        bad += ["yesterday", "5y", "2026-13-01T00:00:00Z"]
    else:
        pytest.fail(f"{where}: a parameter kind this test does not know")
    for value in good:
        param.parse({param.name: value})
    for value in bad:
        with pytest.raises(ApiError) as e:
            param.parse({param.name: value})
        assert e.value.status == 400 and e.value.field == param.name


async def test_docs_page_shows_every_route_and_schema(api: ApiHarness) -> None:
    async with api.http.get(f"{api.base}/docs") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
    assert all(f"<code>{path}</code>" in page for path in DOCUMENT["paths"])
    assert all(f"id='{name}'" in page for name in DOCUMENT["components"]["schemas"])
