"""ledger: billing rule and heartbeat on audit rows, concurrency cap and its counter, fast key check

Revision ID: 0002_ledger
Revises: 0001
Create Date: 2026-11-30 08:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002_ledger'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('billing_rule', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_concurrent_requests', sa.Integer(), nullable=True))

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_check', sa.String(length=16), nullable=True))

    op.create_table('usage_in_flight',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('requests', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )
    # Requests admitted before this revision hold no slot: count their pending rows as in flight.
    op.execute("INSERT INTO usage_in_flight (user_id, requests) "
               "SELECT user_id, COUNT(*) FROM usage_records WHERE status = 'pending' GROUP BY user_id")


def downgrade():
    op.drop_table('usage_in_flight')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('key_check')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('max_concurrent_requests')

    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('billing_rule')
