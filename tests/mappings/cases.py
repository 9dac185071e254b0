"""CRM cases the mapping tests run over: the demo cases and every domain's own sample cases.

``simulators.world.demo_cases()`` is what the demo seeds; each back-office simulator also ships
``sample_cases()`` for its domain. The lead adds domains to the demo over time, so the tests use
both, and pass before and after.
"""
from __future__ import annotations

from typing import Any

from simulators import world
from simulators.benefits import sample as benefits
from simulators.housing import sample as housing
from simulators.licensing import sample as licensing
from simulators.waste import sample as waste


def domain_sample_cases() -> list[dict[str, Any]]:
    """Every domain's sample cases, each with an ``id`` (theirs, or ``SAMPLE-<domain>-<n>``)."""
    cases: list[dict[str, Any]] = []
    for domain, found in [("waste", waste.sample_cases(world.demo_today())),
                          ("benefits", benefits.sample_cases()),
                          ("licensing", licensing.sample_cases()),
                          ("housing", housing.sample_cases(world.demo_today()))]:
        for n, case in enumerate(found, start=1):
            cases.append({"id": case.get("id") or f"SAMPLE-{domain}-{n:04d}",
                          "case_type": case["case_type"], "data": case["data"]})
    return cases


def all_cases() -> list[dict[str, Any]]:
    """The demo cases followed by every domain's sample cases (a case may appear in both)."""
    return world.demo_cases() + domain_sample_cases()


def cases_of(case_type: str) -> list[dict[str, Any]]:
    return [c for c in all_cases() if c["case_type"] == case_type]
