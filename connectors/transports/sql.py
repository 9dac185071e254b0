"""SQL transport: engines with timeouts and pre-ping, and the classification of database errors.

Connectors that write into a back office's own database build statements with SQLAlchemy Core
(bound parameters only) on an engine from :func:`make_engine`, and wrap every database call in
:func:`classified` so that a failure arrives as ``TransientError``, ``PermanentError`` or
``Rejected``.

Error messages built here never quote the driver's text (PostgreSQL's ``DETAIL: Key (...)=(...)``
and MariaDB's ``Duplicate entry '...'`` carry the row's values): they name codes, constraints and
columns only.
"""
from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, create_engine, make_url

from connectors.errors import (ConnectorError, PermanentError, Rejected, TransientError,
                               UnreadableAnswer, scrubbed)

log = logging.getLogger(__name__)

#: SQLSTATEs (PostgreSQL) and error numbers (MariaDB/MySQL) worth trying again.
TRANSIENT_CODES: frozenset[str] = frozenset({
    "40P01",   # deadlock_detected
    "40001",   # serialization_failure
    "55P03",   # lock_not_available (lock_timeout)
    "57014",   # query_canceled (statement_timeout)
    "57P01", "57P02", "57P03",  # admin/crash shutdown, cannot connect now
    "53300",   # too_many_connections
    "08000", "08001", "08003", "08004", "08006",  # connection exceptions
    "1213",    # ER_LOCK_DEADLOCK
    "1205",    # ER_LOCK_WAIT_TIMEOUT
    "1040",    # ER_CON_COUNT_ERROR (too many connections)
    "1969",    # ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
    "3024",    # ER_QUERY_TIMEOUT (MySQL max_execution_time)
    "2002", "2003", "2006", "2013",  # cannot connect, server gone away, lost connection
    "SQLITE_BUSY",
})

#: Codes a person must fix (credentials, unknown database, schema map naming a missing table...).
PERMANENT_CODES: frozenset[str] = frozenset({
    "28000", "28P01",  # invalid authorization / password
    "3D000",   # invalid_catalog_name (unknown database)
    "3F000",   # invalid_schema_name
    "42501",   # insufficient_privilege
    "42P01",   # undefined_table
    "42703",   # undefined_column
    "1044",    # ER_DBACCESS_DENIED_ERROR
    "1045",    # ER_ACCESS_DENIED_ERROR
    "1049",    # ER_BAD_DB_ERROR (unknown database)
    "1142", "1143",  # table / column access denied
    "1146",    # ER_NO_SUCH_TABLE
    "1054",    # ER_BAD_FIELD_ERROR (unknown column)
    "1698",    # ER_ACCESS_DENIED_NO_PASSWORD_ERROR
    "SQLITE_CANTOPEN", "SQLITE_SCHEMA",
})

# Driver texts for failures that carry no code (libpq reports connection-time failures as text).
_PERMANENT_TEXT = re.compile(
    r"password authentication failed|authentication failed|role .* does not exist|"
    r"database .* does not exist|no pg_hba\.conf entry|access denied", re.IGNORECASE)
_SQLITE_TEXT = {
    "database is locked": "SQLITE_BUSY",
    "database table is locked": "SQLITE_BUSY",
    "database schema is locked": "SQLITE_BUSY",
    "unable to open database file": "SQLITE_CANTOPEN",
    "no such table": "SQLITE_SCHEMA",
    "no such column": "SQLITE_SCHEMA",
}
_MYSQL_KEY = re.compile(r"for key '([^']+)'")
_SQLITE_UNIQUE = re.compile(r"(?:UNIQUE|NOT NULL|CHECK) constraint failed: ([\w.$#]+)")


