"""The layout's rules, held by the code's own imports (see docs/architecture.md).

- Client code (`mock_qrm/client`, `mock_qrm/cli`, `mock_qrm/testing`, `qrm_tui`) imports
  of the server only its faces: `mock_qrm.app` and `mock_qrm.receiver`; besides those,
  the contract and the client.
- The client imports the contract and nothing else of mock_qrm; the contract imports
  nothing of mock_qrm but itself and the fixtures' location.
- No import cycles in mock_qrm and qrm_tui (imports that run: those under
  `if TYPE_CHECKING:` are annotations, not imports).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("mock_qrm", "qrm_tui")

CLIENT_CODE = ("mock_qrm.client", "mock_qrm.cli", "mock_qrm.testing", "qrm_tui")
FACES = ("mock_qrm.app", "mock_qrm.receiver")
SHARED = ("mock_qrm.contract", "mock_qrm.client")


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@cache
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _owner(name: str) -> str:
    """The module an imported name lives in (`mock_qrm.client.calls` for `...calls.Call`)."""
    known = modules()
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def imports(module: str) -> Iterator[tuple[int, str]]:
    """(line, module imported) for each import of mock_qrm or qrm_tui that runs."""
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                target = name if name in modules() else _owner(node.module)
                if target.split(".")[0] in PACKAGES:
                    yield node.lineno, target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    yield node.lineno, _owner(alias.name)


def _own_package(module: str) -> tuple[str, ...]:
    return tuple(p for p in CLIENT_CODE if _under(module, (p,)))


def test_client_code_imports_only_the_faces_the_contract_and_the_client() -> None:
    wrong = [
        f"{modules()[module].relative_to(ROOT)}:{line} imports {target}"
        for module in modules()
        if _under(module, CLIENT_CODE)
        for line, target in imports(module)
        if target.startswith("mock_qrm")
        and target not in ("mock_qrm", *FACES)
        and not _under(target, SHARED + _own_package(module))
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("layer", "allowed"),
    [
        ("mock_qrm.client", ("mock_qrm", "mock_qrm.contract", "mock_qrm.client")),
        ("mock_qrm.contract", ("mock_qrm", "mock_qrm.fixtures", "mock_qrm.contract")),
    ],
)
def test_the_shared_layers_import_nothing_above_them(layer: str, allowed: tuple[str, ...]) -> None:
    wrong = [
        f"{modules()[module].relative_to(ROOT)}:{line} imports {target}"
        for module in modules()
        if _under(module, (layer,))
        for line, target in imports(module)
        if target != "mock_qrm" and not _under(target, allowed[1:])
    ]
    assert wrong == []


def test_there_are_no_import_cycles() -> None:
    graph = {module: {t for _, t in imports(module) if t != module} for module in modules()}
    cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert cycles == []


def test_the_rules_see_the_imports_they_judge() -> None:
    """The checks above would pass on nothing: they find the imports they should."""
    seen = dict((target, line) for line, target in imports("mock_qrm.testing.qrm"))
    assert "mock_qrm.app" in seen and "mock_qrm.client.http" in seen
    assert "mock_qrm.server.service" in {t for _, t in imports("mock_qrm.app")}
