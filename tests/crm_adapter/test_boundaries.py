"""crm_adapter stays on its side of the import rules."""
from __future__ import annotations

import ast
from pathlib import Path

import crm_adapter

FORBIDDEN = ("hub", "simulators", "dags", "airflow", "mappings")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_crm_adapter_imports_no_hub_simulators_or_airflow() -> None:
    files = sorted(Path(crm_adapter.__file__).parent.glob("*.py"))
    assert {"models.py", "rest.py", "pull.py", "webhook.py"} <= {f.name for f in files}
    for path in files:
        bad = {n for n in _imports(path) if n.split(".")[0] in FORBIDDEN}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_channel_words_are_read_tolerantly() -> None:
    from crm_adapter.models import normalise_channel

    assert normalise_channel("Phone") == "telephone"
    assert normalise_channel("Face to face") == "face_to_face"
    assert normalise_channel("E-mail") == "email"
    assert normalise_channel("carrier pigeon") == "other"
    assert normalise_channel("") is None and normalise_channel(42) is None
