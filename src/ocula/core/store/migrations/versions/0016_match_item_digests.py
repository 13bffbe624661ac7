"""match item digests

Each committed item's digest of the match rows written for it, so that a re-commit
rewrites only the items whose rows change. Rows committed before have none: their
run's next commit rewrites everything once, as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 02:05:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('match_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('match_items', schema=None) as batch_op:
        batch_op.drop_column('digest')
