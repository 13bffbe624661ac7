"""annotation label in the current-item index

The (dataset_pk, label) index is replaced by the label as the last column of the
(dataset_pk, version_to, item_pk) index: label filters are still answered from an index
before rows are read, and a bulk upload appends to one index instead of inserting into
the middle of each label's run of another (a quarter of SQLite's insert time).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 11:47:18.302198
"""

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.create_index('ix_annotations_dataset_current_item_label',
                              ['dataset_pk', 'version_to', 'item_pk', 'label'], unique=False)
        batch_op.drop_index(batch_op.f('ix_annotations_dataset_current_item'))
        batch_op.drop_index(batch_op.f('ix_annotations_dataset_label'))


def downgrade() -> None:
    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotations_dataset_label'), ['dataset_pk', 'label'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_annotations_dataset_current_item'),
                              ['dataset_pk', 'version_to', 'item_pk'], unique=False)
        batch_op.drop_index('ix_annotations_dataset_current_item_label')
