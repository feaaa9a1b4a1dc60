"""The safety and security cases name their tests; a renamed or deleted test must not
leave a row pointing at nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REF = re.compile(r"(tests/[\w/]+\.py)|::(\w+)")


def _named_tests(doc: Path) -> list[tuple[int, str, str]]:
    found = []
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        current = None
        for path, name in REF.findall(line):
            if path:
                current = path
            elif current is not None:
                found.append((number, current, name))
    return found


def _defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_the_docs_name_exists() -> None:
    missing = []
    docs = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    checked = 0
    for doc in docs:
        for number, path, name in _named_tests(doc):
            checked += 1
            file = ROOT / path
            if not file.is_file() or name not in _defined(file):
                missing.append(f"{doc.name}:{number}: {path}::{name}")
    assert checked > 50  # the parser still finds the references
    assert not missing, "\n".join(missing)


def test_every_test_file_the_docs_name_exists() -> None:
    docs = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    named = {p for doc in docs for p, _ in REF.findall(doc.read_text()) if p}
    assert named
    assert sorted(p for p in named if not (ROOT / p).is_file()) == []
