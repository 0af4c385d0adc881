"""exporter/limits.py and docs/limits.md agree: every bound is documented with its value."""

from __future__ import annotations

import re
from pathlib import Path

from exporter import limits

DOC = (Path(__file__).resolve().parents[2] / "docs" / "limits.md").read_text()


def constants() -> dict[str, float]:
    return {name: value for name, value in vars(limits).items() if name.isupper() and name not in ("KIB", "MIB")}


def test_every_bound_is_documented() -> None:
    missing = [name for name in constants() if f"`{name}`" not in DOC]
    assert not missing, f"docs/limits.md does not name: {missing}"


def test_documented_names_exist() -> None:
    named = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", DOC))
    assert named <= set(constants()), named - set(constants())


def test_bounds_are_positive() -> None:
    assert all(value > 0 for value in constants().values())
