"""Read-through lookups for the CRM: a contact-centre agent asks a back office a question live
(which bulky-waste slots are free at this address, what band is this account) through the hub.

One connector per system per process (built from its Airflow Connection), so SOAP clients and
database pools are reused between calls.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from connectors import catalog
from connectors.base import Connector

ConnectorFactory = Callable[[str], Connector]


class Lookups:
    """Answers ``lookup(system, kind, params)`` with a cached connector per system."""

    def __init__(self, factory: ConnectorFactory | None = None) -> None:
        if factory is None:
            from hub.connections import connector_for

            factory = connector_for
        self._factory = factory
        self._connectors: dict[str, Connector] = {}
        self._lock = threading.Lock()

    def connector(self, system: str) -> Connector:
        catalog.entry(system)   # KeyError for an unknown system
        with self._lock:
            if system not in self._connectors:
                self._connectors[system] = self._factory(system)
            return self._connectors[system]

    def lookup(self, system: str, kind: str, params: Mapping[str, Any]) -> Any:
        return self.connector(system).lookup(kind, params)
