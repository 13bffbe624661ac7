"""match predictions indexed by (run, confidence, status)

The ``(run_pk, status, confidence)`` index was the slowest build of a first commit: its
sort compares the status strings of nearly every pair of keys (PostgreSQL, 2M match
rows, one process: 4.9 s against 2.3 s for ``(run_pk, confidence)``). Keyed by
``(run_pk, confidence, status)`` the sort rarely gets to the status (only on equal
confidences; 2.5 s), and it serves the same reads: "false positives above 0.8, most
confident first" walks the run's confidences backwards and tests each key's status in
the index, and a status count still reads only the index.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 07:20:00.000000
"""

from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('match_predictions', schema=None) as batch_op:
        batch_op.drop_index('ix_match_predictions_run_status_conf')
        batch_op.create_index('ix_match_predictions_run_conf_status',
                              ['run_pk', 'confidence', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('match_predictions', schema=None) as batch_op:
        batch_op.drop_index('ix_match_predictions_run_conf_status')
        batch_op.create_index('ix_match_predictions_run_status_conf',
                              ['run_pk', 'status', 'confidence'], unique=False)
