"""Imports point one way (docs: DESIGN.md, "Layers"), checked over the source's import graph.

shared facts -> client | local -> repro, progress state, result + render -> session, the
embedded default, widgets, magics -> the package surface and the CLI. Neither ``client`` nor
``local`` imports the other, the client never starts the local server, and nothing inside
imports the package surface (``falnb/__init__``). Imports under ``if TYPE_CHECKING:`` are
hints, not dependencies, and do not count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "falnb"

#: Layer of each module, by the longest matching prefix; lower layers never import higher.
LAYERS: dict[str, int] = {
    "falnb._protocol": 0,
    "falnb._values": 0,
    "falnb._display": 0,
    "falnb._config": 0,
    "falnb._errors": 0,
    "falnb._version": 0,
    "falnb._paths": 0,
    "falnb._environment": 0,
    "falnb._settings": 0,
    "falnb._runtime": 0,
    "falnb._comm_pump": 0,
    "falnb._safe_yaml": 0,
    "falnb._fronts": 0,
    "falnb.client": 1,
    "falnb.local": 1,
    "falnb.repro": 2,
    "falnb._progress": 2,
    "falnb.result": 2,
    "falnb.render": 2,
    "falnb.pricing": 2,
    "falnb._usage": 2,
    "falnb.schemas": 2,
    "falnb.session": 3,
    "falnb._embedded": 3,
    "falnb.widgets": 3,
    "falnb.magics": 3,
    "falnb._completion": 3,
    "falnb._magic_parse": 3,
    "falnb._references": 3,
    "falnb.sweeps": 3,
    "falnb.render_grid": 3,
    "falnb.seedchecks": 3,
    "falnb._sweep_api": 4,
    "falnb._notebooks": 0,
    "falnb._demo": 4,
    "falnb.cli": 4,
    "falnb": 4,
}
#: Pairs of module prefixes that must not import each other at all.
APART = [("falnb.client", "falnb.local"), ("falnb.session", "falnb.widgets")]

#: Edges that break the rules today, each with why it is still there. Shrink, never grow.
KNOWN: dict[tuple[str, str], str] = {}


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[str, list[str], int]]:
    """``(module, names, line)`` of each falnb import, skipping ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (i for n in node.orelse for i in _imports(ast.Module([n], [])))
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "falnb":
                yield node.module, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "falnb":
                    yield alias.name, [], node.lineno
        yield from _imports(node)


def edges() -> Iterator[tuple[str, str, int]]:
    """``(importer, imported, line)`` for every import between falnb's modules."""
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        for module, names, line in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if module == "falnb":
                for name in names:  # from falnb import _runtime: the submodule is the edge
                    submodule = PACKAGE / name
                    is_module = submodule.with_suffix(".py").exists() or submodule.is_dir()
                    yield importer, f"falnb.{name}" if is_module else "falnb", line
            else:
                yield importer, module, line


def violations() -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for importer, imported, line in edges():
        if importer == imported or imported.startswith(importer + "."):
            continue  # a package importing its own modules
        where = f"{importer}:{line} imports {imported}"
        if imported == "falnb" and importer != "falnb":
            found[(importer, imported)] = f"{where}: the package surface, from inside"
        elif layer(imported) > layer(importer):
            found[(importer, imported)] = (
                f"{where}: layer {layer(imported)} above {layer(importer)}"
            )
        for a, b in APART:
            for x, y in ((a, b), (b, a)):
                if importer.startswith(x) and (imported == y or imported.startswith(y + ".")):
                    found[(importer, imported)] = f"{where}: {x} and {y} stay apart"
    return found


def test_imports_point_one_way() -> None:
    new = {edge: why for edge, why in violations().items() if edge not in KNOWN}
    assert not new, "imports against the layering:\n" + "\n".join(sorted(new.values()))


def test_every_module_has_a_layer() -> None:
    """A new top-level module is placed in LAYERS deliberately, not by default."""
    placed = [p for p in LAYERS if p != "falnb"]
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")} - {"falnb"}
    unplaced = sorted(
        m for m in modules if not any(m == p or m.startswith(p + ".") for p in placed)
    )
    assert not unplaced, f"add these to LAYERS: {unplaced}"


def test_known_exceptions_are_still_real() -> None:
    """An exception that was fixed leaves the list, so it cannot quietly come back."""
    stale = set(KNOWN) - set(violations())
    assert not stale, f"fixed, remove from KNOWN: {sorted(stale)}"


def test_the_graph_is_read() -> None:
    found = {(a, b) for a, b, _line in edges()}
    assert len(found) > 100
    # Module-level and function-level imports both count.
    assert ("falnb.session", "falnb.repro") in found
    assert ("falnb.client.queue", "falnb._runtime") in found


@pytest.mark.parametrize(
    ("module", "expected"),
    [("falnb._errors", 0), ("falnb.client.errors", 1), ("falnb.widgets.progress", 3)],
)
def test_layers_by_longest_prefix(module: str, expected: int) -> None:
    assert layer(module) == expected


def _public_exceptions(path: Path) -> list[str]:
    """Public classes in ``path`` with a base named like an error (``...Error``, ``Exception``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            bases = [
                b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
            ]
            if any(b.endswith(("Error", "Exception")) for b in bases):
                found.append(f"{module_name(path)}.{node.name}")
    return found


def test_the_client_raises_errors_from_one_module() -> None:
    """The client's error tree has one home, ``client/errors.py`` (its docstring draws it)."""
    elsewhere = [
        name
        for path in sorted((PACKAGE / "client").rglob("*.py"))
        if path.name != "errors.py"
        for name in _public_exceptions(path)
    ]
    assert elsewhere == []
    assert "falnb.client.errors.ConnectionFailedError" in _public_exceptions(
        PACKAGE / "client" / "errors.py"
    )
