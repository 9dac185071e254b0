"""CRM cases the mapping tests run over: the demo cases and every domain's own sample cases.

``simulators.world.demo_cases()`` is what the demo seeds; each back-office simulator also ships
``sample_cases()`` for its domain, and a mapping file may carry ``examples:``. Nothing here is a
hand-kept list: the domains come from the connector catalogue, the examples from the mappings.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any

from connectors import catalog
from mappings.loader import load_mappings
from simulators import world


def _sample_modules() -> list[tuple[str, Any]]:
    """``simulators.<domain>.sample`` of every catalogue domain that has one (derived, not listed)."""
    found = []
    for domain in sorted({e.domain for e in catalog.SYSTEMS.values()}):
        try:
            found.append((domain, importlib.import_module(f"simulators.{domain}.sample")))
        except ModuleNotFoundError:
            continue
    return found


def domain_sample_cases() -> list[dict[str, Any]]:
    """Every domain's sample cases, each with an ``id`` (theirs, or ``SAMPLE-<domain>-<n>``)."""
    cases: list[dict[str, Any]] = []
    for domain, module in _sample_modules():
        sample_cases = getattr(module, "sample_cases", None)
        if sample_cases is None:
            continue
        takes_today = bool(inspect.signature(sample_cases).parameters)
        found = sample_cases(world.demo_today()) if takes_today else sample_cases()
        for n, case in enumerate(found, start=1):
            cases.append({"id": case.get("id") or f"SAMPLE-{domain}-{n:04d}",
                          "case_type": case["case_type"], "data": case["data"]})
    return cases


def mapping_examples() -> list[dict[str, Any]]:
    """The ``examples:`` of every shipped mapping, as cases (``EXAMPLE-<case type>-<n>``)."""
    mapping_set = load_mappings()
    return [{"id": f"EXAMPLE-{case_type}-{n}", "case_type": case_type, "data": dict(example)}
            for case_type in mapping_set.case_types
            for n, example in enumerate(mapping_set.mapping(case_type).examples, start=1)]


def all_cases() -> list[dict[str, Any]]:
    """The demo cases, every domain's sample cases (a case may appear in both) and every
    mapping's examples."""
    return world.demo_cases() + domain_sample_cases() + mapping_examples()


def cases_of(case_type: str) -> list[dict[str, Any]]:
    return [c for c in all_cases() if c["case_type"] == case_type]
