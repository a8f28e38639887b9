"""BigQuery tables carry the row models' table and column descriptions (what the console shows analysts), set on
creation and brought up to date when the model changes; on the local emulator."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adpipeline.tables import TABLES
from adpipeline.warehouse import schema
from adpipeline.warehouse.bigquery import BigQueryWarehouse, schema_fields

pytestmark = pytest.mark.bigquery


def _described(bq: BigQueryWarehouse, name: str) -> tuple[str | None, dict[str, str | None]]:
    table = bq.client.get_table(f"{bq.dataset_id}.{name}")
    return table.description, {f.name: f.description for f in table.schema}


def test_new_tables_carry_the_models_descriptions(new_bq_warehouse: Callable[[], BigQueryWarehouse]) -> None:
    bq = new_bq_warehouse()
    bq.ensure_tables(["faces", "run_warnings"])
    for name in ("faces", "run_warnings"):
        model = TABLES[name].model
        description, columns = _described(bq, name)
        assert description == schema.table_description(model) and description
        assert columns == {c.name: c.description or None for c in schema.columns(model)}
    assert (
        _described(bq, "faces")[1]["best_crop_path"] == TABLES["faces"].model.model_fields["best_crop_path"].description
    )


def test_an_older_table_gets_the_descriptions_on_the_next_ensure(
    new_bq_warehouse: Callable[[], BigQueryWarehouse],
) -> None:
    from google.cloud import bigquery

    bq = new_bq_warehouse()
    bq.ensure_dataset()
    spec = TABLES["image_hashes"]
    bare = [bigquery.SchemaField(f.name, f.field_type, mode=f.mode) for f in schema_fields(spec.model)]
    older = [f for f in bare if f.name != "ocr_text"]  # as an earlier version made it: no descriptions
    bq.client.create_table(bigquery.Table(f"{bq.dataset_id}.image_hashes", schema=older))
    assert _described(bq, "image_hashes") == (None, {f.name: None for f in older})
    fresh = BigQueryWarehouse(project=bq.project, dataset=bq.dataset)  # a later version's warehouse object
    try:
        fresh.ensure_tables(["image_hashes"])
        description, columns = _described(bq, "image_hashes")
        assert description == schema.table_description(spec.model)
        assert columns == {c.name: c.description or None for c in schema.columns(spec.model)}  # incl. the new one
        assert columns["fine_thumb"] == spec.model.model_fields["fine_thumb"].description
        assert fresh.add_missing_columns(spec) == []
    finally:
        fresh.close()


def test_old_absolute_paths_become_keys_once(new_bq_warehouse: Callable[[], BigQueryWarehouse]) -> None:
    from google.cloud import bigquery

    from adpipeline.tables import Face
    from adpipeline.warehouse.bigquery import KEYS_LABEL

    bq = new_bq_warehouse()
    bq.ensure_dataset()
    fields = [bigquery.SchemaField(f.name, f.field_type, mode=f.mode) for f in schema_fields(Face)]
    bq.client.create_table(bigquery.Table(f"{bq.dataset_id}.faces", schema=fields))  # an earlier version's table
    # a row as an earlier version wrote it (plain DML: no ensure_tables of this version touches the table first)
    bq.client.query(
        f"INSERT INTO `{bq.dataset_id}.faces` (face_id, backend, model_id, centroid, n_tracks, n_videos, "
        "first_creative_id, best_track_id, best_crop_path) VALUES "
        "('f1', 'dlib', 'm', [0.1], 1, 1, 'v1', 't1', '/old/home/bucket/faces/crops/t1.jpg')"
    ).result()
    fresh = BigQueryWarehouse(project=bq.project, dataset=bq.dataset)
    try:
        fresh.ensure_tables(["faces"])
        got = fresh.query("SELECT best_crop_path FROM {{ faces }}")["best_crop_path"].tolist()
        assert got == ["faces/crops/t1.jpg"]
        assert fresh.client.get_table(f"{bq.dataset_id}.faces").labels.get(KEYS_LABEL) == "1"
    finally:
        fresh.close()
    later = BigQueryWarehouse(project=bq.project, dataset=bq.dataset)
    try:
        later.ensure_tables(["faces"])
        assert sum(later.jobs.values()) == 0  # migrated once: no query job on later runs
    finally:
        later.close()
