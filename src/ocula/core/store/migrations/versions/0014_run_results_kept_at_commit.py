"""run results kept at commit

A committed run's metrics and failure summary per scope (dataset, item slices), kept so
the run page reads them instead of re-scoring every box; existing runs have none and are
scored on request until committed again.

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-05 19:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0014'
down_revision = '0012'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('run_results',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_pk', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('state', _JSON, nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_pk'], ['model_runs.pk'], name=op.f('fk_run_results_run_pk_model_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_run_results')),
    sa.UniqueConstraint('run_pk', 'kind', 'scope', name=op.f('uq_run_results_run_pk_kind_scope'))
    )


def downgrade() -> None:
    op.drop_table('run_results')
