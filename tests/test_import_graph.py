"""The import graph: ``facepaint.engine`` never imports ``facepaint.compile`` or ``facepaint.runtime``.

The engine is the bottom layer: compile/ builds what it runs and runtime/ drives it, never the other
way round (a cycle through them made the engine compile inside its own constructor). Every module of
engine/ is read as source, and every dependency it names counts: module-level imports, imports
inside functions (lazy ones run too, just later), imports under ``if TYPE_CHECKING:`` (a type from
runtime/ in an engine signature is a dependency on runtime/ all the same, and mypy follows it), and
``"package.module:attr"`` strings, which ``engine.backends.base.load_object`` imports by name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("facepaint.compile", "facepaint.runtime")
# A "module:attr" target as the backend and stage tables write them.
_TARGET = re.compile(r"^(facepaint(?:\.\w+)+):\w+$")


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every dependency ``source`` names, anywhere in it.

    Args:
        source: A module's text.
        package: The dotted package it lives in (for relative imports).
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found += [(node.lineno, base)] + [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _TARGET.match(node.value)
            if match:
                found.append((node.lineno, match.group(1)))
    return found


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN)


def test_engine_never_imports_compile_or_runtime() -> None:
    found = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        package = ".".join(["facepaint.engine", *path.parent.relative_to(ROOT / "engine").parts])
        found += [f"{path.relative_to(ROOT)}:{line}: {module}"
                  for line, module in imported_modules(path.read_text(), package) if _forbidden(module)]
    assert found == [], "engine/ must not depend on compile/ or runtime/:\n" + "\n".join(found)


def test_the_walk_sees_lazy_type_only_and_by_name_imports() -> None:
    """The guard itself: each way an engine module could reach compile/ or runtime/ is caught."""
    source = '''
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from facepaint.runtime.config import AppConfig
def build():
    from facepaint.compile.models import compile_one
    import facepaint.compile.onnx
EXPORTER = "facepaint.compile.onnx:export_model"
from ...runtime import session
from .backends import base
'''
    forbidden = {(line, module) for line, module in imported_modules(source, "facepaint.engine.neural")
                 if _forbidden(module)}
    assert {line for line, _ in forbidden} == {4, 6, 7, 8, 9}
    assert {"facepaint.runtime.config", "facepaint.compile.models", "facepaint.compile.onnx",
            "facepaint.runtime.session"} <= {module for _, module in forbidden}
    allowed = {module for _, module in imported_modules(source, "facepaint.engine.neural") if not _forbidden(module)}
    assert "facepaint.engine.neural.backends.base" in allowed
