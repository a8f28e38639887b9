"""docs/tables.md is generated from the row models; out of date is red."""

from __future__ import annotations

from adpipeline import tables_reference
from adpipeline.tables import TABLES, Face
from adpipeline.warehouse import schema


def test_tables_page_is_up_to_date() -> None:
    assert tables_reference.PAGE.read_text() == tables_reference.render(), (
        "docs/tables.md is out of date: run .venv/bin/python -m adpipeline.tables_reference"
    )


def test_page_lists_every_table_and_column_with_the_models_words() -> None:
    page = tables_reference.render()
    for name, spec in TABLES.items():
        assert f"## `{name}`" in page
        for column in schema.columns(spec.model):
            assert f"| `{column.name}` | {column.bq_type} | {column.mode} |" in page
    crop = schema.column_description(Face, "best_crop_path")
    assert crop == Face.model_fields["best_crop_path"].description and crop in page
    assert schema.column_description(Face, "face_id")  # shared words where the field has none (COLUMN_DOCS)
    assert schema.table_description(Face) in page
