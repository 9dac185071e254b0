"""MariaDB/MySQL: the ledger's times keep microseconds (DATETIME(6)), as on SQLite and PostgreSQL

A plain DATETIME keeps whole seconds: a time another process stored in the same second as "now"
read back earlier than it was, so reconciliation took a run still going on for one that had
finished (and handed a drift it had just healed to a person). No change on other databases.

Revision ID: 0006_mariadb_us
Revises: 0005
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql


revision = '0006_mariadb_us'
down_revision = '0005'
branch_labels = None
depends_on = None


def _datetime_columns():
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table in inspector.get_table_names():
        if table == 'alembic_version':
            continue
        for column in inspector.get_columns(table):
            if isinstance(column['type'], sa.DateTime):
                yield table, column


def _alter(fsp: int) -> None:
    if op.get_bind().dialect.name not in ('mysql', 'mariadb'):
        return
    for table, column in list(_datetime_columns()):
        op.alter_column(table, column['name'], type_=mysql.DATETIME(fsp=fsp),
                        existing_type=column['type'], existing_nullable=column['nullable'],
                        existing_server_default=column.get('default'))


def upgrade() -> None:
    _alter(6)


def downgrade() -> None:
    _alter(0)
