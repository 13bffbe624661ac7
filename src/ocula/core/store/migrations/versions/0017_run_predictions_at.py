"""run predictions_at

When a run's predictions were last written: with the run's id and its dataset's items it
names the run's prediction rows, so a process may keep their evaluation columns in
memory between a commit and the next request (ocula.core.services.sides_cache). Runs
written before have none: their columns are kept under "none" until the next write.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 04:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('model_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('predictions_at', sa.DateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('model_runs', schema=None) as batch_op:
        batch_op.drop_column('predictions_at')