def make_engine(url: str | URL, *, password: str | SecretStr | None = None,
                connect_timeout: float = 10.0, lock_timeout: float = 5.0,
                statement_timeout: float = 30.0, pool_size: int = 5,
                pool_recycle_seconds: int = 1800) -> Engine:
    """An engine with ``pool_pre_ping``, hidden parameters and the backend's own timeouts.

    - PostgreSQL (psycopg2/psycopg): ``connect_timeout``; ``lock_timeout`` and
      ``statement_timeout`` as session settings through ``options``.
    - MariaDB/MySQL (PyMySQL): ``connect_timeout``, socket ``read_timeout``/``write_timeout``, and
      per-session ``innodb_lock_wait_timeout`` (whole seconds, at least 1) plus MariaDB's
      ``max_statement_time``.
    - SQLite: ``timeout`` (how long to wait for another writer's lock).

    ``password`` (from the connection's password field) replaces any password in ``url``
    (SQLite has none).
    Creating the engine does no I/O; a bad URL raises ``PermanentError``.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except sa_exc.ArgumentError as exc:
        raise PermanentError("database url: not a valid SQLAlchemy URL", code="bad-url") from exc
    backend = parsed.get_backend_name()
    if password is not None and backend != "sqlite":
        secret = password.get_secret_value() if isinstance(password, SecretStr) else password
        parsed = parsed.set(password=secret)
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    connect_args: dict[str, Any] = {}
    session_sql: list[str] = []
    if backend == "postgresql":
        connect_args["connect_timeout"] = max(1, round(connect_timeout))
        connect_args["options"] = (f"-c lock_timeout={max(1, int(lock_timeout * 1000))} "
                                   f"-c statement_timeout={max(1, int(statement_timeout * 1000))}")
    elif backend in ("mysql", "mariadb"):
        connect_args.update(connect_timeout=max(1, round(connect_timeout)),
                            read_timeout=max(1, round(statement_timeout)),
                            write_timeout=max(1, round(statement_timeout)))
        session_sql.append(f"SET SESSION innodb_lock_wait_timeout = {max(1, round(lock_timeout))}")
    elif backend == "sqlite":
        connect_args["timeout"] = max(0.0, lock_timeout)
    if backend != "sqlite":
        kwargs.update(pool_size=pool_size, pool_recycle=pool_recycle_seconds,
                      pool_timeout=max(1.0, connect_timeout))
    try:
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
        raise PermanentError(f"database url: cannot use driver {parsed.drivername!r}",
                             code="bad-url") from exc
    if session_sql:
        _set_mysql_session(engine, session_sql, statement_timeout)
    return engine


def _set_mysql_session(engine: Engine, statements: list[str], statement_timeout: float) -> None:
    """Apply session settings on every new MariaDB/MySQL connection."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
            cursor.execute("SELECT VERSION()")
            (version,) = cursor.fetchone()
            if "mariadb" in str(version).lower():
                cursor.execute(f"SET SESSION max_statement_time = {float(statement_timeout):.3f}")
        finally:
            cursor.close()


def safe_url(url: str | URL) -> str:
    """The URL for logs: no password."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except sa_exc.ArgumentError:
        return "<invalid url>"
    return parsed.render_as_string(hide_password=True)


def error_code(exc: BaseException) -> str | None:
    """SQLSTATE (PostgreSQL), error number (MariaDB/MySQL) or an SQLite code word, if any."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):  # MariaDB/MySQL error number (more precise than HY000)
        return str(args[0])
    for attr in ("pgcode", "sqlstate"):
        value = getattr(orig, attr, None)
        if value:
            return str(value)
    text = str(args[0]) if args else ""
    for needle, code in _SQLITE_TEXT.items():
        if needle in text:
            return code
    return None


