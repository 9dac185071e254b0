"""reconciliation: runs and their findings

Revision ID: 0005
Revises: 0004_checks
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004_checks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reconcile_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ledger_records', sa.Integer(), nullable=False),
    sa.Column('backoffice_records', sa.Integer(), nullable=False),
    sa.Column('crm_records', sa.Integer(), nullable=False),
    sa.Column('findings_by_class', sa.JSON(), nullable=True),
    sa.Column('new_findings', sa.Integer(), nullable=False),
    sa.Column('healed', sa.Integer(), nullable=False),
    sa.Column('work_items_opened', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('run_id', sa.String(length=250), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconcile_runs'))
    )
    with op.batch_alter_table('reconcile_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconcile_runs_system'), ['system'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconcile_runs_started_at'), ['started_at'], unique=False)

    op.create_table('reconcile_findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('reference', sa.String(length=120), nullable=True),
    sa.Column('crm_id', sa.String(length=64), nullable=True),
    sa.Column('command_id', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('fields', sa.String(length=500), nullable=False),
    sa.Column('detail', sa.String(length=40), nullable=False),
    sa.Column('identity', sa.String(length=32), nullable=False),
    sa.Column('is_new', sa.Boolean(), nullable=False),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('work_item_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['reconcile_runs.id'],
                            name=op.f('fk_reconcile_findings_run_id_reconcile_runs')),
    sa.ForeignKeyConstraint(['work_item_id'], ['work_items.id'],
                            name=op.f('fk_reconcile_findings_work_item_id_work_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconcile_findings'))
    )
    with op.batch_alter_table('reconcile_findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconcile_findings_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconcile_findings_system'), ['system'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconcile_findings_code'), ['code'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconcile_findings_identity'), ['identity'], unique=False)


def downgrade() -> None:
    op.drop_table('reconcile_findings')
    op.drop_table('reconcile_runs')
