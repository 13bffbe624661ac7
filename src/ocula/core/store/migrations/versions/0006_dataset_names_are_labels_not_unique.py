"""dataset names are labels, not unique

Nucleus names are labels and ids are identity: two datasets may share a name. A look-up
by a name two datasets share is refused with their ids (``AmbiguousNameError``); the
index keeps look-ups by name fast.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 10:37:06.114220
"""

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_datasets_name'), type_='unique')
        batch_op.create_index('ix_datasets_name', ['name'], unique=False)


def downgrade() -> None:
    # Fails, as it should, while two datasets share a name.
    with op.batch_alter_table('datasets', schema=None) as batch_op:
        batch_op.drop_index('ix_datasets_name')
        batch_op.create_unique_constraint(batch_op.f('uq_datasets_name'), ['name'])
