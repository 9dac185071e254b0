"""PostgreSQL for the real stack: find a server that answers, create the stack's databases.

`make up` and `make demo-celery` keep Airflow's metadata and the hub ledger in two databases of
their own on one PostgreSQL server:

- ``HUB_AIRFLOW_DATABASE_URL`` and ``HUB_DATABASE_URL``, when set, are used as they are (nothing is
  created or dropped);
- otherwise the databases ``<prefix>_airflow`` and ``<prefix>_ledger`` are created when missing on
  the server behind ``HUB_POSTGRES_URL`` (an account that may ``CREATE DATABASE``), by default
  ``postgres`` over TCP on 127.0.0.1:5432, or the local server's Unix socket as the current OS user
  (what a freshly installed Debian server accepts; ``make postgresql`` installs and starts one).

``python -m demo.postgres answers`` exits 0 when a server answers (the Makefile installs one
otherwise); ``python -m demo.postgres drop <prefix>`` drops a stack's two databases.
"""
from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import make_url

TCP_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
SOCKET_DIR = "/var/run/postgresql"
NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class NoServer(RuntimeError):
    """No PostgreSQL server answers at the URLs the stack may use."""


def candidate_admin_urls() -> list[str]:
    """``HUB_POSTGRES_URL`` alone when set; else TCP on 127.0.0.1, then the local Unix socket."""
    given = os.environ.get("HUB_POSTGRES_URL")
    if given:
        return [given]
    socket_url = f"postgresql+psycopg2://{getpass.getuser()}@/postgres?host={SOCKET_DIR}"
    return [TCP_ADMIN_URL, socket_url]


def answers(url: str, timeout: int = 3) -> bool:
    """Whether a PostgreSQL server accepts a connection at ``url``."""
    engine = sa.create_engine(url, connect_args={"connect_timeout": timeout}, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def admin_url() -> str:
    """The first candidate server that answers."""
    for url in candidate_admin_urls():
        if answers(url):
            return url
    shown = ", ".join(make_url(u).render_as_string(hide_password=True) for u in candidate_admin_urls())
    raise NoServer(f"no PostgreSQL server answers at {shown}; run `make postgresql` or set "
                   "HUB_POSTGRES_URL (or HUB_AIRFLOW_DATABASE_URL and HUB_DATABASE_URL)")


def database_url(admin: str, name: str) -> str:
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def ensure_database(admin: str, name: str) -> str:
    """Create database ``name`` unless it exists; return its URL (same account as ``admin``)."""
    if not NAME.match(name):
        raise ValueError(f"database name {name!r} must be lower-case letters, digits and _")
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return database_url(admin, name)


def drop_database(admin: str, name: str) -> None:
    if not NAME.match(name):
        raise ValueError(f"database name {name!r} must be lower-case letters, digits and _")
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


@dataclass(frozen=True)
class StackDatabases:
    airflow: str
    """SQLAlchemy URL of Airflow's metadata database."""
    ledger: str
    """SQLAlchemy URL of the hub ledger."""
    created: tuple[str, ...] = ()
    """Databases this stack owns (created by name on the admin server; empty when URLs were given)."""


def stack_databases(prefix: str) -> StackDatabases:
    """The URLs for a stack named ``prefix``: given by the environment, else created when missing."""
    given_airflow = os.environ.get("HUB_AIRFLOW_DATABASE_URL")
    given_ledger = os.environ.get("HUB_DATABASE_URL")
    if given_airflow and given_ledger:
        return StackDatabases(given_airflow, given_ledger)
    admin = admin_url()
    airflow = given_airflow or ensure_database(admin, f"{prefix}_airflow")
    ledger = given_ledger or ensure_database(admin, f"{prefix}_ledger")
    owned = tuple(n for n, given in ((f"{prefix}_airflow", given_airflow),
                                     (f"{prefix}_ledger", given_ledger)) if not given)
    return StackDatabases(airflow, ledger, owned)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("answers", help="exit 0 when a PostgreSQL server answers")
    drop = sub.add_parser("drop", help="drop a stack's databases (<prefix>_airflow, <prefix>_ledger)")
    drop.add_argument("prefix")
    args = parser.parse_args(argv)
    if args.command == "answers":
        if os.environ.get("HUB_AIRFLOW_DATABASE_URL") and os.environ.get("HUB_DATABASE_URL"):
            return 0
        try:
            url = admin_url()
        except NoServer as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"PostgreSQL answers at {make_url(url).render_as_string(hide_password=True)}")
        return 0
    try:
        admin = admin_url()
    except NoServer:
        return 0   # nothing to drop
    for name in (f"{args.prefix}_airflow", f"{args.prefix}_ledger"):
        drop_database(admin, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
