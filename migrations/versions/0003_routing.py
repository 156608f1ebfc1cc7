"""routing: the audit row records fallbacks and every upstream attempt

Revision ID: 0003_routing
Revises: 0002_ledger
Create Date: 2026-12-01 00:00:00

usage_records.fallback_from: the model the caller asked for when a fallback model answered.
usage_records.attempts: every upstream call (upstream, model, outcome, status, latency) when there was
more than one. Both nullable, so existing rows need nothing.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003_routing'
down_revision = '0002_ledger'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fallback_from', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.drop_column('attempts')
        batch_op.drop_column('fallback_from')
