"""families.py against the documented contract (docs/metrics.md, DESIGN.md's table): the
same names, types and label names, and a renderer that writes exactly those."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from exporter import families
from exporter.families import CHAIN_HEADS, CONTRACT, SERVER, MetricType
from exporter.metrics import Exposition, build_registry
from exporter.state import State

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
_ROW = re.compile(r"^\| `(crypto_api_[a-z_]+)` \| ([a-z ()]+?) \|([a-z_, ]*)\|", re.M)


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (type, label names) from the contract tables of docs/metrics.md."""
    out = {}
    for name, type_, labels in _ROW.findall(DOC.read_text()):
        out[name] = (type_.split()[0], tuple(x.strip() for x in labels.split(",") if x.strip()))
    return out


def test_contract_matches_the_documentation() -> None:
    docs = documented()
    assert len(CONTRACT) == 26 and len(CHAIN_HEADS) == 8  # 22, and issue 11: value last change, maintenance and its window
    feeds = (*families.FEEDS, *families.FEEDS_EXTRA, *families.INCIDENTS)  # docs/metrics.md "Feeds" and "Incidents"
    assert {f.name for f in (*CONTRACT, *CHAIN_HEADS, *feeds)} == set(docs)
    for family in (*CONTRACT, *CHAIN_HEADS, *feeds):
        assert (family.type.value, family.labels) == docs[family.name], family.name


def test_names_are_unique_and_well_formed() -> None:
    names = [f.name for f in (*CONTRACT, *CHAIN_HEADS, *SERVER)]
    assert len(names) == len(set(names))
    for f in (*CONTRACT, *CHAIN_HEADS, *SERVER):
        assert re.fullmatch(r"crypto_api_[a-z_]+", f.name), f.name
        assert f.name.endswith("_total") == (f.type is MetricType.COUNTER), f.name
        assert f.help and f.help.endswith(".")


def test_the_renderer_writes_the_contract_families_in_order_with_their_help() -> None:
    text = Exposition(State(), build_registry(process_metrics=False)).render().decode()
    headers = re.findall(r"^# HELP (crypto_api_[a-z_]+) (.*)$", text, re.M)
    ours = [(n, h) for n, h in headers if not n.startswith("crypto_api_exporter_")]
    assert ours == [(f.name, f.help) for f in CONTRACT]
    parsed = {f.name: f.type for f in text_string_to_metric_families(text)}
    for family in CONTRACT:
        assert parsed[family.base_name] == family.type.value


def test_buckets_are_sorted_and_positive() -> None:
    for buckets in (families.DURATION_BUCKETS, families.DELAY_BUCKETS):
        assert list(buckets) == sorted(set(buckets)) and buckets[0] > 0
