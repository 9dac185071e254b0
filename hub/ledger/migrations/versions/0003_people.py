"""people: accounts, web sessions, login attempts, audit log, comments; SLA and MI columns

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24
"""
from datetime import timedelta, timezone

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None

#: Due date given to work items opened before SLAs existed (the desk's default SLA).
BACKFILL_SLA = timedelta(hours=48)


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('display_name', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('teams', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('must_change_password', sa.Boolean(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('username', name=op.f('uq_accounts_username'))
    )
    op.create_table('web_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                            name=op.f('fk_web_sessions_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_sessions'))
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_web_sessions_expires_at'), ['expires_at'], unique=False)

    op.create_table('login_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts'))
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_attempts_username'), ['username'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_attempts_client'), ['client'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_attempts_at'), ['at'], unique=False)

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('crm_created_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('channel', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('ward', sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_cases_crm_created_at'), ['crm_created_at'], unique=False)

    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replaces_command_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_commands_replaces_command_id_commands'),
                                    'commands', ['replaces_command_id'], ['id'])

    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolution_code', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_work_items_due_at'), ['due_at'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('target', sa.String(length=120), nullable=False),
    sa.Column('work_item_id', sa.Integer(), nullable=True),
    sa.Column('command_id', sa.Integer(), nullable=True),
    sa.Column('state_before', sa.String(length=40), nullable=True),
    sa.Column('state_after', sa.String(length=40), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['work_item_id'], ['work_items.id'],
                            name=op.f('fk_audit_log_work_item_id_work_items')),
    sa.ForeignKeyConstraint(['command_id'], ['commands.id'],
                            name=op.f('fk_audit_log_command_id_commands')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_work_item_id'), ['work_item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_command_id'), ['command_id'], unique=False)

    op.create_table('work_item_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_item_id', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=80), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['work_item_id'], ['work_items.id'],
                            name=op.f('fk_work_item_comments_work_item_id_work_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_item_comments'))
    )
    with op.batch_alter_table('work_item_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_item_comments_work_item_id'), ['work_item_id'],
                              unique=False)

    _backfill_due_dates()


def _backfill_due_dates() -> None:
    """Work items that predate SLAs are due 48 hours after they opened (same on every backend)."""
    items = sa.table('work_items', sa.column('id', sa.Integer()),
                     sa.column('created_at', sa.DateTime(timezone=True)),
                     sa.column('due_at', sa.DateTime(timezone=True)))
    bind = op.get_bind()
    rows = bind.execute(sa.select(items.c.id, items.c.created_at).where(items.c.due_at.is_(None)))
    for item_id, created_at in rows.fetchall():
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=timezone.utc)
        bind.execute(items.update().where(items.c.id == item_id)
                     .values(due_at=created_at + BACKFILL_SLA))


def downgrade() -> None:
    op.drop_table('work_item_comments')
    op.drop_table('audit_log')
    with op.batch_alter_table('work_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_items_due_at'))
        batch_op.drop_column('updated_at')
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('due_at')
        batch_op.drop_column('resolution_code')
    with op.batch_alter_table('commands', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_commands_replaces_command_id_commands'),
                                 type_='foreignkey')
        batch_op.drop_column('replaces_command_id')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_crm_created_at'))
        batch_op.drop_column('ward')
        batch_op.drop_column('channel')
        batch_op.drop_column('crm_created_at')
    op.drop_table('login_attempts')
    op.drop_table('web_sessions')
    op.drop_table('accounts')
