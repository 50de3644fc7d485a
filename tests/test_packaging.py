"""The package list in pyproject.toml must name every subpackage (a strict install or wheel drops the rest)."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"engine": "facepaint.engine", "compile": "facepaint.compile", "runtime": "facepaint.runtime",
          "plugins": "facepaint.plugins"}


def _declared() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(data["tool"]["setuptools"]["packages"])


def test_every_folder_with_init_is_listed() -> None:
    found = set()
    for top, dotted in MAPPED.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join([dotted, *rel.parts]))
    missing = found - _declared()
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_every_listed_package_exists() -> None:
    for name in _declared():
        top, *rest = name.split(".")[1:]
        assert (ROOT / top / Path(*rest) / "__init__.py").is_file(), name


def test_package_dir_maps_each_top_folder() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["tool"]["setuptools"]["package-dir"] == {v: k for k, v in MAPPED.items()}


def test_every_listed_package_imports() -> None:
    import importlib

    for name in sorted(_declared()):
        importlib.import_module(name)


def test_shipped_neural_weights_are_package_data() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["facepaint.engine.neural"]
    shipped = {p.name for pattern in patterns for p in (ROOT / "engine" / "neural").glob(pattern)}
    assert {"face_generator.safetensors", "face_generator.json"} <= shipped
