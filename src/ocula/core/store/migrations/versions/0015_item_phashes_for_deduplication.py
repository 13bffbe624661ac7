"""item phashes for deduplication

Each item's perceptual hash, computed once from its pixels when a deduplication first
needs it, with the content tag of the image it was computed from (a hash whose image
has changed since is recomputed). Existing items have none until then.

Revision ID: 0015
Revises: 0009
Create Date: 2026-12-05 21:26:24.919575
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('item_phashes',
    sa.Column('item_pk', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=80), nullable=False),
    sa.Column('phash', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['item_pk'], ['items.pk'], name=op.f('fk_item_phashes_item_pk_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_pk', name=op.f('pk_item_phashes'))
    )


def downgrade() -> None:
    op.drop_table('item_phashes')