def _constraint(exc: sa_exc.DBAPIError) -> str | None:
    """The name of the constraint or column an integrity error is about (never a value)."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    for attr in ("constraint_name", "column_name"):
        value = getattr(diag, attr, None) if diag is not None else None
        if value:
            return str(value)
    text = str(orig.args[-1]) if getattr(orig, "args", None) else ""
    match = _MYSQL_KEY.search(text) or _SQLITE_UNIQUE.search(text)
    return match.group(1) if match else None


def classify(exc: BaseException, action: str = "database call") -> ConnectorError:
    """The classified error for a failed database call (``raise classify(exc) from exc``)."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, sa_exc.TimeoutError):
        return TransientError(f"{action}: no free database connection in time", code="pool-timeout")
    if isinstance(exc, (sa_exc.ArgumentError, sa_exc.NoSuchModuleError)):
        return PermanentError(f"{action}: invalid database configuration", code="bad-url")
    if isinstance(exc, sa_exc.DBAPIError):
        return _classify_dbapi(exc, action)
    if isinstance(exc, (OSError, sa_exc.DisconnectionError)):
        return TransientError(f"{action}: connection failed ({type(exc).__name__})",
                              code="connection")
    if isinstance(exc, sa_exc.SQLAlchemyError):
        return PermanentError(f"{action}: {type(exc).__name__}", code=type(exc).__name__)
    return TransientError(f"{action}: unexpected {type(exc).__name__}", code=type(exc).__name__)


def _classify_dbapi(exc: sa_exc.DBAPIError, action: str) -> ConnectorError:
    code = error_code(exc)
    kind = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
    if isinstance(exc, sa_exc.IntegrityError):
        name = _constraint(exc)
        where = f" ({name})" if name else ""
        column = name.rsplit(".", 1)[-1] if name and "." in name else None
        return Rejected(f"{action}: the database refused the record: integrity constraint{where}",
                        code=code or "integrity", field=column)
    if isinstance(exc, sa_exc.DataError):
        return Rejected(f"{action}: a value does not fit the database column ({kind})",
                        code=code or "data")
    if code in TRANSIENT_CODES or exc.connection_invalidated:
        return TransientError(f"{action}: {_describe(code, kind)}", code=code or "connection")
    if code in PERMANENT_CODES:
        return PermanentError(f"{action}: {_describe(code, kind)}", code=code)
    text = str(exc.orig) if exc.orig is not None else ""
    if _PERMANENT_TEXT.search(text):
        return PermanentError(f"{action}: authentication or database name refused ({kind})",
                              code=code or "auth")
    if isinstance(exc, (sa_exc.ProgrammingError, sa_exc.NotSupportedError)):
        return PermanentError(f"{action}: statement refused by the database ({kind})",
                              code=code or kind)
    # OperationalError / InterfaceError / InternalError without a known code: connection trouble.
    return TransientError(f"{action}: {_describe(code, kind)}", code=code or kind)


_MEANINGS = {
    "40P01": "deadlock", "1213": "deadlock", "40001": "serialization failure",
    "55P03": "lock timeout", "1205": "lock wait timeout", "SQLITE_BUSY": "database is locked",
    "57014": "statement timeout", "1969": "statement timeout", "3024": "statement timeout",
    "28P01": "authentication failed", "28000": "authentication failed",
    "1045": "access denied", "1044": "access denied to database", "1698": "access denied",
    "3D000": "unknown database", "1049": "unknown database",
    "42P01": "unknown table", "1146": "unknown table", "42703": "unknown column",
    "1054": "unknown column", "SQLITE_SCHEMA": "unknown table or column",
    "SQLITE_CANTOPEN": "cannot open database file",
}


def _describe(code: str | None, kind: str) -> str:
    meaning = _MEANINGS.get(code or "")
    if meaning:
        return f"{meaning} ({code})"
    return f"database error {kind}" + (f" ({code})" if code else "")


@contextlib.contextmanager
def classified(action: str = "database call") -> Iterator[None]:
    """Turn SQLAlchemy and socket errors raised in the block into classified connector errors."""
    error: ConnectorError | None = None
    try:
        yield
    except ConnectorError:
        raise
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        error, cause = classify(exc, action), scrubbed(exc)
    except (ValueError, OverflowError) as exc:
        # A stored value the driver or SQLAlchemy could not turn into its Python type (a date
        # column holding text in SQLite, say): the answer is unreadable, not the call broken.
        error = UnreadableAnswer(f"{action}: a stored value could not be read "
                                 f"({type(exc).__name__})", code="bad-value")
        cause = scrubbed(exc)
    if error is not None:
        # Driver messages quote values (a duplicate key, a row): only a scrubbed cause is chained.
        log.debug("%s failed: %s %s", action, type(error).__name__, error.code)
        raise error from cause
