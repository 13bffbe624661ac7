"""match rows without the (run, label, status) indexes

A first commit writes one match row per box and builds every secondary index of the
match tables afterwards, on SQLite in its write transaction and on PostgreSQL in the
server: those builds are most of the commit's time. The ``(run_pk, label, status)``
indexes served only per-class counts of whole runs, which every commit now keeps as
running totals (``stats.match_delta``); the query language never tests a match row's
label. At 100k images (2M predictions) dropping them took ~2.5 s of the writer's CPU off
a first commit on SQLite. The one reader left, a rebuild of the totals of a dataset older
than them (``stats.match_counts``), counts through the status index and the rows
instead: 0.4 -> 8 s at 2M predictions, once.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 01:40:00.000000
"""

from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

TABLES = ('match_predictions', 'match_annotations')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_run_label_status')


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f'ix_{table}_run_label_status',
                                  ['run_pk', 'label', 'status'], unique=False)
