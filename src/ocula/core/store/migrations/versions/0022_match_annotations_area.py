"""match annotations keep their annotation's area, indexed by (run, status, area)

"Missed ground truth, largest first" (the patches page's sort by size of a run's false
negatives) joined every miss to its annotation to sort them by area: 1.4M misses at 5M
boxes, ~1 s on SQLite for a first page of 100. With the annotation's area on its match
row, the page walks ``(run_pk, status, area)``, which also serves what
``(run_pk, status)`` did. The rows already written get the area of the annotation they
point to (an annotation row's area never changes: an edit writes a new row).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 15:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('match_annotations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('area', sa.Float(), nullable=True))
    op.execute('UPDATE match_annotations SET area = (SELECT annotations.area FROM annotations '
               'WHERE annotations.pk = match_annotations.annotation_pk)')
    with op.batch_alter_table('match_annotations', schema=None) as batch_op:
        batch_op.drop_index('ix_match_annotations_run_status')
        batch_op.create_index('ix_match_annotations_run_status_area',
                              ['run_pk', 'status', 'area'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('match_annotations', schema=None) as batch_op:
        batch_op.drop_index('ix_match_annotations_run_status_area')
        batch_op.create_index('ix_match_annotations_run_status', ['run_pk', 'status'],
                              unique=False)
        batch_op.drop_column('area')
