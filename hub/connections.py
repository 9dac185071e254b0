"""Build connectors and the CRM client from Airflow Connections (the small adapter of the design).

Connectors never import Airflow: this module reads the Connection (``BaseHook.get_connection`` works
inside tasks and in the CLI, including ``AIRFLOW_CONN_<ID>`` environment variables) and hands its
fields to the connector's typed ``Config.from_connection``, which keeps only allowlisted extras.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors import catalog
from connectors.base import Connector
from connectors.errors import PermanentError
from crm_adapter.rest import CrmClient

CRM_CONN_ID = "crm"


def _connection_fields(conn_id: str) -> dict[str, Any]:
    from airflow.sdk import BaseHook   # imported here: nothing Airflow at module import

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:   # Airflow raises its own not-found error types
        raise PermanentError(f"Airflow connection {conn_id!r} is not defined") from exc
    return {"host": conn.host, "port": conn.port, "login": conn.login, "password": conn.password,
            "schema": conn.schema, "extra": conn.extra_dejson}


def connector_for(system_id: str, conn_id: str | None = None) -> Connector:
    """The connector for the instance ``system_id``, configured from its Airflow Connection
    (the instance's ``conn_id`` unless ``conn_id`` is given)."""
    from hub.findings import reporter

    cls = catalog.connector_class(system_id)
    fields = _connection_fields(conn_id or cls.default_conn_id)
    connector = cls(cls.Config.from_connection(**fields))
    connector.report = reporter()   # set-aside entries and security flags: operations work items
    return connector


def crm_client(conn_id: str = CRM_CONN_ID) -> CrmClient:
    """The CRM REST client: host is the base URL, password the API token, extra timeout_seconds."""
    fields = _connection_fields(conn_id)
    if not fields["host"] or not fields["password"]:
        raise PermanentError(f"Airflow connection {conn_id!r} needs host (base URL) and password (token)")
    timeout = float((fields["extra"] or {}).get("timeout_seconds", 10))
    return CrmClient(fields["host"], fields["password"], timeout=timeout)


@dataclass(frozen=True)
class ConnectionStatus:
    """Whether one Connection the hub uses is defined and readable (``ok``, ``missing``, ``invalid``)."""

    conn_id: str
    state: str
    detail: str = ""


def connection_report() -> list[ConnectionStatus]:
    """The CRM's and every instance's Connection: defined? readable by its connector's
    Config? No network call is made and no value is shown (details name fields only)."""
    report = []
    targets = [(CRM_CONN_ID, None)] + [(e.conn_id, s) for s, e in catalog.SYSTEMS.items()]
    for conn_id, system_id in targets:
        try:
            fields = _connection_fields(conn_id)
        except PermanentError:
            report.append(ConnectionStatus(conn_id, "missing"))
            continue
        try:
            if system_id is None:
                crm_client(conn_id).close()
            else:
                catalog.connector_class(system_id).Config.from_connection(**fields)
        except PermanentError as exc:
            report.append(ConnectionStatus(conn_id, "invalid", str(exc)))
            continue
        report.append(ConnectionStatus(conn_id, "ok"))
    return report
