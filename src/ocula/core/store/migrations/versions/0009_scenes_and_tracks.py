"""scenes and tracks

Scenes (ordered groups of a dataset's items, with frame numbers in scene_frames),
tracks (metadata of the track ids objects carry in track_id) and is_scene on datasets.
Columns are added in place (ADD COLUMN, nullable or with a default): no table rebuild.

Revision ID: 0009
Revises: 0014
Create Date: 2026-12-05 18:33:30.399638
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scenes',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('dataset_pk', sa.Integer(), nullable=False),
    sa.Column('reference_id', sa.String(length=1024), nullable=False),
    sa.Column('frame_rate', sa.Float(), nullable=True),
    sa.Column('video_location', sa.Text(), nullable=True),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_pk'], ['datasets.pk'], name=op.f('fk_scenes_dataset_pk_datasets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_scenes')),
    sa.UniqueConstraint('dataset_pk', 'reference_id', name=op.f('uq_scenes_dataset_pk_reference_id')),
    sa.UniqueConstraint('id', name=op.f('uq_scenes_id'))
    )
    op.create_table('tracks',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dataset_pk', sa.Integer(), nullable=False),
    sa.Column('reference_id', sa.String(length=255), nullable=False),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_pk'], ['datasets.pk'], name=op.f('fk_tracks_dataset_pk_datasets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_tracks')),
    sa.UniqueConstraint('dataset_pk', 'reference_id', name=op.f('uq_tracks_dataset_pk_reference_id'))
    )
    op.create_table('scene_frames',
    sa.Column('scene_pk', sa.Integer(), nullable=False),
    sa.Column('item_pk', sa.Integer(), nullable=False),
    sa.Column('frame_index', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['item_pk'], ['items.pk'], name=op.f('fk_scene_frames_item_pk_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scene_pk'], ['scenes.pk'], name=op.f('fk_scene_frames_scene_pk_scenes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_pk', name=op.f('pk_scene_frames')),
    sa.UniqueConstraint('scene_pk', 'frame_index', name=op.f('uq_scene_frames_scene_pk_frame_index'))
    )
    op.add_column('annotations', sa.Column('track_id', sa.String(length=255), nullable=True))
    op.add_column('predictions', sa.Column('track_id', sa.String(length=255), nullable=True))
    op.add_column('datasets', sa.Column('is_scene', sa.Boolean(), server_default=sa.false(),
                                        nullable=False))


def downgrade() -> None:
    for table, column in (('predictions', 'track_id'), ('datasets', 'is_scene'),
                          ('annotations', 'track_id')):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)

    op.drop_table('scene_frames')
    op.drop_table('tracks')
    op.drop_table('scenes')
