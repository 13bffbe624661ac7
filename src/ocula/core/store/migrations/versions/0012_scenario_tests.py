"""scenario tests

Scenario tests ("model CI"): a slice plus criteria, and each evaluation's results per
criterion (the history of the test). New tables only.

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-05 18:32:49.029165
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scenario_tests',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('dataset_pk', sa.Integer(), nullable=False),
    sa.Column('slice_pk', sa.Integer(), nullable=False),
    sa.Column('baseline_run_pk', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['baseline_run_pk'], ['model_runs.pk'], name=op.f('fk_scenario_tests_baseline_run_pk_model_runs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['dataset_pk'], ['datasets.pk'], name=op.f('fk_scenario_tests_dataset_pk_datasets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['slice_pk'], ['slices.pk'], name=op.f('fk_scenario_tests_slice_pk_slices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_scenario_tests')),
    sa.UniqueConstraint('id', name=op.f('uq_scenario_tests_id')),
    sa.UniqueConstraint('name', name=op.f('uq_scenario_tests_name'))
    )
    op.create_table('scenario_test_criteria',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('test_pk', sa.Integer(), nullable=False),
    sa.Column('function', sa.String(length=64), nullable=False),
    sa.Column('arguments', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=True),
    sa.Column('comparison', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['test_pk'], ['scenario_tests.pk'], name=op.f('fk_scenario_test_criteria_test_pk_scenario_tests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_scenario_test_criteria')),
    sa.UniqueConstraint('test_pk', 'function', name=op.f('uq_scenario_test_criteria_test_pk_function'))
    )
    op.create_table('scenario_test_evaluations',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('test_pk', sa.Integer(), nullable=False),
    sa.Column('run_pk', sa.Integer(), nullable=False),
    sa.Column('annotation_version', sa.Integer(), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_pk'], ['model_runs.pk'], name=op.f('fk_scenario_test_evaluations_run_pk_model_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['test_pk'], ['scenario_tests.pk'], name=op.f('fk_scenario_test_evaluations_test_pk_scenario_tests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_scenario_test_evaluations')),
    sa.UniqueConstraint('id', name=op.f('uq_scenario_test_evaluations_id'))
    )
    with op.batch_alter_table('scenario_test_evaluations', schema=None) as batch_op:
        batch_op.create_index('ix_scenario_test_evaluations_test_pk', ['test_pk'], unique=False)

    op.create_table('scenario_test_results',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('evaluation_pk', sa.Integer(), nullable=False),
    sa.Column('function', sa.String(length=64), nullable=False),
    sa.Column('arguments', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=True),
    sa.Column('comparison', sa.String(length=32), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['evaluation_pk'], ['scenario_test_evaluations.pk'], name=op.f('fk_scenario_test_results_evaluation_pk_scenario_test_evaluations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_scenario_test_results')),
    sa.UniqueConstraint('id', name=op.f('uq_scenario_test_results_id'))
    )
    with op.batch_alter_table('scenario_test_results', schema=None) as batch_op:
        batch_op.create_index('ix_scenario_test_results_evaluation_pk', ['evaluation_pk'], unique=False)

def downgrade() -> None:
    with op.batch_alter_table('scenario_test_results', schema=None) as batch_op:
        batch_op.drop_index('ix_scenario_test_results_evaluation_pk')

    op.drop_table('scenario_test_results')
    with op.batch_alter_table('scenario_test_evaluations', schema=None) as batch_op:
        batch_op.drop_index('ix_scenario_test_evaluations_test_pk')

    op.drop_table('scenario_test_evaluations')
    op.drop_table('scenario_test_criteria')
    op.drop_table('scenario_tests')
