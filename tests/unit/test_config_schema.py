"""providers.schema.json: generated from the pydantic models, committed, and a real JSON
Schema validator agrees with it on the shipped file and on bad ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from pydantic import BaseModel

from exporter import config_file
from exporter.config import DEFAULT_FILE

ROOT = Path(__file__).parent.parent.parent
SCHEMA = ROOT / "providers.schema.json"
DATA = Path(__file__).parent.parent / "testdata"


def as_json(path: Path) -> Any:
    # What an editor's YAML language server sees: YAML read, then JSON types (int keys become strings).
    return json.loads(json.dumps(yaml.safe_load(path.read_text())))


@pytest.fixture(scope="module")
def validator() -> Any:
    return jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))


def test_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA.read_text() == config_file.schema_text(), (
        "providers.schema.json is stale: regenerate it with `make schema` (or `python -m exporter.config_file > providers.schema.json`) and commit it"
    )


def test_shipped_registry_names_the_schema_on_its_first_line() -> None:
    assert DEFAULT_FILE.read_text().splitlines()[0] == "# yaml-language-server: $schema=./providers.schema.json"


def test_shipped_registry_validates_against_the_committed_schema(validator: Any) -> None:
    errors = [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(as_json(DEFAULT_FILE))]
    assert errors == []


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("invalid-unknown-field.yml", ["providers", 0, "endpoints", 0]),
        ("invalid-duration.yml", ["providers", 0, "endpoints", 0, "interval"]),
        ("invalid-missing-base-url.yml", ["providers", 0]),
        ("invalid-not-a-mapping.yml", []),
        ("invalid-runtime-crashes.yml", ["providers", 0, "endpoints", 0, "headers", "X-Trace"]),
        ("invalid-dropped-entries.yml", ["providers", 1, "category"]),
    ],
)
def test_schema_refuses_bad_files_where_the_loader_does(validator: Any, name: str, path: list[Any]) -> None:
    assert path in [list(e.instance_path) for e in validator.iter_errors(as_json(DATA / name))]


def test_schema_describes_the_file() -> None:
    schema = config_file.json_schema()
    endpoint = schema["$defs"]["EndpointFile"]
    assert endpoint["additionalProperties"] is False
    assert endpoint["properties"]["interval"]["pattern"] == config_file.DURATION_PATTERN
    assert "at most 7d" in endpoint["properties"]["interval"]["description"]
    assert schema["$defs"]["ProbeKind"]["enum"] == ["http", "chain_head"]
    assert schema["$defs"]["Category"]["enum"][0] == "market_data"
    assert all("description" in p for p in endpoint["properties"].values())


def _models() -> list[type[BaseModel]]:
    return [m for m in vars(config_file).values() if isinstance(m, type) and issubclass(m, config_file.FileModel)]


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_required_fields_and_listed_models_have_a_valid_example(model: type[BaseModel]) -> None:
    # After a refusal, exporter.config mends the document with these examples so the
    # checks across fields can still run on the rest of the file: they must validate.
    required = {(f.alias or name): f.examples for name, f in model.model_fields.items() if f.is_required()}
    assert all(required.values()), f"{model.__name__}: every required field needs an example"
    model.model_validate({key: examples[0] for key, examples in required.items() if examples})
    extra = model.model_config.get("json_schema_extra")
    if isinstance(extra, dict) and "examples" in extra:
        model.model_validate(extra["examples"][0])  # type: ignore[index]
