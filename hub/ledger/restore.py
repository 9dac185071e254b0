"""After a restore: make a ledger brought back from a backup safe to run again.

A backup is a moment. Whatever the hub did after it (commands sent, write-backs delivered, ids
handed out) the restored ledger no longer remembers, but the back offices and the CRM do. So,
before the stack starts again:

1. the schema is brought up to this hub's head (a backup may predate an upgrade);
2. on PostgreSQL every id sequence jumps ``id_gap`` past the highest id in use, so no id handed out
   after the backup is handed out again for something else (write-backs reach the CRM under the
   key ``hub-outbox-<id>``, which the CRM applies once: a reused id would be taken for a repeat);
3. commands caught mid-send are released, and every command not yet settled is marked
   ``maybe_sent``, so its connector looks for the key in the back office before creating anything;
4. optionally the CRM is read again from the restored cursor (cases received after the backup come
   back, idempotent on CRM id + version) and their new commands are marked the same way;
5. the restore is recorded in the ``cursors`` table (``ledger_restored_at``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from hub.ledger import db
from hub.ledger.consistency import id_sequences
from hub.ledger.models import Command, CommandState, Cursor, utcnow

DEFAULT_ID_GAP = 1_000_000
RESTORED_CURSOR = "ledger_restored_at"


@dataclass
class RestoreStats:
    sequences: dict[str, int] = field(default_factory=dict)
    """Table -> the next id it will hand out."""
    released: int = 0
    """Commands that were mid-send in the backup, now pending again."""
    marked: int = 0
    """Unsettled commands now looked up in their back office before any create."""
    pulled: int | None = None
    """Cases read again from the CRM (None: not asked to)."""


def after_restore(url: str | None = None, *, id_gap: int = DEFAULT_ID_GAP,
                  pull: Callable[[], int] | None = None) -> RestoreStats:
    """Run the steps above on the ledger at ``url``; ``pull`` re-reads the CRM and maps the cases
    (the CLI passes intake's pull through the ``crm`` Connection)."""
    if id_gap < 0:
        raise ValueError("id_gap must not be negative")
    stats = RestoreStats()
    db.migrate(url)
    with db.engine(url).begin() as conn:
        if conn.dialect.name == "postgresql":
            stats.sequences = _advance_sequences(conn, id_gap)
    with db.session_scope(url) as session:
        stats.released = session.execute(
            sa.update(Command).where(Command.state == CommandState.SENDING.value)
            .values(state=CommandState.PENDING.value, claim_token=None, claimed_at=None,
                    maybe_sent=True, next_attempt_at=None)
            .execution_options(synchronize_session=False)).rowcount
    if pull is not None:
        stats.pulled = pull()
    with db.session_scope(url) as session:
        stats.marked = session.execute(
            sa.update(Command).where(Command.state == CommandState.PENDING.value)
            .values(maybe_sent=True).execution_options(synchronize_session=False)).rowcount
        cursor = session.get(Cursor, RESTORED_CURSOR)
        now = utcnow()
        if cursor is None:
            session.add(Cursor(name=RESTORED_CURSOR, value=now.isoformat(), updated_at=now))
        else:
            cursor.value, cursor.updated_at = now.isoformat(), now
    return stats


def _advance_sequences(conn: sa.Connection, id_gap: int) -> dict[str, int]:
    """Move each table's id sequence ``id_gap`` past both its highest id and its current value."""
    advanced = {}
    for table, sequence in id_sequences(conn):
        last = int(conn.scalar(sa.text(f"SELECT last_value FROM {sequence}")) or 0)
        used = int(conn.scalar(sa.select(sa.func.max(table.c.id))) or 0)
        start = max(last, used) + id_gap + 1
        conn.execute(sa.text("SELECT setval(:s, :v, false)"), {"s": sequence, "v": start})
        advanced[table.name] = start
    return advanced
