"""Simulators stand in for vendors: they implement each vendor's format themselves.

A simulator that borrowed the connector's parser, the hub's signer or the CRM adapter's models
would agree with whatever those get wrong, and the tests run against it would prove nothing.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import simulators

FORBIDDEN = ("connectors", "hub", "crm_adapter", "mappings", "dags", "airflow")
SOURCES = sorted(Path(simulators.__file__).resolve().parent.rglob("*.py"))


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            names += [a.value for a in node.args if isinstance(a, ast.Constant)]
    return names


def test_every_simulator_module_is_checked() -> None:
    names = {p.relative_to(SOURCES[0].parent).as_posix() for p in SOURCES}
    assert {"benefits/backoffice.py", "waste/app.py", "crm/app.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(p.parents[1]).as_posix())
def test_no_simulator_imports_what_it_stands_in_front_of(path: Path) -> None:
    bad = [n for n in _imports(path) if n.split(".")[0] in FORBIDDEN]
    assert not bad, f"{path.name} imports {bad}"
