"""Training and evaluation are two wings that do not import each other (validation figures that
need both live in bench/), and nothing in the product imports training but its CLI."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _imports(folder: str) -> set[tuple[str, str]]:
    """(file, imported module) of every import in ``folder``'s Python files."""
    found = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add((str(path.relative_to(ROOT)), node.module))
            elif isinstance(node, ast.Import):
                found.update((str(path.relative_to(ROOT)), alias.name) for alias in node.names)
    return found


def test_training_and_evaluation_do_not_import_each_other():
    assert not [i for i in _imports("runtime/training") if i[1].startswith("facepaint.runtime.evaluation")]
    assert not [i for i in _imports("runtime/evaluation") if i[1].startswith("facepaint.runtime.training")]


def test_only_the_cli_imports_training():
    users = {file for folder in ("engine", "compile", "plugins", "runtime")
             for file, module in _imports(folder) if module.startswith("facepaint.runtime.training")}
    assert {u for u in users if not u.startswith("runtime/training/")} == {"runtime/cli.py"}
