"""match rows without foreign keys

The match tables hold derived rows a commit rewrites in bulk. On PostgreSQL every
foreign key is a trigger run per row written: writing 2M match rows took ~22 s longer
with the three keys of ``match_predictions`` than without (about 7 s each, the
``model_runs`` one included) — most of a first commit's time. Their rows are deleted
with a run, an item or a prediction by the services that delete those, so the keys go.
The downgrade removes rows left without their run, item or prediction, then adds them
back.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 08:20:00.000000
"""

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

# table -> (column, referred table) of each key it had.
KEYS = {
    'match_predictions': [('item_pk', 'items'), ('prediction_pk', 'predictions'),
                          ('run_pk', 'model_runs')],
    'match_annotations': [('item_pk', 'items'), ('run_pk', 'model_runs')],
    'match_items': [('item_pk', 'items'), ('run_pk', 'model_runs')],
}


def _name(table: str, column: str, referred: str) -> str:
    return f'fk_{table}_{column}_{referred}'


def upgrade() -> None:
    for table, keys in KEYS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, referred in keys:
                batch_op.drop_constraint(_name(table, column, referred), type_='foreignkey')


def downgrade() -> None:
    for table, keys in KEYS.items():
        for column, referred in keys:
            op.execute(f'DELETE FROM {table} WHERE {column} NOT IN (SELECT pk FROM {referred})')
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, referred in keys:
                batch_op.create_foreign_key(_name(table, column, referred), referred,
                                            [column], ['pk'], ondelete='CASCADE')
