"""The package's import graph: no cycles, data flowing one way, and the web layer kept
away from the composition root and the probe kinds.

Imports are read from the source with `ast` (every import statement, also the ones
inside functions and under TYPE_CHECKING), so a lazy import cannot hide a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "exporter"

# Bottom to top: a module may import its own layer's modules and lower layers' only.
# Every module of the package must be placed here, so a new one is placed on purpose.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("exporter", "exporter.limits", "exporter.safejson", "exporter.model", "exporter.families", "exporter.redact", "exporter.logs", "exporter.shard"),
    ("exporter.traffic*",),  # the users' own APIs middleware (issue 15): standalone, imports no other module
    ("exporter.chains",),  # pure consensus rules and their records: config.py compiles ChainSpec
    ("exporter.config", "exporter.config_file", "exporter.selection", "exporter.sharding"),
    (
        "exporter.classify",
        "exporter.ratelimit",
        "exporter.circuit",
        "exporter.keys",
        "exporter.frozen",
        "exporter.feeds",
        "exporter.feeds.config",
        "exporter.feeds.venues",
        "exporter.feeds.sequence",
    ),
    ("exporter.simulator*",),
    ("exporter.runtime",),
    ("exporter.probes*",),
    ("exporter.scheduler",),
    ("exporter.state", "exporter.feeds.state"),
    ("exporter.metrics", "exporter.feeds.metrics", "exporter.feeds.runner", "exporter.feeds.wire", "exporter.feeds.process"),
    ("exporter.incidents*",),  # the incident service's core (issue 16): the web layer serves it
    ("exporter.web*",),
    ("exporter.app",),
    ("exporter.demo",),
    ("exporter.cli", "exporter.__main__", "exporter.feeds.worker"),  # the feeds process's entry point (feeds/process.py)
)
# The web layer talks to the running exporter through web/control.py's Protocol only.
WEB_MUST_NOT_IMPORT = ("exporter.app", "exporter.demo", "exporter.cli", "exporter.probes*", "exporter.scheduler", "exporter.runtime")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The package modules `name` imports, resolved to the most specific known module."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from . import http` names a module; `from .x import f` names x.
            targets = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: set(imports_of(name, path, known)) for name, path in mods.items()}


def matches(name: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        stem = pattern[:-1]
        return name == stem or name.startswith(stem + ".")
    return name == pattern


def layer_of(name: str) -> int:
    for i, layer in enumerate(LAYERS):
        if any(matches(name, p) for p in layer):
            return i
    raise AssertionError(f"{name} is in no layer of tests/unit/test_architecture.py: place it in LAYERS")


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_graph_is_read() -> None:
    edges = graph()
    # A sanity check that the parser sees real edges, lazy and relative ones included.
    assert "exporter.web.control" in edges["exporter.web.api.routes"]
    assert "exporter.probes.http" in edges["exporter.probes"]
    assert "exporter.demo" in edges["exporter.cli"]  # imported inside a function


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_module_has_a_layer() -> None:
    for name in modules():
        layer_of(name)


def test_data_flows_one_way() -> None:
    upward = [
        f"{name} (layer {layer_of(name)}) imports {dep} (layer {layer_of(dep)})"
        for name, deps in graph().items()
        for dep in sorted(deps)
        if layer_of(dep) > layer_of(name)
    ]
    assert not upward, "imports against the flow:\n" + "\n".join(upward)


def test_web_layer_knows_neither_the_root_nor_a_probe_kind() -> None:
    bad = [
        f"{name} imports {dep}"
        for name, deps in graph().items()
        if matches(name, "exporter.web*")
        for dep in sorted(deps)
        if any(matches(dep, p) for p in WEB_MUST_NOT_IMPORT)
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("edges", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
    ],
)
def test_find_cycle(edges: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert find_cycle(edges) == cycle


def test_a_web_import_of_the_root_would_fail(tmp_path: Path) -> None:
    """The check itself: a web module importing the root is reported."""
    fake = tmp_path / "exporter" / "web"
    fake.mkdir(parents=True)
    (tmp_path / "exporter" / "__init__.py").write_text("")
    (tmp_path / "exporter" / "app.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "bad.py").write_text("from ..app import Exporter\n")
    known = {"exporter", "exporter.app", "exporter.web", "exporter.web.bad"}
    deps = set(imports_of("exporter.web.bad", fake / "bad.py", known))
    assert deps == {"exporter.app"}
    assert any(matches(d, p) for d in deps for p in WEB_MUST_NOT_IMPORT)
