"""The back-office systems the hub knows, by system id (``<domain>_<system>``).

Entries are import paths so that reading the catalogue (for mapping validation, DAG files, the
demo) never imports a transport library. Adding a system = one entry here.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

    from connectors.base import Connector


@dataclass(frozen=True)
class SystemEntry:
    system_id: str
    domain: str
    connector: str
    """``module:Class`` of the connector."""
    operations: str
    """``module:NAME`` of its operation-model mapping (light: pydantic only)."""
    team: str
    """The back-office team that receives its work items."""


SYSTEMS: dict[str, SystemEntry] = {
    e.system_id: e
    for e in [
        SystemEntry("revenues_northgate", "revenues",
                    "connectors.revenues.northgate:NorthgateConnector",
                    "connectors.revenues.operations:OPERATIONS", "revenues"),
        SystemEntry("benefits_academy", "benefits",
                    "connectors.benefits.academy:AcademyConnector",
                    "connectors.benefits.operations:OPERATIONS", "benefits"),
        SystemEntry("licensing_uniform", "licensing",
                    "connectors.licensing.uniform:UniformConnector",
                    "connectors.licensing.operations:OPERATIONS", "licensing"),
        SystemEntry("waste_bartec", "waste",
                    "connectors.waste.bartec:BartecConnector",
                    "connectors.waste.operations:OPERATIONS", "waste"),
        SystemEntry("housing_repairs", "housing",
                    "connectors.housing.repairs:RepairsConnector",
                    "connectors.housing.operations:OPERATIONS", "housing"),
    ]
}


def _load(path: str) -> object:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def entry(system_id: str) -> SystemEntry:
    try:
        return SYSTEMS[system_id]
    except KeyError:
        raise KeyError(f"unknown back-office system {system_id!r}; known: {sorted(SYSTEMS)}") from None


def operations(system_id: str) -> Mapping[str, type["BaseModel"]]:
    return _load(entry(system_id).operations)  # type: ignore[return-value]


def connector_class(system_id: str) -> type["Connector"]:
    return _load(entry(system_id).connector)  # type: ignore[return-value]
