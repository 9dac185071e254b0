"""connection checks: the last result of each back-office instance's connection check

Revision ID: 0004_checks
Revises: 0003
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_checks'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('connection_checks',
    sa.Column('system', sa.String(length=64), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('error_class', sa.String(length=40), nullable=True),
    sa.Column('code', sa.String(length=80), nullable=True),
    sa.Column('message', sa.String(length=300), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('system', name=op.f('pk_connection_checks'))
    )


def downgrade() -> None:
    op.drop_table('connection_checks')
