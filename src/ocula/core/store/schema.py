"""The catalog's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Rows join on integer surrogate keys (``pk``) because they keep indexes small and joins
fast at millions of boxes; the public, prefixed string ids (``ds_…``, ``di_…``) live in
their own unique columns.

Annotations are versioned in place: every write to a dataset's ground truth opens a new
row in ``annotation_versions`` and each annotation row is valid from the version that
wrote it (``version_from``) until the version that replaced or deleted it
(``version_to``, NULL while current). "The labels at version v" is
``version_from <= v AND (version_to IS NULL OR version_to > v)``; a correction never
destroys the old label, so a run can be scored against old and corrected labels.

Evaluation results live in their own ``match_*`` tables keyed by run, never in the
annotation or prediction rows. They are derived rows a commit rewrites in bulk, so they
carry no foreign keys: a reference check per row made PostgreSQL's write of 2M match
rows ~20 s slower (one trigger per key and row), and a run's, an item's or a
prediction's rows are deleted with it by the service that deletes it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON as SAJSON,
)
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

# JSONB on PostgreSQL so metadata queries can use its operators and GIN indexes.
JsonType = SAJSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


def _pk() -> Column:
    return Column("pk", Integer, primary_key=True, autoincrement=True)


def _fk(name: str, target: str, *, nullable: bool = False) -> Column:
    return Column(name, Integer, ForeignKey(f"{target}.pk", ondelete="CASCADE"),
                  nullable=nullable)


def _created() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False)


datasets = Table(
    "datasets",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    # A label, not an identity (as in Nucleus): two datasets may share a name, and a
    # look-up by a shared name is refused with the ids (``AmbiguousNameError``).
    Column("name", String(255), nullable=False),
    # Annotation types this dataset accepts; NULL = any.
    Column("allowed_types", JsonType, nullable=True),
    Column("metadata", JsonType, nullable=True),
    _created(),
    # A scene dataset (Nucleus' ``is_scene``) holds its items as frames of scenes.
    Column("is_scene", Boolean, nullable=False, server_default=false()),
    Index("ix_datasets_name", "name"),
)

# Nucleus taxonomies: a dataset's named label sets (type "category" or
# "multicategory"); a category annotation naming one must use one of its labels.
taxonomies = Table(
    "taxonomies",
    metadata,
    _pk(),
    _fk("dataset_pk", "datasets"),
    Column("name", String(255), nullable=False),
    Column("type", String(32), nullable=False),
    Column("labels", JsonType, nullable=False),
    _created(),
    UniqueConstraint("dataset_pk", "name"),
)

dataset_tags = Table(
    "dataset_tags",
    metadata,
    _pk(),
    _fk("dataset_pk", "datasets"),
    Column("tag", String(255), nullable=False),
    _created(),
    UniqueConstraint("dataset_pk", "tag"),
)

items = Table(
    "items",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    _fk("dataset_pk", "datasets"),
    Column("reference_id", String(1024), nullable=False),
    # What the user gave: a local path or a URL.
    Column("image_location", Text, nullable=False),
    # Content-addressed key in the media folder, or NULL when referenced in place.
    Column("media_key", String(80), nullable=True),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("metadata", JsonType, nullable=True),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("dataset_pk", "reference_id"),
    # Queries page a dataset's items in key order (keyset cursors seek here).
    Index("ix_items_dataset_pk", "dataset_pk", "pk"),
    # Newest change of a dataset's items in one look-up (insights cache key).
    Index("ix_items_dataset_updated", "dataset_pk", "updated_at"),
    # metadata.key = "value" / in [...] compile to @> containment on PostgreSQL.
    Index("ix_items_metadata_gin", "metadata", postgresql_using="gin",
          postgresql_ops={"metadata": "jsonb_path_ops"}).ddl_if(dialect="postgresql"),
)

# Each item's perceptual hash (pHash, 64 bits as a signed BIGINT), computed once from
# its pixels for deduplication. ``tag`` is the image's content tag when it was hashed
# (``media.content_tag``: a stored copy's content hash, an in-place file's identity and
# version), so a hash whose image has changed since is recomputed, never used.
item_phashes = Table(
    "item_phashes",
    metadata,
    Column("item_pk", Integer, ForeignKey("items.pk", ondelete="CASCADE"),
           primary_key=True),
    Column("tag", String(80), nullable=False),
    Column("phash", BigInteger, nullable=False),
)

# A scene: a named, ordered group of a dataset's items (the frames of a video).
scenes = Table(
    "scenes",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    _fk("dataset_pk", "datasets"),
    Column("reference_id", String(1024), nullable=False),
    Column("frame_rate", Float, nullable=True),
    # The video the frames were cut from, when the scene was given as one.
    Column("video_location", Text, nullable=True),
    Column("metadata", JsonType, nullable=True),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("dataset_pk", "reference_id"),
)

# An item's place in its scene: a link table, so items (millions of rows) keep their
# shape and an item belongs to at most one scene.
scene_frames = Table(
    "scene_frames",
    metadata,
    _fk("scene_pk", "scenes"),
    Column("item_pk", Integer, ForeignKey("items.pk", ondelete="CASCADE"),
           primary_key=True),
    Column("frame_index", Integer, nullable=False),
    UniqueConstraint("scene_pk", "frame_index"),
)

# What a dataset says about a track beyond its id (Nucleus' track metadata). Objects
# carry the track's reference id in ``track_id``; a track with no row here has none.
tracks = Table(
    "tracks",
    metadata,
    _pk(),
    _fk("dataset_pk", "datasets"),
    Column("reference_id", String(255), nullable=False),
    Column("metadata", JsonType, nullable=True),
    _created(),
    UniqueConstraint("dataset_pk", "reference_id"),
)

annotation_versions = Table(
    "annotation_versions",
    metadata,
    _pk(),
    _fk("dataset_pk", "datasets"),
    # Monotonic per dataset, starting at 1.
    Column("version", Integer, nullable=False),
    Column("name", String(255), nullable=True),
    Column("message", Text, nullable=True),
    _created(),
    UniqueConstraint("dataset_pk", "version"),
)

# Columns shared by ground truth and predictions: geometry kept in real columns so
# queries (area < 400, width > 20) and evaluation read them without JSON parsing.
def _object_columns() -> list[Column]:
    return [
        Column("type", String(16), nullable=False),
        Column("label", String(255), nullable=True),
        Column("x", Float, nullable=True),
        Column("y", Float, nullable=True),
        Column("width", Float, nullable=True),
        Column("height", Float, nullable=True),
        Column("area", Float, nullable=True),
        Column("iscrowd", Boolean, nullable=False, default=False),
        # Polygon vertices, keypoints, RLE; NULL for plain boxes.
        Column("geometry", JsonType, nullable=True),
        Column("metadata", JsonType, nullable=True),
        # The reference id of the track (an object followed across a scene's frames).
        Column("track_id", String(255), nullable=True),
    ]


annotations = Table(
    "annotations",
    metadata,
    _pk(),
    # Stable logical id across versions of the same annotation.
    Column("id", String(40), nullable=False),
    _fk("dataset_pk", "datasets"),
    _fk("item_pk", "items"),
    # The user's own id; unique among current annotations of an item.
    Column("annotation_id", String(255), nullable=True),
    *_object_columns(),
    Column("version_from", Integer, nullable=False),
    Column("version_to", Integer, nullable=True),
    # Label filters read this index in row order, so a first page of "label = x" stops
    # after a page of rows. It costs a fifth of bulk-insert time (each upload inserts
    # into the middle of every label's run); an index that appends instead, with the
    # label as its last column, made such pages 10-40x slower: kept.
    Index("ix_annotations_dataset_label", "dataset_pk", "label"),
    # No index on the logical id: it costs a quarter of bulk-insert time, and look-ups by
    # it (deletes) are scoped to a dataset's current rows, which the index below narrows.
    # Serves "current annotations of an item" too: an item has few rows in all versions.
    Index("ix_annotations_item_annotation_id", "item_pk", "annotation_id"),
    # Current annotations of a dataset grouped by item, from the index alone (insights).
    Index("ix_annotations_dataset_current_item", "dataset_pk", "version_to", "item_pk"),
)

# One row per operation of an interactive edit (``services/edits.py``): who made it, when,
# and the annotation before and after (JSON, ``object_payload`` with its version token),
# so an item's history reads without diffing versions. Bulk writes (annotate, import)
# open versions too but log nothing here: they may touch millions of rows.
annotation_edits = Table(
    "annotation_edits",
    metadata,
    _pk(),
    _fk("dataset_pk", "datasets"),
    _fk("item_pk", "items"),
    # The label version the edit wrote, and the operation's place in its call.
    Column("version", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("op", String(32), nullable=False),
    # The annotation's logical id (annotations.id).
    Column("annotation", String(40), nullable=False),
    # accept_prediction: the prediction copied into ground truth.
    Column("prediction_id", String(40), nullable=True),
    Column("author", String(255), nullable=False),
    Column("message", Text, nullable=True),
    Column("before", JsonType, nullable=True),
    Column("after", JsonType, nullable=True),
    _created(),
    # An item's history, newest first.
    Index("ix_annotation_edits_item", "item_pk", "version"),
)

models = Table(
    "models",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("reference_id", String(255), nullable=False, unique=True),
    Column("metadata", JsonType, nullable=True),
    _created(),
)

model_tags = Table(
    "model_tags",
    metadata,
    _pk(),
    _fk("model_pk", "models"),
    Column("tag", String(255), nullable=False),
    _created(),
    UniqueConstraint("model_pk", "tag"),
)

model_runs = Table(
    "model_runs",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    _fk("model_pk", "models"),
    _fk("dataset_pk", "datasets"),
    Column("name", String(255), nullable=False),
    Column("metadata", JsonType, nullable=True),
    # Set by commit(): the options used and the annotation version matched against.
    Column("commit_config", JsonType, nullable=True),
    Column("committed_version", Integer, nullable=True),
    Column("committed_at", DateTime(timezone=True), nullable=True),
    # When predictions were last written to the run (ocula.core.services.sides_cache).
    Column("predictions_at", DateTime(timezone=True), nullable=True),
    _created(),
    UniqueConstraint("dataset_pk", "name"),
)

predictions = Table(
    "predictions",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    _fk("run_pk", "model_runs"),
    _fk("item_pk", "items"),
    Column("annotation_id", String(255), nullable=True),
    *_object_columns(),
    Column("confidence", Float, nullable=True),
    Column("class_pdf", JsonType, nullable=True),
    Index("ix_predictions_run_item", "run_pk", "item_pk"),
    Index("ix_predictions_item", "item_pk"),
    Index("ix_predictions_run_label", "run_pk", "label"),
)

slices = Table(
    "slices",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    _fk("dataset_pk", "datasets"),
    Column("name", String(255), nullable=False),
    # "item" or "object" (a slice of boxes, for the patches view).
    Column("kind", String(16), nullable=False, default="item"),
    Column("description", Text, nullable=True),
    # The query the snapshot was taken from, when made from one.
    Column("query", Text, nullable=True),
    _created(),
    UniqueConstraint("dataset_pk", "name"),
)

slice_items = Table(
    "slice_items",
    metadata,
    _fk("slice_pk", "slices"),
    _fk("item_pk", "items"),
    UniqueConstraint("slice_pk", "item_pk"),
    Index("ix_slice_items_item", "item_pk"),
)

slice_objects = Table(
    "slice_objects",
    metadata,
    _fk("slice_pk", "slices"),
    # Exactly one of the two is set.
    _fk("annotation_pk", "annotations", nullable=True),
    _fk("prediction_pk", "predictions", nullable=True),
    Index("ix_slice_objects_slice", "slice_pk"),
)

match_predictions = Table(
    "match_predictions",
    metadata,
    Column("run_pk", Integer, nullable=False),
    Column("prediction_pk", Integer, primary_key=True),
    Column("item_pk", Integer, nullable=False),
    # The ground truth row (a specific version) it matched, if any.
    Column("annotation_pk", Integer, nullable=True),
    Column("iou", Float, nullable=False),
    # "tp", "fp" or "ignored" (absorbed by a crowd region); the denormalised label and
    # confidence let "FPs above 0.8" use one index.
    Column("status", String(8), nullable=False),
    Column("label", String(255), nullable=True),
    Column("confidence", Float, nullable=True),
    # Confidence before status: the build's sort then rarely compares status strings
    # (migration 0020), and "FPs above 0.8" still walks one index range.
    Index("ix_match_predictions_run_conf_status", "run_pk", "confidence", "status"),
    # IoU order within a status (the patches page's "true positives, worst IoU first"):
    # a (run_pk, status, iou) index would cost PostgreSQL's first commit ~1.3 s more than
    # (run_pk, iou) (its sort compares status strings: 2M rows), these two partial ones
    # about the same as that one (migration 0021). Queries name the index's condition
    # (query.plan.iou_parts).
    Index("ix_match_predictions_run_iou_tp", "run_pk", "iou",
          sqlite_where=text("status = 'tp'"), postgresql_where=text("status = 'tp'")),
    Index("ix_match_predictions_run_iou_other", "run_pk", "iou",
          sqlite_where=text("status <> 'tp'"), postgresql_where=text("status <> 'tp'")),
    Index("ix_match_predictions_item", "item_pk"),
    # No (run_pk, label, status) index: per-class counts are running totals (stats), and
    # every index is rebuilt by a first commit (migration 0019).
)

match_annotations = Table(
    "match_annotations",
    metadata,
    Column("run_pk", Integer, nullable=False),
    Column("annotation_pk", Integer, nullable=False),
    Column("item_pk", Integer, nullable=False),
    Column("prediction_pk", Integer, nullable=True),
    Column("iou", Float, nullable=False),
    # "tp", "fn", or "ignored" (crowd regions).
    Column("status", String(8), nullable=False),
    Column("label", String(255), nullable=True),
    # The annotation's own area (its row's, NULL where that is NULL): "missed boxes,
    # largest first" walks (run_pk, status, area) instead of joining every miss to its
    # annotation to sort them (migration 0022). An annotation row's area never changes
    # (an edit writes a new row), so the copy cannot go stale.
    Column("area", Float, nullable=True),
    UniqueConstraint("run_pk", "annotation_pk"),
    Index("ix_match_annotations_run_status_area", "run_pk", "status", "area"),
    Index("ix_match_annotations_item", "item_pk"),
)

match_items = Table(
    "match_items",
    metadata,
    Column("run_pk", Integer, nullable=False),
    Column("item_pk", Integer, nullable=False),
    Column("tp", Integer, nullable=False),
    Column("fp", Integer, nullable=False),
    Column("fn", Integer, nullable=False),
    # A digest of every match row the commit wrote for the item: a re-commit rewrites
    # only the items whose digest changes (ocula.core.services.match_rows).
    Column("digest", BigInteger, nullable=True),
    UniqueConstraint("run_pk", "item_pk"),
    Index("ix_match_items_run_fn", "run_pk", "fn"),
    Index("ix_match_items_run_fp", "run_pk", "fp"),
)

# A committed run's page, kept at commit (metrics, failure summary) per scope (the whole
# dataset, each item slice) so the run page reads one row instead of re-scoring millions
# of boxes; ``state`` is the fingerprint of the data it was computed from, and a row
# whose fingerprint no longer matches is recomputed, never served.
run_results = Table(
    "run_results",
    metadata,
    _pk(),
    _fk("run_pk", "model_runs"),
    Column("kind", String(32), nullable=False),
    # "" for the whole dataset, else the slice's pk.
    Column("scope", String(64), nullable=False),
    Column("state", JsonType, nullable=False),
    # JSON text, not JSONB: key order is part of the answer (``stats`` lists the 12 COCO
    # numbers in pycocotools' order), and JSONB reorders keys.
    Column("body", Text, nullable=False),
    _created(),
    UniqueConstraint("run_pk", "kind", "scope"),
)

# Scenario tests ("model CI", Nucleus' validate): a slice plus criteria (evaluation
# function, arguments, threshold, comparison); each evaluation of a run on one keeps its
# numbers per criterion (``scenario_test_results``), the history of the test.
scenario_tests = Table(
    "scenario_tests",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    # Nucleus evaluates tests by name: a name names one test.
    Column("name", String(255), nullable=False, unique=True),
    _fk("dataset_pk", "datasets"),
    _fk("slice_pk", "slices"),
    Column("baseline_run_pk", Integer, ForeignKey("model_runs.pk", ondelete="SET NULL"),
           nullable=True),
    _created(),
)

scenario_test_criteria = Table(
    "scenario_test_criteria",
    metadata,
    _pk(),
    _fk("test_pk", "scenario_tests"),
    Column("function", String(64), nullable=False),
    Column("arguments", JsonType, nullable=False),
    Column("threshold", Float, nullable=True),
    Column("comparison", String(32), nullable=False),
    _created(),
    UniqueConstraint("test_pk", "function"),
)

scenario_test_evaluations = Table(
    "scenario_test_evaluations",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    _fk("test_pk", "scenario_tests"),
    _fk("run_pk", "model_runs"),
    Column("annotation_version", Integer, nullable=True),
    Column("passed", Boolean, nullable=False),
    _created(),
    Index("ix_scenario_test_evaluations_test_pk", "test_pk"),
)

scenario_test_results = Table(
    "scenario_test_results",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    _fk("evaluation_pk", "scenario_test_evaluations"),
    Column("function", String(64), nullable=False),
    Column("arguments", JsonType, nullable=False),
    Column("threshold", Float, nullable=True),
    Column("comparison", String(32), nullable=False),
    Column("value", Float, nullable=True),
    Column("passed", Boolean, nullable=False),
    # Counts, each item's value and pass, and the public ids behind the number.
    Column("details", JsonType, nullable=False),
    Index("ix_scenario_test_results_evaluation_pk", "evaluation_pk"),
)

jobs = Table(
    "jobs",
    metadata,
    _pk(),
    Column("id", String(40), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("message", Text, nullable=True),
    Column("completed_steps", Integer, nullable=False, default=0),
    Column("total_steps", Integer, nullable=False, default=0),
    Column("errors", JsonType, nullable=True),
    Column("result", JsonType, nullable=True),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    _pk(),
    Column("name", String(255), nullable=False, unique=True),
    # sha256 of the key; the key itself is shown once and never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("revoked", Boolean, nullable=False, default=False),
    _created(),
)

# Running totals behind whole-dataset insights, kept in the same transaction as every
# write that changes them (see ``ocula.core.services.stats``), so insights on millions of
# boxes read a few hundred rows instead of scanning. ``kind`` says what ``key`` (JSON
# text) counts: "gt" current annotations by [label, area bucket, aspect bucket],
# "per_item" items by number of current annotations, "meta" items by [field, value],
# "pred" a run's predictions by label, "match" a committed run's match rows by
# [side, label, status], "ready" marks a dataset whose totals are complete.
dataset_stats = Table(
    "dataset_stats",
    metadata,
    _pk(),
    _fk("dataset_pk", "datasets"),
    # 0 for totals of the dataset itself; a run's pk for "pred" and "match".
    Column("run_pk", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("key", Text, nullable=False),
    # sha1 of key: the unique key stays short whatever the metadata value's length.
    Column("key_hash", String(40), nullable=False),
    Column("count", BigInteger, nullable=False),
    # "meta" rows only: the field, the value's type (str, bool, num, null, nested) and a
    # number's value, so a field with a million distinct values is read by index ranges
    # (top values, min/max, histogram) instead of row by row.
    Column("field", Text, nullable=True),
    Column("vtype", String(8), nullable=True),
    Column("num", Float, nullable=True),
    UniqueConstraint("dataset_pk", "run_pk", "kind", "key_hash",
                     name="uq_dataset_stats_key"),
    Index("ix_dataset_stats_field_num", "dataset_pk", "kind", "field", "vtype", "num",
          "count"),
    Index("ix_dataset_stats_field_count", "dataset_pk", "kind", "field", "vtype", "count",
          "key_hash"),
)
