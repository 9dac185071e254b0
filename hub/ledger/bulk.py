"""Writing many ledger rows in one statement, the same answers on every database.

On PostgreSQL each column's values go as one array and the server reads them with ``unnest``: one
short statement, parsed and planned once whatever the number of rows. An executemany UPDATE, even
sent in pages by psycopg2, is planned and run by the server once per row, and a multi-row
``VALUES`` list is a new, long statement for every batch size.

- ``update_by_id``: rows that each set the same columns, by primary key (``UPDATE ... FROM
  unnest(...)``; SQLite and MariaDB: an executemany UPDATE, as before);
- ``insert_new_returning``: rows whose unique key is not taken (``INSERT ... SELECT * FROM
  unnest(...) ON CONFLICT DO NOTHING RETURNING``; SQLite: ``INSERT ... ON CONFLICT DO NOTHING
  RETURNING`` as an executemany).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def update_by_id(session: Session, table: Table, rows: Sequence[dict[str, Any]],
                 columns: Sequence[str]) -> None:
    """Set ``columns`` of each row (a dict with ``id`` and every one of ``columns``) in one
    statement. Rows are matched by ``id``; an id that is not there changes nothing."""
    if not rows:
        return
    columns = tuple(columns)
    if session.get_bind().dialect.name == "postgresql":
        params = {f"a_{name}": [row[name] for row in rows] for name in ("id", *columns)}
        session.execute(_unnest_update(table, columns), params)
        return
    values = [{"b_id": row["id"], **{f"b_{name}": row[name] for name in columns}} for row in rows]
    session.execute(update(table).where(table.c.id == bindparam("b_id"))
                    .values({name: bindparam(f"b_{name}") for name in columns}), values)


@lru_cache(maxsize=64)
def _unnest_update(table: Table, columns: tuple[str, ...]) -> TextClause:
    """``UPDATE t SET c = v.c, ... FROM unnest(CAST(:a_id AS INTEGER[]), ...) AS v(id, c, ...)
    WHERE t.id = v.id``, its arrays bound with the columns' own types (so e.g. UTC datetimes are
    converted as for any other statement)."""
    dialect = postgresql.dialect()
    names = ("id", *columns)
    arrays = ", ".join(f"CAST(:a_{name} AS {table.c[name].type.compile(dialect=dialect)}[])"
                       for name in names)
    quoted = [dialect.identifier_preparer.quote(name) for name in names]
    assignments = ", ".join(f"{q} = v.{q}" for q in quoted[1:])
    sql = (f"UPDATE {table.name} SET {assignments} FROM unnest({arrays}) AS v({', '.join(quoted)}) "
           f"WHERE {table.name}.id = v.id")
    return text(sql).bindparams(*(
        bindparam(f"a_{name}", type_=postgresql.ARRAY(table.c[name].type)) for name in names))


def insert_new_returning(session: Session, table: Table, rows: Sequence[dict[str, Any]],
                         conflict: Sequence[str],
                         returning: Sequence[str]) -> list[tuple[Any, ...]]:
    """Insert the rows whose ``conflict`` columns are not taken (a concurrent writer's row wins),
    returning ``returning`` of each row inserted, in no particular order. PostgreSQL and SQLite:
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING``; on PostgreSQL one ``INSERT ... SELECT * FROM
    unnest(<one array per column>)``, a short statement planned once, when every row sets the same
    columns, including every column with a client-side default (else the executemany below).
    Not for MariaDB (no ``ON CONFLICT``): callers look the keys up first there."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    columns = tuple(rows[0])
    if dialect == "postgresql" and _covers_defaults(table, columns) and all(
            len(row) == len(columns) and all(name in row for name in columns) for row in rows):
        params = {f"a_{name}": [row[name] for row in rows] for name in columns}
        statement = _unnest_insert(table, columns, tuple(conflict), tuple(returning))
        return [tuple(row) for row in session.execute(statement, params)]
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (insert_(table)
                 .on_conflict_do_nothing(index_elements=[table.c[name] for name in conflict])
                 .returning(*(table.c[name] for name in returning)))
    return [tuple(row) for row in session.execute(statement, list(rows))]


def _covers_defaults(table: Table, columns: tuple[str, ...]) -> bool:
    return all(column.name in columns for column in table.c
               if column.default is not None and not column.primary_key)


@lru_cache(maxsize=64)
def _unnest_insert(table: Table, columns: tuple[str, ...], conflict: tuple[str, ...],
                   returning: tuple[str, ...]) -> TextClause:
    dialect = postgresql.dialect()
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(f"CAST(:a_{name} AS {table.c[name].type.compile(dialect=dialect)}[])"
                       for name in columns)
    sql = (f"INSERT INTO {table.name} ({', '.join(quote(name) for name in columns)}) "
           f"SELECT * FROM unnest({arrays}) "
           f"ON CONFLICT ({', '.join(quote(name) for name in conflict)}) DO NOTHING "
           f"RETURNING {', '.join(quote(name) for name in returning)}")
    return text(sql).bindparams(*(
        bindparam(f"a_{name}", type_=postgresql.ARRAY(table.c[name].type)) for name in columns))
