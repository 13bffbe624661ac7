"""nucleus taxonomies

A dataset's named label sets (Nucleus `add_taxonomy`); existing datasets have none.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 11:16:19.560104
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('taxonomies',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dataset_pk', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('labels', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_pk'], ['datasets.pk'], name=op.f('fk_taxonomies_dataset_pk_datasets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_taxonomies')),
    sa.UniqueConstraint('dataset_pk', 'name', name=op.f('uq_taxonomies_dataset_pk_name'))
    )


def downgrade() -> None:
    op.drop_table('taxonomies')
