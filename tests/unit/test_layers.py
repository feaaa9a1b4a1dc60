"""The layout's rules, read from the code's own imports (issue 16): what may import what.

- ``drivers`` and ``firmware_bridge`` import nothing of ours but each other's codec;
- nothing in ``controller`` (outside its CLI), ``drivers``, ``dashboard`` or
  ``firmware_bridge`` imports ``simulator``: the controller knows only what a real one could;
- ``simulator`` depends on ``drivers``, ``firmware_bridge`` and the catalogs only;
- only the CLI (the entry point) imports ``dashboard`` from ``controller``;
- ``bench`` imports no test module, and no module takes part in an import cycle.

Imports under ``if TYPE_CHECKING:`` are for the type checker and do not count."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("controller", "drivers", "firmware_bridge", "simulator", "dashboard", "bench")
OURS = (*PACKAGES, "tests")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.Module, module: str) -> set[str]:
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)  # and each name, which may be a module of the package
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name.split(".")[0] in OURS and name != module}


def _graph() -> dict[str, set[str]]:
    graph = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            module = _module(path)
            graph[module] = _runtime_imports(ast.parse(path.read_text()), module)
    return graph


GRAPH = _graph()


def _offenders(
    importer: str, imported: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, names in GRAPH.items()
        if module.split(".")[0] == importer
        for name in names
        if name.split(".")[0] in imported
        and not name.startswith(allowed)
        and not module.startswith(f"{importer}.cli")
    )


def test_the_device_layers_import_nothing_above_them() -> None:
    assert (
        _offenders(
            "drivers", ("controller", "simulator", "dashboard", "bench", "tests"), allowed=()
        )
        == []
    )
    assert _offenders("firmware_bridge", ("controller", "simulator", "dashboard", "drivers")) == []


def test_nothing_the_controller_runs_imports_the_simulator() -> None:
    for importer in ("controller", "drivers", "dashboard", "firmware_bridge"):
        assert _offenders(importer, ("simulator",)) == [], importer


def test_the_simulator_uses_the_devices_and_the_catalogs_only() -> None:
    allowed = ("controller.procedure.catalog", "controller.procedure.fluid_path")
    assert _offenders("simulator", ("controller", "dashboard", "bench", "tests"), allowed) == []


def test_only_the_cli_reaches_the_dashboard_and_bench_imports_no_test() -> None:
    assert _offenders("controller", ("dashboard", "bench", "tests")) == []
    assert _offenders("dashboard", ("bench", "tests")) == []
    assert _offenders("bench", ("tests",)) == []


def test_no_module_is_part_of_an_import_cycle() -> None:
    cycles: list[str] = []
    for start in GRAPH:
        stack: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
        seen: set[str] = set()
        while stack:
            module, path = stack.pop()
            for name in GRAPH.get(module, ()):
                if name == start:
                    cycles.append(" -> ".join((*path, name)))
                elif name in GRAPH and name not in seen:
                    seen.add(name)
                    stack.append((name, (*path, name)))
    assert cycles == []
