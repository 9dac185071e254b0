"""The licensing system's tables as the connector sees them: logical names -> physical names.

The back-office schema belongs to the licensing system (Idox Uniform style), not to the hub, so
every table and column name comes from configuration. ``SchemaMap`` holds the overrides;
``build_tables`` turns it into SQLAlchemy Core ``Table`` objects whose columns are addressed by
their *logical* key (``tables.application.c.ext_ref``) whatever they are called in the database.
The connector never creates or alters these tables.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import Column, Date, DateTime, Integer, MetaData, String, Table
from sqlalchemy.types import TypeEngine

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$#]{0,63}$")

#: Logical table -> default physical table (vendor-like names).
DEFAULT_TABLES: dict[str, str] = {
    "application": "LIC_APPLICATION",
    "party": "LIC_PARTY",
    "premises": "LIC_PREMISES",
    "licence_type": "LIC_TYPE_REF",
    "sequence": "LIC_SEQUENCE",
}

# Logical column -> (default physical column, type). The first column of each table is its key.
_COLUMNS: dict[str, dict[str, tuple[str, TypeEngine]]] = {
    "application": {
        "app_ref": ("APP_REF", String(20)),
        "ext_ref": ("EXT_REF", String(64)),
        "source_ref": ("SOURCE_REF", String(64)),
        "lic_type": ("LIC_TYPE", String(8)),
        "applicant_name": ("APPLICANT_NAME", String(120)),
        "party_id": ("PARTY_ID", Integer()),
        "premises_ref": ("PREMISES_REF", String(20)),
        "activity": ("ACTIVITY", String(200)),
        "site_desc": ("SITE_DESC", String(200)),
        "payment_ref": ("PAYMENT_REF", String(40)),
        "fee_pence": ("FEE_PENCE", Integer()),
        "status": ("STATUS", String(20)),
        "received_date": ("RECEIVED_DATE", DateTime()),
        "decision_date": ("DECISION_DATE", Date()),
        "last_updated": ("LAST_UPDATED", DateTime()),
    },
    "party": {
        "party_id": ("PARTY_ID", Integer()),
        "full_name": ("FULL_NAME", String(120)),
        "date_of_birth": ("DATE_OF_BIRTH", Date()),
        "email": ("EMAIL", String(254)),
        "phone": ("PHONE", String(30)),
        "addr_line1": ("ADDR_LINE1", String(100)),
        "addr_line2": ("ADDR_LINE2", String(100)),
        "town": ("TOWN", String(60)),
        "postcode": ("POSTCODE", String(10)),
        "driving_licence_no": ("DRIVING_LICENCE_NO", String(16)),
        "created": ("CREATED", DateTime()),
    },
    "premises": {
        "premises_ref": ("PREMISES_REF", String(20)),
        "premises_name": ("PREMISES_NAME", String(120)),
        "addr_line1": ("ADDR_LINE1", String(100)),
        "town": ("TOWN", String(60)),
        "postcode": ("POSTCODE", String(10)),
        "uprn": ("UPRN", String(12)),
    },
    "licence_type": {
        "lic_type": ("LIC_TYPE", String(8)),
        "description": ("DESCRIPTION", String(80)),
        "min_age": ("MIN_AGE", Integer()),
        "fee_pence": ("FEE_PENCE", Integer()),
        "active": ("ACTIVE", String(1)),
    },
    "sequence": {
        "seq_name": ("SEQ_NAME", String(20)),
        "next_value": ("NEXT_VALUE", Integer()),
    },
}

#: ``table.column`` (logical) -> default physical column name.
DEFAULT_COLUMNS: dict[str, str] = {
    f"{table}.{logical}": physical
    for table, columns in _COLUMNS.items() for logical, (physical, _type) in columns.items()
}


class SchemaMap(BaseModel):
    """Overrides of the default physical names; keys are logical names (see ``DEFAULT_*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tables: dict[str, str] = {}
    """Logical table (``application``) -> physical table (``UNI_LIC_APP``)."""
    columns: dict[str, str] = {}
    """``table.column`` (``application.ext_ref``) -> physical column (``CLIENT_REF``)."""
    db_schema: str | None = None
    """Schema (PostgreSQL schema, MariaDB database) holding the tables, if not the default."""

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(DEFAULT_TABLES))
        if unknown:
            raise ValueError(f"unknown logical tables {unknown}; known: {sorted(DEFAULT_TABLES)}")
        return _checked_names(value)

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(DEFAULT_COLUMNS))
        if unknown:
            raise ValueError(f"unknown logical columns {unknown}")
        return _checked_names(value)

    @field_validator("db_schema")
    @classmethod
    def _schema_name(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTIFIER.match(value):
            raise ValueError("not a plain SQL identifier")
        return value

    def table_name(self, logical: str) -> str:
        return self.tables.get(logical, DEFAULT_TABLES[logical])

    def column_name(self, table: str, logical: str) -> str:
        key = f"{table}.{logical}"
        return self.columns.get(key, DEFAULT_COLUMNS[key])


def _checked_names(value: dict[str, str]) -> dict[str, str]:
    bad = sorted(k for k, v in value.items() if not _IDENTIFIER.match(v))
    if bad:
        raise ValueError(f"not plain SQL identifiers: {bad}")
    return value


@dataclass(frozen=True)
class LicensingTables:
    """Core ``Table`` objects for the licensing system, columns keyed by logical name."""

    application: Table
    party: Table
    premises: Table
    licence_type: Table
    sequence: Table


def build_tables(schema_map: SchemaMap | None = None) -> LicensingTables:
    """``Table`` objects named as configured (no I/O; never used to create tables)."""
    schema_map = schema_map or SchemaMap()
    metadata = MetaData(schema=schema_map.db_schema)
    built: dict[str, Table] = {}
    for table, columns in _COLUMNS.items():
        cols = []
        for i, (logical, (_default, type_)) in enumerate(columns.items()):
            cols.append(Column(schema_map.column_name(table, logical), type_, key=logical,
                               primary_key=i == 0,
                               autoincrement=(table == "party" and i == 0)))
        built[table] = Table(schema_map.table_name(table), metadata, *cols)
    return LicensingTables(**built)
