"""dataset and model tags

Labels a user pins on a dataset or a model (Nucleus `add_tags`); existing ones have none.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 12:08:34.055843
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dataset_tags',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dataset_pk', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_pk'], ['datasets.pk'], name=op.f('fk_dataset_tags_dataset_pk_datasets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_dataset_tags')),
    sa.UniqueConstraint('dataset_pk', 'tag', name=op.f('uq_dataset_tags_dataset_pk_tag'))
    )
    op.create_table('model_tags',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model_pk', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['model_pk'], ['models.pk'], name=op.f('fk_model_tags_model_pk_models'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_model_tags')),
    sa.UniqueConstraint('model_pk', 'tag', name=op.f('uq_model_tags_model_pk_tag'))
    )


def downgrade() -> None:
    op.drop_table('model_tags')
    op.drop_table('dataset_tags')
