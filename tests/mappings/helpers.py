"""Helpers for the mapping tests: a small valid mapping to break in one place at a time."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def valid_mapping(case_type: str = "test_relief") -> dict[str, Any]:
    """A mapping that loads; tests change one thing in it."""
    return {
        "case_type": case_type,
        "description": "test case type",
        "inputs": {
            "rates_account": {"type": "string", "required": True},
            "relief": {"type": "string", "required": True},
            "from_date": {"type": "date", "required": True},
        },
        "code_tables": {"relief_types": {"small business": "SBRR", "charity": "CHARITABLE"}},
        "commands": [{
            "step": "relief",
            "system": "revenues_northgate",
            "operation": "nndr.relief_application",
            "fields": {
                "account_ref": {"from": "rates_account", "transforms": ["strip", "upper"]},
                "relief_type": {"from": "relief", "transforms": [{"lookup": "relief_types"}]},
                "effective_from": {"from": "from_date", "transforms": ["date"]},
            },
        }],
    }


def write_mapping(folder: Path, mapping: dict[str, Any] | str, name: str | None = None) -> Path:
    """Write a mapping (dict or raw YAML text) as ``<case_type>.yaml`` in ``folder``."""
    if isinstance(mapping, dict):
        name = name or mapping["case_type"]
        text = yaml.safe_dump(mapping, sort_keys=False)
    else:
        text = mapping
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path
