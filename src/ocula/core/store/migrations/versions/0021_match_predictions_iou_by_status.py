"""match predictions' IoU indexed per status: true positives, and the rest

With one ``(run_pk, iou)`` index, "true positives, worst IoU first" walked every false
positive of lower IoU before its first row (5M boxes, SQLite: 1.7 s for a page of 100),
and "false positives, best IoU first" every true positive. A ``(run_pk, status, iou)``
index serves both but costs PostgreSQL's first commit ~1.3 s more than ``(run_pk, iou)``
(2M rows: its sort compares status strings); two partial ``(run_pk, iou)`` indexes, one
on the true positives and one on the rest, hold the same entries as the one they
replace and build in about its time. A query ordered by IoU reads one of them or both
(``query.plan.iou_parts``).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 15:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('match_predictions', schema=None) as batch_op:
        batch_op.drop_index('ix_match_predictions_run_iou')
        for name, where in (('ix_match_predictions_run_iou_tp', "status = 'tp'"),
                            ('ix_match_predictions_run_iou_other', "status <> 'tp'")):
            batch_op.create_index(name, ['run_pk', 'iou'], unique=False,
                                  sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def downgrade() -> None:
    with op.batch_alter_table('match_predictions', schema=None) as batch_op:
        batch_op.drop_index('ix_match_predictions_run_iou_other')
        batch_op.drop_index('ix_match_predictions_run_iou_tp')
        batch_op.create_index('ix_match_predictions_run_iou', ['run_pk', 'iou'], unique=False)
