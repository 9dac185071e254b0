"""Migration 0003 (accounts, sessions, audit, comments, SLA and MI columns) matches the models."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hub.ledger import db
from hub.ledger.models import Base


def test_the_migrated_schema_matches_the_models(ledger_url: str) -> None:
    with db.engine(ledger_url).connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []


def test_work_items_opened_before_slas_get_a_due_date(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.migrate(url, revision="0001")
    opened = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
    with db.engine(url).begin() as conn:
        conn.execute(sa.text("INSERT INTO work_items (dedupe_key, team, kind, reason, state, created_at)"
                             " VALUES ('old:1', 'revenues', 'backoffice_rejected', 'r', 'open', :at)"),
                     {"at": opened})
    db.migrate(url)
    with db.session_scope(url) as session:
        from hub.ledger.models import WorkItem

        item = session.scalar(sa.select(WorkItem))
        assert item.due_at == opened + timedelta(hours=48)
    db.engine(url).dispose()


def test_the_migration_downgrades_cleanly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'down.db'}"
    db.migrate(url)
    from alembic import command

    with db.engine(url).begin() as conn:
        cfg = db.alembic_config(url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    names = set(sa.inspect(db.engine(url)).get_table_names())
    assert "accounts" not in names and "audit_log" not in names and "work_items" in names
    db.engine(url).dispose()
