"""The mappings package stays pure: never hub, crm_adapter, simulators, dags or Airflow."""
from __future__ import annotations

import ast
from pathlib import Path

import mappings

FORBIDDEN = ("hub", "crm_adapter", "simulators", "airflow", "dags")


def test_mappings_imports_nothing_it_must_not():
    for path in Path(mappings.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
